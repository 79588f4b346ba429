"""The insights report (assistant/insights/) for the console: the same
self-contained HTML file as ``make report``, for a period staff choose.

A report over 100,000 conversations takes about 15 s of CPU. Built in the
server's process (even in a thread of the executor) it would hold Python's
global lock against the chat answering there; and a process pool cannot be
used, because the server's workers are daemon processes, which may not have
pool children. So the console runs ``make report``'s own command
(``python -m assistant.insights.cli report``) as a child process with
asyncio: the chat's event loop only waits for it to finish, and the page is
exactly the file ``make report`` writes (the review list: ``make review``'s).
One report is built at a time per server process; the last few are kept for a
couple of minutes, so the download right after viewing costs nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Dict, Tuple

from assistant.insights.events import default_store_url
from assistant.paths import PROJECT_ROOT
from assistant.shared.private_files import private_umask

REPORT_DB_ENV = "REPORT_DB_URL"  # as `make report --db` (the cluster sets it: PostgreSQL)
# make report / make review: the command's name and the file it writes.
REPORT = ("report", "report.html")
REVIEW = ("review", "unanswered.yml")
TIMEOUT_SECONDS = 300
KEEP_SECONDS = 120
KEEP_REPORTS = 4

_made: Dict[Tuple[Tuple[str, str], str, date, date], Tuple[float, str]] = {}
_one_at_a_time: Dict[int, asyncio.Lock] = {}  # per event loop


class ReportFailed(RuntimeError):
    """The report could not be made; the message is the command's last words."""


def store_url() -> str:
    return os.environ.get(REPORT_DB_ENV) or default_store_url()


def report_command(kind: Tuple[str, str], url: str, since: date, until: date, out: Path) -> Tuple[str, ...]:
    return (sys.executable, "-m", "assistant.insights.cli", kind[0], "--db", url,
            "--since", since.isoformat(), "--until", until.isoformat(), "--out", str(out))


async def _build(kind: Tuple[str, str], url: str, since: date, until: date) -> str:
    with private_umask(), tempfile.TemporaryDirectory(prefix="staff-report-") as out:
        process = await asyncio.create_subprocess_exec(
            *report_command(kind, url, since, until, Path(out)), cwd=str(PROJECT_ROOT),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            _, errors = await asyncio.wait_for(process.communicate(), timeout=TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise ReportFailed(f"no report after {TIMEOUT_SECONDS} s") from None
        if process.returncode != 0:
            last = (errors.decode(errors="replace").strip().splitlines() or ["(no message)"])[-1]
            raise ReportFailed(last[:300])
        return (Path(out) / kind[1]).read_text(encoding="utf-8")


async def report_html(since: date, until: date) -> str:
    """The report for the days [since, until] (the clinic's days, as `make report`)."""
    return await made(REPORT, since, until)


async def review_yaml(since: date, until: date) -> str:
    """The unanswered messages as Rasa NLU data to review, as `make review` writes them."""
    return await made(REVIEW, since, until)


async def made(kind: Tuple[str, str], since: date, until: date) -> str:
    key = (kind, store_url(), since, until)
    lock = _one_at_a_time.setdefault(id(asyncio.get_running_loop()), asyncio.Lock())
    async with lock:
        now = time.monotonic()
        for stale in [k for k, (made, _) in _made.items() if now - made > KEEP_SECONDS]:
            del _made[stale]
        if key not in _made:
            html = await _build(*key)
            if len(_made) >= KEEP_REPORTS:
                del _made[min(_made, key=lambda k: _made[k][0])]
            _made[key] = (time.monotonic(), html)
        return _made[key][1]
