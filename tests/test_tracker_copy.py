"""assistant/rasa_server/tracker_copy.py's copies are Rasa's copies: attribute by
attribute, at every event of a conversation the stack served and through
reverts, loops and restarts; and changing a copy changes neither the tracker
nor the next copy."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
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
    tracker = DialogueStateTracker("copies", domain.slots)
    for event in events:
        tracker.update(event)
        stock = STOCK_COPY(tracker)
        fast = cache.copy(tracker)
        assert snapshot(fast, events) == snapshot(stock, events)
        assert fast.current_state() == stock.current_state()
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
    cache = tracker_copy.CopyCache(size=3)
    tracker_copy.install(cache)
    for number in range(10):
        tracker = DialogueStateTracker(f"visitor-{number}", agent.processor.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        assert tracker.copy().events[0] is tracker.events[0]
    assert len(cache) == 3 and cache.misses == 10
