"""TF-IDF over character and word n-grams, with a fast path for one message.

Both of our text models are linear over these features: the intent and topic
classifier (``linear_classifier.py``) and the learned warning-sign model
(``learned_warning_signs.py``). At run time they score one message at a time,
and sklearn's general path (input validation, a sparse matrix for a single
row, a FeatureUnion) costs about 1 ms per model per message; ``linear_scores``
computes the same numbers from the vocabularies and weights directly in about
a tenth of that. Tests compare the two on every training example.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer

_Part = Tuple[Callable[[str], List[str]], Dict[str, int], np.ndarray, int]


class NgramFeatures:
    def __init__(self, vectorizers: Sequence[TfidfVectorizer]) -> None:
        if not all(v.sublinear_tf and v.norm == "l2" and v.use_idf for v in vectorizers):
            raise ValueError("the fast path reproduces sublinear tf, idf and l2 norms only")
        self.vectorizers = list(vectorizers)
        self._parts: List[_Part] = []

    def fit(self, texts: List[str]) -> scipy.sparse.csr_matrix:
        self._parts = []
        for vectorizer in self.vectorizers:
            vectorizer.fit(texts)
        return self.transform(texts)

    def transform(self, texts: List[str]) -> scipy.sparse.csr_matrix:
        return scipy.sparse.hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def linear_scores(self, text: str, weights: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        """``transform([text]) @ weights + intercept`` for one text, without sklearn's
        overhead. ``weights`` has one row per feature and one column per score."""
        rows: List[int] = []
        values: List[np.ndarray] = []
        for analyze, vocabulary, idf, offset in self._parts or self._prepare():
            counts = Counter(i for i in map(vocabulary.get, analyze(text)) if i is not None)
            if not counts:
                continue
            index = np.fromiter(counts, dtype=np.int64, count=len(counts))
            tf_idf = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * idf[index]
            rows.extend(index + offset)
            values.append(tf_idf / np.linalg.norm(tf_idf))  # each vectorizer normalises its own part
        scores = np.array(intercept, dtype=float)
        if rows:
            scores += np.concatenate(values) @ weights[rows]
        return scores

    def _prepare(self) -> List[_Part]:
        offset = 0
        for vectorizer in self.vectorizers:
            self._parts.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, offset))
            offset += len(vectorizer.vocabulary_)
        return self._parts

    # The prepared lookups are rebuilt after loading, not saved in the model.
    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_parts"}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state, _parts=[])
