"""A question typed instead of a form answer is recognised by its shape, not the classifier."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.callback_form import (
    ValidateCallbackForm,
    answer_digression,
    digression_answer,
    looks_like_question,
)


@pytest.mark.parametrize("text", ["does it hurt?", "how long is a session", "What are the needles like",
                                  "thanks! do i need to bring anything", "would it help my neck",
                                  "and what are your hours of a Monday", "so how long does it take"])
def test_questions_are_recognised(text: str) -> None:
    assert looks_like_question(text)


@pytest.mark.parametrize("text", ["Robin Example", "0412 345 678", "Weekday mornings", "Sam", "thanks!",
                                  "Stiff neck after a long drive, would like to discuss",
                                  "and mornings are best", "so Tuesday after 3"])
def test_answers_are_not_questions(text: str) -> None:
    assert not looks_like_question(text)


def faq_tracker(text: str, intent: str = "faq", confidence: float = 0.9) -> Tracker:
    return Tracker.from_dict({
        "sender_id": "x", "slots": {}, "events": [], "paused": False, "latest_event_time": None,
        "followup_action": None, "active_loop": {"name": "callback_form"}, "latest_action_name": None,
        "latest_message": {
            "text": text, "entities": [], "intent": {"name": intent, "confidence": 0.9},
            "response_selector": {"faq": {"response": {"utter_action": "utter_faq/does_it_hurt",
                                                       "confidence": confidence}}},
        },
    })


def test_a_question_gets_its_faq_answer() -> None:
    dispatcher = CollectingDispatcher()
    assert answer_digression(dispatcher, faq_tracker("does it hurt?"), "does it hurt?")
    assert dispatcher.messages[0]["response"] == "utter_faq/does_it_hurt"


def test_a_name_classified_as_faq_is_still_a_name() -> None:
    dispatcher = CollectingDispatcher()
    assert not answer_digression(dispatcher, faq_tracker("Robin Example"), "Robin Example")
    assert dispatcher.messages == []


@pytest.mark.parametrize(("intent", "reply"), [("ask_hours", "utter_hours"), ("ask_contact", "utter_contact"),
                                               ("ask_location", "utter_location")])
def test_a_question_about_the_clinic_gets_its_reply_not_taken_as_a_name(intent: str, reply: str) -> None:
    """"when r u open" at the name step had been stored as the visitor's name."""
    text = "when r u open"
    dispatcher = CollectingDispatcher()
    assert answer_digression(dispatcher, faq_tracker(text, intent), text)
    assert dispatcher.messages[0]["response"] == reply
    assert digression_answer(text, {"intent": {"name": intent, "confidence": 0.3}}) is None
    assert digression_answer("Robin", {"intent": {"name": intent, "confidence": 0.9}}) is None
    answer = "whenever you're open is fine"  # a time, not a question: the form takes it
    assert digression_answer(answer, {"intent": {"name": intent, "confidence": 0.9}}) is None


def test_at_the_confirmation_a_question_is_answered_whatever_its_intent() -> None:
    text = "thanks! do i need to bring anything"
    assert not answer_digression(CollectingDispatcher(), faq_tracker(text, "thanks"), text)
    dispatcher = CollectingDispatcher()
    assert answer_digression(dispatcher, faq_tracker(text, "thanks"), text, any_intent=True)
    assert dispatcher.messages[0]["response"] == "utter_faq/does_it_hurt"
    unsure = faq_tracker(text, "thanks", confidence=0.2)
    assert not answer_digression(CollectingDispatcher(), unsure, text, any_intent=True)


def validate_note(text: str, intent: str = "faq") -> Tuple[Any, List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    slots = ValidateCallbackForm().validate_callback_reason(text, dispatcher, faq_tracker(text, intent), {})
    return slots["callback_reason"], dispatcher.messages


def test_at_the_note_a_statement_the_classifier_calls_an_faq_is_the_note() -> None:
    note = "Stiff neck after a long drive, would like to discuss"
    assert validate_note(note) == (note, [])


def test_at_the_note_a_question_is_answered_and_the_note_asked_again() -> None:
    note, messages = validate_note("does it hurt?")
    assert note is None and messages[0]["response"] == "utter_faq/does_it_hurt"
    assert validate_note("skip") == ("(none)", [])


@pytest.mark.parametrize("text", ["cheers", "thank you so much!", "thanks heaps mate"])
def test_thanks_in_the_form_is_thanked_and_not_an_answer(text: str) -> None:
    """"cheers" after a call-back request had been refused as a name."""
    for slot in ("callback_name", "callback_contact", "callback_time"):
        dispatcher = CollectingDispatcher()
        result = getattr(ValidateCallbackForm(), f"validate_{slot}")(
            text, dispatcher, faq_tracker(text, "thanks"), {})
        assert result[slot] is None and "callback_bad_contacts" not in result
        assert [m["response"] for m in dispatcher.messages] == ["utter_callback_welcome"]
    assert digression_answer("thanks, Sam", {"intent": {"name": "thanks", "confidence": 0.9}}) is None


@pytest.mark.parametrize(("text", "intent", "confidence", "reply"), [
    ("actually just give me the number", "ask_contact", 0.9, "utter_contact"),
    ("just send me the address", "ask_location", 0.85, "utter_location"),
    ("actually just give me the number", "ask_contact", 0.6, None),  # not sure enough without a "?"
    ("Robin", "ask_contact", 0.95, None),  # a name
    ("whenever you're open is fine", "ask_hours", 0.95, None),  # a time
    ("ring me on 0412 345 678", "ask_contact", 0.95, None),  # a contact
])
def test_a_request_for_the_clinic_details_not_shaped_as_a_question(
        text: str, intent: str, confidence: float, reply: Any) -> None:
    assert digression_answer(text, {"intent": {"name": intent, "confidence": confidence}}) == reply


@pytest.mark.parametrize(("text", "confidence", "reply"), [
    ("He's got a pacemaker, is that an issue?", 0.9, "utter_personal_medical_device"),
    ("im on blood thinners is that ok?", 0.8, "utter_personal_medical_medicines"),
    ("is it ok with my heart condition?", 0.9, "utter_personal_medical"),
    ("He's got a pacemaker, is that an issue?", 0.3, None),  # not sure it is one
    ("Pat Example", 0.9, None),  # a name, whatever the model thinks
])
def test_a_personal_medical_question_in_the_form_gets_the_therapist_reply(
        text: str, confidence: float, reply: Any) -> None:
    """A carer's "he's got a pacemaker, is that an issue?" after asking for a call back
    had been stored as the name."""
    parse = {"intent": {"name": "ask_personal_medical", "confidence": confidence}}
    assert digression_answer(text, parse) == reply
