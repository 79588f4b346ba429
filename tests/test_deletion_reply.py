""""all of it" after "Do you want me to delete this conversation?" asks again
(assistant/nlu/deletion_reply.py); anywhere else it is no deletion request.
The real server's answers to the question are in tests/test_e2e_limits.py."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.shared.core.events import ActionExecuted, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import INTENT_FORGET_ME, UTTER_CONFIRM_FORGET_ME
from assistant.nlu.deletion_reply import DeletionReplyReader, answers_the_question

# The blind-set writers' answers to the question (7 conversations of the readable
# sets), and a reviewer's variants.
ASKS = ["all of it", "all of it pls", "all of it, phone number too", "everything",
        "yes all of it", "Everything please.", "the lot", "yeah the whole lot",
        "all of it pls, I don't want to be contacted again", "ALL", "delete all of it",
        # asking when: the question again says it happens straight away (3 writers)
        "how long will that take", "and confirm when its done", "how soon will it be gone?"]
# Ordinary replies that start like one.
NOT_ASKED = ["all good", "everything's fine thanks", "everything is ok", "allergies?",
             "alright then", "all the best", "no", "keep it", "is that all of it?",
             "how long is a session", "when will you call me"]


@pytest.mark.parametrize("text", ASKS)
def test_a_reply_asking_for_all_of_it(text: str) -> None:
    assert answers_the_question(text)


@pytest.mark.parametrize("text", NOT_ASKED)
def test_a_reply_that_does_not_ask_for_it(text: str) -> None:
    assert not answers_the_question(text)


def reader_intent(events: List[Event], text: str) -> Dict[str, Any]:
    fallback = {"name": "nlu_fallback", "confidence": 0.4}
    message = Message(data={"text": text, "intent": fallback, "intent_ranking": [
        {"name": INTENT_FORGET_ME, "confidence": 0.66}, {"name": "faq", "confidence": 0.12}]})
    DeletionReplyReader().process([message], DialogueStateTracker.from_events("visitor", events))
    return message.as_dict()


ASKED = [UserUttered("delete my data"), ActionExecuted(UTTER_CONFIRM_FORGET_ME),
         ActionExecuted("action_listen")]
ANSWERED = [UserUttered("how long is a session"), ActionExecuted("utter_faq"),
            ActionExecuted("action_listen")]


def test_right_after_the_question_it_is_the_request_again() -> None:
    parse = reader_intent(ASKED, "all of it pls")
    assert parse["intent"] == {"name": INTENT_FORGET_ME, "confidence": 1.0}
    assert [i["name"] for i in parse["intent_ranking"]] == [INTENT_FORGET_ME, "faq"]


@pytest.mark.parametrize(("events", "text"), [(ANSWERED, "all of it"), (ASKED, "all good"),
                                              ([], "everything")])
def test_elsewhere_it_changes_nothing(events: List[Event], text: str) -> None:
    assert reader_intent(events, text)["intent"]["name"] == "nlu_fallback"
