"""How much a message reads like more about the previous answer rather than a new
question: "we've only got frozen peas" after heat or ice, "i'm a hairdresser, arms
up all day" after going back to work, "it only went in last year" after a
pacemaker question.

Such a message names no topic of its own, so the intent model calls it unclear
or off-topic, and the bot answered "Did you mean...?" or "That's outside what I
can help with" to a visitor who was still talking about the same thing. The
intent model reads one message and cannot know there was a previous answer; this
model is trained on that very distinction: every follow-up turn of the tuned-on
blind conversation sets (``tests/dev*/conversations.yml``), labelled by whether
the writer meant it to stay on the previous turn's topic (about a third of them
do).

It is one logistic regression over word and character n-grams, like the other
two text models, and its probability goes into the parse data
(``STAYS_ON_TOPIC_KEY``). It decides nothing alone. The action server uses it
for a message the model has already called unclear, after an answer
(actions/follow_up.py), and assistant/nlu/keep_topic.py for a confident answer
to another topic, only when the answer selector is less than sure and still
counts the previous topic a candidate. Used on every follow-up verdict without those checks, it broke more
answers than it fixed (at 0.5, leave-one-set-out over dev to dev22: 52 turns
fixed, 131 broken among those the intent model had given another FAQ answer).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import joblib
import numpy as np
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from assistant.contracts import STAYS_ON_TOPIC_KEY
from assistant.nlu.component_settings import ComponentSettings, project_paths
from assistant.nlu.fingerprints import code_fingerprint, files_fingerprint
from assistant.nlu.ngram_features import NgramFeatures

MODEL_FILE = "stays_on_topic.joblib"
CONVERSATIONS_FILE = "conversations.yml"
WORD = re.compile(r"(?u)\b\w+\b")
Example = Tuple[str, int]  # (a follow-up turn, 1 when it stays on the previous turn's topic)


def follow_up_examples(directories: Sequence[Path]) -> List[Example]:
    """Every turn after the first: does its label share one with the turn before?
    (A writer's ``also`` counts: "could she do it at home" after self-needling may be
    either.)"""
    examples: List[Example] = []
    for directory in directories:
        raw = yaml.safe_load((directory / CONVERSATIONS_FILE).read_text(encoding="utf-8"))
        for conversation in raw or []:
            before: Optional[Set[str]] = None
            for turn in conversation["turns"]:
                labels = {turn["expect"], *(turn.get("also") or [])}
                if before is not None:
                    examples.append((str(turn["text"]), int(bool(labels & before))))
                before = labels
    return examples


class StaysOnTopicModel:
    def __init__(self, c: float) -> None:
        self.features = NgramFeatures([
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
                            token_pattern=WORD.pattern),  # "i", "a": "i'm a nurse" is a clue
        ])
        self.classifier = LogisticRegression(C=c, max_iter=2000)

    def fit(self, examples: Sequence[Example]) -> StaysOnTopicModel:
        if {label for _, label in examples} != {0, 1}:
            raise ValueError("the conversation sets need turns that stay and turns that move on")
        self.classifier.fit(self.features.fit([text.lower() for text, _ in examples]),
                            [label for _, label in examples])
        return self

    def probability(self, text: str) -> float:
        """P(stays): ``predict_proba``'s second column, computed directly; 0 for a
        message with no word the model has seen ("asdkjh qwe zzz" got 0.53 from its
        letters alone), which says nothing about the last answer."""
        lowered = text.lower()
        words = self.features.vectorizers[1].vocabulary_
        if not any(word in words for word in WORD.findall(lowered)):
            return 0.0
        score = self.features.linear_scores(lowered, self.classifier.coef_, self.classifier.intercept_)
        return float(1.0 / (1.0 + np.exp(-score[0])))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class StaysOnTopicClassifier(ComponentSettings, GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"C": 4.0, "conversation_sets": []}

    @classmethod
    def training_config(cls, config: Dict[str, Any]) -> Dict[str, Any]:
        """Training also needs every set it names (loading a trained model does not:
        a deployment need not ship tests/)."""
        merged = cls.checked_config(config)
        missing = [str(d) for d in cls.conversation_sets(merged) if not (d / CONVERSATIONS_FILE).exists()]
        if missing:
            raise ValueError(f"config.yml: {cls.__name__} conversation_sets not found: {', '.join(missing)}")
        return merged

    @staticmethod
    def conversation_sets(config: Dict[str, Any]) -> List[Path]:
        return project_paths(config["conversation_sets"])

    @staticmethod
    def required_packages() -> List[str]:
        return ["sklearn"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        merged = {**cls.get_default_config(), **config}
        files = [d / CONVERSATIONS_FILE for d in cls.conversation_sets(merged)]
        return files_fingerprint(f for f in files if f.exists()) + code_fingerprint()

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 model: Optional[StaysOnTopicModel] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> StaysOnTopicClassifier:
        return cls(cls.training_config(config), model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = follow_up_examples(self.conversation_sets(self._config))
        self.model = StaysOnTopicModel(float(self._config["C"])).fit(examples)
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump(self.model, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> StaysOnTopicClassifier:
        config = cls.checked_config(config)
        with model_storage.read_from(resource) as directory:
            return cls(config, model_storage, resource, joblib.load(directory / MODEL_FILE))

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if self.model is not None and text:
                message.set(STAYS_ON_TOPIC_KEY, round(self.model.probability(text), 4), add_to_output=True)
        return messages
