"""TopicPayloadHandler: /faq/<topic> button payloads answer that topic, with certainty."""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.kb.knowledge import KnowledgeBase
from assistant.nlu.topic_payload import TopicPayloadHandler
from assistant.quality.evaluation import full_label


@pytest.fixture()
def handler(tmp_path: Any) -> TopicPayloadHandler:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("topic_payload")
    context = ExecutionContext(GraphSchema({}), "test")
    component = TopicPayloadHandler.create({}, storage, resource, context)
    component.train(TrainingData(responses={"utter_faq/does_it_hurt": [{"text": "A little."}]}))
    return TopicPayloadHandler.load({}, storage, resource, context)


def test_payload_sets_intent_and_response_with_full_confidence(handler: TopicPayloadHandler) -> None:
    message = Message({"text": "/faq/does_it_hurt", "intent": {"name": "greet", "confidence": 0.3}})
    handler.process([message])
    assert message.get("intent") == {"name": "faq", "confidence": 1.0}
    response = message.get("response_selector")["faq"]["response"]
    assert response["utter_action"] == "utter_faq/does_it_hurt"
    assert response["responses"] == [{"text": "A little."}]
    assert response["confidence"] == 1.0


@pytest.mark.parametrize("text", ["/faq/unknown_topic", "does it hurt", "/faq/does_it_hurt extra", ""])
def test_other_text_is_left_alone(handler: TopicPayloadHandler, text: str) -> None:
    message = Message({"text": text, "intent": {"name": "greet", "confidence": 0.3}})
    handler.process([message])
    assert message.get("intent") == {"name": "greet", "confidence": 0.3}
    assert message.get("response_selector") is None


def test_every_topic_payload_is_answered_by_the_trained_model(
    kb: KnowledgeBase, parse: Callable[[str], Dict[str, Any]]
) -> None:
    for topic in kb.topics.values():
        assert full_label(parse(topic.payload)) == (f"faq/{topic.id}", 1.0)
