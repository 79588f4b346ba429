"""Read the tracker store's events table, in one pass, for the report.

Works on any store the bot writes (SQLite by default, PostgreSQL in the
production profile). Only the columns Rasa keeps next to each event are read
for most rows; an event's JSON is parsed only where the report needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Optional

import sqlalchemy as sa

from assistant.paths import PROJECT_ROOT

BATCH = 20_000


def default_store_url() -> str:
    """The store `make run` writes: TRACKER_DB, or var/tracker.db."""
    return f"sqlite:///{os.environ.get('TRACKER_DB') or PROJECT_ROOT / 'var' / 'tracker.db'}"


@dataclass(frozen=True)
class EventRow:
    sender_id: str
    type_name: str
    intent_name: Optional[str]
    action_name: Optional[str]  # also the slot's or the form's name for those events
    timestamp: float
    data: Optional[str]  # the event's JSON; only for the types the report reads


# The event types whose JSON the report reads; for every other row only the
# columns above are fetched.
NEEDS_DATA = ("user", "bot", "slot")
QUERY = sa.text(
    "SELECT sender_id, type_name, intent_name, action_name, timestamp, "
    f"CASE WHEN type_name IN ({', '.join(repr(kind) for kind in NEEDS_DATA)}) THEN data END "
    "FROM events WHERE timestamp >= :since AND timestamp < :until ORDER BY id")


def read_events(url: str, since: Optional[datetime] = None,
                until: Optional[datetime] = None) -> Iterator[EventRow]:
    """Every event in the period, in the order they were stored."""
    if url.startswith("sqlite:///") and not os.path.exists(url[len("sqlite:///"):]):
        return  # no store yet (and connecting would create an empty file)
    engine = sa.create_engine(url)
    bounds = {"since": since.timestamp() if since else 0.0,
              "until": until.timestamp() if until else 1e12}
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("events"):
                return  # nothing stored yet: the bot has never run on this store
            result = connection.execution_options(stream_results=True).execute(QUERY, bounds)
            while True:
                rows = result.fetchmany(BATCH)
                if not rows:
                    break
                for row in rows:
                    yield EventRow(*row)
    finally:
        engine.dispose()
