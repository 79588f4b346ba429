"""A large, made-up tracker store for testing and timing the report.

    python -m assistant.insights.generate OUT.db --conversations 100000

Each conversation follows one of a few scripts (questions only, a hand-off, a
tap on the phone number, a call-back request, a message the bot didn't
understand with a name, phone number or e-mail in it, an out-of-scope
question, an emergency, a returning visitor). The events are Rasa's own
(rasa.shared.core.events, serialised as Rasa's SQL store does), so the report
reads them exactly as it reads a real store. `Expected` counts what was made,
for the tests to compare the report with.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from assistant.contracts import RESPONSE_SELECTOR, RETRIEVAL_INTENT, answer_selection

DAY = 86400.0
START = 1_790_000_000.0  # 2026-09-21, a fixed start: the same store every time
FAQ_TOPICS = ["does_it_hurt", "soreness_after", "vs_acupuncture", "session_length", "what_is"]
# Planted personal details: none may appear in the report.
NAMES = ["Priya Raman", "Oliver Kowalczyk", "Mia Fontaine"]
PHONES = ["0412 345 678", "+61 2 9876 5432", "(02) 5550 9999"]
EMAILS = ["mia.fontaine@example.com", "o.kowalczyk@example.net"]
UNANSWERED = [
    "is it ok if my name is {name} and i have a pacemaker",
    "can you text me on {phone} about prices for seniors",
    "email me at {email} about the parking",
    "do you do cupping as well",
    "do u do cupping",
    "what about kinesio taping",
]
OUT_OF_SCOPE = ["whats the weather tomorrow", "can you recommend a plumber"]


def _user(text: str, intent: str, confidence: float = 0.95, faq: Optional[str] = None) -> UserUttered:
    parse: Dict[str, Any] = {"intent": {"name": intent, "confidence": confidence}, "entities": [],
                             "text": text,
                             "intent_ranking": [{"name": intent, "confidence": confidence}]}
    if intent == "nlu_fallback":
        parse["intent_ranking"].append({"name": "faq", "confidence": 0.3})
    if faq or intent == "nlu_fallback":
        key = f"faq/{faq or 'who_benefits'}"
        parse[RESPONSE_SELECTOR] = answer_selection(None, RETRIEVAL_INTENT, [
            {"intent_response_key": key, "confidence": 0.9}], [], [RETRIEVAL_INTENT])
    return UserUttered(text, parse["intent"], [], parse, input_channel="website")


def _bot(utter: str, text: str, buttons: Optional[List[Dict[str, str]]] = None) -> BotUttered:
    return BotUttered(text, {"buttons": buttons}, {"utter_action": utter})


def _turn(user: UserUttered, action: str, bot: Optional[BotUttered] = None) -> List[Event]:
    events: List[Event] = [user, ActionExecuted(action)]
    if bot is not None:
        events.append(bot)
    return events + [ActionExecuted("action_listen")]


@dataclass
class Expected:
    conversations: int = 0
    visitors: int = 0
    returning_visitors: int = 0
    messages: int = 0
    unanswered: int = 0
    out_of_scope: int = 0
    topics: Counter = field(default_factory=Counter)
    funnel: Counter = field(default_factory=Counter)
    escalations: Counter = field(default_factory=Counter)
    planted: List[str] = field(default_factory=list)


class Generator:
    def __init__(self, phone_link: str, booking_url: str, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.phone_link = phone_link
        self.booking_url = booking_url
        self.expected = Expected(planted=NAMES + PHONES + EMAILS)

    def _session(self) -> List[Event]:
        return [ActionExecuted("action_session_start"), SessionStarted(),
                SlotSet("clinic_phone_link", self.phone_link), ActionExecuted("action_listen")]

    def _faq(self) -> List[Event]:
        topic = self.random.choice(FAQ_TOPICS)
        self.expected.topics[f"faq:{topic}"] += 1
        return _turn(_user(f"question about {topic}", "faq", faq=topic), "utter_faq",
                     _bot(f"utter_faq/{topic}", "An answer."))

    def _handoff(self) -> List[Event]:
        self.expected.topics["intent:book"] += 1
        buttons = [{"title": "Call", "payload": self.phone_link},
                   {"title": "Book", "payload": self.booking_url}]
        return _turn(_user("how do i book", "book"), "utter_handoff",
                     _bot("utter_handoff", "Call or book.", buttons))

    def _callback(self, confirmed: bool) -> List[Event]:
        name = self.random.choice(NAMES)
        events = _turn(_user("/request_callback", "request_callback", 1.0), "callback_form",
                       _bot("utter_ask_callback_name", "What name?"))
        events[2:2] = [ActiveLoop("callback_form")]
        # form answers (a name, a number) typed while the form asks: never reviewed
        events += [_user(name, "nlu_fallback", 0.3), SlotSet("callback_name", name),
                   ActionExecuted("callback_form"), _bot("utter_ask_callback_contact", "Number?"),
                   ActionExecuted("action_listen"),
                   _user(self.random.choice(PHONES), "inform"), ActionExecuted("callback_form")]
        if confirmed:
            events += [ActiveLoop(None), ActionExecuted("action_finish_callback"),
                       _bot("utter_callback_received", "Saved.")]
        events.append(ActionExecuted("action_listen"))
        self.expected.funnel["requested_callback"] += 1
        self.expected.funnel["confirmed_callback"] += confirmed
        return events

    def _unanswered(self) -> List[Event]:
        text = self.random.choice(UNANSWERED).format(name=self.random.choice(NAMES),
                                                     phone=self.random.choice(PHONES),
                                                     email=self.random.choice(EMAILS))
        self.expected.unanswered += 1
        return _turn(_user(text, "nlu_fallback", 0.3), "action_clarify", _bot("", "Did you mean...?"))

    def conversation(self) -> Tuple[List[List[Event]], int]:
        """One visitor's sessions (a list of event lists) and their number of messages."""
        kind = self.random.choice(["faq", "handoff", "call", "book", "callback", "callback_left",
                                   "unanswered", "out_of_scope", "emergency", "returning"])
        turns: List[Event] = self._faq()
        funnel = self.expected.funnel
        funnel["asked_a_question"] += 1
        if kind in ("handoff", "call", "book"):
            turns += self._handoff()
            funnel["offered_booking"] += 1
            if kind != "handoff":
                turns.append(SlotSet("handoff_choice", "call" if kind == "call" else "book_online"))
                funnel["chose_to_call" if kind == "call" else "chose_to_book_online"] += 1
        elif kind in ("callback", "callback_left"):
            turns += self._callback(confirmed=kind == "callback")
        elif kind == "unanswered":
            turns += self._unanswered()
        elif kind == "out_of_scope":
            self.expected.unanswered += 1
            self.expected.out_of_scope += 1
            turns += _turn(_user(self.random.choice(OUT_OF_SCOPE), "out_of_scope"), "utter_out_of_scope",
                           _bot("utter_out_of_scope", "I can only help with dry needling."))
        elif kind == "emergency":
            self.expected.escalations["emergency"] += 1
            turns += _turn(_user("i have chest pain", "emergency", 1.0), "utter_emergency",
                           _bot("utter_emergency", "Call 000."))
        sessions = [self._session() + turns]
        if kind == "returning":
            sessions.append(self._session() + self._faq())
            funnel["asked_a_question"] += 1
            self.expected.returning_visitors += 1
        messages = sum(isinstance(event, UserUttered) for session in sessions for event in session)
        return sessions, messages

    def rows(self, conversations: int, days: int) -> Iterator[Tuple[Any, ...]]:
        """Rows of Rasa's events table: (sender_id, type_name, timestamp, intent_name,
        action_name, data), in time order within each conversation."""
        for index in range(conversations):
            sender = f"gen-{index:07d}"
            start = START + self.random.random() * days * DAY
            sessions, messages = self.conversation()
            self.expected.visitors += 1
            self.expected.conversations += len(sessions)
            self.expected.messages += messages
            for number, session in enumerate(sessions):
                timestamp = start + number * 2 * 3600  # a returning visitor: two hours later
                for event in session:
                    timestamp += 0.5
                    yield self._row(sender, event, timestamp)

    @staticmethod
    def _row(sender: str, event: Event, timestamp: float) -> Tuple[Any, ...]:
        event.timestamp = timestamp
        data = event.as_dict()
        intent = data.get("parse_data", {}).get("intent", {}).get("name")
        name = data.get("name")
        return (sender, event.type_name, timestamp, intent, name, json.dumps(data))


SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"""


def generate(path: Path, conversations: int, phone_link: str, booking_url: str, days: int = 30,
             seed: int = 7) -> Expected:
    """Write a tracker store (Rasa's events table) of `conversations` made-up visitors."""
    generator = Generator(phone_link, booking_url, seed)
    connection = sqlite3.connect(path)
    connection.execute(SCHEMA)
    connection.execute("CREATE INDEX IF NOT EXISTS ix_events_sender_id ON events (sender_id)")
    with connection:
        connection.executemany(
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?)", generator.rows(conversations, days))
    connection.close()
    return generator.expected


def main(argv: Optional[List[str]] = None) -> int:
    from assistant.settings.clinic import load_clinic

    parser = argparse.ArgumentParser(description="Write a made-up tracker store for the report.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--conversations", type=int, default=100_000)
    args = parser.parse_args(argv)
    clinic = load_clinic()
    expected = generate(args.out, args.conversations, clinic.phone_link, clinic.booking_url)
    print(f"{expected.visitors} visitors, {expected.conversations} conversations, "
          f"{expected.messages} messages: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
