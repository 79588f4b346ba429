"""A clinic adds its own topic (issue 19): `make new-topic` writes a commented
template, each mistake is one line naming the file, the topic and the rule, and
once it is filled in the topic is built like the shipped ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import assistant.kb.build_data as build_data
from assistant.kb.build_data import render_responses
from assistant.kb.knowledge import KnowledgeError, load_knowledge
from assistant.kb.new_topic import main, write_topic
from assistant.paths import PROJECT_ROOT

# A topic id no clinic's own knowledge base will hold (a clinic adding "cupping"
# broke these tests when they used that name).
NEW = "trial_topic"


@pytest.fixture()
def knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(PROJECT_ROOT / "knowledge", target)
    return target


def _edit(path: Path, **changes: object) -> None:
    data = yaml.safe_load(path.read_text())
    data["topics"][0].update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _error(directory: Path) -> str:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(directory)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_template_is_commented_and_each_mistake_is_one_line(knowledge: Path) -> None:
    path = write_topic(NEW, knowledge)
    text = path.read_text()
    assert text.count("#") >= 10 and "docs/knowledge-base.md" in text
    assert _error(knowledge) == (f"knowledge/topics/{NEW}.yml: topic '{NEW}': "
                                 "'questions' needs at least 10 examples (has 2)")
    questions = [f"question {n} about cupping" for n in range(10)]
    _edit(path, questions=questions)
    assert "'sources' names unknown article 'your_article_id'" in _error(knowledge)
    _edit(path, sources=["needling_faq"], related=["what_is"])
    assert _error(knowledge).endswith("'related' should list 2-3 topics (has 1)")
    _edit(path, related=["what_is", "does_it_hurt"],
          answer="Cupping uses cups that gently pull on the skin. A therapist can tell you more.")
    kb = load_knowledge(knowledge)
    assert kb.topics[NEW].file == f"knowledge/topics/{NEW}.yml"
    responses = yaml.safe_load(render_responses(kb, {}))["responses"]
    assert responses[f"utter_faq/{NEW}"][0]["text"].startswith("Cupping uses cups")


def test_a_taken_or_invalid_id_is_refused(knowledge: Path) -> None:
    with pytest.raises(KnowledgeError, match="already used"):
        write_topic("what_is", knowledge)
    with pytest.raises(KnowledgeError, match="lower_snake_case"):
        write_topic("Cupping Therapy", knowledge)


def test_the_command_line_reports_a_mistake_in_one_line_without_a_traceback(
    knowledge: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_topic(NEW, knowledge)
    monkeypatch.setattr(build_data, "load_knowledge", lambda: load_knowledge(knowledge))
    assert build_data.main(["--check"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert error.startswith(f"knowledge base: knowledge/topics/{NEW}.yml: topic '{NEW}': ")
    assert "docs/knowledge-base.md" in error
    assert main([]) == 2  # no topic named
