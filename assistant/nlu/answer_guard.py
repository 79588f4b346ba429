"""Don't send an FAQ answer as if certain when the answer's own ranking is not.

Rasa's FallbackClassifier only looks at the *intent*. A question can be
confidently "faq" while the ranking of answers (Rasa's ``response_selector``
output) hesitates between two of them ("does it hurt" vs "will I be sore").
Placed after the FallbackClassifier, this component turns such messages into
``nlu_fallback`` (keeping the rankings), so the bot asks "Did you mean..."
with the likely topics instead of guessing.
It also holds intents whose action can't be undone (``strict_intents``, e.g.
forget_me) to their own, higher threshold, and to naming what they act on
(``strict_intent_words``: "all of it?" is no request to delete anything).
The tests themselves are in ``assistant.nlu.uncertainty``, shared with the tuning.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.contracts import RETRIEVAL_INTENT, faq_selection
from assistant.nlu.uncertainty import FALLBACK, compile_strict_words, too_unsure_for, unsure


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class FaqAnswerGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"threshold": 0.5, "ambiguity_threshold": 0.1, "strict_intents": {},
                "strict_intent_words": {}}

    def __init__(self, config: Dict[str, Any]) -> None:
        self.threshold = float(config["threshold"])
        self.ambiguity = float(config["ambiguity_threshold"])
        self.strict = {str(k): float(v) for k, v in (config["strict_intents"] or {}).items()}
        self.strict_words = compile_strict_words(config["strict_intent_words"], self.strict)

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FaqAnswerGuard:
        return cls({**cls.get_default_config(), **config})

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if too_unsure_for(intent, self.strict, str(message.get(TEXT) or ""), self.strict_words):
                self.fall_back(message, float(intent.get("confidence", 0.0)))
            elif intent.get("name") == RETRIEVAL_INTENT:
                ranking = faq_selection(message).get("ranking") or []
                if unsure(ranking, self.threshold, self.ambiguity):
                    self.fall_back(message, float(ranking[0]["confidence"]) if ranking else 0.0)
        return messages

    @staticmethod
    def fall_back(message: Message, confidence: float) -> None:
        fallback = {"name": FALLBACK, "confidence": confidence}
        message.set(INTENT, fallback, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [fallback, *(message.get(INTENT_RANKING_KEY) or [])],
                    add_to_output=True)
