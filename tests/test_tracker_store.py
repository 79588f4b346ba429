"""The tracker store's plain-SQL session queries return exactly what Rasa's own
SQL store returns, across several sessions, and saving appends only new events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, List, Tuple

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.paths import PROJECT_ROOT
from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))


def session(start: float, text: str) -> List[Any]:
    return [
        ActionExecuted("action_session_start", timestamp=start),
        SessionStarted(timestamp=start + 0.1),
        SlotSet("clinic_name", "Example", timestamp=start + 0.2),
        ActionExecuted("action_listen", timestamp=start + 0.3),
        UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=start + 0.4),
        BotUttered("hello", timestamp=start + 0.5),
        ActionExecuted("action_listen", timestamp=start + 0.6),
    ]


def event_dicts(tracker: Any) -> List[dict]:
    return [event.as_dict() for event in tracker.events]


def three_turns(store: Any) -> Any:
    """A first session, then (as Rasa does each turn) retrieve, add events, save:
    a second session starting, then one more exchange in it."""
    asyncio.run(store.save(DialogueStateTracker.from_events("visitor", session(1000.0, "hi"), DOMAIN.slots)))
    more = [UserUttered("and another thing", {"name": "greet", "confidence": 1.0}, timestamp=2001.0),
            BotUttered("sure", timestamp=2001.1), ActionExecuted("action_listen", timestamp=2001.2)]
    for new_events in (session(2000.0, "hello again"), more):
        tracker = asyncio.run(store.retrieve("visitor"))
        for event in new_events:
            tracker.update(event)
        asyncio.run(store.save(tracker))
    with store.session_scope() as db_session:
        stored = db_session.query(store.SQLEvent).count()
    return asyncio.run(store.retrieve("visitor")), stored


def test_latest_session_and_saving_match_rasas_own_store(tmp_path: Path) -> None:
    ours = PrivacySQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "ours.db"))
    stock = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(tmp_path / "stock.db"))
    (mine, stored_here), (rasas, stored_by_rasa) = three_turns(ours), three_turns(stock)
    assert event_dicts(mine) == event_dicts(rasas)
    assert event_dicts(mine)[0]["timestamp"] == 2000.1  # from the latest session_started on
    assert stored_here == stored_by_rasa == 17  # every event stored exactly once
    assert asyncio.run(ours.retrieve("nobody")) is None


def reply_turn(start: float, text: str) -> List[Any]:
    return [UserUttered(text, {"name": "greet", "confidence": 1.0}, timestamp=start),
            BotUttered("ok", timestamp=start + 0.1), ActionExecuted("action_listen", timestamp=start + 0.2)]


def take_turn(store: Any, events: List[Any]) -> Any:
    tracker = asyncio.run(store.retrieve("visitor"))
    for event in events:
        tracker.update(event)
    asyncio.run(store.save(tracker))
    return tracker


def test_the_tracker_saved_last_is_reused_only_while_the_store_still_holds_it(tmp_path: Path) -> None:
    db = str(tmp_path / "cache.db")
    here = PrivacySQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)
    other_server = PrivacySQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)
    asyncio.run(here.save(DialogueStateTracker.from_events("visitor", session(1000.0, "hi"), DOMAIN.slots)))
    take_turn(here, reply_turn(1001.0, "one"))
    saved = take_turn(here, reply_turn(1002.0, "two"))
    # The next turn gets the very tracker it saved, with what the store holds.
    reused = asyncio.run(here.retrieve("visitor"))
    assert reused is saved
    assert event_dicts(reused) == event_dicts(asyncio.run(other_server.retrieve("visitor")))

    # Another server takes a turn: this one must not use its stale copy.
    take_turn(other_server, reply_turn(1003.0, "three"))
    fresh = asyncio.run(here.retrieve("visitor"))
    assert fresh is not saved and [e.text for e in fresh.events if isinstance(e, UserUttered)][-1] == "three"

    # A turn that failed after changing the tracker, before saving: not reused.
    take_turn(here, reply_turn(1004.0, "four"))
    dirty = asyncio.run(here.retrieve("visitor"))
    dirty.update(UserUttered("never saved", timestamp=1005.0))
    again = asyncio.run(here.retrieve("visitor"))
    assert "never saved" not in [e.text for e in again.events if isinstance(e, UserUttered)]

    # Deleted elsewhere (`make retention`, "forget me" on another server):
    # gone, not served from memory.
    take_turn(here, reply_turn(1006.0, "five"))
    other_server.delete_conversation("visitor")
    assert asyncio.run(here.retrieve("visitor")) is None


def test_a_conversation_deleted_and_begun_again_elsewhere_is_not_served_from_memory(tmp_path: Path) -> None:
    """Forgotten on another server, then begun again there with as many events:
    SQLite hands out the deleted ids again, so only the new events' timestamps
    tell the two apart. (The event count and latest id used before could not.)"""
    db = str(tmp_path / "again.db")
    here = PrivacySQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)
    other_server = PrivacySQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=db)

    def begin(store: Any, start: float, text: str) -> Tuple[Any, List[int]]:
        first = DialogueStateTracker.from_events("visitor", session(start, "hi"), DOMAIN.slots)
        asyncio.run(store.save(first))
        tracker = take_turn(store, reply_turn(start + 1, text))
        with store.session_scope() as db_session:
            return tracker, sorted(row.id for row in db_session.query(store.SQLEvent))

    old_tracker, old_ids = begin(here, 1000.0, "my old secret")
    other_server.delete_conversation("visitor")
    _, new_ids = begin(other_server, 3000.0, "hello")
    assert new_ids == old_ids
    served = asyncio.run(here.retrieve("visitor"))
    assert served is not None and served is not old_tracker
    assert [e.text for e in served.events if isinstance(e, UserUttered)][-1] == "hello"
