"""Held-out accuracy of the trained model (intent + response selection)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from assistant.evaluation import evaluate_agent, load_examples
from assistant.knowledge import PROJECT_ROOT, KnowledgeBase, normalise_term
from tests.conftest import report_figure

ACCURACY_BAR = 0.95


def test_holdout_is_separate_from_training_and_covers_every_topic(kb: KnowledgeBase) -> None:
    holdout = load_examples()
    training = {normalise_term(q) for t in kb.topics.values() for q in t.questions}
    from rasa.shared.nlu.training_data.loading import load_data

    examples = load_data(str(PROJECT_ROOT / "data" / "nlu")).intent_examples
    training |= {normalise_term(m.get("text")) for m in examples}
    leaked = [text for text, _ in holdout if normalise_term(text) in training]
    assert not leaked, f"held-out examples copied into training data: {leaked}"
    per_label = Counter(label for _, label in holdout)
    for topic in kb.topics:
        assert per_label[f"faq/{topic}"] >= 3, topic


def test_holdout_accuracy_meets_the_bar(agent: Any) -> None:
    report = asyncio.run(evaluate_agent(agent, load_examples()))
    report_figure(
        f"held-out NLU accuracy (intent + response selection): {report.accuracy:.3f} "
        f"on {len(report.predictions)} examples (bar {ACCURACY_BAR})"
    )
    print(report.summary())
    assert report.accuracy >= ACCURACY_BAR, report.summary()
