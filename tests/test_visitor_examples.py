"""The tuned-on blind sets' context-free questions as training examples for the
intent model (assistant/nlu/visitor_examples.py), and the settings that name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.nlu.linear_classifier import LinearIntentClassifier
from assistant.nlu.visitor_examples import model_label, set_texts, visitor_examples, with_visitor_examples

MESSAGES = [
    {"text": "hw much for a sesh", "expect": "long_tail/cost"},
    {"text": "What is dry needling?", "expect": "faq/what_is"},  # the curated data has it
    {"text": "my lips are swelling up", "expect": "emergency"},  # a label the model doesn't learn
    {"text": "can it help my knee", "expect": "ask_condition", "also": ["faq/conditions"]},
    {"text": "forget me", "expect": "forget_me"},  # irreversible: the curated examples alone
]
CONVERSATIONS = [
    {"turns": [{"text": "does it hurt", "expect": "faq/does_it_hurt"},
               {"text": "for how long tho", "expect": "faq/does_it_hurt"}]},  # needs the turn before
    {"turns": [{"text": "HW MUCH FOR A SESH", "expect": "long_tail/cost"}]},  # already read
]
LABELS = {"faq/cost", "faq/what_is", "faq/does_it_hurt", "ask_condition", "forget_me"}


def write_set(directory: Path) -> Path:
    directory.mkdir()
    (directory / "messages.yml").write_text(yaml.safe_dump(MESSAGES), encoding="utf-8")
    (directory / "conversations.yml").write_text(yaml.safe_dump(CONVERSATIONS), encoding="utf-8")
    return directory


def test_a_sets_label_as_the_model_names_it() -> None:
    assert model_label("long_tail/cost") == "faq/cost"
    assert model_label("faq/what_is") == "faq/what_is"
    assert model_label("ask_condition") == "ask_condition"


def test_only_context_free_questions_with_a_learnt_label_once(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "dev")
    assert visitor_examples([directory], LABELS, ["what is dry needling?"]) == [
        ("hw much for a sesh", "faq/cost"), ("can it help my knee", "ask_condition"),
        ("does it hurt", "faq/does_it_hurt")]


def test_curated_examples_come_first_and_name_the_labels(tmp_path: Path) -> None:
    directory = write_set(tmp_path / "dev")
    curated = [("how much is it", "faq/cost")]
    assert with_visitor_examples(curated, [directory]) == curated + [("hw much for a sesh", "faq/cost")]


def test_no_text_of_an_unseen_set_is_learnt(tmp_path: Path) -> None:
    """The sealed and held-out sets' figures must measure questions the model has not
    read, even when a tuned-on writer wrote the same words."""
    directory = write_set(tmp_path / "dev")
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    (sealed / "conversations.yml").write_text(yaml.safe_dump(
        [{"turns": [{"text": "Can it help my knee", "expect": "ask_condition"}]}]), encoding="utf-8")
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    (nlu / "holdout.yml").write_text(
        'nlu:\n- intent: faq/cost\n  examples: |\n    - HW much for a sesh\n', encoding="utf-8")
    assert set_texts(nlu) == {"how much for a session"}
    curated = [("how much is it", "faq/cost"), ("is it good for backs", "ask_condition"),
               ("does it hurt at all", "faq/does_it_hurt")]
    assert with_visitor_examples(curated, [directory], [sealed, nlu]) == [
        *curated, ("does it hurt", "faq/does_it_hurt")]


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no setting 'example_set'"):
        LinearIntentClassifier.checked_config({"example_set": ["tests/dev"]})


def test_training_refuses_an_example_set_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sets not found: .*nowhere"):
        LinearIntentClassifier.create({"unseen_sets": [str(tmp_path / "nowhere")]}, Any, Any, Any)


def test_the_configured_sets_exist_and_feed_the_models_fingerprint() -> None:
    config = LinearIntentClassifier.configured()
    sets = LinearIntentClassifier.example_sets(config)
    unseen = LinearIntentClassifier.unseen_sets(config)
    assert sets and all(any(directory.glob("*.yml")) for directory in sets + unseen)
    assert {"sealed", "nlu"} <= {directory.name for directory in unseen}


def test_a_changed_example_or_unseen_set_retrains_the_model(tmp_path: Path) -> None:
    """Rasa reuses a cached model unless its fingerprint changes."""
    config = {"example_sets": [str(write_set(tmp_path / "dev"))],
              "unseen_sets": [str(write_set(tmp_path / "sealed"))]}
    before = LinearIntentClassifier.fingerprint_addon(config)
    assert LinearIntentClassifier.fingerprint_addon(config) == before
    for directory in ("dev", "sealed"):
        path = tmp_path / directory / "messages.yml"
        more = path.read_text(encoding="utf-8") + "- text: one more\n  expect: greet\n"
        path.write_text(more, encoding="utf-8")
        assert LinearIntentClassifier.fingerprint_addon(config) != before
        before = LinearIntentClassifier.fingerprint_addon(config)


@pytest.mark.parametrize("twin", ["How long does a session take?", "how long does a sesh take 🤔",
                                  "HOW LONG DOES A SESSION TAKE!!"])
def test_a_twin_differing_in_case_punctuation_or_shorthand_is_not_learnt(tmp_path: Path, twin: str) -> None:
    directory = tmp_path / "dev"
    directory.mkdir()
    (directory / "messages.yml").write_text(yaml.safe_dump([{"text": twin, "expect": "faq/session_length"}]),
                                            encoding="utf-8")
    assert visitor_examples([directory], {"faq/session_length"}, ["how long does a session take"]) == []
