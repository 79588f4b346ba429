"""Our spaCy pipeline: built from the knowledge base, tags conditions and body areas."""

from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
from spacy.language import Language

from assistant.kb.knowledge import KnowledgeBase
from assistant.kb.spacy_pipeline import build_pipeline, ruler_patterns
from assistant.paths import PROJECT_ROOT

BUILT = PROJECT_ROOT / "build" / "spacy" / "en_dry_needling"


@pytest.fixture(scope="module")
def nlp(kb: KnowledgeBase) -> Language:
    return build_pipeline(kb)


def entities(nlp: Language, text: str) -> List[Tuple[str, str, str]]:
    return [(e.text, e.label_, e.ent_id_) for e in nlp(text).ents]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("can it help my tennis elbow?", [("tennis elbow", "condition", "tennis_elbow")]),
        ("I get MIGRANES", [("MIGRANES", "condition", "migraine")]),
        ("sore neck and heel pain", [("sore neck", "condition", "neck_pain"),
                                     ("heel pain", "condition", "heel_pain")]),
        ("my knees hurt", [("knees", "body_area", "knee_pain")]),
        # areas blind-set writers named that had none (dev50, dev52)
        ("ankles?", [("ankles", "body_area", "ankle_pain")]),
        ("do u guys needle glutes?", [("glutes", "body_area", "leg_pain")]),
        ("traps are fried after deadlifts", [("traps", "body_area", "shoulder_pain")]),
        ("rolled ankle last week", [("rolled ankle", "condition", "acute_injury")]),
        ("carpel tunnel syndrome", [("carpel tunnel syndrome", "condition", "carpal_tunnel")]),
        ("long-term pain", [("long-term pain", "condition", "chronic_pain")]),
        ("bell's palsy", [("bell's palsy", "condition", "nerve_pain")]),
        ("what are the side effects", []),
        ("please call me back tomorrow", []),
    ],
)
def test_entity_ruler_finds_conditions(nlp: Language, text: str, expected: list) -> None:
    assert entities(nlp, text) == expected


def test_every_term_of_the_knowledge_base_is_a_pattern(kb: KnowledgeBase) -> None:
    patterns = {p["pattern"] for p in ruler_patterns(kb)}
    for condition in kb.conditions.values():
        for term in condition.terms:
            assert term.lower() in patterns


def test_the_built_pipeline_is_current_and_loads_from_disk(kb: KnowledgeBase) -> None:
    """`make` rebuilt build/spacy from the current knowledge base; Rasa loads it from there."""
    assert (BUILT / "meta.json").exists()
    loaded = spacy.load(BUILT)
    assert loaded.pipe_names == ["entity_ruler"]
    assert len(loaded.get_pipe("entity_ruler")) == len(ruler_patterns(kb))
    assert entities(loaded, "can it help sciatica") == [("sciatica", "condition", "sciatica")]


def test_pipeline_builder_cli_writes_a_loadable_pipeline(tmp_path: Path) -> None:
    from assistant.kb.spacy_pipeline import main

    assert main(["--out", str(tmp_path / "pipe")]) == 0
    assert spacy.load(tmp_path / "pipe").pipe_names == ["entity_ruler"]
