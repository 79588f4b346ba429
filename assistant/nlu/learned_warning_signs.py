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
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

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
        self.features = FeatureUnion([
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True)),
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ])
        # Balanced: the quiet messages outnumber the reports about two to one.
        self.classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")

    def fit(self, examples: Sequence[Example]) -> WarningSignModel:
        levels = {level for _, level in examples}
        if levels != {0, 1, 2}:
            raise ReportSetError("the report sets need quiet, urgent and emergency messages")
        matrix = self.features.fit_transform([normalise(text) for text, _ in examples])
        self.classifier.fit(matrix, [level for _, level in examples])
        return self

    def assess(self, texts: Iterable[str]) -> List[Tuple[float, int]]:
        """(probability that it reports a warning sign, the likelier of its two levels) per text."""
        rows = self.classifier.predict_proba(self.features.transform([normalise(t) for t in texts]))
        column = {level: index for index, level in enumerate(self.classifier.classes_)}
        assessed = []
        for row in np.asarray(rows):
            urgent, emergency = row[column[1]], row[column[2]]
            assessed.append((float(urgent + emergency), 2 if emergency >= urgent else 1))
        return assessed

    def category(self, text: str, threshold: float) -> Optional[str]:
        probability, level = self.assess([text])[0]
        return CATEGORY_OF_LEVEL[level] if probability >= threshold else None
