"""Leave-one-set-out figures for the learned warning-sign model.

Each report set in ``data/safety/`` was written blind by a different helper, so
predicting one set with a model trained on the others is the honest estimate
of how the model does on reports nobody has seen. It is measured on its own,
without the patterns, which were tuned on every set and would hide it.

Fitting 83 folds the way ``WarningSignModel.fit`` does took about nine minutes
of `make test` on two cores: 6 s of TF-IDF and 7 s of regression per fold. Two
things make it cheaper without changing what a fold is:

- ``FoldFeatures`` counts every text's n-grams once. A fold's matrix is then
  the one TfidfVectorizer fits on its training texts (the same vocabulary,
  document frequencies and idf, equal to 1e-15; the n-grams a fold does not
  keep become empty columns, which an L2-regularised regression gives a weight
  of zero). tests/test_learned_warning_signs.py compares the two.
- Each fold's regression starts from the model fitted on every set, which
  differs from it by one set in 83: 6-7 Newton steps instead of 17-18, to the
  same optimum and the same stopping tolerance. The start has seen the held-out
  set, so what is left of the solver's tolerance leans towards it: a cold and
  a warm start gave probabilities within 0.0007 of each other on the two folds
  compared (the test of the solver allows 0.001 against sklearn's default).

Measured on 2026-12-04 over the 83 sets: 252 s instead of 624 s, and every
set's four counts the same as fitting each fold from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, List, Sequence, Tuple

import numpy as np
import scipy.sparse
from joblib import Parallel, delayed
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

from assistant.nlu.learned_warning_signs import (
    Example,
    Thresholds,
    WarningSignModel,
    assessment,
    decided_level,
    load_report_set,
    report_set_files,
)
from assistant.nlu.red_flag_rules import normalise


@dataclass
class HeldOutSet:
    name: str
    reports: int
    caught: int  # at the required urgency or higher
    quiet: int
    alarms: int


@dataclass
class Fold:
    train: scipy.sparse.csr_matrix
    held: scipy.sparse.csr_matrix
    kept: np.ndarray  # a boolean per column: the n-grams the training texts keep


class FoldFeatures:
    """Every fold's TF-IDF matrices from one count of all the texts."""

    def __init__(self, vectorizers: Sequence[TfidfVectorizer], texts: Sequence[str]) -> None:
        for v in vectorizers:
            if not (type(v.min_df) is int and v.min_df >= 1 and type(v.max_df) is float and v.max_df == 1.0
                    and v.max_features is None
                    and v.smooth_idf and v.sublinear_tf and v.norm == "l2" and v.vocabulary is None):
                raise ValueError("FoldFeatures reproduces an integer min_df, smoothed idf, sublinear tf "
                                 "and l2 norms only")
        self.min_df = [int(v.min_df) for v in vectorizers]
        self.tf: List[scipy.sparse.csr_matrix] = []
        self.df: List[np.ndarray] = []
        for v in vectorizers:
            counts = CountVectorizer(analyzer=v.build_analyzer()).fit_transform(texts).tocsr()
            self.df.append(np.bincount(counts.indices, minlength=counts.shape[1]))
            tf = counts.astype(np.float64)
            tf.data = 1.0 + np.log(tf.data)  # sublinear tf, as TfidfTransformer computes it
            self.tf.append(tf)
        self.rows = len(texts)

    def fold(self, held_rows: np.ndarray) -> Fold:
        train_rows = np.setdiff1d(np.arange(self.rows), held_rows)
        train, held, kept = [], [], []
        for tf, df, min_df in zip(self.tf, self.df, self.min_df, strict=True):
            df_train = df - np.bincount(tf[held_rows].indices, minlength=tf.shape[1])
            keep = df_train >= min_df
            idf = np.where(keep, np.log((len(train_rows) + 1) / (df_train + 1)) + 1.0, 0.0)
            train.append(_weighted(tf[train_rows], idf))
            held.append(_weighted(tf[held_rows], idf))
            kept.append(keep)
        return Fold(scipy.sparse.hstack(train).tocsr(), scipy.sparse.hstack(held).tocsr(),
                    np.concatenate(kept))


def _weighted(tf: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    weighted = scipy.sparse.csr_matrix(tf @ scipy.sparse.diags(idf))
    weighted.eliminate_zeros()  # the n-grams the fold drops leave nothing behind
    return normalize(weighted, norm="l2", copy=False) if weighted.shape[0] else weighted


def held_out_sets(directory: Path, negatives: Sequence[str], body: FrozenSet[str], c: float,
                  thresholds: Thresholds, jobs: int = 2) -> List[HeldOutSet]:
    """One fit per set, spread over `jobs` processes."""
    sets: List[Tuple[str, List[Example]]] = [(p.name, load_report_set(p))
                                             for p in report_set_files(directory)]
    examples = [example for _, held in sets for example in held] + [(text, 0) for text in negatives]
    texts = [normalise(text) for text, _ in examples]
    levels = np.array([level for _, level in examples])
    features = FoldFeatures(WarningSignModel(c, body).features.vectorizers, texts)
    everything = WarningSignModel(c, body)
    everything.classifier.fit(features.fold(np.array([], dtype=int)).train, levels)
    starts = np.cumsum([0] + [len(held) for _, held in sets])
    folds = [(name, np.arange(start, start + len(held)), held)
             for (name, held), start in zip(sets, starts[:-1], strict=True)]
    return Parallel(n_jobs=jobs)(
        delayed(_hold_out)(name, held, features.fold(rows), np.delete(levels, rows), everything, thresholds)
        for name, rows, held in folds)


def _hold_out(name: str, held: List[Example], fold: Fold, training_levels: np.ndarray,
              everything: WarningSignModel, thresholds: Thresholds) -> HeldOutSet:
    model = warm_fit(fold, training_levels, everything)
    probabilities = model.classifier.predict_proba(fold.held)
    fired = [(0 if model.leaves_to_patterns(text) else decided_level(assessment(p), thresholds), want)
             for (text, want), p in zip(held, probabilities, strict=True)]
    return HeldOutSet(
        name=name,
        reports=sum(want > 0 for _, want in fired),
        caught=sum(want > 0 and got >= want for got, want in fired),
        quiet=sum(want == 0 for _, want in fired),
        alarms=sum(want == 0 and got > 0 for got, want in fired),
    )


def warm_fit(fold: Fold, training_levels: np.ndarray, everything: WarningSignModel) -> WarningSignModel:
    """The fold's model, its regression started from the model of every set."""
    model = WarningSignModel(everything.classifier.C, everything.body)
    model.classifier.set_params(warm_start=True)
    model.classifier.coef_ = everything.classifier.coef_ * fold.kept
    model.classifier.intercept_ = everything.classifier.intercept_.copy()
    model.classifier.fit(fold.train, training_levels)
    return model


def pooled(results: Sequence[HeldOutSet]) -> Tuple[float, float]:
    """(recall at the required urgency, false-alarm rate) over every held-out set."""
    return (sum(r.caught for r in results) / sum(r.reports for r in results),
            sum(r.alarms for r in results) / sum(r.quiet for r in results))
