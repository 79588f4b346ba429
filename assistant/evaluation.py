"""Measure the trained model on a labelled NLU file (the held-out test set).

Shared by the accuracy test, the fallback-threshold tuning and the benchmark,
so "accuracy" means the same thing everywhere: the predicted *full* label --
``faq/<topic>`` for FAQ questions (intent + response selection), the intent
name otherwise -- must equal the expected one.

    python -m assistant.evaluation [tests/nlu/holdout.yml] [--model models/x.tar.gz]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from rasa.shared.nlu.training_data.loading import load_data

from assistant.knowledge import PROJECT_ROOT

DEFAULT_MODEL = PROJECT_ROOT / "models" / "dry-needling.tar.gz"
HOLDOUT_FILE = PROJECT_ROOT / "tests" / "nlu" / "holdout.yml"


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
    selector = (parse.get("response_selector") or {}).get(name)
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


def load_agent(model: Path = DEFAULT_MODEL) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(str(model))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Held-out accuracy of a trained model.")
    parser.add_argument("file", nargs="?", type=Path, default=HOLDOUT_FILE)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    report = asyncio.run(evaluate_agent(load_agent(args.model), load_examples(args.file)))
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
