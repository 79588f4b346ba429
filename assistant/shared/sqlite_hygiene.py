"""Deleted means gone: SQLite keeps deleted rows on disk unless told otherwise.

Probed before this, a "forgotten" e-mail address was still readable in
``tracker.db-wal`` until the server restarted: SQLite only marks deleted cells
as free, and in WAL mode the earlier versions of every page stay in the -wal
file until a checkpoint. So, for the SQLite stores (conversations and call-back
requests):

* every connection runs with ``PRAGMA secure_delete=ON``: freed cells and pages
  are overwritten with zeros (a few microseconds per deleted row);
* after a deletion (forget me, retention) ``scrub`` checkpoints the WAL with
  TRUNCATE: its pages are written into the database file and the -wal file is
  cut to zero bytes, so no earlier version of a page remains.

PostgreSQL needs neither (its VACUUM reclaims deleted tuples; retention is run
daily).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

logger = logging.getLogger(__name__)

CHECKPOINT_ATTEMPTS = 5
# Switching to WAL needs a moment alone with the file, and SQLite answers
# "database is locked" at once, without its busy timeout, when another process
# is opening the same new file (two holders starting together failed CI so).
# WAL is a property of the file: once one connection set it, the rest find it set.
WAL_ATTEMPTS = 50
WAL_RETRY_SECONDS = 0.02


def secure_delete_on_connect(connection: Any, _record: Any) -> None:
    """A SQLAlchemy "connect" listener (SQLite only)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def use_wal(connection: Any) -> None:
    """Put an SQLite database (a DB-API connection) in WAL mode, waiting out
    another connection that is doing the same."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor = connection.cursor()
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
                return
            finally:
                cursor.close()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(WAL_RETRY_SECONDS * (1 + attempt % 5))


def enable_secure_delete(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", secure_delete_on_connect)


def scrub(engine: Engine) -> bool:
    """Checkpoint the WAL of an SQLite database into its file and truncate it.

    A reader in the middle of a transaction (another worker) keeps the WAL busy;
    the checkpoint is retried briefly. True when the WAL was emptied (or the
    database is not SQLite in WAL mode)."""
    if engine.dialect.name != "sqlite":
        return True
    for attempt in range(CHECKPOINT_ATTEMPTS):
        with engine.connect() as connection:
            busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        if not busy:
            return True
        time.sleep(0.05 * (attempt + 1))
    logger.warning("the SQLite WAL could not be checkpointed after a deletion; it will be at the next one")
    return False
