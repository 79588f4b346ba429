"""actions/conditions.py, offline: Tracker.from_dict + CollectingDispatcher."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.conditions import ActionAnswerCondition
from assistant.kb.knowledge import KnowledgeBase, read_more_buttons


def tracker_with(entities: List[Dict[str, Any]], text: str = "can it help?") -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": "test",
            "slots": {},
            "latest_message": {
                "text": text,
                "intent": {"name": "ask_condition", "confidence": 0.99},
                "entities": entities,
            },
            "events": [],
            "paused": False,
            "latest_event_time": None,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        }
    )


def run(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionAnswerCondition().run(dispatcher, tracker_with(entities), {}))
    assert events == []
    return dispatcher.messages


def entity(kind: str, value: str) -> Dict[str, Any]:
    return {"entity": kind, "value": value, "extractor": "SpacyEntityExtractor"}


def test_a_covered_condition_gets_its_own_answer(kb: KnowledgeBase) -> None:
    [message] = run([entity("condition", "tenis elbow")])
    assert message["text"] == kb.conditions["tennis_elbow"].answer
    condition = kb.conditions["tennis_elbow"]
    assert [b["payload"] for b in message["buttons"]] == [f"/faq/{t}" for t in condition.related] + [
        b["payload"] for b in read_more_buttons(kb, condition.sources)]


def test_a_condition_answered_by_a_topic_uses_that_topic_response() -> None:
    [message] = run([entity("condition", "swollen")])
    assert message["response"] == "utter_faq/inflammation"


def test_an_uncovered_condition_is_answered_honestly_with_a_related_one(kb: KnowledgeBase) -> None:
    not_covered, see_also = run([entity("condition", "runners knee")])
    assert not_covered["response"] == "utter_condition_not_covered"
    assert not_covered["condition"] == "knee pain"
    assert see_also["response"] == "utter_condition_see_also"
    assert see_also["buttons"] == [
        {"title": "Joint pain", "payload": '/ask_condition{"condition":"joint_pain"}'}
    ]


def test_an_uncovered_condition_without_relatives_gets_no_see_also() -> None:
    [message] = run([entity("condition", "asthma")])
    assert message["response"] == "utter_condition_not_covered"
    assert message["condition"] == "asthma"


def test_a_body_area_maps_to_its_condition(kb: KnowledgeBase) -> None:
    [message] = run([entity("body_area", "neck")])
    assert message["text"] == kb.conditions["neck_pain"].answer


def test_explicit_conditions_win_over_body_areas_and_two_are_answered(kb: KnowledgeBase) -> None:
    messages = run([entity("body_area", "head"), entity("condition", "migraines"),
                    entity("condition", "sore neck"), entity("condition", "sciatica")])
    assert [m["text"] for m in messages] == [
        kb.conditions["migraine"].answer,
        kb.conditions["neck_pain"].answer,
    ]


def test_a_button_payload_carries_the_condition_id(kb: KnowledgeBase) -> None:
    [message] = run([entity("condition", "plantar_fasciitis")])
    assert message["text"] == kb.conditions["plantar_fasciitis"].answer


def test_no_recognised_condition_asks_which_one() -> None:
    [message] = run([entity("condition", "zorgbalitis"), entity("something_else", "x")])
    assert message["response"] == "utter_ask_which_condition"
    [message] = run([])
    assert message["response"] == "utter_ask_which_condition"
