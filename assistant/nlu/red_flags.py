"""Escalate emergencies, crisis messages and urgent after-session signs, whatever
the trained model says.

The last component of the NLU pipeline. It looks only at the text (rules in
``knowledge/red_flags.yml``, matched by ``assistant/nlu/red_flag_rules.py``), never at the
model's prediction, and when a red flag fires it replaces the intent with
``emergency``, ``crisis`` or ``urgent`` at confidence 1.0. Rules
(data/rules/safety.yml) then send that reply (domain.yml) first, also in the
middle of the call-back form.

The patterns file is read when the model is loaded, so a clinic's additions
take effect on restart without retraining. A malformed file stops start-up
with a message naming the entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from assistant.nlu.red_flag_rules import DEFAULT_PATTERNS, RedFlagDetector, detector_for
from assistant.paths import PROJECT_ROOT

RED_FLAG_KEY = "red_flag"  # kept in the parse data, for the clinic's report (counts only)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class RedFlagClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"patterns": str(DEFAULT_PATTERNS.relative_to(PROJECT_ROOT))}

    def __init__(self, detector: RedFlagDetector) -> None:
        self.detector = detector

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RedFlagClassifier:
        path = Path(config["patterns"])
        return cls(detector_for(path if path.is_absolute() else PROJECT_ROOT / path))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            flag = self.detector.detect(message.get(TEXT))
            if flag is None:
                continue
            message.set(INTENT, {"name": flag.category, "confidence": 1.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{"name": flag.category, "confidence": 1.0}],
                        add_to_output=True)
            message.set(RED_FLAG_KEY, {"category": flag.category, "id": flag.flag_id},
                        add_to_output=True)
        return messages
