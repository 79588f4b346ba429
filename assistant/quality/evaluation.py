"""Measure the trained model on a labelled NLU file (the held-out test set).

Shared by the accuracy test, the fallback-threshold tuning and the benchmark,
so "accuracy" means the same thing everywhere: the predicted *full* label --
``faq/<topic>`` for FAQ questions (intent + response selection), the intent
name otherwise -- must equal the expected one.

    python -m assistant.quality.evaluation [tests/nlu/holdout.yml] [--model models/x.tar.gz]
    python -m assistant.quality.evaluation --sweep     # fallback thresholds: in-scope vs out-of-scope

For the fallback thresholds, each held-out message is parsed once and the
fallback decision is replayed for every candidate setting (assistant/nlu/uncertainty.py):
in-scope accuracy counts answers with the right label; out-of-scope rejection
counts messages that got the out-of-scope reply or a clarification.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.nlu.training_data.loading import load_data

from assistant.contracts import RETRIEVAL_INTENT, faq_selection
from assistant.nlu.uncertainty import Thresholds, decide
from assistant.paths import MODEL, PROJECT_ROOT

DEFAULT_MODEL = MODEL
HOLDOUT_FILE = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"
OUT_OF_SCOPE_FILE = PROJECT_ROOT / "tests" / "nlu" / "holdout_out_of_scope.yml"
# Labels that mean "not answered as if understood": the out-of-scope reply, or a
# clarification (nlu_fallback; `inform` outside the form also gets one).
REJECTED = {"out_of_scope", "nlu_fallback", "inform"}


@dataclass
class Prediction:
    text: str
    expected: str
    predicted: str
    confidence: float  # the lower of intent and (for FAQ) response-selection confidence

    @property
    def correct(self) -> bool:
        return self.expected == self.predicted


@dataclass
class Report:
    predictions: List[Prediction] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        if not self.predictions:
            return 0.0
        return sum(p.correct for p in self.predictions) / len(self.predictions)

    @property
    def errors(self) -> List[Prediction]:
        return [p for p in self.predictions if not p.correct]

    def summary(self) -> str:
        lines = [f"accuracy {self.accuracy:.3f} on {len(self.predictions)} held-out examples"]
        lines += [
            f"  MISS {p.text!r}: expected {p.expected}, got {p.predicted} ({p.confidence:.2f})"
            for p in self.errors
        ]
        return "\n".join(lines)


def load_examples(path: Path = HOLDOUT_FILE) -> List[Tuple[str, str]]:
    """(text, full label) pairs from a Rasa NLU file."""
    data = load_data(str(path))
    examples = []
    for message in data.intent_examples:
        label = message.get("intent_response_key") or message.get("intent")
        examples.append((message.get("text"), label))
    return examples


def full_label(parse: Dict[str, Any]) -> Tuple[str, float]:
    """The predicted label and its confidence from Rasa's parse output."""
    intent = parse.get("intent") or {}
    name = intent.get("name") or "none"
    confidence = float(intent.get("confidence") or 0.0)
    selector = faq_selection(parse) if name == RETRIEVAL_INTENT else None
    if selector:
        response = selector.get("response") or {}
        name = response.get("intent_response_key") or name
        confidence = min(confidence, float(response.get("confidence") or 0.0))
    return name, confidence


async def evaluate_agent(agent: Any, examples: List[Tuple[str, str]]) -> Report:
    report = Report()
    for text, expected in examples:
        parse = await agent.parse_message(text)
        predicted, confidence = full_label(parse)
        report.predictions.append(Prediction(text, expected, predicted, confidence))
    return report


@dataclass(frozen=True)
class TradeOff:
    thresholds: Thresholds
    in_scope_accuracy: float
    out_of_scope_rejection: float

    def row(self) -> str:
        t = self.thresholds
        return (f"intent {t.intent:.2f}/{t.intent_ambiguity:.2f}  "
                f"answer {t.answer:.2f}/{t.answer_ambiguity:.2f}"
                f"  in-scope accuracy {self.in_scope_accuracy:.3f}"
                f"  out-of-scope rejection {self.out_of_scope_rejection:.3f}")


async def parse_all(agent: Any, examples: List[Tuple[str, str]]) -> List[Tuple[str, Dict[str, Any]]]:
    return [(expected, await agent.parse_message(text)) for text, expected in examples]


def trade_off(in_scope: List[Tuple[str, Dict[str, Any]]], out_of_scope: List[Tuple[str, Dict[str, Any]]],
              thresholds: Thresholds) -> TradeOff:
    correct = sum(decide(parse, thresholds) == expected for expected, parse in in_scope)
    rejected = sum(decide(parse, thresholds) in REJECTED for _, parse in out_of_scope)
    return TradeOff(thresholds, correct / len(in_scope), rejected / len(out_of_scope))


def sweep(in_scope: List[Tuple[str, Dict[str, Any]]],
          out_of_scope: List[Tuple[str, Dict[str, Any]]]) -> List[TradeOff]:
    """Every candidate setting, best balanced (highest of the two minima) first.
    The per-intent thresholds and words (strict_intents, strict_intent_words)
    stay as configured."""
    configured = Thresholds.from_config()
    grid = itertools.product([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], [0.0, 0.1, 0.2],
                             [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [0.0, 0.05, 0.1])
    results = [trade_off(in_scope, out_of_scope,
                         Thresholds(*values, strict=configured.strict, strict_words=configured.strict_words))
               for values in grid]
    return sorted(results, key=lambda r: (min(r.in_scope_accuracy, r.out_of_scope_rejection),
                                          r.in_scope_accuracy), reverse=True)


def cross_validate(folds: int = 5, seed: int = 0) -> float:
    """k-fold accuracy of the intent/topic model on its training data: data/nlu and
    the tuned-on blind sets' questions it learns (assistant/nlu/visitor_examples.py).
    The figure the held-out sets can't give, since they were also used for tuning.
    Same model and settings as config.yml; the raw label, no fallback."""
    import numpy as np
    from sklearn.model_selection import KFold

    from assistant.nlu.linear_classifier import LinearIntentClassifier, TextModel
    from assistant.nlu.visitor_examples import with_visitor_examples

    remember_training_embeddings()
    data = load_data(str(PROJECT_ROOT / "data" / "nlu"))
    config = LinearIntentClassifier.configured()
    examples = with_visitor_examples([(m.get("text"), m.get("intent_response_key") or m.get("intent"))
                                      for m in data.intent_examples if m.get("text")],
                                     LinearIntentClassifier.example_sets(config),
                                     LinearIntentClassifier.unseen_sets(config))
    lookups = {t["name"]: list(t["elements"])
               for t in data.lookup_tables if isinstance(t.get("elements"), list)}
    texts = np.array([t for t, _ in examples], dtype=object)
    labels = np.array([label for _, label in examples], dtype=object)
    correct = 0
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(texts):
        model = TextModel.from_config(config, lookups).fit(list(texts[train]), list(labels[train]))
        predicted = np.array(model.labels)[model.probabilities(list(texts[test])).argmax(axis=1)]
        correct += int((predicted == labels[test]).sum())
    return correct / len(texts)


def remember_training_embeddings() -> int:
    """The training examples' sentence embeddings, as training stored them: an
    evaluation that encodes them again (cross-validation, the tuned-on sets' first
    turns) reads them instead (assistant/nlu/sentence_embeddings.py)."""
    from assistant.nlu.sentence_embeddings import STORE, shared_encoder

    return shared_encoder().load_remembered(STORE)


def load_agent(model: Path = DEFAULT_MODEL) -> Any:
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))
    remember_training_embeddings()
    return agent


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Held-out accuracy of a trained model.")
    parser.add_argument("file", nargs="?", type=Path, default=HOLDOUT_FILE)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--sweep", action="store_true", help="tune the fallback thresholds")
    args = parser.parse_args(argv)
    agent = load_agent(args.model)
    if args.sweep:
        in_scope = asyncio.run(parse_all(agent, load_examples(args.file)))
        out_of_scope = asyncio.run(parse_all(agent, load_examples(OUT_OF_SCOPE_FILE)))
        print("configured:", trade_off(in_scope, out_of_scope, Thresholds.from_config()).row())
        print("best candidates:")
        for result in sweep(in_scope, out_of_scope)[:10]:
            print("  " + result.row())
        return 0
    report = asyncio.run(evaluate_agent(agent, load_examples(args.file)))
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
