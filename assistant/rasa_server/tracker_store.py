"""Rasa's SQL tracker store, plus the two deletions privacy needs.

Configured in endpoints.yml as ``type: assistant.rasa_server.tracker_store.PrivacySQLTrackerStore``
with the same settings as Rasa's ``SQL`` store (SQLite or PostgreSQL).

* "Forget me": the turn in which ``action_forget_me`` ran is not saved;
  instead every stored event of that conversation is deleted. Deleting from
  inside the action server would not work: Rasa would write the whole
  in-memory conversation back when the turn ends.
* Retention: ``delete_inactive_before`` removes conversations whose last event
  is older than a cut-off (``make retention``).
* Deleted means gone: on SQLite every connection uses ``secure_delete`` and
  each deletion ends with a WAL checkpoint (assistant/shared/sqlite_hygiene.py), so a
  forgotten e-mail address is neither in tracker.db nor in tracker.db-wal.
* Speed: the two queries of every turn (load the latest session's events;
  count them before saving new ones) are plain SQL, not ORM queries that
  SQLAlchemy rebuilds and re-keys each time (a tenth of the server's CPU under
  load). On SQLite (the default) connections are kept instead of opened per
  query, and the journal is WAL with ``synchronous=NORMAL`` instead of an fsync
  at every commit. Measured by `make bench`.
* Speed: the tracker this process saved last for a conversation is kept in
  memory (for the 200 most recent conversations), and reused on the next turn
  when the store still holds exactly what it saved: the same number of latest-session
  events with the same latest timestamp. Another server's turn, a deletion or a
  turn that failed before saving all change that, and the tracker is then
  loaded from the store as usual. Loading and replaying a conversation's
  events was a tenth of each turn. What "still holds" is checked with
  the conversation's first and latest event (a seek each in the sender
  index), and the events to append are counted from what the turn loaded:
  counts over the whole session each turn were a tenth of the CPU of turn
  400 of one conversation (issue 20).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import func
from sqlalchemy.pool import QueuePool

from assistant.contracts import ACTION_FORGET_ME
from assistant.shared.sqlite_hygiene import scrub, secure_delete_on_connect, use_wal

logger = logging.getLogger(__name__)



def forgotten_this_turn(tracker: DialogueStateTracker) -> bool:
    """Did action_forget_me run, and confirm, since the visitor's latest message?

    If the action server failed, no confirmation follows the action: the
    conversation is then kept, and the visitor can ask again.
    """
    confirmed = False
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered):
            confirmed = True
        if isinstance(event, ActionExecuted) and event.action_name == ACTION_FORGET_ME:
            return confirmed
    return False


# The events of a conversation's latest session (Rasa's own rule: from its
# latest session_started event on, or everything if it has none), in order.
LATEST_SESSION = """
    FROM events
    WHERE sender_id = :sender
      AND timestamp >= COALESCE((SELECT MAX(timestamp) FROM events
                                 WHERE sender_id = :sender AND type_name = :session_started), 0)
"""
LATEST_SESSION_EVENTS = sa.text("SELECT data" + LATEST_SESSION + "ORDER BY id")
LATEST_SESSION_COUNT = sa.text("SELECT COUNT(*)" + LATEST_SESSION)
LATEST_SESSION_MARK = sa.text("SELECT COUNT(*), MAX(timestamp)" + LATEST_SESSION)
# The conversation in the store: its first event's id, its latest event's id
# and timestamp. Another turn's events change the latest; a deletion takes the
# first away; a conversation deleted and begun again, whose ids SQLite may hand
# out again, has new timestamps. Each part is one seek in the sender index,
# however long the conversation. The count this replaced walked the index
# range: 0.6 ms for 6,000 events, twice a turn (py-spy, turns 440-660 of one
# conversation).
CONVERSATION_MARK = sa.text(
    "SELECT (SELECT MIN(id) FROM events WHERE sender_id = :sender), id, timestamp "
    "FROM events WHERE sender_id = :sender ORDER BY id DESC LIMIT 1")
Mark = Optional[Tuple[int, int, float]]
CACHED_TRACKERS = 200  # conversations active right now; each tracker is up to a few hundred KB


def _latest(events: Any, count: int) -> List[Any]:
    """The last `count` events of a tracker's deque, in order, read from its
    end (islice from the start steps over every earlier event)."""
    return list(itertools.islice(reversed(events), max(count, 0)))[::-1]


@dataclass
class _Saved:
    """A tracker as this process saved it, and what the store held right after."""

    tracker: DialogueStateTracker
    mark: Mark  # what the store held right after: CONVERSATION_MARK
    events: int  # len(tracker.events) then: a turn that failed later added more


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    use_wal(connection)
    cursor = connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    secure_delete_on_connect(connection, _record)


class PrivacySQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._saved: OrderedDict[str, _Saved] = OrderedDict()
        # during a save (which awaits inside): sender -> the stored count _additional_events uses
        self._loading: Dict[str, int] = {}
        # sender -> (the tracker a turn loaded, its events then): the store's latest session
        self._loaded: OrderedDict[str, Tuple[DialogueStateTracker, int]] = OrderedDict()
        if self.engine.dialect.name == "sqlite":  # type: ignore[has-type]
            self._tune_sqlite()

    def _tune_sqlite(self) -> None:
        """SQLAlchemy 1.4 opens a new SQLite connection for every query (NullPool)
        and SQLite's default journal fsyncs at every commit: milliseconds per turn.
        With WAL and synchronous=NORMAL a stored turn survives a crash of the bot;
        only a power cut can lose the last turns. (Call-back requests have their
        own store with full durability: assistant/callback_requests/store.py.)"""
        stock_engine: Any = self.engine  # type: ignore[has-type]
        url = stock_engine.url
        stock_engine.dispose()
        # Rasa uses the store from its event loop's thread only.
        self.engine = sa.create_engine(url, poolclass=QueuePool, connect_args={"check_same_thread": False})
        sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    async def save(self, tracker: DialogueStateTracker) -> None:
        if forgotten_this_turn(tracker):
            deleted = self.delete_conversation(tracker.sender_id)
            logger.info("conversation forgotten at the visitor's request (%d events deleted)", deleted)
            return
        self._saved.pop(tracker.sender_id, None)
        loaded = self._loaded.pop(tracker.sender_id, None)
        known = loaded[1] if loaded is not None and loaded[0] is tracker else None
        if known is not None:
            self._loading[tracker.sender_id] = known
        try:
            await super().save(tracker)
        finally:
            self._loading.pop(tracker.sender_id, None)
        self._remember(tracker, known)

    def _mark(self, session: Any, sender_id: str) -> Mark:
        row = session.execute(CONVERSATION_MARK, {"sender": sender_id}).one_or_none()
        return None if row is None else (int(row[0]), int(row[1]), float(row[2]))

    def _remember(self, tracker: DialogueStateTracker, loaded: Optional[int]) -> None:
        """Keep the tracker if it holds exactly the store's latest session (not
        when this turn started a new session: it still holds the old one too).
        `loaded`: how many of its events the store held as its latest session
        when the turn loaded it, if known."""
        this_turn = [] if loaded is None else _latest(tracker.events, len(tracker.events) - loaded)
        new_session = loaded is None or any(isinstance(event, SessionStarted) for event in this_turn)
        with self.session_scope() as session:
            if new_session:
                count, _ = self._latest_session(session, LATEST_SESSION_MARK, tracker.sender_id).one()
                if int(count) != len(tracker.events):
                    return
            mark = self._mark(session, tracker.sender_id)
        self._saved[tracker.sender_id] = _Saved(tracker, mark, len(tracker.events))
        if len(self._saved) > CACHED_TRACKERS:
            self._saved.popitem(last=False)

    def _unchanged(self, session: Any, sender_id: str) -> Optional[DialogueStateTracker]:
        """The tracker this process saved last, if the store still holds exactly that."""
        saved = self._saved.pop(sender_id, None)
        if saved is None or len(saved.tracker.events) != saved.events:
            return None
        if self._mark(session, sender_id) != saved.mark:
            return None
        self._saved[sender_id] = saved  # most recently used
        return saved.tracker

    def _latest_session(self, session: Any, query: Any, sender_id: str) -> Any:
        return session.execute(query, {"sender": sender_id, "session_started": SessionStarted.type_name})

    async def _retrieve(self, sender_id: str,
                        fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        if fetch_events_from_all_sessions:
            return await super()._retrieve(sender_id, fetch_events_from_all_sessions)
        with self.session_scope() as session:
            tracker = self._unchanged(session, sender_id)
            if tracker is None:
                rows = self._latest_session(session, LATEST_SESSION_EVENTS, sender_id).scalars().all()
                if not (self.domain and rows):
                    return None
                tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(row) for row in rows],
                                                         self.domain.slots)
        self._loaded.pop(sender_id, None)
        self._loaded[sender_id] = (tracker, len(tracker.events))
        if len(self._loaded) > CACHED_TRACKERS:
            self._loaded.popitem(last=False)
        return tracker

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        stored = self._loading.get(tracker.sender_id)  # the turn's tracker: the store held that many
        if stored is None:
            stored = int(self._latest_session(session, LATEST_SESSION_COUNT, tracker.sender_id).scalar())
        return iter(_latest(tracker.events, len(tracker.events) - stored))

    def delete_conversation(self, sender_id: str) -> int:
        self._forget_in_memory(sender_id)
        with self.session_scope() as session:
            deleted = (session.query(self.SQLEvent)
                       .filter(self.SQLEvent.sender_id == sender_id)
                       .delete(synchronize_session=False))
            session.commit()
        scrub(self.engine)
        return int(deleted)

    def _forget_in_memory(self, sender_id: str) -> None:
        """What this process keeps of a deleted conversation: its trackers here and
        the speed-ups' replays (another worker's go as they are evicted)."""
        from assistant.rasa_server import state_cache, tracker_copy

        self._saved.pop(sender_id, None)
        self._loaded.pop(sender_id, None)
        state_cache.CACHE.forget(sender_id)
        tracker_copy.CACHE.forget(sender_id)

    def delete_inactive_before(self, cutoff_timestamp: float) -> int:
        """Delete every conversation whose latest event is older than the cut-off."""
        self._saved.clear()
        self._loaded.clear()
        with self.session_scope() as session:
            stale = (session.query(self.SQLEvent.sender_id)
                     .group_by(self.SQLEvent.sender_id)
                     .having(func.max(self.SQLEvent.timestamp) < cutoff_timestamp)
                     .subquery())
            senders = [row[0] for row in session.query(stale.c.sender_id)]
            for sender_id in senders:
                self._forget_in_memory(sender_id)
            for start in range(0, len(senders), 500):  # keep IN (...) lists small
                (session.query(self.SQLEvent)
                 .filter(self.SQLEvent.sender_id.in_(senders[start:start + 500]))
                 .delete(synchronize_session=False))
            session.commit()
        if senders:
            scrub(self.engine)
        return len(senders)
