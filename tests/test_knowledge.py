"""The knowledge base: structure, validation errors, condition lookup, own words."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from assistant.kb.knowledge import (
    KnowledgeBase,
    KnowledgeError,
    count_sentences,
    load_knowledge,
    term_variants,
)
from assistant.paths import PROJECT_ROOT

SEEDS = PROJECT_ROOT.parent / "shared" / "seeds"

# Topics issue #2 asks for by name; every one must exist.
REQUIRED_TOPICS = {
    "what_is", "why_dry", "vs_acupuncture", "trigger_points", "twitch_response",
    "how_it_works", "muscle_release", "blood_flow", "inflammation", "nerve_signals",
    "endorphins", "benefits", "pain_relief", "range_of_motion", "healing", "function",
    "conditions", "needles", "session_steps", "does_it_hurt", "soreness_after",
    "session_length", "results_timeline", "side_effects", "who_performs",
    "part_of_plan", "drug_free", "sports_performance", "who_benefits",
}
REQUIRED_CONDITIONS = {
    "headaches", "migraine", "neck_pain", "shoulder_pain", "joint_pain", "muscle_spasms",
    "sciatica", "tennis_elbow", "plantar_fasciitis", "carpal_tunnel", "fibromyalgia",
    "tendonitis", "acute_injury", "swelling", "nerve_pain", "scar_tissue",
}


def test_every_required_topic_and_condition_is_covered(kb: KnowledgeBase) -> None:
    assert len(kb.topics) >= 35
    assert set(kb.topics) >= REQUIRED_TOPICS
    assert {c.id for c in kb.conditions.values() if c.covered} >= REQUIRED_CONDITIONS


def test_topics_have_the_required_shape(kb: KnowledgeBase) -> None:
    for topic in kb.topics.values():
        assert len(topic.questions) >= 10, topic.id
        assert 2 <= len(topic.related) <= 3, topic.id
        assert 2 <= count_sentences(topic.answer) <= 4, topic.id
        assert all(source in kb.sources for source in topic.sources), topic.id


def test_needle_answer_is_honest_about_the_disagreement(kb: KnowledgeBase) -> None:
    answer = kb.topics["needles"].answer.lower()
    assert "differ" in answer and "similar" in answer and "thinner" in answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Migranes", "migraine"),
        ("sore neck", "neck_pain"),
        ("Bell's palsy", "nerve_pain"),
        ("tennis elbows", "tennis_elbow"),
        ("knees", "knee_pain"),
        ("plantar fascitis", "plantar_fasciitis"),
        ("swollen", "swelling"),
    ],
)
def test_find_condition_handles_plurals_typos_and_lay_terms(
    kb: KnowledgeBase, text: str, expected: str
) -> None:
    condition = kb.find_condition(text)
    assert condition is not None and condition.id == expected


def test_unknown_terms_are_not_matched(kb: KnowledgeBase) -> None:
    assert kb.find_condition("spaceship") is None


def test_term_variants_adds_plurals() -> None:
    assert term_variants("Migraine") == ["migraine", "migraines"]
    assert term_variants("injury") == ["injury", "injuries"]
    assert term_variants("sciatica") == ["sciatica", "sciaticas"]


def _copy_kb(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", target)
    return target


def _edit_topic(directory: Path, topic_id: str, **changes: object) -> None:
    path = directory / "topics" / "basics.yml"
    data = yaml.safe_load(path.read_text())
    for topic in data["topics"]:
        if topic["id"] == topic_id:
            topic.update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"related": ["what_is", "no_such_topic"]}, "unknown topic 'no_such_topic'"),
        ({"sources": ["made_up_article"]}, "unknown article 'made_up_article'"),
        ({"questions": ["what is it"]}, "at least 10"),
        ({"answer": "Too short."}, "2-4 short sentences"),
        ({"title": None}, "missing 'title'"),
    ],
)
def test_invalid_knowledge_names_the_topic_and_field(
    tmp_path: Path, changes: dict, message: str
) -> None:
    directory = _copy_kb(tmp_path)
    _edit_topic(directory, "why_dry", **changes)
    with pytest.raises(KnowledgeError, match=re.escape(message)) as error:
        load_knowledge(directory)
    assert "why_dry" in str(error.value)


def test_a_term_claimed_by_two_conditions_is_rejected(tmp_path: Path) -> None:
    directory = _copy_kb(tmp_path)
    path = directory / "conditions.yml"
    data = yaml.safe_load(path.read_text())
    data["conditions"][0]["terms"].append("sciatica")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(KnowledgeError, match="already belongs to"):
        load_knowledge(directory)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"source articles not present at {SEEDS}")
def test_no_sentence_of_the_articles_is_pasted_into_the_product() -> None:
    """Answers are in our own words: no article sentence of 8+ words appears verbatim."""
    sentences = set()
    for article in SEEDS.glob("*.txt"):
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", article.read_text(errors="ignore")):
            normalised = _normalise(sentence)
            if len(normalised.split()) >= 8:
                sentences.add(normalised)
    assert sentences, "no sentences read from the articles"
    product_files = [
        p for p in PROJECT_ROOT.rglob("*")
        if p.suffix in {".yml", ".yaml", ".md", ".py", ".txt", ".json", ".js", ".html"}
        and p.is_file()
        and not any(part in {".venv", "build", "models", "var", "results", "test-artifacts"}
                    for part in p.relative_to(PROJECT_ROOT).parts)
    ]
    copied = [
        f"{p.relative_to(PROJECT_ROOT)}: {s[:60]}"
        for p in product_files
        for text in [_normalise(p.read_text(errors="ignore"))]
        for s in sentences
        if s in text
    ]
    assert not copied, copied
