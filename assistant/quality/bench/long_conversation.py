"""`make bench`'s long-conversation phase: one visitor, one conversation, 400 turns.

The visitor walks the load generator's script (assistant/quality/bench/load.py) over
and over in the same conversation, over one keep-alive connection, so every
kind of turn (FAQ, condition, out of scope, the call-back form started and
cancelled) recurs at every length. The figure that matters is the ratio of
the median turn late in the conversation to the median turn early in it:
before issue 20 it was about 5 (25 ms at turns 0-49, 126 ms at 350-399),
because every turn re-featurised the whole session.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence

import aiohttp

from assistant.quality.bench.load import VISITOR_SCRIPT, send_turn

TURNS = 400
QUICK_TURNS = 60
EARLY = (0, 50)  # turns 0-49
LATE_SPAN = 50  # the last 50 turns (350-399 of 400)


async def long_conversation(base_url: str, turns: int = TURNS, channel: str = "website",
                            sender: Optional[str] = None,
                            script: Sequence[str] = VISITOR_SCRIPT) -> Dict[str, Any]:
    """Hold one conversation of `turns` turns; every turn's latency (ms) in
    order, or None for a turn that failed."""
    url = f"{base_url}/webhooks/{channel}/webhook"
    sender = sender or f"bench-long-{uuid.uuid4().hex[:12]}"
    token: Optional[str] = None
    latencies: List[Optional[float]] = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as session:
        for turn in range(turns):
            text = script[turn % len(script)]
            started = time.perf_counter()
            ok, token = await send_turn(session, url, sender, text, token)
            latencies.append((time.perf_counter() - started) * 1000 if ok else None)
    return summarise(latencies)


def _p50(values: List[Optional[float]]) -> Optional[float]:
    answered = [value for value in values if value is not None]
    return round(statistics.median(answered), 1) if answered else None


def summarise(latencies: List[Optional[float]]) -> Dict[str, Any]:
    """p50 of turns 0-49 and of the last 50 turns, and their ratio."""
    early = latencies[EARLY[0]:EARLY[1]]
    late_start = max(len(latencies) - LATE_SPAN, 0)
    late = latencies[late_start:]
    early_p50, late_p50 = _p50(early), _p50(late)
    return {
        "turns": len(latencies),
        "errors": sum(1 for value in latencies if value is None),
        "early_turns": f"{EARLY[0]}-{min(EARLY[1], len(latencies)) - 1}",
        "late_turns": f"{late_start}-{len(latencies) - 1}",
        "early_p50_ms": early_p50,
        "late_p50_ms": late_p50,
        "late_over_early": round(late_p50 / early_p50, 2) if early_p50 and late_p50 else None,
        "latencies_ms": [None if value is None else round(value, 2) for value in latencies],
    }


if __name__ == "__main__":  # python -m assistant.quality.bench.long_conversation http://HOST:PORT [turns]
    import json
    import sys

    figures = asyncio.run(long_conversation(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else TURNS))
    figures.pop("latencies_ms")
    print(json.dumps(figures))
