""""Would needling help my <body area>?" is a condition question
(assistant/nlu/condition_question.py): the shape, the component on a message,
and the trained pipeline."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.nlu.condition_question import ConditionQuestionRule, asks_if_it_helps


@pytest.mark.parametrize("text, area", [
    ("At 75, my neck is terribly stiff. Would dry needling help my neck?", "neck"),
    ("hockey final saturday, can needling help my tight hamstrings", "hamstrings"),
    ("Could dry needling help her neck?", "neck"),
    ("and will it actually help the shoulder", "shoulder"),
    ("I'm wondering if dry needling would help with my knee or if I'm barking up the wrong tree", "knee"),
    ("would it help my lower back when nothing else has", "lower back"),
])
def test_a_question_whether_it_helps_a_body_area(text: str, area: str) -> None:
    assert asks_if_it_helps(text, [area])


@pytest.mark.parametrize("text, area", [
    ("will it help my strained calf heal quicker before the season starts", "calf"),
    ("why would needling my neck help my head", "head"),
    ("how would needles in my neck help my head though?", "head"),
    ("My physio thinks needling would really help my neck. Is there any way I could manage it?", "neck"),
    ("can needling help me turn my head further", "head"),
    ("would dry needling help my neck", "knee"),  # the extractor found another area
    ("would dry needling help my neck", ""),
])
def test_not_when_the_area_does_something_the_why_or_reported_speech(text: str, area: str) -> None:
    assert not asks_if_it_helps(text, [area])


def message(text: str, intent: str, areas: List[str]) -> Message:
    return Message(data={TEXT: text, INTENT: {"name": intent, "confidence": 0.7},
                         INTENT_RANKING_KEY: [{"name": intent, "confidence": 0.7}],
                         ENTITIES: [{"entity": "body_area", "value": a} for a in areas]})


@pytest.mark.parametrize("intent, becomes", [("faq", "ask_condition"), ("nlu_fallback", "ask_condition"),
                                             ("ask_personal_medical", "ask_personal_medical"),
                                             ("book", "book")])
def test_the_rule_overrules_an_faq_answer_or_a_did_you_mean_only(intent: str, becomes: str) -> None:
    [processed] = ConditionQuestionRule().process([message("would it help my neck", intent, ["neck"])])
    assert processed.get(INTENT)["name"] == becomes
    ranking: List[Dict[str, Any]] = processed.get(INTENT_RANKING_KEY)
    assert ranking[0]["name"] == becomes and ranking[-1]["name"] == intent


def test_through_the_trained_pipeline(parse: Any) -> None:
    parsed = parse("At 75, my neck is terribly stiff. Would dry needling help my neck?")
    assert parsed["intent"]["name"] == "ask_condition"
    assert parse("can needling help me turn my head further")["intent"]["name"] != "ask_condition"
