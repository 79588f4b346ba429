"""Turn the stored events into the report's figures.

Vocabulary (the report uses the same words):

* a *visitor* is one chat id (the widget keeps it for a browser tab's session);
* a *conversation* is one Rasa session of a visitor: a visitor who comes back
  after an hour of silence starts a new conversation and counts as *returning*;
* a *message* is something the visitor sent; it is *unanswered* when the bot was
  not sure what it meant (it asked "Did you mean...?" or said it didn't
  understand) or said the question is outside what it can help with.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Dict, Iterable, List, Optional

from assistant.contracts import (
    ACTION_CLARIFY,
    FEEDBACK_RATINGS,
    HANDOFF_INTENTS,
    SLOT_ANSWER_FEEDBACK,
    selected_answer,
)
from assistant.insights.events import EventRow
from assistant.kb.knowledge import KnowledgeBase
from assistant.kb.other_reading import BUTTON_TITLE
from assistant.nlu.red_flag_rules import EMERGENCY_AND_CRISIS

FALLBACK_ACTIONS = {ACTION_CLARIFY, "utter_default"}
# The off-topic reply: sent as its own action by older conversations, and from
# action_out_of_scope (actions/follow_up.py) since that action may answer instead.
OUT_OF_SCOPE_ACTION = "utter_out_of_scope"
FORM = "callback_form"
UTTER_ACTION = re.compile(r'"utter_action":\s*"([^"]+)"')
# The safety replies (data/rules/safety.yml) and the kind of warning sign each answers.
SAFETY_REPLIES = {"utter_emergency": "emergency", "utter_crisis": "crisis", "utter_urgent": "urgent",
                  f"utter_{EMERGENCY_AND_CRISIS}": EMERGENCY_AND_CRISIS}
# The escalations each red-flag intent counts as: both at once is one of each.
ESCALATIONS = {"emergency": ("emergency",), "crisis": ("crisis",),
               EMERGENCY_AND_CRISIS: ("emergency", "crisis")}
SAFETY_KINDS = tuple(SAFETY_REPLIES.values())
# The "Or did you mean: ..." button under an answer chosen from context
# (assistant/kb/other_reading.py): a tap on it says the context was read wrongly.
OTHER_READING_PREFIX = BUTTON_TITLE.split("{", 1)[0]


@dataclass
class Message:
    """A visitor's message the bot did not answer, kept for the review list."""

    text: str
    sender_id: str
    timestamp: float
    suggestion: str  # the topic or intent the model leaned towards
    out_of_scope: bool = False


@dataclass
class WarningSign:
    """A message the bot answered with a safety reply, for the clinic to review
    its safety messages (the report lists these first)."""

    kind: str  # emergency | crisis | urgent
    sender_id: str
    timestamp: float
    text: str


@dataclass
class Conversation:
    sender_id: str
    started: float
    faq_answered: bool = False
    offered_booking: bool = False
    requested_callback: bool = False
    confirmed_callback: bool = False
    chose_call: bool = False
    chose_booking: bool = False


@dataclass
class Visitor:
    conversations: List[Conversation] = field(default_factory=list)
    in_form: bool = False
    pending: Optional[EventRow] = None  # the latest message, until the bot's reply shows its fate
    unanswered: List[Message] = field(default_factory=list)
    names: List[str] = field(default_factory=list)  # what the call-back form collected (for redaction)
    last_message: Optional[EventRow] = None  # what a safety reply answers (parsed only then)
    flagged: Optional[EventRow] = None  # the message already listed as a warning sign
    other_reading: Optional[str] = None  # the payload of the latest "Or did you mean" button


def day_of(timestamp: float, zone: tzinfo) -> str:
    """The day a moment falls on in the clinic's zone (clinic.yml `timezone`): the
    clinic counts its days locally, so a 9 a.m. message in Sydney is that day's,
    not the previous UTC day's."""
    return datetime.fromtimestamp(timestamp, zone).strftime("%Y-%m-%d")


def suggestion_of(parse_data: Dict[str, Any]) -> str:
    """The model's best guess besides "not sure": a FAQ topic or an intent."""
    ranking = [i.get("name") for i in parse_data.get("intent_ranking") or [parse_data.get("intent") or {}]]
    best = next((name for name in ranking if name and name != "nlu_fallback"), "")
    if best == "faq":
        return selected_answer(parse_data).get("intent_response_key") or best
    return best


class Analyser:
    """Feed it events in stored order (`add`), then read `summary()` and `unanswered()`.
    Days are counted in `zone`, the clinic's time zone."""

    def __init__(self, kb: KnowledgeBase, phone_link: str, booking_url: str, zone: tzinfo) -> None:
        self.kb = kb
        self.zone = zone
        self.phone_link = phone_link
        self.booking_url = booking_url
        self.visitors: Dict[str, Visitor] = defaultdict(Visitor)
        # per day: messages, unanswered = clarifications ("Did you mean...?",
        # "didn't understand") + out_of_scope ("outside what I can help with")
        self.daily: Dict[str, Counter] = defaultdict(Counter)
        self.topics: Counter = Counter()
        self.escalations: Counter = Counter()
        self.warning_signs: List[WarningSign] = []
        # answers chosen from context that offered the message's own reading, and taps on it
        self.other_readings: Counter = Counter()
        # thumbs up / down from the widget, per answer (its utter action)
        self.feedback: Dict[str, Counter] = defaultdict(Counter)
        self.first_event: Optional[float] = None
        self.last_event: Optional[float] = None

    # ---- reading events ----------------------------------------------------

    def add(self, row: EventRow) -> None:
        if self.first_event is None or row.timestamp < self.first_event:
            self.first_event = row.timestamp
        if self.last_event is None or row.timestamp > self.last_event:
            self.last_event = row.timestamp
        visitor = self.visitors[row.sender_id]
        kind = row.type_name
        if kind == "session_started" or (kind == "user" and not visitor.conversations):
            visitor.conversations.append(Conversation(row.sender_id, row.timestamp))
            visitor.in_form = False
        if kind == "user":
            self._user(visitor, row)
        elif kind == "action":
            self._action(visitor, row)
        elif kind == "bot":
            self._bot(visitor, row)
        elif kind == "active_loop":
            visitor.in_form = row.action_name == FORM
            if visitor.in_form and visitor.conversations:
                visitor.conversations[-1].requested_callback = True
        elif kind == "slot" and row.action_name in ("callback_name", "callback_contact", "handoff_choice"):
            self._slot(visitor, row)
        elif kind == "slot" and row.action_name == SLOT_ANSWER_FEEDBACK:
            self._feedback(row)

    def _feedback(self, row: EventRow) -> None:
        """'down:utter_faq/does_it_hurt' (rasa_server/website_channel.py) -> one thumbs-down for it."""
        value = json.loads(row.data or "{}").get("value")
        rating, _, answer = str(value or "").partition(":")
        if rating in FEEDBACK_RATINGS:
            self.feedback[answer or "other"][rating] += 1

    def _user(self, visitor: Visitor, row: EventRow) -> None:
        self.daily[day_of(row.timestamp, self.zone)]["messages"] += 1
        visitor.last_message = row
        if visitor.other_reading is not None:
            self._other_reading_tapped(visitor, row)
        intent = row.intent_name or ""
        for kind in ESCALATIONS.get(intent, ()):
            self.escalations[kind] += 1
        if intent == "request_callback":
            visitor.conversations[-1].requested_callback = True
        if intent in HANDOFF_INTENTS:
            self.topics[f"intent:{intent}"] += 1
        # A message typed as an answer to the form (a name, a number) is never
        # a question to review: it is kept out of the report entirely.
        visitor.pending = None if visitor.in_form else row

    def _action(self, visitor: Visitor, row: EventRow) -> None:
        name = row.action_name or ""
        pending = visitor.pending
        if name == "action_listen":
            visitor.pending = None
        elif pending is None:
            return
        elif name in FALLBACK_ACTIONS or name == OUT_OF_SCOPE_ACTION:
            self._unanswered(visitor, pending, out_of_scope=name == OUT_OF_SCOPE_ACTION)
            visitor.pending = None
        elif name == "action_answer_condition":
            condition = self._condition_in(pending)
            self.topics[f"condition:{condition}"] += 1
            visitor.conversations[-1].faq_answered = True

    def _bot(self, visitor: Visitor, row: EventRow) -> None:
        data = row.data or ""
        conversation = visitor.conversations[-1] if visitor.conversations else None
        if conversation is None:
            return
        match = UTTER_ACTION.search(data)
        utter = match.group(1) if match else ""
        if utter.startswith("utter_faq/"):
            self.topics[f"faq:{utter[len('utter_faq/'):]}"] += 1
            conversation.faq_answered = True
        elif utter == OUT_OF_SCOPE_ACTION and visitor.pending is not None:
            self._unanswered(visitor, visitor.pending, out_of_scope=True)
            visitor.pending = None
        elif utter == "utter_callback_received":
            conversation.confirmed_callback = True
        elif utter in SAFETY_REPLIES:
            self._warning_sign(visitor, SAFETY_REPLIES[utter], row)
        if self.phone_link and f'"{self.phone_link}"' in data:
            conversation.offered_booking = True
        if OTHER_READING_PREFIX in data:
            self._other_reading_offered(visitor, data)

    def _other_reading_offered(self, visitor: Visitor, data: str) -> None:
        buttons = (json.loads(data).get("data") or {}).get("buttons") or []
        payload = next((b.get("payload") for b in buttons
                        if str(b.get("title", "")).startswith(OTHER_READING_PREFIX)), None)
        if payload:
            self.other_readings["offered"] += 1
            visitor.other_reading = payload

    def _other_reading_tapped(self, visitor: Visitor, row: EventRow) -> None:
        """The visitor's next message after the button: a tap sends its payload."""
        if json.loads(row.data or "{}").get("text") == visitor.other_reading:
            self.other_readings["taken"] += 1
        visitor.other_reading = None

    def _slot(self, visitor: Visitor, row: EventRow) -> None:
        value = json.loads(row.data or "{}").get("value")
        if not isinstance(value, str) or not value:
            return
        if row.action_name == "handoff_choice" and visitor.conversations:
            conversation = visitor.conversations[-1]
            conversation.chose_call |= value == "call"
            conversation.chose_booking |= value == "book_online"
        elif row.action_name != "handoff_choice":
            visitor.names.append(value)

    def _warning_sign(self, visitor: Visitor, kind: str, reply: EventRow) -> None:
        message = visitor.last_message
        if message is not None and message is visitor.flagged:
            return  # one reply in several parts, or two safety replies to one message
        visitor.flagged = message
        text = (json.loads(message.data or "{}").get("text") or "") if message is not None else ""
        self.warning_signs.append(WarningSign(kind, reply.sender_id, reply.timestamp,
                                              "" if text.startswith("/") else text))

    def _unanswered(self, visitor: Visitor, row: EventRow, out_of_scope: bool) -> None:
        reason = "out_of_scope" if out_of_scope else "clarifications"
        self.daily[day_of(row.timestamp, self.zone)].update(["unanswered", reason])
        data = json.loads(row.data or "{}")
        text = data.get("text") or ""
        if text.startswith("/"):
            return  # a button payload, not typed text
        visitor.unanswered.append(Message(text, row.sender_id, row.timestamp,
                                          suggestion_of(data.get("parse_data") or {}), out_of_scope))

    def _condition_in(self, row: EventRow) -> str:
        entities = (json.loads(row.data or "{}").get("parse_data") or {}).get("entities") or []
        for entity in entities:
            if entity.get("entity") == "condition":
                condition = self.kb.find_condition(str(entity.get("value", "")))
                if condition:
                    return condition.id
        return "other"

    # ---- results -----------------------------------------------------------

    def answer_label(self, answer: str) -> str:
        """A rated answer as the clinic knows it: the topic's title, else the response's name."""
        if answer.startswith("utter_faq/"):
            return self.kb.title_of(answer[len("utter_faq/"):]) or answer
        return answer.replace("utter_", "", 1).replace("_", " ")

    def most_thumbs_down(self) -> List[Dict[str, Any]]:
        """Answers with any thumbs-down, the most first (then the fewest thumbs-up)."""
        rated = [(answer, c["down"], c["up"]) for answer, c in self.feedback.items() if c["down"]]
        rated.sort(key=lambda item: (-item[1], item[2], item[0]))
        return [{"answer": answer, "label": self.answer_label(answer), "down": down, "up": up}
                for answer, down, up in rated]

    def topic_label(self, key: str) -> str:
        kind, _, name = key.partition(":")
        title = self.kb.title_of(name) if kind == "faq" else None
        if title:
            return title
        if kind == "condition":
            condition = self.kb.conditions.get(name)
            return f"Can it help with {condition.name}?" if condition else "Can it help with my condition?"
        return HANDOFF_INTENTS.get(name, name)

    def conversations(self) -> Iterable[Conversation]:
        for visitor in self.visitors.values():
            yield from visitor.conversations

    def unanswered(self) -> List[Message]:
        return [message for visitor in self.visitors.values() for message in visitor.unanswered]

    def known_names(self, sender_id: str) -> List[str]:
        return self.visitors[sender_id].names

    def summary(self) -> Dict[str, Any]:
        conversations = list(self.conversations())
        per_day: Dict[str, Counter] = defaultdict(Counter, {day: Counter(c) for day, c in self.daily.items()})
        for conversation in conversations:
            per_day[day_of(conversation.started, self.zone)]["conversations"] += 1
        returning = {sender for sender, v in self.visitors.items() if len(v.conversations) > 1}
        for sender in returning:
            for conversation in self.visitors[sender].conversations[1:]:
                per_day[day_of(conversation.started, self.zone)]["returning_conversations"] += 1
        keys = ("conversations", "returning_conversations", "messages", "unanswered", "clarifications",
                "out_of_scope")
        days = [{"date": day, **{key: c[key] for key in keys},
                 "unanswered_rate": _rate(c["unanswered"], c["messages"]),
                 "clarification_rate": _rate(c["clarifications"], c["messages"])}
                for day, c in sorted(per_day.items())]
        messages = sum(c["messages"] for c in self.daily.values())
        unanswered = sum(c["unanswered"] for c in self.daily.values())
        visitors = [v for v in self.visitors.values() if v.conversations]
        return {
            "totals": {
                "visitors": len(visitors),
                "new_visitors": len(visitors) - len(returning),
                "returning_visitors": len(returning),
                "conversations": len(conversations),
                "messages": messages,
                "unanswered": unanswered,
                "unanswered_rate": _rate(unanswered, messages),
            },
            "per_day": days,
            "topics": [{"topic": key, "label": self.topic_label(key), "count": count}
                       for key, count in self.topics.most_common()],
            "funnel": {
                "conversations": len(conversations),
                "asked_a_question": sum(c.faq_answered for c in conversations),
                "offered_booking": sum(c.offered_booking for c in conversations),
                "chose_to_call": sum(c.chose_call for c in conversations),
                "chose_to_book_online": sum(c.chose_booking for c in conversations),
                "requested_callback": sum(c.requested_callback for c in conversations),
                "confirmed_callback": sum(c.confirmed_callback for c in conversations),
            },
            "escalations": {"emergency": self.escalations["emergency"], "crisis": self.escalations["crisis"]},
            "feedback": {
                "up": sum(c["up"] for c in self.feedback.values()),
                "down": sum(c["down"] for c in self.feedback.values()),
                "most_thumbs_down": self.most_thumbs_down(),
            },
            "other_readings": {"offered": self.other_readings["offered"],
                               "taken": self.other_readings["taken"]},
            "warning_signs": {
                "counts": {kind: sum(w.kind == kind for w in self.warning_signs) for kind in SAFETY_KINDS},
                "conversations": len({(w.sender_id, self._conversation_of(w)) for w in self.warning_signs}),
            },
        }

    def _conversation_of(self, sign: WarningSign) -> float:
        conversations = self.visitors[sign.sender_id].conversations
        return max((c.started for c in conversations if c.started <= sign.timestamp), default=0.0)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
