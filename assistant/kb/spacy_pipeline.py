"""Build the project's own spaCy pipeline: blank English + an entity ruler.

    python -m assistant.kb.spacy_pipeline --out build/spacy/en_dry_needling

No spaCy model package can be downloaded here (and nothing may be fetched at run
time), so Rasa's ``SpacyNLP`` loads this pipeline from a folder instead. It earns
its place twice: spaCy's English tokenizer, and an entity ruler that tags the
conditions (``condition``) and body areas (``body_area``) listed in
``knowledge/conditions.yml`` -- plurals, misspellings and lay terms included.
Each pattern carries the condition id, so "migranes" and "sore neck" resolve to
one known condition.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.language import Language

from assistant.kb.knowledge import (
    KnowledgeBase,
    KnowledgeError,
    load_knowledge,
    print_knowledge_error,
    term_variants,
)

CONDITION_LABEL = "condition"
BODY_AREA_LABEL = "body_area"
PIPELINE_NAME = "en_dry_needling"


def pattern_variants(term: str) -> List[str]:
    """Spellings to match: as written ("long-term pain", "bell's palsy") and normalised, with plurals."""
    written = term.lower().strip()
    variants = dict.fromkeys(term_variants(term) + [written, written + "s"])
    return list(variants)


def ruler_patterns(kb: KnowledgeBase) -> List[Dict[str, str]]:
    """Phrase patterns for every condition term and body area."""
    patterns: List[Dict[str, str]] = []
    for condition in kb.conditions.values():
        for label, terms in ((CONDITION_LABEL, condition.terms), (BODY_AREA_LABEL, condition.areas)):
            for term in terms:
                for variant in pattern_variants(term):
                    patterns.append({"label": label, "pattern": variant, "id": condition.id})
    return patterns


def build_pipeline(kb: KnowledgeBase) -> Language:
    nlp = spacy.blank("en")
    # SpacyNLP lower-cases text before parsing, but match on LOWER anyway so the
    # pipeline behaves the same when used directly (coverage tool, tests).
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    ruler.add_patterns(ruler_patterns(kb))  # type: ignore[attr-defined]
    nlp.meta["name"] = PIPELINE_NAME
    nlp.meta["version"] = "1.0.0"
    nlp.meta["description"] = "Blank English + condition/body-area entity ruler (built from knowledge/)"
    return nlp


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the spaCy pipeline.")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        kb = load_knowledge()
    except KnowledgeError as error:
        return print_knowledge_error(error)
    args.out.mkdir(parents=True, exist_ok=True)
    build_pipeline(kb).to_disk(args.out)
    print(f"spaCy pipeline written to {args.out} ({len(ruler_patterns(kb))} patterns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
