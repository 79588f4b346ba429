"""`make bench ARGS=--soak`: a day's worth of short conversations, memory sampled.

Ten simulated visitors (assistant/quality/bench/load.py) hold short conversations one
after another, SAMPLES times in equal slices; after each slice the Rasa
server's memory (all its processes, as the bench counts it) and the lock
table's size are recorded. What has to stay bounded: the tracker store's
cache of saved trackers (assistant/rasa_server/tracker_store.py, 200 conversations per
process), the dialogue-state cache (assistant/rasa_server/state_cache.py, 600 entries per
process) and the lock table (assistant/rasa_server/lock_store.py: a lock is deleted when
its last ticket is served). The verdict compares the last samples with the
middle ones: after the caches have filled, memory should stop growing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from assistant.quality.bench.load import VISITOR_SCRIPT, run_load

SAMPLES = 10
VISITORS = 10
GROWTH_LIMIT = 0.05  # memory at the end may exceed the middle sample's by 5% at most


def lock_rows(lock_db: Optional[Path]) -> Optional[int]:
    if lock_db is None or not lock_db.exists():
        return None
    with sqlite3.connect(lock_db, timeout=30) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM locks").fetchone()[0])


def soak(base_url: str, pid: int, conversations: int, memory: Callable[[int], Optional[float]],
         lock_db: Optional[Path] = None, samples: int = SAMPLES) -> Dict[str, Any]:
    """`conversations` short conversations (the whole visitor script each);
    memory (MB) and lock rows after each of `samples` slices."""
    turns_per_slice = max(1, conversations * len(VISITOR_SCRIPT) // samples)
    series: List[Dict[str, Any]] = [{"conversations": 0, "seconds": 0.0, "memory_mb": memory(pid),
                                     "lock_rows": lock_rows(lock_db)}]
    started, errors, turns = time.monotonic(), 0, 0
    for index in range(samples):
        load = asyncio.run(run_load(base_url, "website", VISITORS, seconds=24 * 3600,
                                    max_turns=turns_per_slice))
        errors += load.errors
        turns += load.turns
        series.append({"conversations": (index + 1) * turns_per_slice // len(VISITOR_SCRIPT),
                       "seconds": round(time.monotonic() - started, 1), "memory_mb": memory(pid),
                       "lock_rows": lock_rows(lock_db)})
        print(f"  soak: {series[-1]}", flush=True)
    middle, last = series[len(series) // 2]["memory_mb"], series[-1]["memory_mb"]
    growth = (last - middle) / middle if middle and last else None
    return {"conversations": series[-1]["conversations"], "turns": turns, "errors": errors,
            "series": series, "growth_after_middle": None if growth is None else round(growth, 3),
            "bounded": growth is not None and growth <= GROWTH_LIMIT}
