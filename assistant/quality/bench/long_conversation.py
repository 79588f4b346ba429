"""`make bench`'s long-conversation phase: one visitor, one conversation, 400 turns.

The visitor walks the load generator's script (assistant/quality/bench/load.py) over
and over in the same conversation, over one keep-alive connection, so every
kind of turn (FAQ, condition, out of scope, the call-back form started and
cancelled) recurs at every length. The figure that matters is the ratio of
the median turn late in the conversation to the median turn early in it:
before issue 20 it was about 5 (25 ms at turns 0-49, 126 ms at 350-399),
because every turn re-featurised the whole session.

Measured this way once, the ratio was at the mercy of the machine: each window
of 50 turns lasts under a second, and the same code scored 0.80, 1.18, 1.58
and 1.78 on 2026-12-01 as other work on the host came and went. So:

* the conversation is held ROUNDS times and the windows are pooled: the ratio
  is p50(turns 350-399) over p50(turns 0-49) of all rounds' turns together
  (each round's own ratio is kept in the JSON);
* right after each turn, the same message is sent at the same step of a
  **control** conversation that starts afresh every time the script does
  (at most 11 turns long), over the same connection and so to the same
  worker. The control costs what the turn would cost without its history,
  measured a few milliseconds later, so `controlled_late_over_early`, the
  ratio of the medians of turn ÷ control late and early, is the growth with
  the machine's drift divided out; `control_late_over_early` is that drift.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

import aiohttp

from assistant.quality.bench.load import VISITOR_SCRIPT, send_turn

TURNS = 400
QUICK_TURNS = 60
ROUNDS = 3
EARLY = (0, 50)  # turns 0-49
LATE_SPAN = 50  # the last 50 turns (350-399 of 400)

Latencies = List[Optional[float]]


async def long_conversation(base_url: str, turns: int = TURNS, rounds: int = ROUNDS,
                            channel: str = "website",
                            script: Sequence[str] = VISITOR_SCRIPT) -> Dict[str, Any]:
    """Hold `rounds` conversations of `turns` turns one after another, each turn
    paired with its control turn; the figures of summarise()."""
    url = f"{base_url}/webhooks/{channel}/webhook"
    held: List[Tuple[Latencies, Latencies]] = []
    async with _one_connection() as session:
        for _ in range(rounds):
            held.append(await _one_conversation(session, url, turns, script))
    return summarise([turns_ms for turns_ms, _ in held], [controls for _, controls in held])


async def _one_conversation(session: aiohttp.ClientSession, url: str, turns: int,
                            script: Sequence[str]) -> Tuple[Latencies, Latencies]:
    """Every turn's latency (ms, None when it failed) and its control's."""
    sender, token = _new_sender("long"), None
    control_sender, control_token = "", None
    latencies: Latencies = []
    controls: Latencies = []
    for turn in range(turns):
        step = turn % len(script)
        if step == 0:
            control_sender, control_token = _new_sender("control"), None
        latency, token = await _timed_turn(session, url, sender, script[step], token)
        control, control_token = await _timed_turn(session, url, control_sender, script[step],
                                                   control_token)
        latencies.append(latency)
        controls.append(control)
    return latencies, controls


async def converse(base_url: str, sender: str, texts: Sequence[str], channel: str = "website") -> Latencies:
    """One conversation, without control turns: `texts` sent in order as
    `sender`; each turn's latency (ms), None when it failed."""
    url = f"{base_url}/webhooks/{channel}/webhook"
    token: Optional[str] = None
    latencies: Latencies = []
    async with _one_connection() as session:
        for text in texts:
            latency, token = await _timed_turn(session, url, sender, text, token)
            latencies.append(latency)
    return latencies


def _one_connection() -> aiohttp.ClientSession:
    """A client that sends every turn over one keep-alive connection (one worker)."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60),
                                 connector=aiohttp.TCPConnector(limit=1))


def _new_sender(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:12]}"


async def _timed_turn(session: aiohttp.ClientSession, url: str, sender: str, text: str,
                      token: Optional[str]) -> Tuple[Optional[float], Optional[str]]:
    started = time.perf_counter()
    ok, token = await send_turn(session, url, sender, text, token)
    return ((time.perf_counter() - started) * 1000 if ok else None), token


def _p50(values: Sequence[Optional[float]]) -> Optional[float]:
    answered = [value for value in values if value is not None]
    return round(statistics.median(answered), 2) if answered else None


def _ratio(late: Optional[float], early: Optional[float]) -> Optional[float]:
    return round(late / early, 2) if late and early else None


def _windows(latencies: Latencies) -> Tuple[Latencies, Latencies]:
    """Turns 0-49 and the last 50 turns of one conversation."""
    return latencies[EARLY[0]:EARLY[1]], latencies[max(len(latencies) - LATE_SPAN, 0):]


def _over_control(latencies: Latencies, controls: Latencies) -> Latencies:
    return [None if turn is None or control is None else turn / control
            for turn, control in zip(latencies, controls, strict=True)]


def _pooled_ratio(rounds: List[Latencies]) -> Tuple[Optional[float], Optional[float], Optional[float]]:
    """p50 of every round's early turns, of every round's late turns, and late ÷ early."""
    early = [value for latencies in rounds for value in _windows(latencies)[0]]
    late = [value for latencies in rounds for value in _windows(latencies)[1]]
    early_p50, late_p50 = _p50(early), _p50(late)
    return early_p50, late_p50, _ratio(late_p50, early_p50)


def summarise(rounds: List[Latencies], controls: List[Latencies]) -> Dict[str, Any]:
    """The issue's ratio over the pooled rounds, its control and drift-controlled
    counterparts, and each round's own figures. A failed turn or control is an error."""
    length = len(rounds[0])
    early_p50, late_p50, ratio = _pooled_ratio(rounds)
    control_early, control_late, drift = _pooled_ratio(controls)
    pairs = list(zip(rounds, controls, strict=True))
    relative = [_over_control(latencies, control) for latencies, control in pairs]
    _, _, controlled = _pooled_ratio(relative)
    return {
        "turns": length,
        "rounds": len(rounds),
        "errors": sum(value is None for latencies in rounds + controls for value in latencies),
        "early_turns": f"{EARLY[0]}-{min(EARLY[1], length) - 1}",
        "late_turns": f"{max(length - LATE_SPAN, 0)}-{length - 1}",
        "early_p50_ms": early_p50,
        "late_p50_ms": late_p50,
        "late_over_early": ratio,
        "control_early_p50_ms": control_early,
        "control_late_p50_ms": control_late,
        "control_late_over_early": drift,
        "controlled_late_over_early": controlled,
        "each_round": [_round_figures(latencies, control) for latencies, control in pairs],
    }


def _round_figures(latencies: Latencies, controls: Latencies) -> Dict[str, Any]:
    return {
        "late_over_early": _pooled_ratio([latencies])[2],
        "controlled_late_over_early": _pooled_ratio([_over_control(latencies, controls)])[2],
        "latencies_ms": [None if value is None else round(value, 2) for value in latencies],
        "control_ms": [None if value is None else round(value, 2) for value in controls],
    }


def describe(long: Dict[str, Any]) -> str:
    """One line of the figures, for the bench's progress output."""
    each = [figures["late_over_early"] for figures in long["each_round"]]
    return (f"{long['rounds']} long conversations of {long['turns']} turns: turns {long['early_turns']} "
            f"p50 {long['early_p50_ms']} ms, turns {long['late_turns']} p50 {long['late_p50_ms']} ms "
            f"(x{long['late_over_early']}; each round {each}; "
            f"control turns x{long['control_late_over_early']}; "
            f"drift divided out x{long['controlled_late_over_early']}), {long['errors']} errors")


if __name__ == "__main__":  # python -m assistant.quality.bench.long_conversation http://HOST:PORT [turns]
    import sys

    print(describe(asyncio.run(long_conversation(sys.argv[1],
                                                 int(sys.argv[2]) if len(sys.argv) > 2 else TURNS))))
