"""How long to wait before restarting something that keeps dying.

Shared by the launcher (the action server, the Rasa server, the notifier) and
the Rasa server's worker pool. A process that ran for a minute is restarted at
once; one that dies again within a minute of its restart waits 1 s, then 2 s,
4 s ... at most 30 s, so a broken process (a model that no longer loads, a port
taken by someone else) never turns into a restart loop that eats the CPU the
rest of the bot needs.
"""

from __future__ import annotations

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0


def restart_delay(quick_failures: int) -> float:
    """Seconds to wait after `quick_failures` deaths in a row, each within
    STABLE_AFTER_SECONDS of its start (the first death of any process: 0)."""
    if quick_failures <= 1:
        return 0.0
    return min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (quick_failures - 2))


def next_failures(quick_failures: int, lived_seconds: float) -> int:
    """The count of quick deaths in a row after one more death."""
    return quick_failures + 1 if lived_seconds < STABLE_AFTER_SECONDS else 1
