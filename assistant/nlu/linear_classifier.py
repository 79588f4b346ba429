"""Intent and FAQ topic in one linear model: TF-IDF n-grams + a linear SVM.

An FAQ assistant's questions are short and their labels many (an intent per
kind of request, a ``faq/<topic>`` per article answer). A linear SVM over word
and character n-grams (the characters make it robust to phone typos) learns
them in a fraction of a second and answers in about a millisecond, where Rasa's
DIET plus ResponseSelector took minutes to train and a second neural network
pass per message. On the held-out sets it is also the more accurate of the two
(`make bench` prints both against Rasa's stock configuration).

One classifier sees every full label (``greet``, ``book``, ``faq/does_it_hurt``,
...), so the intent and the answer can never disagree. Its margins become
confidences through a softmax whose ``confidence_scale`` was chosen with the
fallback thresholds (`make tune`) so that "too unsure" keeps its meaning
(assistant/nlu/uncertainty.py). The output has Rasa's usual shape: ``intent`` and
``intent_ranking`` (an intent's confidence is the sum over its labels, so ``faq``
gets the mass of every topic) and, for the retrieval intent, a
``response_selector`` entry as Rasa's ResponseSelector writes it, which
``utter_faq`` reads to pick ``utter_faq/<topic>``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional

import joblib
import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from assistant.contracts import INTENT_FOLLOW_UP, RESPONSE_SELECTOR, RETRIEVAL_INTENT, answer_selection
from assistant.nlu.component_settings import ComponentSettings, project_paths
from assistant.nlu.fingerprints import code_fingerprint, files_fingerprint
from assistant.nlu.ngram_features import NgramFeatures
from assistant.nlu.phone_words import spelled_out
from assistant.nlu.question_after_report import answer_question_after_report
from assistant.nlu.sentence_embeddings import DIMENSIONS
from assistant.nlu.uncertainty import MIN_PLAUSIBLE
from assistant.nlu.visitor_examples import with_visitor_examples

RANKING_LENGTH = 10
WORDLIKE = re.compile(r"[^\W_]")  # a letter or digit in any script
MODEL_FILE = "linear_classifier.joblib"


def _any_of(terms: List[str]) -> re.Pattern:
    """Any of the terms as a whole word or phrase, longest first, ignoring case."""
    alternatives = "|".join(sorted(map(re.escape, terms), key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE)


class TextModel:
    """The scikit-learn part, free of Rasa: texts in, label probabilities out.

    ``lookups`` (Rasa's lookup tables: condition terms, body areas) add a
    marker word to a text that names one, so "can it help my <condition>" is
    recognised for conditions no training example names.
    """

    def __init__(self, c: float, confidence_scale: float, char_ngrams: List[int],
                 word_ngrams: List[int], lookups: Optional[Dict[str, List[str]]] = None,
                 embedding_weight: float = 0.0, spell_out: bool = False) -> None:
        self.confidence_scale = confidence_scale
        # Phone shorthand ("hw much", "wat abt") read as its spelling (phone_words.py).
        self.spell_out = spell_out
        # The sentence embedding's columns next to the n-grams, scaled by this
        # weight; 0 reads the n-grams alone (sentence_embeddings.py says why 1.0).
        self.embedding_weight = embedding_weight
        self._ngram_coef = np.empty(0)
        self._embedding_coef = np.empty(0)
        self.markers = {f"__{name}__": _any_of(terms) for name, terms in (lookups or {}).items() if terms}
        self.features = NgramFeatures([
            TfidfVectorizer(analyzer="char_wb", ngram_range=tuple(char_ngrams), sublinear_tf=True),
            # Single-letter words count ("i", "a"); sklearn's default pattern drops them.
            TfidfVectorizer(analyzer="word", ngram_range=tuple(word_ngrams), sublinear_tf=True,
                            token_pattern=r"(?u)\b\w+\b"),
        ])
        self.svm = LinearSVC(C=c, random_state=0)  # liblinear shuffles: same data, same model

    @classmethod
    def from_config(cls, config: Dict[str, Any], lookups: Dict[str, List[str]]) -> TextModel:
        """An unfitted model with LinearIntentClassifier's settings."""
        return cls(config["C"], config["confidence_scale"], config["char_ngrams"], config["word_ngrams"],
                   lookups, config["embedding_weight"], config["spell_out_shorthand"])

    @property
    def labels(self) -> List[str]:
        return list(self.svm.classes_)

    def _read(self, texts: List[str]) -> List[str]:
        return [spelled_out(text) for text in texts] if self.spell_out else list(texts)

    def _marked(self, texts: List[str]) -> List[str]:
        return [text + "".join(f" {marker}" for marker, pattern in self.markers.items()
                               if pattern.search(text))
                for text in texts]

    def fit(self, texts: List[str], labels: List[str]) -> TextModel:
        texts = self._read(texts)
        features = self.features.fit(self._marked(texts))
        if self.embedding_weight:
            embedded = self._embeddings(texts, remember=True)
            features = scipy.sparse.hstack([features, scipy.sparse.csr_matrix(embedded)]).tocsr()
        self.svm.fit(features, labels)
        self._split_weights()
        return self

    def _embeddings(self, texts: List[str], remember: bool = False) -> np.ndarray:
        from assistant.nlu.sentence_embeddings import shared_encoder

        return shared_encoder().encode(texts, remember) * self.embedding_weight

    def _split_weights(self) -> None:
        """The SVM's weights for the n-grams and for the embedding, each contiguous."""
        width = self.svm.coef_.shape[1] - (DIMENSIONS if self.embedding_weight else 0)
        self._ngram_coef = np.ascontiguousarray(self.svm.coef_[:, :width])
        self._embedding_coef = np.ascontiguousarray(self.svm.coef_[:, width:].T)

    def margins(self, text: str, embedded: Optional[np.ndarray] = None) -> np.ndarray:
        """The SVM's margin per label for one text, as ``svm.decision_function`` of
        the features would give it (computed directly: ngram_features.py).
        ``embedded``: the text's weighted embedding, when already computed."""
        margins = self.features.linear_scores(self._marked([text])[0], self._ngram_coef, self.svm.intercept_)
        if self.embedding_weight:
            vector = self._embeddings([text])[0] if embedded is None else embedded
            margins = margins + vector @ self._embedding_coef
        if len(margins) == 1:  # two labels: sklearn keeps the second one's margin only
            margins = np.array([-margins[0], margins[0]])
        return margins

    # The split weights are rebuilt after loading, not saved twice in the model.
    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_ngram_coef", "_embedding_coef")}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update({"embedding_weight": 0.0, "spell_out": False, **state})  # saved before either
        self._split_weights()

    def _no_evidence(self) -> np.ndarray:
        """Emoji or punctuation only: no evidence for any label, so every label gets
        the same margin and the fallback asks what was meant. (With the SVM's own
        margins the label with the largest intercept would win: after the many
        one-word follow-ups ("how?", "why?") were added, that was `follow_up`.)"""
        return np.zeros(len(self.svm.classes_))

    def probabilities(self, texts: List[str]) -> np.ndarray:
        """One row per text: a softmax over the SVM's margins, one column per label."""
        texts = self._read(texts)
        embedded = self._embeddings(texts) if self.embedding_weight else [None] * len(texts)
        margins = np.array([self.margins(text, vector) if WORDLIKE.search(text) else self._no_evidence()
                            for text, vector in zip(texts, embedded, strict=True)]) * self.confidence_scale
        margins -= margins.max(axis=1, keepdims=True)
        exp = np.exp(margins)
        return exp / exp.sum(axis=1, keepdims=True)


def _ranking(scores: Dict[str, float], key: str) -> List[Dict[str, Any]]:
    ordered = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:RANKING_LENGTH]
    return [{key: name, "confidence": float(confidence)} for name, confidence in ordered]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentClassifier(ComponentSettings, GraphComponent, IntentClassifier):
    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"C": 0.5, "confidence_scale": 6.0, "char_ngrams": [1, 4], "word_ngrams": [1, 2],
                "embedding_weight": 0.0, "spell_out_shorthand": False, "example_sets": [], "unseen_sets": []}

    @staticmethod
    def required_packages() -> List[str]:
        return ["sklearn"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        read = cls.example_sets(config) + cls.unseen_sets(config)
        return code_fingerprint() + files_fingerprint(path for d in read for path in d.glob("*.yml"))

    @staticmethod
    def example_sets(config: Dict[str, Any]) -> List[Path]:
        """The tuned-on blind sets whose questions it also learns (visitor_examples.py)."""
        return project_paths(config.get("example_sets"))

    @staticmethod
    def unseen_sets(config: Dict[str, Any]) -> List[Path]:
        """The evaluation sets none of whose texts it may learn from example_sets."""
        return project_paths(config.get("unseen_sets"))

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 model: Optional[TextModel] = None, responses: Optional[Dict[str, Any]] = None) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._model = model
        self._responses = responses or {}  # "utter_faq/<topic>" -> its responses, as Rasa's selector reports

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> LinearIntentClassifier:
        config = cls.checked_config(config)
        sets = cls.example_sets(config) + cls.unseen_sets(config)
        missing = [str(d) for d in sets if not any(d.glob("*.yml"))]
        if missing:  # training needs them; loading a trained model does not
            raise ValueError(f"config.yml: {cls.__name__} sets not found: {', '.join(missing)}")
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = with_visitor_examples([(m.get(TEXT), m.get("intent_response_key") or m.get(INTENT))
                                          for m in training_data.intent_examples if m.get(TEXT)],
                                         self.example_sets(self._config), self.unseen_sets(self._config))
        texts, labels = [text for text, _ in examples], [label for _, label in examples]
        lookups = {table["name"]: list(table["elements"]) for table in training_data.lookup_tables
                   if isinstance(table.get("elements"), list)}
        self._model = TextModel.from_config(self._config, lookups).fit(texts, labels)
        if self._model.embedding_weight:
            from assistant.nlu import sentence_embeddings

            sentence_embeddings.shared_encoder().save_remembered(sentence_embeddings.STORE)
        self._responses = {k: v for k, v in training_data.responses.items()
                           if k.startswith(f"utter_{RETRIEVAL_INTENT}/")}
        with self._model_storage.write_to(self._resource) as directory:
            joblib.dump({"model": self._model, "responses": self._responses}, directory / MODEL_FILE)
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> LinearIntentClassifier:
        config = cls.checked_config(config)
        try:
            with model_storage.read_from(resource) as directory:
                saved = joblib.load(directory / MODEL_FILE)
        except (ValueError, FileNotFoundError):
            return cls(config, model_storage, resource)  # no training data: predicts nothing
        if saved["model"].embedding_weight:
            from assistant.nlu.sentence_embeddings import shared_encoder

            shared_encoder()  # its weights (0.5 s) load with the model, not on a visitor's first message
        return cls(config, model_storage, resource, saved["model"], saved["responses"])

    def process(self, messages: List[Message]) -> List[Message]:
        with_text = [m for m in messages if m.get(TEXT)]
        if self._model is None or not with_text:
            return messages
        rows = self._model.probabilities([m.get(TEXT) for m in with_text])
        for message, row in zip(with_text, rows, strict=True):
            self._annotate(message, dict(zip(self._model.labels, row, strict=True)))
            answer_question_after_report(message, self._read_alone)
        return messages

    def _read_alone(self, text: str) -> Dict[str, Any]:
        """A text's parse by this model alone: the question after a report."""
        assert self._model is not None
        message = Message({TEXT: text})
        row = self._model.probabilities([text])[0]
        self._annotate(message, dict(zip(self._model.labels, row, strict=True)))
        return message.as_dict()

    def _annotate(self, message: Message, label_scores: Dict[str, float]) -> None:
        intents: Dict[str, float] = defaultdict(float)
        for label, score in label_scores.items():
            intents[label.split("/", 1)[0]] += score
        intent_ranking = _ranking(intents, "name")
        message.set(INTENT, intent_ranking[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, intent_ranking, add_to_output=True)
        # The topic only matters when the message may be an FAQ question: the
        # rule answers `faq` with it, and "Did you mean" offers topics above MIN_PLAUSIBLE.
        # A follow-up may name a subject of its own ("and swimming?" after exercise,
        # actions/follow_up.py), which it can't when a retrain leaves `faq` just below.
        faq = intents.get(RETRIEVAL_INTENT, 0.0)
        follow_up = intent_ranking[0]["name"] == INTENT_FOLLOW_UP
        if faq >= MIN_PLAUSIBLE or (follow_up and faq > 0.0):  # topics are ranked within faq
            self._select_answer(message, label_scores, faq)

    def _select_answer(self, message: Message, label_scores: Dict[str, float], faq_mass: float) -> None:
        prefix = f"{RETRIEVAL_INTENT}/"
        # Within the retrieval intent, as Rasa's ResponseSelector ranks: topics sum to 1.
        topics = {k: v / faq_mass for k, v in label_scores.items() if k.startswith(prefix)}
        if not topics:  # trained without topics: nothing to select
            return
        ranking = _ranking(topics, "intent_response_key")
        responses = self._responses.get(f"utter_{ranking[0]['intent_response_key']}", [])
        selector = answer_selection(message.get(RESPONSE_SELECTOR), RETRIEVAL_INTENT, ranking, responses,
                                    [RETRIEVAL_INTENT])
        message.set(RESPONSE_SELECTOR, selector, add_to_output=True)
