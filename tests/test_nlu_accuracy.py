"""The held-out sets are separate from training (accuracy: tests/test_uncertainty.py)."""

from __future__ import annotations

from collections import Counter

from assistant.evaluation import OUT_OF_SCOPE_FILE, load_examples
from assistant.knowledge import PROJECT_ROOT, KnowledgeBase, normalise_term


def test_holdout_is_separate_from_training_and_covers_every_topic(kb: KnowledgeBase) -> None:
    holdout = load_examples() + load_examples(OUT_OF_SCOPE_FILE)
    training = {normalise_term(q) for t in kb.topics.values() for q in t.questions}
    from rasa.shared.nlu.training_data.loading import load_data

    examples = load_data(str(PROJECT_ROOT / "data" / "nlu")).intent_examples
    training |= {normalise_term(m.get("text")) for m in examples}
    # (emoji-only messages normalise to "": compare those as typed)
    training |= {m.get("text") for m in examples}
    leaked = [text for text, _ in holdout if (normalise_term(text) or text) in training]
    assert not leaked, f"held-out examples copied into training data: {leaked}"
    per_label = Counter(label for _, label in holdout)
    for topic in kb.topics:
        assert per_label[f"faq/{topic}"] >= 3, topic
