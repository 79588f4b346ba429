"""Fallback thresholds, tuned on the held-out sets: the trade-off between
answering in-scope questions and rejecting out-of-scope ones, printed by every
`make test` run and asserted against the bars."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

import pytest

from assistant.nlu.uncertainty import FALLBACK, Thresholds, compile_strict_words, decide, raw_intent_ranking
from assistant.quality.evaluation import OUT_OF_SCOPE_FILE, load_examples, parse_all, sweep, trade_off
from tests.conftest import report_figure

RAW_ACCURACY_BAR = 0.95  # best guess of the model alone, before any fallback
IN_SCOPE_BAR = 0.94  # answered with the right label at the configured thresholds
OUT_OF_SCOPE_BAR = 0.93  # got the out-of-scope reply or a clarification

Parsed = List[Tuple[str, Dict[str, Any]]]


@pytest.fixture(scope="module")
def parsed(agent: Any) -> Tuple[Parsed, Parsed]:
    in_scope = asyncio.run(parse_all(agent, load_examples()))
    out_of_scope = asyncio.run(parse_all(agent, load_examples(OUT_OF_SCOPE_FILE)))
    return in_scope, out_of_scope


def test_the_configured_thresholds_meet_both_bars(parsed: Tuple[Parsed, Parsed]) -> None:
    in_scope, out_of_scope = parsed
    raw = trade_off(in_scope, out_of_scope, Thresholds(0, 0, 0, 0))
    configured = trade_off(in_scope, out_of_scope, Thresholds.from_config())
    report_figure(f"held-out accuracy of the model alone (no fallback): {raw.in_scope_accuracy:.3f} "
                  f"on {len(in_scope)} in-scope examples (bar {RAW_ACCURACY_BAR})")
    report_figure(f"configured fallback: {configured.row()} "
                  f"({len(in_scope)} in-scope, {len(out_of_scope)} out-of-scope held-out messages; "
                  f"bars {IN_SCOPE_BAR}/{OUT_OF_SCOPE_BAR})")
    for result in sweep(in_scope, out_of_scope)[:5]:
        report_figure(f"  candidate: {result.row()}")
    assert raw.in_scope_accuracy >= RAW_ACCURACY_BAR
    assert configured.in_scope_accuracy >= IN_SCOPE_BAR
    assert configured.out_of_scope_rejection >= OUT_OF_SCOPE_BAR


def test_without_a_fallback_out_of_scope_messages_would_be_answered(parsed: Tuple[Parsed, Parsed]) -> None:
    """The fallback earns its place: at zero thresholds fewer out-of-scope messages are caught."""
    in_scope, out_of_scope = parsed
    raw = trade_off(in_scope, out_of_scope, Thresholds(0, 0, 0, 0))
    configured = trade_off(in_scope, out_of_scope, Thresholds.from_config())
    assert configured.out_of_scope_rejection > raw.out_of_scope_rejection


def test_an_irreversible_intent_needs_its_own_higher_confidence(parse: Any) -> None:
    """A name typed into the call-back form must not delete the conversation."""
    configured = Thresholds.from_config()
    assert dict(configured.strict)["forget_me"] > configured.intent
    assert parse("Morgan Forgetme")["intent"]["name"] != "forget_me"
    # This one's likeliest intent is forget_me (0.62 on 2026-12-02), below its own threshold.
    name = parse("Ray Forget")
    assert name["intent"]["name"] == FALLBACK
    assert raw_intent_ranking(name)[0]["name"] == "forget_me"
    assert decide(name, configured) == FALLBACK
    assert parse("please delete all my data")["intent"]["name"] == "forget_me"


# Replies a visitor types after any answer, which the model read as forget_me at 0.87 to
# 1.0 once it had learnt "all of it please" (a reviewer's, round 27).
NAMES_NOTHING = ["all of it?", "everything", "all of it lol", "all of it or just some?",
                 # (the same reviewer's: ordinary replies with a loose word of the first list)
                 "i told you, all of it", "my history? all of it?", "everything you got",
                 "like i said, everything", "everything on my record"]


@pytest.mark.parametrize("text", NAMES_NOTHING)
def test_an_irreversible_intent_must_name_what_it_acts_on(text: str) -> None:
    sure = {"text": text, "intent": {"name": "forget_me", "confidence": 0.99},
            "intent_ranking": [{"name": "forget_me", "confidence": 0.99}]}
    assert decide(sure, Thresholds.from_config()) == FALLBACK


@pytest.mark.parametrize("text", ["delete my data", "forget me", "and the chat history too",
                                  "everything, including this chat", "erase what i told you",
                                  # a reviewer's (round 28): real requests the first list refused
                                  "forget everything", "remove my enquiry", "remove all my stuff",
                                  "remove everything you\u2019ve got on me", "everything i sent"])
def test_a_request_that_names_its_data_is_still_acted_on(text: str) -> None:
    sure = {"text": text, "intent": {"name": "forget_me", "confidence": 0.99},
            "intent_ranking": [{"name": "forget_me", "confidence": 0.99}]}
    assert decide(sure, Thresholds.from_config()) == "forget_me"


def test_the_words_an_intent_must_name_are_validated() -> None:
    strict = {"forget_me": 0.85}
    assert compile_strict_words(None, strict) == {}
    with pytest.raises(ValueError, match="strict_intent_words.forget_me must be a list of words"):
        compile_strict_words({"forget_me": "data"}, strict)
    with pytest.raises(ValueError, match="strict_intent_words.forget_me must be a list of words"):
        compile_strict_words({"forget_me": []}, strict)
    with pytest.raises(ValueError, match="strict_intent_words must map"):
        compile_strict_words(["data"], strict)
    # a misspelt intent would silently turn the check off
    with pytest.raises(ValueError, match="strict_intent_words.forgetme is not one of strict_intents"):
        compile_strict_words({"forgetme": ["data"]}, strict)


@pytest.mark.parametrize("text", NAMES_NOTHING)
def test_the_trained_pipeline_deletes_nothing_on_a_reply_that_names_nothing(parse: Any, text: str) -> None:
    assert parse(text)["intent"]["name"] != "forget_me"
