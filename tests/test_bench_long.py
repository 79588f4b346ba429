"""The bench's long-conversation and soak phases, briefly, against the running
stack: the figures are computed from the right turns, reach the table, the
JSON and the chart, and a failure counts as an error. Speed itself is only
measured by `make bench`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from assistant.quality.bench.long_conversation import long_conversation, summarise
from assistant.quality.bench.report import write_report
from assistant.quality.bench.run import memory_mb
from assistant.quality.bench.soak import soak


def test_early_and_late_medians_and_their_ratio() -> None:
    latencies = [10.0] * 50 + [99.0] * 300 + [12.0] * 49 + [None]
    figures = summarise(latencies)
    assert (figures["early_turns"], figures["late_turns"]) == ("0-49", "350-399")
    assert (figures["early_p50_ms"], figures["late_p50_ms"], figures["late_over_early"]) == (10.0, 12.0, 1.2)
    assert figures["errors"] == 1 and figures["turns"] == 400


def test_one_long_conversation_reaches_the_report(stack: Any, tmp_path: Path) -> None:
    long = asyncio.run(long_conversation(stack.url, 30))
    assert long["errors"] == 0 and len(long["latencies_ms"]) == 30
    result = {"label": "project", "loads": [], "long_conversation": long}
    table = write_report([result, {**result, "label": "baseline"}], tmp_path)
    assert "| long conversation: p50 late ÷ p50 early |" in table
    assert "long conversation: p50(turns 350-399) <= 1.3x p50(turns 0-49)" in table
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["results"][0]["long_conversation"]["turns"] == 30
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_a_short_soak_samples_memory_and_locks(stack: Any) -> None:
    assert stack.rasa is not None
    figures = soak(stack.url, stack.rasa.pid, 6, lambda pid: memory_mb(pid).get("memory_mb_after_load"),
                   stack.settings.lock_db, samples=2)
    assert figures["errors"] == 0 and figures["turns"] > 0
    assert [sample["conversations"] for sample in figures["series"]] == [0, 3, 6]
    assert all(sample["memory_mb"] for sample in figures["series"])
    assert figures["series"][-1]["lock_rows"] == 0  # every lock released once its turn is served
