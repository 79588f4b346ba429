"""Leave-one-set-out figures for the learned warning-sign model.

Each report set in ``data/safety/`` was written blind by a different helper, so
predicting one set with a model trained on the others is the honest estimate
of how the model does on reports nobody has seen. It is measured on its own,
without the patterns, which were tuned on every set and would hide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, List, Sequence, Tuple

from joblib import Parallel, delayed

from assistant.nlu.learned_warning_signs import (
    Example,
    Thresholds,
    WarningSignModel,
    load_report_set,
    report_set_files,
)


@dataclass
class HeldOutSet:
    name: str
    reports: int
    caught: int  # at the required urgency or higher
    quiet: int
    alarms: int


def held_out_sets(directory: Path, negatives: Sequence[str], body: FrozenSet[str], c: float,
                  thresholds: Thresholds, jobs: int = 2) -> List[HeldOutSet]:
    """One fit per set (about 15 s each over 75 sets on this machine), spread over `jobs` processes."""
    sets: List[Tuple[str, List[Example]]] = [(p.name, load_report_set(p))
                                             for p in report_set_files(directory)]
    quiet = [(text, 0) for text in negatives]

    def others(name: str) -> List[Example]:
        return [example for other, examples in sets if other != name for example in examples] + quiet

    return Parallel(n_jobs=jobs)(delayed(_hold_out)(name, held, others(name), body, c, thresholds)
                                 for name, held in sets)


def _hold_out(name: str, held: List[Example], training: List[Example], body: FrozenSet[str], c: float,
              thresholds: Thresholds) -> HeldOutSet:
    model = WarningSignModel(c, body).fit(training)
    fired = [(model.level(text, thresholds), want) for text, want in held]
    return HeldOutSet(
        name=name,
        reports=sum(want > 0 for _, want in fired),
        caught=sum(want > 0 and got >= want for got, want in fired),
        quiet=sum(want == 0 for _, want in fired),
        alarms=sum(want == 0 and got > 0 for got, want in fired),
    )


def pooled(results: Sequence[HeldOutSet]) -> Tuple[float, float]:
    """(recall at the required urgency, false-alarm rate) over every held-out set."""
    return (sum(r.caught for r in results) / sum(r.reports for r in results),
            sum(r.alarms for r in results) / sum(r.quiet for r in results))
