"""Escalate emergencies, crisis messages and urgent after-session signs, whatever
the trained model says.

The last component of the NLU pipeline. It looks only at the text, never at the
intent model's prediction: first the rules in ``knowledge/red_flags.yml``
(matched by ``assistant/nlu/red_flag_rules.py``), then, where no rule fires, a
small model learned from the after-session report sets in ``data/safety/``
(``assistant/nlu/learned_warning_signs.py``), which catches reports worded in
ways no pattern foresaw. When either fires, the intent becomes ``emergency``,
``crisis`` or ``urgent`` at confidence 1.0. Rules (data/rules/safety.yml) then
send that reply (domain.yml) first, also in the middle of the call-back form.

The patterns file is read when the model is loaded, so a clinic's additions
take effect on restart without retraining. A malformed file stops start-up
with a message naming the entry. The learned model is trained with the NLU
model; a change to ``data/safety/`` or to the NLU code retrains it
(``fingerprint_addon``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import joblib
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from assistant.nlu.component_settings import ComponentSettings, project_path, project_paths
from assistant.nlu.fingerprints import code_fingerprint, files_fingerprint
from assistant.nlu.learned_warning_signs import (
    LEARNED_FLAG_ID,
    Thresholds,
    WarningSignModel,
    body_words,
    fingerprint,
    load_report_set,
    question_set_files,
    question_set_texts,
    quiet_texts,
    report_set_files,
)
from assistant.nlu.red_flag_rules import (
    DEFAULT_PATTERNS,
    RedFlag,
    RedFlagDetector,
    detector_for,
    is_payload_or_empty,
)
from assistant.paths import PROJECT_ROOT, REPORT_SETS

RED_FLAG_KEY = "red_flag"  # kept in the parse data, for the clinic's report (counts only)
MODEL_FILE = "learned_warning_signs.joblib"


def _question_sets(config: Dict[str, Any]) -> List[Path]:
    """The blind question sets the learned model may read as quiet examples; a
    missing one is an error, not a smaller training set."""
    directories = project_paths(config["question_sets"])
    missing = [str(d) for d in directories if not question_set_files([d])]
    if missing:
        raise ValueError(f"config.yml: RedFlagClassifier question_sets not found: {', '.join(missing)}")
    return directories


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class RedFlagClassifier(ComponentSettings, GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"patterns": str(DEFAULT_PATTERNS.relative_to(PROJECT_ROOT)),
                "reports": str(REPORT_SETS.relative_to(PROJECT_ROOT)), "C": 32.0, "threshold": 0.9,
                "emergency_threshold": 0.8, "question_sets": []}

    @classmethod
    def checked_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """An unknown setting, or thresholds out of order, stop training and start-up
        with a message naming them."""
        merged = super().checked_config(config)
        thresholds = Thresholds.from_config(merged)
        if not 0 < thresholds.emergency <= thresholds.report <= 1:
            raise ValueError(f"config.yml: {cls.__name__} needs 0 < emergency_threshold <= threshold <= 1, "
                             f"not {thresholds.emergency} and {thresholds.report}")
        return merged

    @staticmethod
    def required_packages() -> List[str]:
        return ["sklearn"]  # its version is part of Rasa's cache key: a new sklearn retrains

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        merged = {**cls.get_default_config(), **config}
        questions = files_fingerprint(question_set_files(_question_sets(merged)))
        return fingerprint(project_path(merged["reports"])) + questions + code_fingerprint()

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 learned: Optional[WarningSignModel] = None) -> None:
        self._config = config
        self.thresholds = Thresholds.from_config(config)  # read once, not per message
        self._model_storage = model_storage
        self._resource = resource
        self.detector: RedFlagDetector = detector_for(project_path(config["patterns"]))
        self.learned = learned

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> RedFlagClassifier:
        return cls(cls.checked_config(config), model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Reports from data/safety/; the NLU examples as quiet."""
        examples = [example for path in report_set_files(project_path(self._config["reports"]))
                    for example in load_report_set(path)]
        examples += [(text, 0) for text in quiet_texts(training_data)]
        examples += [(text, 0) for text in question_set_texts(_question_sets(self._config))]
        self.learned = WarningSignModel(self._config["C"], body_words(training_data)).fit(examples)
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self.learned, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> RedFlagClassifier:
        """Rasa loads only what it trained: a missing or broken model is an error, not a quiet fallback."""
        config = cls.checked_config(config)
        with model_storage.read_from(resource) as directory:
            return cls(config, model_storage, resource, joblib.load(directory / MODEL_FILE))

    def flag(self, text: Optional[str]) -> Optional[RedFlag]:
        """The patterns first; where none fires, the learned model."""
        if text is None or is_payload_or_empty(text):
            return None
        found = self.detector.detect(text)
        if found or self.learned is None:
            return found
        category = self.learned.category(text, self.thresholds)
        return RedFlag(category, LEARNED_FLAG_ID) if category else None

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            flag = self.flag(message.get(TEXT))
            if flag is None:
                continue
            message.set(INTENT, {"name": flag.category, "confidence": 1.0}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [{"name": flag.category, "confidence": 1.0}],
                        add_to_output=True)
            message.set(RED_FLAG_KEY, {"category": flag.category, "id": flag.flag_id},
                        add_to_output=True)
        return messages
