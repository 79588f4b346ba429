"""Phone shorthand spelled out before the intent model reads a message
(assistant/nlu/phone_words.py), in training and at run time alike."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from assistant.nlu.linear_classifier import TextModel
from assistant.nlu.phone_words import spelled_out


@pytest.mark.parametrize("text, spelled", [
    ("wat abt my lower back", "what about my lower back"),
    ("ok hw much", "ok how much"),
    ("Hw long do u need", "how long do you need"),
    ("open tmrw?", "open tomorrow?"),
    ("need a drs letter b4 i book? tbh idk", "need a drs letter before i book? to be honest i don't know"),
    ("how long's a sesh, 1st appt", "how long's a session, first appointment"),
])
def test_shorthand_is_spelled_out(text: str, spelled: str) -> None:
    assert spelled_out(text) == spelled


@pytest.mark.parametrize("text", [
    "Why would Ursula's wattle hurt those ones",  # shorthand inside a word
    "I'm 2 weeks in, 4 sessions",  # numbers and contractions stay
    "y'all open?", "u's", "u\u2019s",  # an apostrophe joins it to a word
    "y", "n", "my r knee", "k tape", "I work in HR", "I'm an RN", "in BC",
    "pain shoots dn my leg", "my DN said to ask",  # letters and abbreviations
    "",
])
def test_everything_else_stays_as_written(text: str) -> None:
    assert spelled_out(text) == text


TEXTS = ["how much is it", "what does it cost", "what is dry needling", "what even is it",
         "are you open tomorrow", "when are you open"]
LABELS = ["faq/cost", "faq/cost", "faq/what_is", "faq/what_is", "ask_hours", "ask_hours"]


def test_the_model_reads_shorthand_as_its_spelling_only_when_asked() -> None:
    spelling = TextModel(0.5, 6.0, [1, 4], [1, 2], spell_out=True).fit(TEXTS, LABELS)
    as_written = TextModel(0.5, 6.0, [1, 4], [1, 2]).fit(TEXTS, LABELS)
    assert np.array_equal(spelling.probabilities(["hw much"]), spelling.probabilities(["how much"]))
    assert not np.array_equal(as_written.probabilities(["hw much"]), as_written.probabilities(["how much"]))


def test_a_model_saved_before_the_setting_reads_messages_as_written() -> None:
    model = TextModel(0.5, 6.0, [1, 4], [1, 2], spell_out=True).fit(TEXTS, LABELS)
    state = model.__getstate__()
    del state["spell_out"]
    old = pickle.loads(pickle.dumps(model))
    old.__setstate__(state)
    assert old.spell_out is False
