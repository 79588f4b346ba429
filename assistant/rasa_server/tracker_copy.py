"""Tracker copies without replaying the whole session every time (issue 20).

Rasa copies the conversation's tracker before running each action
(``MessageProcessor._run_action``, and a form again before activating), and
``DialogueStateTracker.copy`` builds the copy by replaying every event of the
session into a new tracker: three or four replays per turn, each as long as
the conversation (13% of the CPU of turns 350-399 of one conversation, after
the dialogue-state cache of assistant/rasa_server/state_cache.py).

Here the replay is kept per tracker and resumed: when the tracker's events
still start with the very events replayed before, only the new ones are
applied, and the copy is a clone of that replayed tracker: a new event deque
holding the same event objects (as Rasa's copy does), copies of the slots,
of the latest action and of the active loop (what later events change in
place), and the same latest user and bot events. Whatever the replay built
fresh (an empty latest message) is built fresh for each clone. Any other
history (events removed or replaced) replays from the start, as Rasa does.

tests/test_tracker_copy.py compares the copies attribute by attribute with
Rasa's at every event of a served conversation and through reverts and
loops, and tests/test_state_cache.py compares the replies of a stock server
with ours.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict, deque
from typing import Any, Set

from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.shared.patching import replace

CACHED_TRACKERS = 200  # the tracker store keeps as many (assistant/rasa_server/tracker_store.py)


class _Replay:
    def __init__(self, tracker: DialogueStateTracker) -> None:
        self.tracker = tracker.init_copy()
        self.events: Set[int] = set()  # ids of the event objects applied (kept alive by the deque)

    def continues(self, events: Any) -> bool:
        replayed = self.tracker.events
        return len(events) >= len(replayed) and all(a is b for a, b in zip(events, replayed, strict=False))

    def advance(self, events: Any) -> None:
        for event in events:
            self.tracker.update(event)  # as travel_back_in_time does
            self.events.add(id(event))

    def clone(self) -> DialogueStateTracker:
        replayed = self.tracker
        clone = DialogueStateTracker.__new__(DialogueStateTracker)
        clone.__dict__.update(replayed.__dict__)
        clone.__dict__.pop("_applied_memo", None)
        clone.events = deque(replayed.events, replayed._max_event_history)
        clone.slots = {name: copy.copy(slot) for name, slot in replayed.slots.items()}
        if replayed.latest_action is not None:
            clone.latest_action = dict(replayed.latest_action)
        if replayed.active_loop is not None:
            clone.active_loop = dataclasses.replace(replayed.active_loop)
        if replayed.latest_message is not None and id(replayed.latest_message) not in self.events:
            clone.latest_message = UserUttered.empty()
        if replayed.latest_bot_utterance is not None and id(replayed.latest_bot_utterance) not in self.events:
            clone.latest_bot_utterance = BotUttered.empty()
        return clone


class CopyCache:
    def __init__(self, size: int = CACHED_TRACKERS) -> None:
        self.size = size
        self._replays: OrderedDict[int, _Replay] = OrderedDict()
        self.hits = self.misses = 0

    def copy(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        events = tracker.events
        replay = self._replays.pop(id(events), None)
        if replay is None or not replay.continues(events) or tracker.sender_id != replay.tracker.sender_id:
            self.misses += 1
            replay = _Replay(tracker)
            new = list(events)
        else:
            self.hits += 1
            new = list(events)[len(replay.tracker.events):]
        replay.advance(new)
        self._replays[id(events)] = replay
        if len(self._replays) > self.size:
            self._replays.popitem(last=False)
        return replay.clone()

    def __len__(self) -> int:
        return len(self._replays)


CACHE = CopyCache()


def install(cache: CopyCache = CACHE) -> None:
    """Serve DialogueStateTracker.copy from `cache`."""

    def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
        if type(self) is not DialogueStateTracker or self.slots.__class__ is not dict:
            return self.travel_back_in_time(float("inf"))  # (subclasses, AnySlotDict: Rasa's way)
        return cache.copy(self)

    replace(DialogueStateTracker, "copy", copy_tracker)
