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
    ("warehouse job, my lower back kills me by end of shift. would needling help my back", "my back"),
])
def test_a_question_whether_it_helps_a_body_area(text: str, area: str) -> None:
    assert asks_if_it_helps(text, [area])


@pytest.mark.parametrize("text, area", [
    ("will it help my strained calf heal quicker before the season starts", "calf"),
    ("why would needling my neck help my head", "head"),
    ("why exactly would it help my neck", "neck"),
    ("my doctor asked if needling would help my knee", "knee"),
    ("My physio thinks needling would really help my neck. Is there any way I could manage it?", "neck"),
    ("can needling help me turn my head further", "head"),
    ("would needling help my back while pregnant?", "back"),
    ("im 20 weeks pregnant, would dry needling help my lower back", "lower back"),
    ("can needling help my shoulder, im on warfarin", "shoulder"),
    ("can the needles help my neck or could they hit a nerve", "neck"),
    ("how many sessions would it take to help my knee", "knee"),
    ("how much would it cost to help my shoulder", "shoulder"),
    ("would dry needling help my neck", "knee"),  # the extractor found another area
    ("would dry needling help my neck", ""),
])
def test_not_another_question_the_visitors_health_or_reported_speech(text: str, area: str) -> None:
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


def test_not_while_the_model_counts_it_a_personal_medical_question() -> None:
    unsure = message("would it help my neck", "nlu_fallback", ["neck"])
    unsure.set(INTENT_RANKING_KEY, [{"name": "nlu_fallback", "confidence": 0.4},
                                    {"name": "faq", "confidence": 0.35},
                                    {"name": "ask_personal_medical", "confidence": 0.3}])
    [processed] = ConditionQuestionRule().process([unsure])
    assert processed.get(INTENT)["name"] == "nlu_fallback"


def test_through_the_trained_pipeline(parse: Any) -> None:
    parsed = parse("hockey final saturday, can needling help my tight hamstrings")
    assert parsed["intent"]["name"] == "ask_condition"
    assert parse("can needling help me turn my head further")["intent"]["name"] != "ask_condition"
