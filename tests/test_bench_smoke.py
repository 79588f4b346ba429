"""The benchmark's machinery, briefly, against the session's running stack: the
load generator really talks to the server (zero errors, real answers counted)
and the report is written. Speed itself is measured by `make bench`, never
asserted here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from assistant.quality.bench.load import VISITOR_SCRIPT, run_load
from assistant.quality.bench.report import markdown, write_report


def test_simulated_visitors_get_answers_on_both_channels(stack: Any, tmp_path: Path) -> None:
    turns = len(VISITOR_SCRIPT) * 3
    website = asyncio.run(run_load(stack.url, "website", 3, seconds=30, max_turns=turns))
    rest = asyncio.run(run_load(stack.url, "rest", 1, seconds=30, max_turns=5))
    assert (website.errors, rest.errors) == (0, 0)
    assert website.turns == turns and rest.turns == 5
    result = {"label": "project", "loads": [website.summary(), rest.summary()],
              "held_out_accuracy": 0.9, "start_to_ready_s": 1.0}
    table = write_report([result, {**result, "label": "baseline"}], tmp_path)
    assert "| turn p50, 3 visitors (ms) |" in table and "1.00×" in table
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["results"][0]["loads"][0]["turns"] == website.turns
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_a_failing_server_shows_up_as_errors_not_latency() -> None:
    nobody = asyncio.run(run_load("http://127.0.0.1:9", "website", 2, seconds=1, max_turns=4))
    assert nobody.turns == 0 and nobody.errors == 4
    table, _ = markdown([{"label": "x", "loads": [nobody.summary()]}])
    assert "| errors, 2 visitors | 4 |" in table


def test_a_new_report_set_does_not_make_the_stock_baseline_stale() -> None:
    """Stock Rasa reads no file in data/safety/, so the baseline's inputs leave them
    out (a cold retrain takes half an hour); the project's include them."""
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    from assistant.paths import REPORT_SETS
    from assistant.quality.bench.run import baseline, project, training_inputs

    report_sets = sorted(REPORT_SETS.glob("*.yml"))
    assert report_sets
    assert not any(RasaYAMLReader.is_yaml_nlu_file(path) or YAMLStoryReader.is_stories_file(path)
                   for path in report_sets)
    assert not set(report_sets) & set(training_inputs(baseline()))
    assert set(report_sets) <= set(training_inputs(project()))
    assert any(path.name == "faq.yml" for path in training_inputs(baseline()))
