"""Abuse limits, per visitor IP address and per conversation (the `limits` package).

Probed before these existed, one client created 842 conversations in 12 s
(about 2.5 GB an hour into tracker.db) and 147 call-back requests in 21 s. The
limits (``rate_limits:`` in clinic.yml, notation of the `limits` package, e.g.
``30/minute`` or ``10/minute;50/hour``; unknown keys are errors):

=========================== ============================================ ================
key                         what                                         default
=========================== ============================================ ================
messages_per_ip             website messages from one IP address         120/minute;1000/hour
messages_per_conversation   messages in one conversation                 30/minute;300/hour
new_conversations_per_ip    conversations one IP address starts          10/minute;50/hour
callback_requests_per_ip    call-back requests stored from one address   3/hour
=========================== ============================================ ================

Counters are fixed windows. On one server they live in an SQLite file next
to the tracker store (``limits.db``), shared by the Rasa workers and the action
server (an in-memory counter would be per process, and each worker would allow
the full amount); in the cluster (``REDIS_HOST`` set) in Redis, shared by
every server. IP addresses are keyed by an HMAC (assistant/rasa_server/conversation_token.py),
never stored as such.

Direct loopback clients (the machine itself: tests, the benchmark, scripts on
the server) are not limited; a request that came through a proxy is limited by
the address the proxy reports (assistant/rasa_server/rest_channel.py, ``client_address``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from assistant.paths import beside_tracker_db
from assistant.shared.private_files import PRIVATE_FILE_MODE, make_private_dir, private_umask
from assistant.shared.sqlite_hygiene import use_wal

LIMITS_DB_NAME = "limits.db"
SQLITE_SCHEME = "sqlite"
# Expired counters are removed every this many increments, so the file stays small.
PURGE_EVERY = 500


# The limits' names (the keys of `rate_limits:` and the fields of RateLimits).
MESSAGES_PER_IP = "messages_per_ip"
MESSAGES_PER_CONVERSATION = "messages_per_conversation"
NEW_CONVERSATIONS_PER_IP = "new_conversations_per_ip"
CALLBACK_REQUESTS_PER_IP = "callback_requests_per_ip"


class RateLimitConfigError(ValueError):
    """A rate limit in clinic.yml is invalid; the message names the key."""


@dataclass(frozen=True)
class RateLimits:
    messages_per_ip: str = "120/minute;1000/hour"
    messages_per_conversation: str = "30/minute;300/hour"
    new_conversations_per_ip: str = "10/minute;50/hour"
    callback_requests_per_ip: str = "3/hour"

    def items(self, name: str) -> List[RateLimitItem]:
        return _parsed(getattr(self, name))


@lru_cache(maxsize=64)
def _parsed(text: str) -> List[RateLimitItem]:
    return list(parse_many(text))


def parse_rate_limits(raw: Any, where: str = "clinic config: 'rate_limits'") -> RateLimits:
    """The `rate_limits:` mapping of clinic.yml (None: the defaults)."""
    if raw is None:
        return RateLimits()
    if not isinstance(raw, dict):
        raise RateLimitConfigError(f"{where} must be a mapping of limits")
    known = {f.name for f in fields(RateLimits)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RateLimitConfigError(
            f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(known))}")
    values: Dict[str, str] = {}
    for key, value in raw.items():
        text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        try:
            if not text or not parse_many(text):
                raise ValueError
        except ValueError:
            raise RateLimitConfigError(
                f"{where}.{key} {value!r} is not a limit like '30/minute' or '10/minute;50/hour'") from None
        values[key] = text
    return RateLimits(**values)


class SQLiteStorage(Storage):
    """Fixed-window counters in one SQLite file, for the processes of one server.

    One UPSERT per limit hit (0.06 ms measured in WAL mode, so about 0.25 ms
    per website message with the default limits, against a 7 ms turn); the
    file is created 600. URI: ``sqlite:///absolute/path/limits.db``."""

    STORAGE_SCHEME = [SQLITE_SCHEME]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = Path(uri.split("://", 1)[1])
        make_private_dir(self.path.parent)
        with private_umask():
            self._db = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
        self.path.chmod(PRIVATE_FILE_MODE)
        self._lock = threading.Lock()
        self._increments = 0
        with self._lock:
            use_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS counters "
                             "(key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires_at REAL NOT NULL)")

    @property
    def base_exceptions(self) -> Any:
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            (count,) = self._db.execute(
                "INSERT INTO counters (key, count, expires_at) VALUES (?1, ?2, ?3 + ?4) "
                "ON CONFLICT(key) DO UPDATE SET "
                "count = CASE WHEN expires_at <= ?3 THEN ?2 ELSE count + ?2 END, "
                "expires_at = CASE WHEN expires_at <= ?3 THEN ?3 + ?4 ELSE expires_at END "
                "RETURNING count", (key, amount, now, expiry)).fetchone()
            self._increments += 1
            if self._increments % PURGE_EVERY == 0:
                self._db.execute("DELETE FROM counters WHERE expires_at <= ?", (now,))
        return int(count)

    def _row(self, key: str) -> Optional[Tuple[int, float]]:
        with self._lock:
            row = self._db.execute("SELECT count, expires_at FROM counters WHERE key = ? AND expires_at > ?",
                                   (key, time.time())).fetchone()
        return (int(row[0]), float(row[1])) if row else None

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[1] if row else time.time()

    def check(self) -> bool:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> Optional[int]:
        with self._lock:
            return int(self._db.execute("DELETE FROM counters").rowcount)

    def clear(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM counters WHERE key = ?", (key,))


def storage_uri(env: Optional[Dict[str, str]] = None) -> str:
    """Redis when the cluster's REDIS_* variables are set, else SQLite next to the tracker store."""
    env = dict(os.environ) if env is None else env
    if env.get("REDIS_HOST"):
        password = env.get("REDIS_PASSWORD") or ""
        auth = f":{quote(password, safe='')}@" if password else ""
        return f"redis://{auth}{env['REDIS_HOST']}:{env.get('REDIS_PORT') or 6379}/{env.get('REDIS_DB') or 0}"
    return f"{SQLITE_SCHEME}:///{beside_tracker_db(LIMITS_DB_NAME, env).resolve()}"


class Limiter:
    """`hit(name, key)`: count one event against every limit of `name`; the
    seconds until it is allowed again, or None when it is within the limits."""

    def __init__(self, limits: RateLimits, uri: str) -> None:
        self.limits = limits
        self.storage = storage_from_string(uri)
        self.strategy = FixedWindowRateLimiter(self.storage)

    def hit(self, name: str, key: str) -> Optional[int]:
        for item in self.limits.items(name):
            if not self.strategy.hit(item, name, key):
                reset_at, _ = self.strategy.get_window_stats(item, name, key)
                return max(1, int(reset_at - time.time() + 0.999))
        return None


_limiter_lock = threading.Lock()
_limiters: Dict[Tuple[RateLimits, str], Limiter] = {}


def limiter_for(limits: RateLimits, uri: Optional[str] = None) -> Limiter:
    """One limiter (one storage connection) per configuration per process."""
    key = (limits, uri or storage_uri())
    with _limiter_lock:
        if key not in _limiters:
            _limiters[key] = Limiter(limits, key[1])
        return _limiters[key]
