"""A returning patient naming what they were treated for asks about the session
(assistant/nlu/treated_condition.py): the shape, the component on a message, and
the trained pipeline."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.nlu.treated_condition import TreatedConditionRule, asks_about_the_session

CONDITION_THEN_FAQ = [{"name": "ask_condition", "confidence": 0.55}, {"name": "faq", "confidence": 0.41},
                      {"name": "ask_personal_medical", "confidence": 0.03}]


@pytest.mark.parametrize("text", [
    "Had needling for migraines 3 weeks ago and havent had one since!! How long will it keep them away",
    "Respected sir, I received dry needling for my knee pain on Monday. Same day I took hot water bath.",
    "Taken dry needling two times for knee pain. Should I continue my morning walk?",
    "I've been having needling for plantar fasciitis for 3 weeks now. Is it actually proven to work?",
    "had my first ever dry needling this morning for my jaw and im so sleepy now, is that from it?",
])
def test_needling_already_had_for_a_condition_reads_as_the_faq(text: str) -> None:
    assert asks_about_the_session({"name": "ask_condition"}, CONDITION_THEN_FAQ, text)


@pytest.mark.parametrize("text", [
    "had needling for my back last week, would it help my knee too?",
    "had dry needling for my neck, what about my other shoulder",
    "i had needling for my hip years ago and it helped, can it fix tennis elbow",
    "would dry needling work for my migraines",  # nothing had yet
    "my back has been bad for years, is needling any good for it",
])
def test_not_a_question_whether_it_would_help_or_nothing_had_yet(text: str) -> None:
    assert not asks_about_the_session({"name": "ask_condition"}, CONDITION_THEN_FAQ, text)


@pytest.mark.parametrize("intent, ranking", [
    ("faq", CONDITION_THEN_FAQ),  # the model did not choose a condition question
    ("ask_condition", [{"name": "ask_condition"}, {"name": "ask_personal_medical"}, {"name": "faq"}]),
    ("ask_condition", [{"name": "ask_condition"}]),
])
def test_only_when_the_condition_won_and_the_faq_came_second(intent: str,
                                                             ranking: List[Dict[str, Any]]) -> None:
    text = "had needling for my knee, can i have a bath"
    assert not asks_about_the_session({"name": intent}, ranking, text)


def test_the_component_puts_the_faq_first() -> None:
    text = "I received dry needling for my knee pain on Monday. Same day I took hot water bath."
    message = Message(data={TEXT: text, INTENT: dict(CONDITION_THEN_FAQ[0]),
                            INTENT_RANKING_KEY: [dict(r) for r in CONDITION_THEN_FAQ]})
    [processed] = TreatedConditionRule().process([message])
    assert processed.get(INTENT) == {"name": "faq", "confidence": 0.55}
    assert [r["name"] for r in processed.get(INTENT_RANKING_KEY)] == ["faq", "ask_condition",
                                                                      "ask_personal_medical"]


def test_through_the_trained_pipeline(parse: Any) -> None:
    parsed = parse("Respected sir, I received dry needling for my knee pain on Monday. "
                   "Same day I took hot water bath. Is that causing any harm?")
    assert parsed["intent"]["name"] == "faq"
    assert parsed["response_selector"]["faq"]["response"]["intent_response_key"] == "faq/bath_sauna"
    assert parse("had needling for my back last week, would it help my knee too?")["intent"]["name"] \
        == "ask_condition"
