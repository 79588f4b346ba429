"""The bench's long-conversation and soak phases, briefly, against the running
stack: the figures are computed from the right turns, reach the table, the
JSON and the chart, and a failure counts as an error. Speed itself is only
measured by `make bench`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, List, Tuple

from assistant.quality.bench.load import VISITOR_SCRIPT
from assistant.quality.bench.long_conversation import long_conversation, summarise
from assistant.quality.bench.report import write_report
from assistant.quality.bench.run import memory_mb
from assistant.quality.bench.soak import soak


def test_early_and_late_medians_pooled_over_rounds_and_their_ratio() -> None:
    first = [10.0] * 50 + [99.0] * 300 + [12.0] * 49 + [None]
    second = [11.0] * 50 + [99.0] * 300 + [13.0] * 50
    flat = [5.0] * 400
    figures = summarise([first, second], [flat, flat])
    assert (figures["early_turns"], figures["late_turns"]) == ("0-49", "350-399")
    # p50 of the 100 early turns (10 and 11) and of the 99 answered late ones (12 and 13)
    assert (figures["early_p50_ms"], figures["late_p50_ms"], figures["late_over_early"]) == (10.5, 13.0, 1.24)
    assert [each["late_over_early"] for each in figures["each_round"]] == [1.2, 1.18]
    assert figures["errors"] == 1 and figures["turns"] == 400 and figures["rounds"] == 2


def test_the_control_turns_divide_the_machines_drift_out() -> None:
    # The machine is twice as slow late on: every turn and its control take twice as long.
    controls = [4.0] * 350 + [8.0] * 50
    steady = [10.0] * 350 + [20.0] * 50  # no growth of its own
    growing = [10.0] * 350 + [30.0] * 50  # 1.5x growth of its own on top
    for latencies, own_growth in ((steady, 1.0), (growing, 1.5)):
        figures = summarise([latencies], [controls])
        assert figures["control_late_over_early"] == 2.0
        assert figures["late_over_early"] == 2.0 * own_growth
        assert figures["controlled_late_over_early"] == own_growth
    failed_control = summarise([steady], [controls[:-1] + [None]])
    assert failed_control["errors"] == 1 and failed_control["controlled_late_over_early"] == 1.0


def test_long_conversations_reach_the_report(stack: Any, tmp_path: Path) -> None:
    long = asyncio.run(long_conversation(stack.url, 30, rounds=2))
    assert long["errors"] == 0 and long["rounds"] == 2
    assert [len(each["latencies_ms"]) for each in long["each_round"]] == [30, 30]
    assert all(len(each["control_ms"]) == 30 for each in long["each_round"])
    assert long["controlled_late_over_early"] is not None and long["control_late_over_early"] is not None
    result = {"label": "project", "loads": [], "long_conversation": long}
    table = write_report([result, {**result, "label": "baseline"}], tmp_path)
    assert "| long conversation: p50 late ÷ p50 early |" in table
    assert "| long conversation: turn ÷ control, late ÷ early (drift divided out) |" in table
    assert "long conversation: p50(turns 350-399) <= 1.3x p50(turns 0-49)" in table
    assert "over 2 conversations; with the machine's drift" in table
    written = json.loads((tmp_path / "bench.json").read_text())
    assert written["results"][0]["long_conversation"]["turns"] == 30
    assert (tmp_path / "bench.png").stat().st_size > 10_000


def test_the_control_conversation_starts_afresh_with_the_script(stack: Any) -> None:
    """Each control turn sends the long turn's message at the same step of a
    conversation no longer than the script: 11 turns of it make one call-back
    form start and its cancellation, like the long conversation's."""
    from assistant.quality.bench import long_conversation as module

    senders: List[Tuple[str, str]] = []
    stock = module.send_turn

    async def recording(session: Any, url: str, sender: str, text: str, token: Any) -> Any:
        senders.append((sender, text))
        return await stock(session, url, sender, text, token)

    module.send_turn = recording  # type: ignore[assignment]
    try:
        asyncio.run(long_conversation(stack.url, 2 * len(VISITOR_SCRIPT) + 1, rounds=1))
    finally:
        module.send_turn = stock  # type: ignore[assignment]
    long_turns, control_turns = senders[0::2], senders[1::2]
    assert [text for _, text in long_turns] == [text for _, text in control_turns]
    assert len({sender for sender, _ in long_turns}) == 1
    control_senders = [sender for sender, _ in control_turns]
    assert len(set(control_senders)) == 3
    assert control_senders[:len(VISITOR_SCRIPT)] == [control_senders[0]] * len(VISITOR_SCRIPT)


def test_a_short_soak_samples_memory_and_locks(stack: Any) -> None:
    assert stack.rasa is not None
    figures = soak(stack.url, stack.rasa.pid, 6, lambda pid: memory_mb(pid).get("memory_mb_after_load"),
                   stack.settings.lock_db, samples=2)
    assert figures["errors"] == 0 and figures["turns"] > 0
    assert [sample["conversations"] for sample in figures["series"]] == [0, 3, 6]
    assert all(sample["memory_mb"] for sample in figures["series"])
    assert figures["series"][-1]["lock_rows"] == 0  # every lock released once its turn is served
