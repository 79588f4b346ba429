"""The benchmark's table (Markdown + JSON) and chart (PNG), project vs baseline."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

# (row label, how to read the figure from one result, "lower" or "higher" is better)
Row = Tuple[str, Callable[[Dict[str, Any]], Optional[float]], str]

# The targets, checked on full runs: (description, ratio row, test on the ratio)
TARGETS: List[Tuple[str, str, Callable[[float], bool]]] = [
    ("throughput at 50 visitors >= 5x the baseline's", "throughput, 50 visitors (turns/s)", lambda r: r >= 5),
    ("turn p50 at 1 visitor <= 1/4 of the baseline's", "turn p50, 1 visitor (ms)", lambda r: r <= 0.25),
    ("held-out accuracy not below the baseline's", "held-out accuracy (model alone)", lambda r: r >= 1),
]
LONG_RATIO_ROW = "long conversation: p50 late ÷ p50 early"
DRIFT_ROW = "long conversation: control turns' p50 late ÷ early (the machine's drift)"
CONTROLLED_ROW = "long conversation: turn ÷ control, late ÷ early (drift divided out)"
TWO_DECIMALS = {LONG_RATIO_ROW, DRIFT_ROW, CONTROLLED_ROW}
# Checked on the project's own figure, not against the baseline (issue 20).
OWN_TARGETS: List[Tuple[str, str, Callable[[float], bool]]] = [
    ("long conversation: p50(turns 350-399) <= 1.3x p50(turns 0-49)", LONG_RATIO_ROW, lambda r: r <= 1.3),
]


def _load(result: Dict[str, Any], channel: str, visitors: int, key: str) -> Optional[float]:
    for load in result["loads"]:
        if load["channel"] == channel and load["visitors"] == visitors:
            return float(load[key])
    return None


def _phase_figure(channel: str, visitors: int, key: str) -> Callable[[Dict[str, Any]], Optional[float]]:
    return lambda result: _load(result, channel, visitors, key)


def _figure(key: str) -> Callable[[Dict[str, Any]], Optional[float]]:
    return lambda result: result.get(key)


def _long(key: str) -> Callable[[Dict[str, Any]], Optional[float]]:
    return lambda result: (result.get("long_conversation") or {}).get(key)


def _soak(key: str) -> Callable[[Dict[str, Any]], Optional[float]]:
    return lambda result: (result.get("soak") or {}).get(key)


def rows(results: List[Dict[str, Any]]) -> List[Row]:
    table: List[Row] = []
    phases = [(load["channel"], load["visitors"]) for load in results[0]["loads"]]
    for channel, visitors in phases:
        where = f"{visitors} visitor{'s' if visitors > 1 else ''}" + (" (REST)" if channel == "rest" else "")
        for key, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            table.append((f"turn {name}, {where} (ms)", _phase_figure(channel, visitors, key), "lower"))
        table.append((f"throughput, {where} (turns/s)",
                      _phase_figure(channel, visitors, "throughput"), "higher"))
        table.append((f"errors, {where}", _phase_figure(channel, visitors, "errors"), "lower"))
    if any("long_conversation" in result for result in results):
        long = next(r["long_conversation"] for r in results if "long_conversation" in r)
        table += [
            (f"long conversation: turn p50, turns {long['early_turns']} (ms)", _long("early_p50_ms"),
             "lower"),
            (f"long conversation: turn p50, turns {long['late_turns']} (ms)", _long("late_p50_ms"),
             "lower"),
            (LONG_RATIO_ROW, _long("late_over_early"), "lower"),
            (DRIFT_ROW, _long("control_late_over_early"), "-"),
            (CONTROLLED_ROW, _long("controlled_late_over_early"), "lower"),
            ("long conversation: errors", _long("errors"), "lower"),
        ]
    if any("soak" in result for result in results):
        table += [
            ("soak: conversations", _soak("conversations"), "-"),
            ("soak: memory growth, second half", _soak("growth_after_middle"), "lower"),
            ("soak: errors", _soak("errors"), "lower"),
        ]
    for key, label, better in (
        ("nlu_parse_p50_ms", "NLU parse p50 (ms)", "lower"),
        ("nlu_parse_p95_ms", "NLU parse p95 (ms)", "lower"),
        ("one_worker_throughput", "throughput, busiest phase, one worker (turns/s)", "higher"),
        ("workers", "Rasa worker processes", "-"),
        ("start_to_ready_s", "start to ready (s)", "lower"),
        ("memory_mb_after_load", "Rasa server memory after load, all processes (MB)", "lower"),
        ("largest_process_rss_mb", "largest Rasa process RSS (MB)", "lower"),
        ("model_mb", "model size (MB)", "lower"),
        ("training_s", "training time (s)", "lower"),
        ("held_out_accuracy", "held-out accuracy (model alone)", "higher"),
        ("in_scope_accuracy", "in-scope accuracy (with its fallback)", "higher"),
        ("out_of_scope_rejection", "out-of-scope rejection (with its fallback)", "higher"),
    ):
        table.append((label, _figure(key), better))
    return table


def _fmt(value: Optional[float], two_decimals: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if two_decimals:
        return f"{value:.2f}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}"


def ratio(project: Optional[float], baseline: Optional[float]) -> Optional[float]:
    if project is None or baseline is None or baseline == 0:
        return None
    return project / baseline


def markdown(results: List[Dict[str, Any]]) -> Tuple[str, Dict[str, Optional[float]]]:
    labels = [r["label"] for r in results]
    header = "| figure | " + " | ".join(labels) + (" | project ÷ baseline |" if len(results) > 1 else " |")
    lines = [header, "|---" * (len(results) + 1 + (len(results) > 1)) + "|"]
    ratios: Dict[str, Optional[float]] = {}
    for label, read, _better in rows(results):
        values = [read(r) for r in results]
        cells = [_fmt(v, label in TWO_DECIMALS) for v in values]
        if len(results) > 1:
            ratios[label] = ratio(values[0], values[1])
            cells.append("-" if ratios[label] is None else f"{ratios[label]:.2f}×")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines), ratios


def own_target_lines(results: List[Dict[str, Any]]) -> List[str]:
    lines = []
    for description, row, test in OWN_TARGETS:
        read = next((reader for label, reader, _ in rows(results) if label == row), None)
        value = read(results[0]) if read else None
        verdict = "n/a" if value is None else ("met" if test(value) else "NOT met")
        shown = "-" if value is None else f"{value:.2f}×"
        lines.append(f"- {description}: {shown} (project) — {verdict}{_drift_note(results[0])}")
    return lines


def _drift_note(result: Dict[str, Any]) -> str:
    """What the control turns say about the long-conversation figure."""
    long = result.get("long_conversation") or {}
    controlled, drift = long.get("controlled_late_over_early"), long.get("control_late_over_early")
    if controlled is None or drift is None:
        return ""
    return (f" (over {long.get('rounds')} conversations; with the machine's drift, {drift:.2f}× on "
            f"the control turns, divided out: {controlled:.2f}×)")


def target_lines(ratios: Dict[str, Optional[float]]) -> List[str]:
    lines = []
    for description, row, test in TARGETS:
        value = ratios.get(row)
        verdict = "n/a" if value is None else ("met" if test(value) else "NOT met")
        shown = "-" if value is None else f"{value:.2f}×"
        lines.append(f"- {description}: {shown} — {verdict}")
    return lines


def chart(results: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = [(load["channel"], load["visitors"]) for load in results[0]["loads"]]
    names = [f"{v}{' REST' if c == 'rest' else ''}" for c, v in phases]
    longs = [r for r in results if (r.get("long_conversation") or {}).get("each_round")]
    figure, axes = plt.subplots(1, 3 if longs else 2, figsize=(16.5 if longs else 11, 4.2))
    latency, throughput = axes[0], axes[1]
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        xs = [i + index * width for i in range(len(phases))]
        p50 = [_load(result, c, v, "p50_ms") or 0 for c, v in phases]
        p95 = [_load(result, c, v, "p95_ms") or 0 for c, v in phases]
        latency.bar(xs, p95, width, alpha=0.35, color=f"C{index}")
        latency.bar(xs, p50, width, label=f"{result['label']} (p50; pale: p95)", color=f"C{index}")
        throughput.bar(xs, [_load(result, c, v, "throughput") or 0 for c, v in phases], width,
                       label=result["label"], color=f"C{index}")
    for axis, title, unit in ((latency, "Turn latency", "ms (log scale)"),
                              (throughput, "Throughput", "answered turns per second")):
        axis.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(phases))])
        axis.set_xticklabels(names)
        axis.set_xlabel("concurrent visitors")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.legend()
    latency.set_yscale("log")
    if longs:
        long_chart(axes[2], results)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def long_chart(axis: Any, results: List[Dict[str, Any]]) -> None:
    """Turn latency along the long conversations: the median of each 25 turns
    over every round, and dashed, that of their control turns."""
    for index, result in enumerate(results):
        long = result.get("long_conversation") or {}
        rounds = long.get("each_round") or []
        if not rounds:
            continue
        for key, style, label in (
                ("latencies_ms", "-", f"{result['label']} (late ÷ early {long.get('late_over_early')}×)"),
                ("control_ms", "--", f"{result['label']}, control turns")):
            xs, ys = windowed_medians([each[key] for each in rounds])
            axis.plot(xs, ys, style, marker="o", color=f"C{index}", label=label)
    axis.set_xlabel("turn of the conversation")
    axis.set_ylabel("ms, median of 25 turns (log scale)")
    axis.set_yscale("log")
    axis.set_title("Long conversations (dashed: fresh ones)")
    axis.legend()


def windowed_medians(rounds: List[List[Optional[float]]], width: int = 25) -> Tuple[List[int], List[float]]:
    """The median of each `width` turns, pooled over the rounds."""
    xs, ys = [], []
    for start in range(0, max(len(latencies) for latencies in rounds), width):
        answered = [v for latencies in rounds for v in latencies[start:start + width] if v is not None]
        if answered:
            xs.append(start + width // 2)
            ys.append(statistics.median(answered))
    return xs, ys


def write_report(results: List[Dict[str, Any]], out: Path) -> str:
    """Write bench.json, bench.md and bench.png under `out`; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    table, ratios = markdown(results)
    text = table
    if len(results) > 1:
        lines = target_lines(ratios) + own_target_lines(results)
        text += "\n\nTargets (ratios from this run):\n" + "\n".join(lines)
    (out / "bench.md").write_text(text + "\n", encoding="utf-8")
    (out / "bench.json").write_text(json.dumps({"results": results, "ratios": ratios}, indent=2) + "\n",
                                    encoding="utf-8")
    chart(results, out / "bench.png")
    return text
