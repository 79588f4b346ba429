"""A bounded, loopback-only load generator (asyncio + aiohttp).

Each simulated visitor is its own conversation and walks a realistic script --
a greeting, FAQ questions, a condition, an out-of-scope message, a booking
hand-off, the start of a call-back form and its cancellation -- sending the
next message as soon as the reply arrives (no think time), so the figures are
the server's capacity. A visitor that finishes the script starts a new
conversation. Every turn must answer 200 with at least one message, or it
counts as an error.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import aiohttp

from assistant.rasa_server.conversation_token import TOKEN_HEADER

VISITOR_SCRIPT = [
    "hi",
    "what is dry needling",
    "does it hurt",
    "is it the same as acupuncture",
    "can it help my tennis elbow",
    "how long does a session take",
    "what's the weather like tomorrow",
    "how do i book",
    "/request_callback",
    "Alex Example",
    "stop",
]


@dataclass
class LoadResult:
    channel: str
    visitors: int
    seconds: float
    latencies_ms: List[float] = field(default_factory=list)
    errors: int = 0

    @property
    def turns(self) -> int:
        return len(self.latencies_ms)

    @property
    def throughput(self) -> float:
        """Answered turns per second."""
        return self.turns / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> Dict[str, Any]:
        return {
            "channel": self.channel, "visitors": self.visitors, "seconds": round(self.seconds, 2),
            "turns": self.turns, "errors": self.errors, "throughput": round(self.throughput, 2),
            "p50_ms": round(self.percentile(50), 1), "p95_ms": round(self.percentile(95), 1),
            "p99_ms": round(self.percentile(99), 1),
        }


async def send_turn(session: aiohttp.ClientSession, url: str, sender: str, text: str,
                    token: Optional[str]) -> Tuple[bool, Optional[str]]:
    """One visitor message: (answered, the conversation token to send next time,
    as the widget keeps it)."""
    try:
        message = {"sender": sender, "message": text, **({"token": token} if token else {})}
        async with session.post(url, json=message) as reply:
            body = await reply.json(content_type=None)
            token = reply.headers.get(TOKEN_HEADER) or token
            return reply.status == 200 and isinstance(body, list) and len(body) > 0, token
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return False, token


async def _visitor(session: aiohttp.ClientSession, url: str, deadline: float,
                   max_turns: Optional[int], result: LoadResult, counter: itertools.count) -> None:
    while time.monotonic() < deadline:
        sender = f"bench-{uuid.uuid4().hex[:12]}"
        token: Optional[str] = None  # the website channel's conversation token, as the widget keeps it
        for text in VISITOR_SCRIPT:
            if time.monotonic() >= deadline or (max_turns is not None and next(counter) >= max_turns):
                return
            started = time.perf_counter()
            ok, token = await send_turn(session, url, sender, text, token)
            if ok:
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                result.errors += 1


async def run_load(base_url: str, channel: str, visitors: int, seconds: float,
                   max_turns: Optional[int] = None) -> LoadResult:
    """`visitors` concurrent conversations for `seconds` (and at most `max_turns` turns)."""
    url = f"{base_url}/webhooks/{channel}/webhook"
    result = LoadResult(channel, visitors, 0.0)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=visitors)
    counter = itertools.count()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(*(_visitor(session, url, deadline, max_turns, result, counter)
                               for _ in range(visitors)))
        result.seconds = time.monotonic() - started
    return result
