"""Conversation locks that several server processes can share safely.

A Rasa server takes a ticket lock on a conversation for each message, so two
messages of one conversation never run at once. Rasa's in-memory lock store
only works inside one process, and Rasa 3.6's ``RedisLockStore`` changes a lock
by reading it, changing it in Python and writing it back. Two servers doing
that at the same moment overwrite each other: both get the same ticket, or one
deletes the lock the other is waiting on, and two turns of one conversation run
at once; one turn's events are then lost (RasaHQ/rasa#9213; a fix, #11256, was
reverted in #11428). tests/test_cluster.py caught it: two messages of one
conversation sent to two servers at once lost events.

Both stores here make every read-change-write of a lock one atomic change
(``AtomicLockChanges``); the lock format, ticket order and lifetimes are Rasa's own.

* ``SQLiteLockStore``: the worker processes of one server on one machine
  (`make run`; endpoints.yml). Each change is one SQLite write transaction.
* ``AtomicRedisLockStore``: several servers (`make cluster`;
  endpoints.production.yml). Each change is a Redis transaction (WATCH/MULTI/EXEC,
  retried if another server changed the lock in between).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

from assistant.shared.sqlite_hygiene import use_wal

# A lock nobody touches any more (its server died) is removed this long after
# its last ticket expired.
IDLE_KEY_SECONDS = 60


class AtomicLockChanges:
    """Rasa's lock-store operations, each as one atomic change of the stored lock."""

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Any]) -> Any:
        """Run `change` on the stored lock (a new, empty one if there is none) and
        store the result, atomically: saved while it holds tickets, deleted once
        it holds none."""
        raise NotImplementedError

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        try:
            return int(self._change(conversation_id, lambda lock: lock.issue_ticket(lock_lifetime)))
        except Exception as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error

    def update_lock(self, conversation_id: str) -> None:
        self._change(conversation_id, lambda lock: lock.remove_expired_tickets())

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._change(conversation_id, lambda lock: lock.remove_ticket_for(ticket_number))

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        # finish_serving already deletes the lock, in the same change, when
        # nobody else holds a ticket for it.
        self.finish_serving(conversation_id, ticket_number)


def _expiry(lock: TicketLock) -> float:
    return max(ticket.expires for ticket in lock.tickets)


class AtomicRedisLockStore(AtomicLockChanges, RedisLockStore):
    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, **kwargs: Any) -> None:
        if endpoint_config is not None:  # loaded by module path from endpoints.yml
            kwargs = {"host": endpoint_config.url, **endpoint_config.kwargs}
        super().__init__(**kwargs)

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Any]) -> Any:
        key = self.key_prefix + conversation_id

        def transaction(pipe: Any) -> Any:
            stored = pipe.get(key)
            lock = TicketLock.from_dict(json.loads(stored)) if stored else TicketLock(conversation_id)
            result = change(lock)
            pipe.multi()
            if lock.is_someone_waiting():
                pipe.set(key, lock.dumps(), ex=max(1, int(_expiry(lock) - time.time()) + IDLE_KEY_SECONDS))
            elif stored:
                pipe.delete(key)
            return result

        return self.red.transaction(transaction, key, value_from_callable=True)


class SQLiteLockStore(AtomicLockChanges, LockStore):
    """Locks in an SQLite file shared by the processes of one machine.

        lock_store:
          type: assistant.rasa_server.lock_store.SQLiteLockStore
          db: var/locks.db
    """

    def __init__(self, endpoint_config: Optional[EndpointConfig] = None, db: Optional[str] = None) -> None:
        path = db or (endpoint_config.kwargs.get("db") if endpoint_config else None)
        if not path:
            raise ValueError("SQLiteLockStore needs `db`, the path of its SQLite file")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._connection: Optional[sqlite3.Connection] = None
        self._pid = 0
        with self._transaction() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS locks (conversation_id TEXT PRIMARY KEY, "
                               "lock TEXT NOT NULL, expires REAL NOT NULL)")
            connection.execute("DELETE FROM locks WHERE expires < ?", (time.time() - IDLE_KEY_SECONDS,))
        super().__init__()

    def _db(self) -> sqlite3.Connection:
        # One connection per process: Sanic forks its workers after start-up.
        if self._connection is None or self._pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            use_wal(connection)
            # A lock only means something while its server runs; after a power
            # cut every ticket has expired anyway, so no fsync per change.
            connection.execute("PRAGMA synchronous=OFF")
            self._connection, self._pid = connection, os.getpid()
        return self._connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # the write lock first: no other process in between
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
    def _read(db: sqlite3.Connection, conversation_id: str) -> Optional[TicketLock]:
        row = db.execute("SELECT lock FROM locks WHERE conversation_id = ?", (conversation_id,)).fetchone()
        return TicketLock.from_dict(json.loads(row[0])) if row else None

    @staticmethod
    def _write(db: sqlite3.Connection, lock: TicketLock) -> None:
        db.execute("INSERT OR REPLACE INTO locks (conversation_id, lock, expires) VALUES (?, ?, ?)",
                   (lock.conversation_id, lock.dumps(), _expiry(lock) if lock.tickets else time.time()))

    def _change(self, conversation_id: str, change: Callable[[TicketLock], Any]) -> Any:
        with self._transaction() as db:
            stored = self._read(db, conversation_id)
            lock = stored or TicketLock(conversation_id)
            result = change(lock)
            if lock.is_someone_waiting():
                self._write(db, lock)
            elif stored:
                db.execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))
            return result

    def get_lock(self, conversation_id: str) -> Optional[TicketLock]:
        return self._read(self._db(), conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        with self._transaction() as db:
            self._write(db, lock)

    def delete_lock(self, conversation_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM locks WHERE conversation_id = ?", (conversation_id,))
