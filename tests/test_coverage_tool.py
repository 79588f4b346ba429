"""`make coverage`: which article sentences the knowledge base answers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assistant.kb.coverage import coverage, main
from assistant.kb.knowledge import KnowledgeBase, KnowledgeError


@pytest.fixture()
def articles(tmp_path: Path) -> Path:
    (tmp_path / "clinic_post.txt").write_text(
        "Dry Needling FAQ\n"
        "Most dry needling sessions last about thirty minutes, so a lunch break is enough.\n"
        "Our car park is being resurfaced by the council during the first week of May.\n",
        encoding="utf-8",
    )
    return tmp_path


def test_each_sentence_is_matched_to_a_topic_or_reported_missing(
    kb: KnowledgeBase, articles: Path
) -> None:
    results = coverage(kb, articles)
    # the two-word heading is too short to count as a fact
    assert [r.sentence[:20] for r in results] == ["Most dry needling se", "Our car park is bein"]
    session, car_park = results
    assert session.best == "topic:session_length"
    assert car_park.best is None


def test_cli_prints_a_summary(articles: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(articles)]) == 0
    output = capsys.readouterr().out
    assert "1 of 2 sentences covered (50%)" in output
    assert "NOT COVERED" in output


def test_cli_rejects_a_missing_folder(tmp_path: Path) -> None:
    assert main([str(tmp_path / "nope")]) == 2


CUPPING = Path(__file__).parent / "fixtures" / "coverage"  # an article on another treatment


def test_an_article_on_another_treatment_is_not_reported_as_covered(kb: KnowledgeBase) -> None:
    # the dry-needling topics alone: a clinic may add a cupping topic of its own
    needling = {k: t for k, t in kb.topics.items() if "cupping" not in f"{k} {t.title} {t.answer}".lower()}
    results = coverage(dataclasses.replace(kb, topics=needling), CUPPING)
    assert len(results) >= 10
    assert not [r.sentence for r in results if r.best], "cupping sentences matched our answers"
    # "to book a cupping session" shares "session" with session_length: its subject gives it away
    booking = next(r for r in results if r.sentence.startswith("To book a cupping session"))
    assert booking.off_subject == "cupping"


def test_the_report_shows_the_matched_answer_beside_the_sentence(
    kb: KnowledgeBase, articles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(articles)]) == 0
    output = capsys.readouterr().out
    assert f"-> {kb.topics['session_length'].answer[:60]}" in output


def test_cli_reports_an_invalid_knowledge_base_in_one_line(
    monkeypatch: pytest.MonkeyPatch, articles: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> KnowledgeBase:
        raise KnowledgeError("knowledge/topics/cupping.yml: topic 'cupping': 'related' should list 2-3")

    monkeypatch.setattr("assistant.kb.coverage.load_knowledge", broken)
    assert main([str(articles)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cupping.yml" in error and "Traceback" not in error
