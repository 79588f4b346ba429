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
fresh (an empty latest message) is built fresh for each clone. A tracker
that is itself such a copy (what an action is given) is copied from the
replay of the tracker it came from, plus the events it has more. Any other
history (events removed or replaced) replays from the start, as Rasa does.

A form step builds two more trackers of the whole session, for its validation
and for asking the next question (``FormAction._temporary_tracker``: a new
tracker given every event since the latest restart, then the step's own
events; 8% of the CPU of turns 350-399 of one conversation). Those are made
here from the same replay: a clone, then the step's events applied. A
session with a restart in it, or a tracker Rasa would not copy this way,
gets Rasa's own.

tests/test_tracker_copy.py compares the copies and the form's trackers
attribute by attribute with Rasa's at every event of a served conversation
and through reverts, loops and restarts, and tests/test_state_cache.py
compares the replies of a stock server with ours.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections import OrderedDict, deque
from typing import Any, Dict, List, Optional, Set, Tuple

from rasa.core.actions.forms import FormAction
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.events import ActionExecuted, BotUttered, Restarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.shared.patching import replace

CACHED_TRACKERS = 200  # the tracker store keeps as many (assistant/rasa_server/tracker_store.py)


def copy_state(tracker: DialogueStateTracker, events: Any) -> DialogueStateTracker:
    """A new tracker in `tracker`'s state, holding `events`: what later events
    change in place (the slots, the latest action, the active loop) is copied,
    the rest shared."""
    copied = DialogueStateTracker.__new__(DialogueStateTracker)
    copied.__dict__.update(tracker.__dict__)
    copied.__dict__.pop("_applied_memo", None)
    copied.events = deque(events, tracker._max_event_history)
    copied.slots = {name: copy.copy(slot) for name, slot in tracker.slots.items()}
    if tracker.latest_action is not None:
        copied.latest_action = dict(tracker.latest_action)
    if tracker.active_loop is not None:
        copied.active_loop = dataclasses.replace(tracker.active_loop)
    return copied


class _Replay:
    def __init__(self, tracker: DialogueStateTracker) -> None:
        self.tracker = tracker.init_copy()
        self.events: Set[int] = set()  # ids of the event objects applied (kept alive by the deque)
        self.restarted = False

    def continues(self, events: Any) -> bool:
        """Whether `events` start with the very events replayed. The first and the
        last replayed suffice: a conversation's trackers only ever hold its events
        in the order they happened, some left out (Rasa appends to a tracker's
        events and never removes one), so the same object at both ends means the
        same events between them. (Comparing them all was 7.6% of the CPU of
        turns 350-399.)"""
        replayed = self.tracker.events
        count = len(replayed)
        return len(events) >= count and (count == 0 or (events[0] is replayed[0]
                                                         and events[count - 1] is replayed[count - 1]))

    def advance(self, events: Any) -> None:
        for event in events:
            self.tracker.update(event)  # as travel_back_in_time does
            self.events.add(id(event))
            self.restarted = self.restarted or isinstance(event, Restarted)

    def clone(self) -> DialogueStateTracker:
        replayed = self.tracker
        clone = copy_state(replayed, replayed.events)
        if replayed.latest_message is not None and id(replayed.latest_message) not in self.events:
            clone.latest_message = UserUttered.empty()
        if replayed.latest_bot_utterance is not None and id(replayed.latest_bot_utterance) not in self.events:
            clone.latest_bot_utterance = BotUttered.empty()
        return clone


class CopyCache:
    def __init__(self, size: int = CACHED_TRACKERS) -> None:
        self.size = size
        self._replays: OrderedDict[int, _Replay] = OrderedDict()
        self._latest: Dict[str, _Replay] = {}  # sender id -> the replay made or advanced last
        self.hits = self.misses = 0

    def copy(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        return self._clone(tracker)[0]

    def temporary(self, tracker: DialogueStateTracker, events: List[Any]) -> Optional[DialogueStateTracker]:
        """DialogueStateTracker.from_events(sender, the events since the latest
        restart + `events`, slots=the domain's), as a form's step makes it; None
        when the session has a restart or a bounded history."""
        if tracker._max_event_history is not None:
            return None
        temporary, restarted = self._clone(tracker)
        if restarted:
            return None
        for event in events:
            temporary.update(event)
        return temporary

    def _clone(self, tracker: DialogueStateTracker) -> Tuple[DialogueStateTracker, bool]:
        """Rasa's copy of `tracker`, and whether its events include a restart."""
        events = tracker.events
        own = self._replays.get(id(events))
        if own is None or not own.continues(events) or tracker.sender_id != own.tracker.sender_id:
            # A copy of the conversation's tracker (what a form is given): the
            # replay of the tracker it was copied from, plus the events it has more.
            sibling = self._latest.get(tracker.sender_id)
            if sibling is not None and sibling.continues(events):
                self.hits += 1
                clone = sibling.clone()
                more = list(itertools.islice(events, len(sibling.tracker.events), None))
                for event in more:
                    clone.update(event)
                return clone, sibling.restarted or any(isinstance(event, Restarted) for event in more)
        replay = self._replayed(tracker)
        return replay.clone(), replay.restarted

    def _replayed(self, tracker: DialogueStateTracker) -> _Replay:
        events = tracker.events
        replay = self._replays.pop(id(events), None)
        if replay is None or not replay.continues(events) or tracker.sender_id != replay.tracker.sender_id:
            if replay is not None:  # dropped: a deque's id reused by another tracker, or events replaced
                self._drop_latest(replay)
            self.misses += 1
            replay = _Replay(tracker)
            new = list(events)
        else:
            self.hits += 1
            new = list(events)[len(replay.tracker.events):]
        replay.advance(new)
        self._replays[id(events)] = replay
        self._latest[tracker.sender_id] = replay
        if len(self._replays) > self.size:
            self._drop_latest(self._replays.popitem(last=False)[1])
        return replay

    def _drop_latest(self, replay: _Replay) -> None:
        if self._latest.get(replay.tracker.sender_id) is replay:
            del self._latest[replay.tracker.sender_id]

    def forget(self, sender_id: str) -> None:
        """Drop what is kept of a conversation (it was deleted)."""
        for key in [key for key, replay in self._replays.items() if replay.tracker.sender_id == sender_id]:
            del self._replays[key]
        self._latest.pop(sender_id, None)

    def __len__(self) -> int:
        return len(self._replays)


CACHE = CopyCache()


def _replayable(tracker: DialogueStateTracker) -> bool:
    return type(tracker) is DialogueStateTracker and tracker.slots.__class__ is dict  # (not AnySlotDict)


def install(cache: CopyCache = CACHE) -> None:
    """Serve DialogueStateTracker.copy and the forms' temporary trackers from `cache`."""
    stock_temporary = FormAction._temporary_tracker

    def copy_tracker(self: DialogueStateTracker) -> DialogueStateTracker:
        if not _replayable(self):
            return self.travel_back_in_time(float("inf"))  # (subclasses, AnySlotDict: Rasa's way)
        return cache.copy(self)

    def temporary_tracker(self: FormAction, current_tracker: DialogueStateTracker,
                          additional_events: List[Any], domain: Any) -> DialogueStateTracker:
        # Rasa 3.6.21's events for it (forms.py:289)
        events = [SlotSet(REQUESTED_SLOT, self.get_slot_to_fill(current_tracker)),
                  ActionExecuted(self.name()), *additional_events]
        temporary = cache.temporary(current_tracker, events) if _replayable(current_tracker) else None
        if temporary is None:
            return stock_temporary(self, current_tracker, additional_events, domain)
        return temporary

    replace(DialogueStateTracker, "copy", copy_tracker)
    replace(FormAction, "_temporary_tracker", temporary_tracker)
