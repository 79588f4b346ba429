"""The learned second opinion on after-session warning signs
(assistant/nlu/learned_warning_signs.py): its leave-one-set-out figures, its
place after the patterns in the trained pipeline, and its report sets' checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.nlu.learned_warning_signs import (
    LEARNED_FLAG_ID,
    ReportSetError,
    fingerprint,
    load_report_set,
)
from assistant.nlu.red_flag_rules import detector_for
from assistant.nlu.red_flags import RED_FLAG_KEY, RedFlagClassifier
from assistant.paths import PROJECT_ROOT
from assistant.quality.warning_signs_cv import held_out_sets, pooled
from tests.conftest import report_figure

REPORT_SETS = PROJECT_ROOT / "data" / "safety"
CONFIG = RedFlagClassifier.get_default_config()
# Measured on 2026-12-01 (recall 0.928, false alarms 3 of 2,206): never lower these.
HELD_OUT_RECALL_FLOOR = 0.92
HELD_OUT_FALSE_ALARM_CEILING = 0.003
# No pattern has words for this report of pain on breathing in after back needling.
UNPATTERNED_REPORT = "ribs are killing me whenever i inhale since the physio put pins in my back"


@pytest.mark.model
def test_held_out_figures_one_blind_set_at_a_time() -> None:
    from rasa.shared.nlu.training_data.loading import load_data

    negatives = [m.get("text") for m in load_data(str(PROJECT_ROOT / "data" / "nlu")).intent_examples
                 if m.get("intent") not in ("emergency", "crisis", "urgent")]
    results = held_out_sets(REPORT_SETS, negatives, CONFIG["C"], CONFIG["threshold"])
    recall, alarm_rate = pooled(results)
    report_figure(f"learned warning signs, leave-one-set-out over {len(results)} blind sets (model alone, "
                  f"no patterns): recall {recall:.3f} on {sum(r.reports for r in results)} reports; "
                  f"false alarms {sum(r.alarms for r in results)} of {sum(r.quiet for r in results)} "
                  f"({alarm_rate:.2%})")
    assert len(results) >= 19
    assert recall >= HELD_OUT_RECALL_FLOOR
    assert alarm_rate <= HELD_OUT_FALSE_ALARM_CEILING


def test_through_the_trained_pipeline_it_catches_what_no_pattern_does(parse: Any) -> None:
    assert detector_for().detect(UNPATTERNED_REPORT) is None
    parsed = parse(UNPATTERNED_REPORT)
    assert parsed["intent"] == {"name": "emergency", "confidence": 1.0}
    assert parsed[RED_FLAG_KEY] == {"category": "emergency", "id": LEARNED_FLAG_ID}


def test_through_the_trained_pipeline_a_pattern_still_names_its_flag(parse: Any) -> None:
    assert parse("my lips are swelling up since the needles")[RED_FLAG_KEY]["id"] == "allergic_reaction"


@pytest.mark.parametrize("text", ["how long does a session take", "does dry needling hurt",
                                  "is it the same as acupuncture", "/faq/does_it_hurt",
                                  "/request_callback", "sore for a day after needling, normal i guess"])
def test_ordinary_questions_payloads_and_normal_soreness_stay_quiet(parse: Any, text: str) -> None:
    assert parse(text)["intent"]["name"] not in ("emergency", "crisis", "urgent")


def test_a_report_set_with_an_unknown_group_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "reports.yml"
    path.write_text("urgent:\n  - my leg is numb since the needles\nworrying:\n  - hmm\n", encoding="utf-8")
    with pytest.raises(ReportSetError, match="reports.yml: unknown group 'worrying'"):
        load_report_set(path)
    path.write_text("urgent: my leg is numb\n", encoding="utf-8")
    with pytest.raises(ReportSetError, match="'urgent' must be a list of messages"):
        load_report_set(path)


def test_editing_a_report_set_changes_the_fingerprint_so_rasa_retrains(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("urgent:\n  - my leg is numb since the needles\n", encoding="utf-8")
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    (tmp_path / "a.yml").write_text("urgent:\n  - my arm is numb since the needles\n", encoding="utf-8")
    assert fingerprint(tmp_path) != before
    assert RedFlagClassifier.fingerprint_addon({"reports": str(tmp_path)}) == fingerprint(tmp_path)


def test_every_report_set_loads_and_has_each_level() -> None:
    levels = {level for path in sorted(REPORT_SETS.glob("*.yml")) for _, level in load_report_set(path)}
    assert levels == {0, 1, 2}
