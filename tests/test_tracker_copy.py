"""assistant/rasa_server/tracker_copy.py's copies are Rasa's copies: attribute by
attribute, at every event of a conversation the stack served and through
reverts, loops and restarts, also copies of copies and the trackers a form
step builds; and changing a copy changes neither the tracker nor the next
copy."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.core.actions.forms import FormAction
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Restarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.rasa_server import tracker_copy

STOCK_COPY = DialogueStateTracker.copy
STOCK_TEMPORARY = FormAction._temporary_tracker


def snapshot(tracker: DialogueStateTracker, events: List[Any]) -> Dict[str, Any]:
    """Everything a copy holds; event objects by identity, and "fresh" for an
    object that is not one of the conversation's events."""
    def which(value: Any) -> Any:
        if value is None:
            return None
        return next((("event", index) for index, event in enumerate(events) if event is value),
                    ("fresh", {key: item for key, item in value.as_dict().items() if key != "timestamp"}))

    state = {key: value for key, value in vars(tracker).items() if key != "_applied_memo"}
    state["events"] = [which(event) for event in tracker.events]
    state["maxlen"] = tracker.events.maxlen
    state["slots"] = {name: (type(slot), vars(slot)) for name, slot in tracker.slots.items()}
    state["latest_message"] = which(tracker.latest_message)
    state["latest_bot_utterance"] = which(tracker.latest_bot_utterance)
    return state


def compare_along(events: List[Any], domain: Any, monkeypatch: pytest.MonkeyPatch) -> tracker_copy.CopyCache:
    cache = tracker_copy.CopyCache()
    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    monkeypatch.setattr(FormAction, "_temporary_tracker", FormAction._temporary_tracker)
    tracker_copy.install(cache)
    form = FormAction("callback_form", None)
    tracker = DialogueStateTracker("copies", domain.slots)
    for event in events:
        tracker.update(event)
        stock = STOCK_COPY(tracker)
        fast = cache.copy(tracker)
        assert snapshot(fast, events) == snapshot(stock, events)
        assert fast.current_state() == stock.current_state()
        # What an action is given is a copy, with the policy's events added;
        # a form copies it again, and builds a tracker for each of its steps.
        fast.update(SlotSet("callback_time", "mornings"))
        stock_step = STOCK_TEMPORARY(form, fast, [SlotSet("callback_name", "Sam")], domain)
        fast_step = form._temporary_tracker(fast, [SlotSet("callback_name", "Sam")], domain)
        assert snapshot(fast_step, events) == snapshot(stock_step, events)
        assert snapshot(cache.copy(fast), events) == snapshot(STOCK_COPY(fast), events)
        # The action runs on the copy: what it changes stays there.
        fast.update(SlotSet("callback_name", "changed"))
        if fast.active_loop is not None:
            fast.active_loop.rejected = not fast.active_loop.rejected
        assert snapshot(cache.copy(tracker), events) == snapshot(stock, events)
    return cache


def test_copies_are_rasas_along_a_served_conversation(agent: Any, served_events: List[Any],  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = compare_along(served_events, agent.processor.domain, monkeypatch)
    assert cache.hits > 10 * cache.misses


def test_copies_are_rasas_through_reverts_loops_and_restarts(agent: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    greet = {"name": "greet", "confidence": 1.0}
    script = [ActionExecuted("action_listen"), UserUttered("hi", greet), ActionExecuted("utter_greet"),
              BotUttered("hello"), ActionExecuted("action_listen"), UserUttered("/request_callback", greet),
              ActionExecuted("callback_form"), ActiveLoop("callback_form"), SlotSet("requested_slot", "name"),
              ActionExecuted("action_listen"), UserUttered("Sam", greet), UserUtteranceReverted(),
              ActionExecuted("callback_form"), ActionReverted(), ActiveLoop(None), Restarted(),
              ActionExecuted("action_listen"), UserUttered("hi", greet), ActionExecuted("utter_greet")]
    compare_along(script, agent.processor.domain, monkeypatch)


def test_the_patch_serves_copy_and_is_bounded(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    monkeypatch.setattr(FormAction, "_temporary_tracker", FormAction._temporary_tracker)
    cache = tracker_copy.CopyCache(size=3)
    tracker_copy.install(cache)
    for number in range(10):
        tracker = DialogueStateTracker(f"visitor-{number}", agent.processor.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        assert tracker.copy().events[0] is tracker.events[0]
    assert len(cache) == 3 and cache.misses == 10


def test_what_is_kept_stays_bounded_when_trackers_come_and_go(agent: Any) -> None:
    """Trackers dropped by the store (a new session, "forget me", retention) free
    their event deques, whose ids new trackers then reuse: nothing of the old
    conversations may stay behind."""
    cache = tracker_copy.CopyCache(size=3)
    for number in range(50):
        gone = DialogueStateTracker(f"gone-{number}", agent.processor.domain.slots)
        gone.update(ActionExecuted("action_listen"))
        cache.copy(gone)
        del gone
        kept = DialogueStateTracker(f"kept-{number}", agent.processor.domain.slots)
        kept.update(ActionExecuted("action_listen"))
        cache.copy(kept)
    assert len(cache) <= 3 and len(cache._latest) <= 3


def test_a_deleted_conversation_leaves_no_replay(agent: Any, tmp_path: Any) -> None:
    import asyncio

    from assistant.rasa_server import state_cache
    from assistant.rasa_server.tracker_store import PrivacySQLTrackerStore

    domain = agent.processor.domain
    tracker = DialogueStateTracker("forget-me", domain.slots)
    for event in [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0}),
                  ActionExecuted("utter_greet")]:
        tracker.update(event)
    tracker_copy.CACHE.copy(tracker)
    state_cache.CACHE.states(domain, tracker)
    store = PrivacySQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "tracker.db"))
    asyncio.run(store.save(tracker))
    store.delete_conversation("forget-me")
    assert "forget-me" not in tracker_copy.CACHE._latest
    assert all(replay.tracker.sender_id != "forget-me" for replay in tracker_copy.CACHE._replays.values())
    assert all(key[0] != "forget-me" for key in state_cache.CACHE._replays)
