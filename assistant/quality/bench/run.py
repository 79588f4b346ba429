"""`make bench`: the project's configuration against a stock Rasa baseline, in one run.

    python -m assistant.quality.bench.run                 # full run, results/bench/
    python -m assistant.quality.bench.run --quick         # a few seconds, project only (smoke test)

For each configuration (the project's config.yml, and bench/baseline_config.yml,
Rasa's stock pipeline and policies trained on the same data and domain; the
project's models also learn from the tuned-on blind sets, which stock Rasa has no
component to read):

1. the model (the baseline is trained here when missing or stale) and its
   training time from a cold cache (assistant/ops/train.py's record, measured here
   when the last training reused Rasa's warm cache);
2. answer quality and NLU-only parse latency, in-process on the held-out sets;
3. the real servers (assistant/ops/launcher.py, as `make run` starts them, on free
   loopback ports with fresh SQLite stores): time from start to the first
   answered message, then simulated visitors (assistant/quality/bench/load.py) through
   the website channel at 1, 10 and 50 concurrent visitors and through the REST
   webhook at 10, then the Rasa server's memory (all its processes); then one
   visitor holding a conversation of 400 turns, three times for the project and
   once for the baseline (assistant/quality/bench/long_conversation.py: the median
   turn of turns 350-399 against that of turns 0-49, with control turns that
   measure the machine's drift), and with
   --soak, many short conversations with the server's memory sampled along
   the way (assistant/quality/bench/soak.py).
   The project serves with DEFAULT_WORKERS processes, as `make run` does; its
   throughput at 50 visitors with one worker is measured too, to show how much
   of the gain the extra worker brings.

The baseline server is also stock: Rasa's own SQL tracker store and action
endpoint settings (bench/baseline_endpoints.yml), started as plain `rasa run`
without assistant/rasa_server/speedups.py's speed-ups.

Absolute times drift on a shared machine; the ratios between the two, measured
minutes apart on the same machine, are what count.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from assistant.nlu.uncertainty import Thresholds
from assistant.ops.launcher import DEFAULT_WORKERS, Settings, Stack, free_port, process_tree
from assistant.ops.train import record_path, train, training_seconds
from assistant.paths import DOMAIN_FILE, MODEL, PROJECT_ROOT, REPORT_SETS
from assistant.quality.bench.load import LoadResult, run_load
from assistant.quality.bench.long_conversation import (
    QUICK_TURNS,
    ROUNDS,
    TURNS,
    describe,
    long_conversation,
)
from assistant.quality.bench.report import write_report
from assistant.quality.bench.soak import soak

RESULTS = PROJECT_ROOT / "results" / "bench"
BASELINE_CONFIG = PROJECT_ROOT / "bench" / "baseline_config.yml"
BASELINE_ENDPOINTS = PROJECT_ROOT / "bench" / "baseline_endpoints.yml"
BASELINE_DIR = PROJECT_ROOT / "build" / "bench"
FULL_PHASES: List[Tuple[str, int]] = [("website", 1), ("website", 10), ("website", 50), ("rest", 10)]
QUICK_PHASES: List[Tuple[str, int]] = [("website", 1), ("website", 5), ("rest", 2)]
SOAK_CONVERSATIONS = 20_000


@dataclass
class Candidate:
    label: str
    config: Path
    model: Path
    thresholds: Thresholds  # its fallback settings, for "configured" accuracy
    endpoints: Path = PROJECT_ROOT / "endpoints.yml"
    stock_rasa: bool = False


def project() -> Candidate:
    return Candidate("project", PROJECT_ROOT / "config.yml",
                     MODEL, Thresholds.from_config())


def baseline() -> Candidate:
    # The stock FallbackClassifier (0.3 / 0.1) and no guard on the chosen answer.
    return Candidate("baseline", BASELINE_CONFIG, BASELINE_DIR / "baseline.tar.gz",
                     Thresholds(0.3, 0.1, 0.0, 0.0), BASELINE_ENDPOINTS, stock_rasa=True)


def training_inputs(candidate: Candidate) -> List[Path]:
    """What a training of `candidate` reads. Stock Rasa skips the report sets in
    data/safety/ (no `nlu`, `responses`, `stories` or `rules` key; only our red-flag
    component reads them), so a new set does not make the baseline stale: retraining
    it from a cold cache takes 27-45 minutes on this machine."""
    files = sorted((PROJECT_ROOT / "data").rglob("*.yml"))
    if candidate.stock_rasa:
        files = [path for path in files if REPORT_SETS not in path.parents]
    else:  # our models also read the blind sets config.yml names, and the sets never to learn
        files += [path for pattern in ("dev*/*.yml", "sealed/*.yml", "nlu/*.yml")
                  for path in sorted((PROJECT_ROOT / "tests").glob(pattern))]
    return [candidate.config, DOMAIN_FILE, *files]


def ensure_model(candidate: Candidate) -> Optional[float]:
    """Train the baseline when missing or stale; return the model's full training
    time, measuring it from a cold cache when no record has one."""
    inputs = training_inputs(candidate)
    model = candidate.model
    if not (model.exists() and model.stat().st_mtime > max(p.stat().st_mtime for p in inputs)):
        if candidate.label == "project":
            raise SystemExit("the project's model is missing or stale: run `make model` first")
        print(f"training the {candidate.label} model (cold cache)...", flush=True)
        model.parent.mkdir(parents=True, exist_ok=True)
        train(candidate.config, model.parent, model.name.replace(".tar.gz", ""), use_cache=False)
    elif training_seconds(model) is None:
        # Its last training reused Rasa's warm cache: time a cold one of the same config.
        print(f"timing a cold-cache training of the {candidate.label} model...", flush=True)
        BASELINE_DIR.mkdir(parents=True, exist_ok=True)
        timing = BASELINE_DIR / f"{candidate.label}-timing.tar.gz"
        train(candidate.config, timing.parent, timing.name.replace(".tar.gz", ""), use_cache=False)
        record_path(model).write_text(record_path(timing).read_text())
    return training_seconds(model)


def measure_quality(candidate: Candidate, quick: bool) -> Dict[str, Any]:
    """Held-out accuracy and NLU-only parse latency, in this process."""
    from assistant.quality.evaluation import (
        OUT_OF_SCOPE_FILE,
        load_agent,
        load_examples,
        parse_all,
        trade_off,
    )

    agent = load_agent(candidate.model)
    in_scope, out_of_scope = load_examples(), load_examples(OUT_OF_SCOPE_FILE)
    if quick:
        in_scope, out_of_scope = in_scope[:20], out_of_scope[:10]
    parsed_in = asyncio.run(parse_all(agent, in_scope))  # also warms the model up
    parse_latencies = asyncio.run(_parse_latencies(agent, [text for text, _ in in_scope]))
    parsed_out = asyncio.run(parse_all(agent, out_of_scope))
    raw = trade_off(parsed_in, parsed_out, Thresholds(0, 0, 0, 0))
    configured = trade_off(parsed_in, parsed_out, candidate.thresholds)
    return {
        "held_out_accuracy": round(raw.in_scope_accuracy, 3),
        "in_scope_accuracy": round(configured.in_scope_accuracy, 3),
        "out_of_scope_rejection": round(configured.out_of_scope_rejection, 3),
        "nlu_parse_p50_ms": round(statistics.median(parse_latencies), 1),
        "nlu_parse_p95_ms": round(statistics.quantiles(parse_latencies, n=20)[-1], 1),
    }


async def _parse_latencies(agent: Any, texts: List[str]) -> List[float]:
    latencies = []
    for text in texts:
        started = time.perf_counter()
        await agent.parse_message(text)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def memory_mb(pid: int) -> Dict[str, float]:
    """Memory of a server's processes (Linux /proc), in MB: the largest process's
    RSS plus the private memory of the others. Forked workers share the code,
    the libraries and untouched pages with their parent; a sum of RSS would
    count those once per worker, and a sum of PSS would hand part of them to
    any other process using the same libraries (this one, for instance)."""
    processes = []
    for current in process_tree(pid):
        try:
            figures = dict(line.split(":", 1) for line in Path(f"/proc/{current}/smaps_rollup").read_text()
                           .splitlines() if ":" in line)
        except OSError:
            continue
        kb = {key: int(figures[key].split()[0]) for key in ("Rss", "Private_Clean", "Private_Dirty")}
        processes.append((kb["Rss"], kb["Private_Clean"] + kb["Private_Dirty"]))
    if not processes:
        return {}
    processes.sort(reverse=True)  # the largest RSS first
    total_kb = processes[0][0] + sum(private for _, private in processes[1:])
    return {"memory_mb_after_load": round(total_kb / 1024, 1),
            "largest_process_rss_mb": round(processes[0][0] / 1024, 1)}


def settings_for(candidate: Candidate, workdir: Path, workers: int) -> Settings:
    return Settings(
        rasa_port=free_port(), actions_port=free_port(), tracker_db=workdir / "tracker.db",
        model=candidate.model, endpoints=candidate.endpoints, stock_rasa=candidate.stock_rasa,
        workers=workers, extra_env={"REQUESTS_DB_URL": f"sqlite:///{workdir / 'requests.db'}"},
    )


def measure_server(candidate: Candidate, phases: List[Tuple[str, int]], seconds: float,
                   workdir: Path, quick: bool = False, soak_conversations: int = 0) -> Dict[str, Any]:
    # Stock Rasa serves with one worker: more need a lock store other than its in-memory default.
    workers = 1 if candidate.stock_rasa else DEFAULT_WORKERS
    started = time.monotonic()
    stack = Stack(settings_for(candidate, workdir, workers), log_dir=workdir / "logs").start()
    try:
        first = asyncio.run(run_load(stack.url, "website", 1, 30, max_turns=1))
        if first.errors or not first.turns:
            raise RuntimeError(f"the {candidate.label} server did not answer; see {workdir / 'logs'}")
        ready_s = time.monotonic() - started
        asyncio.run(run_load(stack.url, "website", 2, min(3.0, seconds)))  # warm-up, not reported
        loads: List[LoadResult] = []
        for channel, visitors in phases:
            loads.append(asyncio.run(run_load(stack.url, channel, visitors, seconds)))
            print(f"  {candidate.label}: {loads[-1].summary()}", flush=True)
        assert stack.rasa is not None  # started above
        figures = {"workers": workers, "start_to_ready_s": round(ready_s, 1), **memory_mb(stack.rasa.pid),
                   "loads": [load.summary() for load in loads]}
        # Stock Rasa once: its late turns take most of a second (about 8 minutes a
        # round), and its growth (about 6x) leaves drift no say.
        rounds = 1 if quick or candidate.stock_rasa else ROUNDS
        long = asyncio.run(long_conversation(stack.url, QUICK_TURNS if quick else TURNS, rounds=rounds))
        print(f"  {candidate.label}, {describe(long)}", flush=True)
        figures["long_conversation"] = long
        if soak_conversations:
            figures["soak"] = soak(stack.url, stack.rasa.pid, soak_conversations,
                                   lambda pid: memory_mb(pid).get("memory_mb_after_load"),
                                   stack.settings.lock_db)
    finally:
        stack.stop()
    busiest = max(loads, key=lambda load: load.visitors)
    if workers == 1:
        figures["one_worker_throughput"] = round(busiest.throughput, 2)
    elif not quick:  # how much of the throughput the extra workers bring
        figures["one_worker_throughput"] = one_worker_throughput(candidate, busiest.visitors, seconds,
                                                                 workdir)
    return figures


def one_worker_throughput(candidate: Candidate, visitors: int, seconds: float, workdir: Path) -> float:
    stack = Stack(settings_for(candidate, workdir / "one-worker", 1), log_dir=workdir / "logs-1").start()
    try:
        asyncio.run(run_load(stack.url, "website", 2, min(3.0, seconds)))  # warm-up
        load = asyncio.run(run_load(stack.url, "website", visitors, seconds))
        print(f"  {candidate.label}, one worker: {load.summary()}", flush=True)
        if load.errors:
            raise RuntimeError(f"{load.errors} errors with one worker; see {workdir / 'logs-1'}")
        return round(load.throughput, 2)
    finally:
        stack.stop()


def measure(candidate: Candidate, phases: List[Tuple[str, int]], seconds: float,
            quick: bool, soak_conversations: int = 0) -> Dict[str, Any]:
    seconds_to_train = ensure_model(candidate)
    print(f"{candidate.label}: answer quality and NLU latency...", flush=True)
    figures: Dict[str, Any] = {"label": candidate.label,
                               "config": str(candidate.config.relative_to(PROJECT_ROOT))}
    figures.update(measure_quality(candidate, quick))
    figures["model_mb"] = round(candidate.model.stat().st_size / 1e6, 1)
    figures["training_s"] = round(seconds_to_train, 1) if seconds_to_train is not None else None
    print(f"{candidate.label}: servers under load...", flush=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-{candidate.label}-") as workdir:
        figures.update(measure_server(candidate, phases, seconds, Path(workdir), quick, soak_conversations))
    return figures


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the project against a stock Rasa baseline.")
    parser.add_argument("--quick", action="store_true", help="a few seconds, project only (smoke test)")
    parser.add_argument("--seconds", type=float, help="length of each load phase (default 10, quick 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--soak", nargs="?", type=int, const=SOAK_CONVERSATIONS, default=0, metavar="N",
                        help=f"also N short conversations (default {SOAK_CONVERSATIONS}), the server's "
                             "memory sampled along the way (project only)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    phases = QUICK_PHASES if args.quick else FULL_PHASES
    started = time.monotonic()
    results = [measure(project(), phases, seconds, args.quick, args.soak)]
    if not args.quick:
        results.append(measure(baseline(), phases, seconds, args.quick))
    table = write_report(results, args.out)
    print(table)
    print(f"\nwritten to {args.out} in {time.monotonic() - started:.0f} s")
    errors = sum(load["errors"] for result in results for load in result["loads"])
    errors += sum(result.get("long_conversation", {}).get("errors", 0) for result in results)
    errors += sum(result.get("soak", {}).get("errors", 0) for result in results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
