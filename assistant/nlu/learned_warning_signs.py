"""A learned second opinion on after-session warning signs, for the reports the
patterns in ``knowledge/red_flags.yml`` have no words for.

Patterns only catch the phrasings someone thought of. Each blind development
set in ``data/safety/`` found reports the patterns of the day missed: 111 of
1,180 over the eleven sets (dev9 to dev19) whose pre-tuning patterns still run.
Visitors invent new ways to say "it stabs when I breathe in" faster than
patterns can follow, so this model learns from the reports themselves.

It is one logistic regression over word and character n-grams (the characters
for phone typos) with three classes: quiet (a question, a normal after-effect,
every NLU training example), "see a doctor today" and "emergency". It is
trained with the NLU model, but the patterns still come first and are still
read at start-up without retraining; this only adds alarms where they are silent.

The numbers behind the settings, leave-one-set-out over the nineteen sets
(each set's reports predicted by a model trained on the other eighteen):
at C=16 and P(report) >= 0.9 it caught 90 of those 111 pattern misses (88 at
the right urgency) and raised 2 alarms on 1,185 quiet messages (0.17%) that the
patterns had left alone, and none on the 316 held-out FAQ questions in
``tests/nlu/``. At 0.8 it caught 97 but alarmed on 14 (1.2%); a C of 2 or 8
caught fewer at every threshold. `make test` prints these figures again
(``assistant/quality/warning_signs_cv.py``).

Like the patterns, it is deterministic: the same text always gets the same answer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from assistant.nlu.ngram_features import NgramFeatures
from assistant.nlu.red_flag_rules import normalise

# The groups a report set may have, and the level each one stands for.
LEVELS: Dict[str, int] = {"normal": 0, "question": 0, "urgent": 1, "crisis": 2, "emergency": 2}
CATEGORY_OF_LEVEL = {1: "urgent", 2: "emergency"}  # the intents (and replies) a learned alarm gives
LEARNED_FLAG_ID = "learned_report"  # in the parse data's red_flag entry, next to the patterns' ids

Example = Tuple[str, int]  # (text, level)


class ReportSetError(ValueError):
    """A report set is malformed; the message names the file and the group."""


def load_report_set(path: Path) -> List[Example]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ReportSetError(f"{path.name}: expected groups {', '.join(LEVELS)}")
    examples = []
    for group, texts in raw.items():
        if group not in LEVELS:
            raise ReportSetError(f"{path.name}: unknown group '{group}' (expected {', '.join(LEVELS)})")
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ReportSetError(f"{path.name}: '{group}' must be a list of messages")
        examples += [(text, LEVELS[group]) for text in texts]
    return examples


def report_set_files(directory: Path) -> List[Path]:
    return sorted(directory.glob("*.yml"))


def fingerprint(directory: Path) -> str:
    """Changes whenever a report set does, so Rasa retrains this model then."""
    digest = hashlib.sha256()
    for path in report_set_files(directory):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class WarningSignModel:
    def __init__(self, c: float = 16.0) -> None:
        self.features = NgramFeatures([
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
        ])
        # Balanced: the quiet messages outnumber the reports about two to one.
        self.classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        self._weights: Optional[np.ndarray] = None

    def fit(self, examples: Sequence[Example]) -> WarningSignModel:
        if {level for _, level in examples} != {0, 1, 2}:
            raise ReportSetError("the report sets need quiet, urgent and emergency messages")
        self._weights = None
        self.classifier.fit(self.features.fit([normalise(text) for text, _ in examples]),
                            [level for _, level in examples])
        return self

    def probabilities(self, text: str) -> np.ndarray:
        """P(quiet), P(urgent), P(emergency): ``predict_proba`` computed directly
        (a multinomial model's softmax over its linear scores; ngram_features.py)."""
        if self._weights is None:
            self._weights = np.ascontiguousarray(self.classifier.coef_.T)
        scores = self.features.linear_scores(normalise(text), self._weights, self.classifier.intercept_)
        exp = np.exp(scores - scores.max())
        return exp / exp.sum()  # classes_ are 0, 1, 2: fit() refuses anything else

    def assess(self, text: str) -> Tuple[float, int]:
        """(the probability that it reports a warning sign, the likelier of its two levels)."""
        _, urgent, emergency = self.probabilities(text)
        return float(urgent + emergency), 2 if emergency >= urgent else 1

    def category(self, text: str, threshold: float) -> Optional[str]:
        probability, level = self.assess(text)
        return CATEGORY_OF_LEVEL[level] if probability >= threshold else None

    # The prepared weights are rebuilt after loading, not saved in the model.
    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_weights"}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state, _weights=None)
