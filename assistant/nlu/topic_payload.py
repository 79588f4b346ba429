"""Answer ``/faq/<topic>`` button payloads deterministically.

Follow-up buttons, the help menu and "did you mean" choices carry payloads such
as ``/faq/what_is``. Rasa's own payload handling (``RegexMessageHandler``) only
knows plain intents: it rejects ``faq/what_is`` and the classifier would be
left guessing from the payload's text. This component, placed after the
classifier and the answer guard, recognises the payload and sets the intent and
the selected response (in the ResponseSelector's output format, written by
``assistant.contracts.answer_selection``) with full confidence -- no model in the loop.

It learns the valid topics from the training data, so a payload naming an
unknown topic is simply left to the normal pipeline (and its fallback).
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import dump_obj_as_json_to_file, read_json_file

from assistant.contracts import RESPONSE_SELECTOR, answer_selection

PAYLOAD = re.compile(r"^/(?P<intent>[a-z_]+)/(?P<topic>[a-z0-9_]+)$")

# RegexMessageHandler runs after us and warns that "faq/<topic>" is not a domain
# intent before leaving the message alone. That is expected here; keep the log clean.
warnings.filterwarnings("ignore", message=r"Failed to parse arguments in line '/[a-z_]+/[a-z0-9_]+'")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class TopicPayloadHandler(GraphComponent):
    """Maps ``/<retrieval_intent>/<topic>`` payloads to a certain response selection."""

    FILE = "retrieval_responses.json"

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        responses: Optional[Dict[str, List[Dict[str, Any]]]] = None,
    ) -> None:
        self._model_storage = model_storage
        self._resource = resource
        # "faq/what_is" -> the response variations of utter_faq/what_is
        self._responses = responses or {}
        self._retrieval_intents = sorted({key.split("/")[0] for key in self._responses})

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TopicPayloadHandler:
        return cls(model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> TopicPayloadHandler:
        try:
            with model_storage.read_from(resource) as directory:
                responses = read_json_file(directory / cls.FILE)
        except (ValueError, FileNotFoundError):
            responses = {}
        return cls(model_storage, resource, responses)

    def train(self, training_data: TrainingData) -> Resource:
        responses = {
            key[len("utter_"):]: value
            for key, value in training_data.responses.items()
            if key.startswith("utter_") and "/" in key
        }
        with self._model_storage.write_to(self._resource) as directory:
            dump_obj_as_json_to_file(directory / self.FILE, responses)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            match = PAYLOAD.match((message.get(TEXT) or "").strip())
            if match and f"{match['intent']}/{match['topic']}" in self._responses:
                self._select(message, match["intent"], match["topic"])
        return messages

    def _select(self, message: Message, intent: str, topic: str) -> None:
        key = f"{intent}/{topic}"
        message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 1.0}], add_to_output=True)
        ranking = [{"confidence": 1.0, "intent_response_key": key}]
        selector = answer_selection(message.get(RESPONSE_SELECTOR), intent, ranking, self._responses[key],
                                    self._retrieval_intents)
        message.set(RESPONSE_SELECTOR, selector, add_to_output=True)
