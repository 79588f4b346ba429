"""How easy the bot's answers are to read (Flesch-Kincaid grade, via textstat).

Patient material should sit below an 8th-grade reading level (NIH); the AMA and
US HHS ask for 4th-6th. ``tests/test_readability.py`` holds every answer a
patient can get to that bar, so a rewrite that drifts into jargon fails there
rather than in front of a patient.

    python -m assistant.kb.readability      # every answer's grade, hardest first
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List

import textstat
import yaml

from assistant.kb.knowledge import KnowledgeBase, load_knowledge
from assistant.paths import DOMAIN_FILE

MAX_GRADE = 8.0  # every answer
MAX_AVERAGE_GRADE = 7.0  # all answers together

# Slots stand for short, plain words in the measured text: a URL or a phone
# number would count as one very long "word" and skew the grade.
_SLOT = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True)
class Answer:
    where: str  # "topics: what_is", "domain.yml: utter_greet"...
    text: str

    @property
    def grade(self) -> float:
        return float(textstat.flesch_kincaid_grade(plain(self.text)))


def plain(text: str) -> str:
    """The text as a patient reads it, with each slot as a one-syllable word."""
    return " ".join(_SLOT.sub("us", text).split())


def _domain_texts(path: Path) -> Iterator[Answer]:
    responses = yaml.safe_load(path.read_text(encoding="utf-8")).get("responses") or {}
    for name, variants in responses.items():
        for variant in variants or []:
            if isinstance(variant, dict) and variant.get("text"):
                yield Answer(f"domain.yml: {name}", str(variant["text"]))


def patient_answers(kb: KnowledgeBase, domain: Path = DOMAIN_FILE) -> List[Answer]:
    """Every patient-facing answer: FAQ topics, long-tail replies, condition
    answers and domain.yml's fixed responses."""
    answers = [Answer(f"topics: {t.id}", t.answer) for t in kb.topics.values()]
    answers += [Answer(f"long_tail: {s.id}", s.reply) for s in kb.subjects.values()]
    answers += [Answer(f"conditions: {c.id}", c.answer)
                for c in kb.conditions.values() if c.answer]
    answers += list(_domain_texts(domain))
    return answers


def summary(answers: List[Answer]) -> Dict[str, object]:
    grades = [a.grade for a in answers]
    return {
        "count": len(grades),
        "average": sum(grades) / len(grades),
        "max": max(grades),
        "hardest": sorted(answers, key=lambda a: a.grade, reverse=True)[:5],
    }


def main() -> int:
    answers = patient_answers(load_knowledge())
    for answer in sorted(answers, key=lambda a: a.grade, reverse=True):
        print(f"{answer.grade:5.1f}  {answer.where}")
    figures = summary(answers)
    print(f"{figures['count']} answers, average grade {figures['average']:.1f}, "
          f"hardest {figures['max']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
