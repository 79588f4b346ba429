"""Answer short follow-ups ("is that normal?", "how long will that last?",
"how?") against the topic of the bot's previous answer.

The model only decides that a message is a follow-up (intent ``follow_up``);
this action finds the previous answer's topic in the conversation, tells the
kind of follow-up from its words and resolves the pair through
``knowledge/follow_ups.yml``. A follow-up that names a condition ("and for
migraines?") is answered for that condition. With no previous topic it is
handled like any unclear message ("Did you mean...?"), and red flags, the
call-back form and clear new questions never reach this action: the red-flag
rules run first and a clear question has its own intent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Pattern, Tuple

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clarify import ActionClarify
from actions.conditions import answer_condition, conditions_in_message
from assistant.contracts import ACTION_FOLLOW_UP, SLOT_LAST_TOPIC
from assistant.knowledge import KNOWLEDGE_DIR, KnowledgeBase, cached_knowledge, related_buttons
from assistant.uncertainty import RETRIEVAL_INTENT

FOLLOW_UPS_FILE = KNOWLEDGE_DIR / "follow_ups.yml"
SAME = "same"
# How far back a follow-up may refer: the visitor's last few messages.
LOOKBACK_USER_TURNS = 3


@dataclass(frozen=True)
class FollowUps:
    kinds: Tuple[Tuple[str, Pattern[str], str], ...]  # (kind, match, default), in order
    topics: Dict[str, Dict[str, str]]

    def kind_of(self, text: str) -> Optional[str]:
        lowered = text.lower()
        return next((kind for kind, pattern, _ in self.kinds if pattern.search(lowered)), None)

    def resolve(self, previous: str, kind: Optional[str]) -> Optional[str]:
        """The topic or subject that answers a follow-up of `kind` after `previous`."""
        if kind is None:
            return None
        answer = self.topics.get(previous, {}).get(kind)
        if answer is None:
            answer = next(default for name, _, default in self.kinds if name == kind)
        return previous if answer == SAME else answer


def parse_follow_ups(raw: Any, kb: KnowledgeBase, source: str = "follow_ups.yml") -> FollowUps:
    """Validate the file: every kind compiles, every answer is a known topic or subject."""
    known = set(kb.topics) | set(kb.subjects)

    def check(answer: Any, where: str) -> str:
        if answer != SAME and answer not in known:
            raise ValueError(f"{source}: {where}: '{answer}' is not a topic or subject id")
        return str(answer)

    kinds = []
    for name, entry in (raw.get("kinds") or {}).items():
        try:
            pattern = re.compile(entry["match"])
        except (KeyError, TypeError, re.error) as error:
            raise ValueError(f"{source}: kind '{name}': needs a valid 'match' ({error})") from None
        kinds.append((str(name), pattern, check(entry.get("default", SAME), f"kind '{name}'")))
    names = {k for k, _, _ in kinds}
    topics: Dict[str, Dict[str, str]] = {}
    for topic, mapping in (raw.get("topics") or {}).items():
        if topic not in known:
            raise ValueError(f"{source}: topics: '{topic}' is not a topic or subject id")
        for kind in mapping:
            if kind not in names:
                raise ValueError(f"{source}: topics.{topic}: unknown kind '{kind}'")
        topics[topic] = {k: check(a, f"topics.{topic}.{k}") for k, a in mapping.items()}
    return FollowUps(tuple(kinds), topics)


@cache
def cached_follow_ups(path: Path = FOLLOW_UPS_FILE) -> FollowUps:
    return parse_follow_ups(yaml.safe_load(path.read_text(encoding="utf-8")), cached_knowledge())


def answered_topic(parse_data: Dict[str, Any]) -> Optional[str]:
    """The FAQ topic or subject a visitor message was answered with, if any."""
    if (parse_data.get("intent") or {}).get("name") != RETRIEVAL_INTENT:
        return None
    selector = (parse_data.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if "/" in key else None


def previous_topic(tracker: Tracker) -> Optional[str]:
    """The topic of the latest answer before the visitor's current message."""
    user_turns = 0
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "slot" and event.get("name") == SLOT_LAST_TOPIC and event.get("value"):
            if user_turns:
                return str(event["value"])
        elif kind == "user":
            user_turns += 1
            if user_turns == 1:
                continue  # the follow-up itself
            topic = answered_topic(event.get("parse_data") or {})
            if topic:
                return topic
            if user_turns > LOOKBACK_USER_TURNS:
                return None
        elif kind == "session_started":
            return None
    return None


class ActionFollowUp(Action):
    def name(self) -> str:
        return ACTION_FOLLOW_UP

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        kb = cached_knowledge()
        conditions = conditions_in_message(kb, tracker.latest_message.get("entities", []))
        if conditions:
            for condition in conditions:
                answer_condition(dispatcher, kb, condition)
            return []
        previous = previous_topic(tracker)
        if previous is None or kb.title_of(previous) is None:
            return await ActionClarify().run(dispatcher, tracker, domain)
        follow_ups = cached_follow_ups()
        answer = follow_ups.resolve(previous, follow_ups.kind_of(tracker.latest_message.get("text") or ""))
        if answer is None:
            related = [previous, *(kb.topics[previous].related if previous in kb.topics else [])]
            dispatcher.utter_message(response="utter_clarify", buttons=related_buttons(kb, related[:3]))
            return []
        dispatcher.utter_message(response=f"utter_{RETRIEVAL_INTENT}/{answer}")
        return [SlotSet(SLOT_LAST_TOPIC, answer)]
