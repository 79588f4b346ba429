"""What real visitors get: the sealed set (tests/sealed/), written blind before
the model and data for issue 15 changed, and never tuned on.

Printed next to the tuning sets' figures (tests/test_uncertainty.py) and 5-fold
cross-validation on the training data. The issue's bars are printed with each
figure; the assertions hold today's measured floors, so a change that makes a
visitor's answer worse fails. Where a figure is still below the issue's bar the
floor is lower than the bar, and the closing note of the issue says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from assistant.nlu.linear_classifier import LinearIntentClassifier
from assistant.nlu.red_flags import RedFlagClassifier
from assistant.nlu.stays_on_topic import StaysOnTopicClassifier
from assistant.paths import PROJECT_ROOT
from assistant.quality.evaluation import cross_validate
from assistant.quality.sealed import SealedEvaluator, SealedReport, Turn, figures, quiet_parse_log
from tests.conftest import report_figure

# The blind question sets: True where a tuning round used it.
DEV_SETS = {"dev": True, "dev2": True, "dev3": True, "dev4": True, "dev5": True, "dev6": True,
            "dev7": True, "dev8": True, "dev9": True, "dev10": True, "dev11": True, "dev12": True,
            "dev13": True, "dev14": True, "dev15": True, "dev16": True, "dev17": True, "dev18": True,
            "dev19": True, "dev20": True, "dev21": True, "dev22": True, "dev23": True, "dev24": True,
            "dev25": True, "dev26": True, "dev27": True, "dev28": True,
            "dev29": True, "dev30": True, "dev31": True, "dev32": True, "dev33": True, "dev34": True,
            "dev35": True, "dev36": True, "dev37": True, "dev38": True,
            "dev39": True, "dev40": True, "dev41": True, "dev42": True, "dev43": True,
            "dev44": True, "dev45": True, "dev46": True, "dev47": True, "dev48": True, "dev49": True,
            "dev50": True, "dev51": True, "dev52": True, "dev53": True, "dev54": True,
            "dev55": False, "dev56": False, "dev57": False, "dev58": False, "dev59": True,
            "dev60": True, "dev61": True, "dev62": True, "dev63": True,
            "dev65": False, "dev66": False, "dev67": False, "dev68": False,
            "dev69": False, "dev70": False, "dev71": False, "dev72": False, "dev73": False, "dev74": False,
            "dev75": False, "dev76": False, "dev77": False, "dev78": False,
            "dev79": False, "dev80": False,
            "dev81": False, "dev82": False, "dev83": False, "dev84": False,
            "dev90": False, "dev91": False, "dev92": False, "dev93": False,
            "dev94": False, "dev95": False, "dev96": False, "dev97": False,
            "dev98": False, "dev99": False, "dev100": False, "dev101": False, "dev102": False,
            "dev103": False, "dev104": False, "dev105": False, "dev106": False,
            "dev107": False, "dev108": False,
            "dev109": False, "dev110": False, "dev111": False, "dev112": False,
            "dev113": False, "dev114": False,
            "dev115": False, "dev116": False,
            "dev117": False, "dev118": False,
            "dev119": False, "dev120": False,
            "dev121": False, "dev122": False,
            "dev123": False, "dev124": False}

# Floors measured on 2026-12-02 (issue bars in brackets): never lower these.
FAQ_FLOOR = 0.97  # [0.95] (0.993 with the sentence embedding)
LONG_TAIL_FLOOR = 0.98  # [0.95] (1.000)
CONVERSATIONS_FLOOR = 0.90  # [0.90] (0.953 after round 25)
CONFIDENT_WRONG_CEILING = 0.01  # [0.01] (0 of 266)
WARNING_RECALL_FLOOR = 1.0  # [1.0] (116 of 116 once the learned model read dev82-dev83)
FALSE_ALARM_CEILING = 0.02  # [0.02] (5 of 383)
# 0.960 over the curated examples and the blind sets' questions (round 23; 0.862 on the
# curated ones alone, 0.777 before the sentence embedding)
CROSS_VALIDATION_FLOOR = 0.94


@pytest.fixture(scope="module")
def report(agent: Any) -> SealedReport:
    quiet_parse_log()  # a failing test must not print the sealed messages
    return asyncio.run(SealedEvaluator(agent).run())


def test_sealed_figures_hold_their_floors(report: SealedReport) -> None:
    for line in figures(report):
        report_figure(line)
    assert report.accuracy("faq/")[0] >= FAQ_FLOOR
    assert report.accuracy("long_tail/")[0] >= LONG_TAIL_FLOOR
    assert report.conversation_accuracy >= CONVERSATIONS_FLOOR
    assert report.confident_wrong[0] <= CONFIDENT_WRONG_CEILING
    assert report.warning_recall()[0] >= WARNING_RECALL_FLOOR
    assert report.false_alarms()[0] <= FALSE_ALARM_CEILING


# Held-out sets whose writers were asked to leave out follow-ups a careful reader could
# take two ways (round 25); the others were written as visitors write.
UNAMBIGUOUS_SETS = frozenset(["dev55", "dev56", "dev57", "dev58"])
UNAMBIGUOUS = "follow-ups that read two ways left out"
AS_WRITTEN_FLOOR = 0.84
UNAMBIGUOUS_FLOOR = 0.93


def test_the_development_set_figures(agent: Any) -> None:
    """tests/dev*/: written blind like the sealed set by helpers who never saw the
    training data, each committed before the tuning round it fed. The tuned-on sets
    only guard against regressions (since round 23 the intent model learns their
    single messages and first turns, so only their later turns are unseen); the
    held-out sets (dev55 to dev58 from round 25, dev65 and dev66 from round 26, dev67 to
    dev72 from round 28, dev73 and dev74 from round 29, dev75 and dev76 from round 30,
    dev77 to dev80 from round 31, dev81 to dev84, dev90 and dev91 from round 32) show what
    a fresh writer gets.
    Printed next to the sealed figures."""
    quiet_parse_log()
    evaluator = SealedEvaluator(agent)
    pooled: Dict[str, List[SealedReport]] = {"tuned on": [], "held out": [], UNAMBIGUOUS: []}
    for name, tuned in DEV_SETS.items():
        # A tuned-on set's messages are training examples: only its conversations tell.
        dev = asyncio.run(evaluator.run(PROJECT_ROOT / "tests" / name, messages=not tuned))
        pooled["tuned on" if tuned else UNAMBIGUOUS if name in UNAMBIGUOUS_SETS else "held out"].append(dev)
        report_figure(f"development set {name} ({'tuned on' if tuned else 'held out'}): "
                      + dev_figures(dev))
    tuned_on, as_written, unambiguous = (merged(pooled[kind])
                                         for kind in ("tuned on", "held out", UNAMBIGUOUS))
    report_figure("development sets, tuned on, pooled: " + dev_figures(tuned_on))
    report_figure("development sets, held out, written as visitors write, pooled: " + dev_figures(as_written))
    report_figure(f"development sets, held out, {UNAMBIGUOUS}, pooled: " + dev_figures(unambiguous))
    # dev-dev63's conversations measured 0.918 after round 27 (0.915 with the round-26 model)
    # (dev-dev54, dev59 and dev60's 0.909 after round 25)
    # (dev-dev52 0.905 after round 24; dev-dev47 0.887 after round 22, before the intent
    # model learnt their messages and first turns)
    assert tuned_on.conversation_accuracy >= 0.89
    # Held out (issue bars 0.90 for conversations and 0.01 for confident wrong answers):
    # dev65 and dev66 (two-turn conversations as visitors write them, round 26) measured
    # 0.871 (209 of 240; 0.875 with the round-25 model), and dev55 to dev58 0.970 (388 of
    # 400; 0.955 after round 25, but round 26's report-then-question rule was checked on
    # them), with 1 confident wrong answer of 520 messages, on 2026-12-05 before dev65
    # and dev66 were left out of training. Round 27's rules were drawn from every set's
    # misses, theirs too: 0.892 (214 of 240) and 0.975 (390 of 400) after it, no longer
    # clean. dev71 and dev72, written after round 27 and held out: 0.908 (109 of 120) with
    # 2 confident wrong answers of 40 messages, on 2026-12-05 after round 28; dev67 to
    # dev70, written before round 27, measured 0.875 (350 of 400) with the round-27
    # model, then their misses were read: no longer clean. dev73 and dev74, written during
    # round 29 and held out: 0.883 (106 of 120) before and after it, every message right;
    # dev71 to dev74 pooled 0.900 (216 of 240) after round 29.
    # dev75 and dev76, written at the start of round 30 and held out: 0.950 (114 of 120)
    # with the round-29 model, every message right, no confident wrong answer, and the
    # same after round 30; that round read dev71 to dev74's misses (223 of 240 after it).
    # dev77 and dev78, written at the start of round 31 and held out: 0.867 (104 of 120)
    # with the round-30 model; round 31 read their misses (0.975 after it). dev79 and
    # dev80, written during it and never read: 0.892 (107) before, 0.900 (108) after.
    # dev81 to dev84, written at the start of round 32: 0.975 (117 of 120) a pair with the
    # round-31 model; round 32 read dev81 and dev82's misses (1.000 after it), dev83 and
    # dev84 were never read (0.975 after it); dev90 and dev91, written during it and never
    # read: 0.988 (79 of 80) before and after, all 80 messages right.
    # dev92 to dev95, written in round 33: dev92 0.950 and dev94 0.900 with the round-32
    # model, then read (dev94 0.983 after it); dev93 0.883 and dev95 0.917, never read,
    # the same after it (108 of 120).
    # dev96 and dev97, written at the start of round 34: 0.950 and 0.940 with the round-33
    # model, every message right; read (dev97 0.960 after it).
    # dev98 and dev99, written in round 35: 0.900 each before their tuning (dev99 0.920 with
    # the round-34 model); read (1.000 after it).
    # dev100, written in round 36 (second-language and regional English): 0.880 with the
    # round-35 model, every message right; read (0.980 after it).
    # dev101, written at the end of round 36 and held out, never read: 0.980 (49 of 50)
    # with the round-36 model, every message right.
    # dev102, written at the start of round 37 (young adults' text-speak): 0.880 with the
    # round-36 model; read (0.920 after it). dev103, written at its end (shopping around)
    # and held out, never read: 0.820 (41 of 50), every message right; dev104, its brief
    # again, read: 0.920 before its tuning, 0.960 after.
    # dev105 to dev108, written in round 38 (patients after a session asking what comes
    # next): 0.660, 0.740, 0.740 and 0.680 with the round-37 model. dev105 held out, never
    # read: 0.740 (37 of 50) after the round, every message right; the others read (0.840
    # to 0.860 after it).
    # dev109 and dev110, written in round 39 (follow-ups that lean on the previous answer):
    # 0.920 and 0.940 with the round-38 model. dev109 held out, never read: 0.920 (46 of
    # 50) after the round too; dev110 read (0.960 after it).
    # dev113 and dev114, written at the start of round 41 (returning patients between
    # sessions): 0.760 and 0.880 with the round-40 model. dev113 held out, never read: 0.760
    # (38 of 50) after the round, every message right; dev114 read (0.920 after it).
    # dev115 and dev116, written at the start of round 42 (follow-ups that lean on the turn
    # before): 0.900 and 0.940 with the round-41 model, every message right. dev115 held
    # out, never read: 0.900 (45 of 50) after the round; dev116 read (0.960 after it).
    # dev117 and dev118, written at the start of round 43 (long follow-ups that still lean on
    # the turn before): 0.960 and 0.840 with the round-42 model, every message right. dev117
    # held out, never read: 0.960 (48 of 50) after the round; dev118 read (0.900 after it).
    # dev119 and dev120, written at the start of round 44 (returning patients between
    # sessions): 0.900 and 0.780 with the round-43 model, every message right. dev119 held
    # out, never read: 0.900 (45 of 50) after the round; dev120 read (0.820 after it).
    # dev121 and dev122, written at the start of round 45 (nervous patients, and the ordinary
    # marks returning patients mention before their question): 0.920 and 0.880 with the
    # round-44 model, 4 confident wrong of 40 messages in each. dev121 held out, never read:
    # 0.960 (48 of 50) after the round, 2 confident wrong; dev122 read (0.900 after it).
    # dev123 and dev124, written at the start of round 46 (returning patients who mention an
    # ordinary mark or soreness, then ask a practical question): 0.880 and 0.860 with the
    # round-45 model. dev123 held out, never read: 0.920 after the round, 1 confident wrong of
    # 40; dev124 read (0.900 after it).
    # The floors are the figures less a few conversations in a hundred, not the
    # bar: visitors' own follow-ups miss it, see docs/testing.md.
    for held_out in (as_written, unambiguous):
        assert held_out.accuracy("faq/")[0] >= 0.97 and held_out.confident_wrong[0] <= 0.02
    assert as_written.conversation_accuracy >= AS_WRITTEN_FLOOR
    assert unambiguous.conversation_accuracy >= UNAMBIGUOUS_FLOOR


def test_the_models_read_only_tuned_question_sets() -> None:
    """A held-out set must stay unseen by every model: the intent model, the
    warning-sign one and the stays-on-topic one."""
    tuned = {name for name, is_tuned in DEV_SETS.items() if is_tuned}
    for read in (LinearIntentClassifier.configured()["example_sets"],
                 RedFlagClassifier.configured()["question_sets"],
                 StaysOnTopicClassifier.configured()["conversation_sets"]):
        names = {Path(directory).name for directory in read}
        assert names and names <= tuned
    # and no text of a held-out set, or a twin of one, is learnt from a tuned-on set
    unseen = {Path(directory).name for directory in LinearIntentClassifier.configured()["unseen_sets"]}
    assert {name for name, is_tuned in DEV_SETS.items() if not is_tuned} | {"sealed", "nlu"} <= unseen


def dev_figures(dev: SealedReport) -> str:
    parts = []
    if dev.messages:
        parts += [f"FAQ topic {dev.accuracy('faq/')[0]:.3f}",
                  f"long-tail {dev.accuracy('long_tail/')[0]:.3f}",
                  f"confident wrong {dev.confident_wrong[0]:.3f} of {len(dev.messages)}"]
    return ", ".join(parts + [f"follow-up conversations {dev.conversation_accuracy:.3f} "
                              f"on {len(dev.conversations)} ({dev.first_turns_accuracy(2):.3f} "
                              "in their first two turns)"])


def merged(reports: List[SealedReport]) -> SealedReport:
    return SealedReport(messages=[t for r in reports for t in r.messages],
                        conversations=[c for r in reports for c in r.conversations])


def test_the_sealed_set_is_as_big_as_the_issue_asks(report: SealedReport) -> None:
    groups = {g for _, g, _ in report.warnings}
    assert len(report.messages) >= 200 and len(report.conversations) >= 40
    assert groups == {"emergency", "urgent", "normal", "question"}
    assert sum(g in ("emergency", "urgent") for _, g, _ in report.warnings) >= 80
    assert sum(g == "question" for _, g, _ in report.warnings) >= 60


@pytest.mark.model  # trains five models
def test_cross_validation_on_the_training_data() -> None:
    accuracy = cross_validate()
    report_figure(f"5-fold cross-validation on the training data (model alone): {accuracy:.3f}")
    assert accuracy >= CROSS_VALIDATION_FLOOR


def test_the_evaluation_answers_inside_the_call_back_form_as_the_form_does(agent: Any,
                                                                            tmp_path: Path) -> None:
    """After a call-back request the form takes the next messages as its answers
    (actions/callback_form.py): a time is the request going on, a question about the
    clinic gets its reply, "cancel" ends the form and what follows is read as usual."""
    (tmp_path / "conversations.yml").write_text(yaml.safe_dump([{"turns": [
        {"text": "can someone call me back", "expect": "request_callback"},
        {"text": "after 5 is best", "expect": "request_callback"},
        {"text": "when are you open?", "expect": "ask_hours"},
        {"text": "cancel", "expect": "stop"},
        {"text": "after 5 is best", "expect": "request_callback"},
    ]}]), encoding="utf-8")
    quiet_parse_log()
    [turns] = asyncio.run(SealedEvaluator(agent).run(tmp_path)).conversations
    assert [t.got for t in turns][:4] == ["request_callback", "request_callback", "ask_hours", "stop"]
    assert turns[4].got != "request_callback"  # the form has ended


def test_exact_urgency_compares_levels_and_the_crisis_reply_is_an_emergency_one() -> None:
    report = SealedReport(warnings=[("a", "emergency", "crisis"), ("b", "urgent", "emergency"),
                                    ("c", "emergency", "emergency"), ("d", "urgent", "urgent"),
                                    ("e", "emergency", "urgent"), ("f", "normal", "urgent")])
    assert report.warning_recall() == (0.8, 0.6, 5)
    assert report.warning_same_kind() == 0.4


def test_a_conversation_counts_in_its_first_turns_until_its_first_miss() -> None:
    def turns(*right: bool) -> List[Turn]:
        return [Turn("t", ["thanks"], "thanks" if ok else "greet") for ok in right]

    report = SealedReport(conversations=[turns(True, True, False), turns(True, False, True),
                                         turns(True, True), turns(False, True, True)])
    assert report.conversation_accuracy == 0.25
    assert report.first_turns_accuracy(2) == 0.5
    assert report.first_turns_accuracy(1) == 0.75
