"""Dialogue states computed once per turn, not once per turn per turn (issue 20).

Both policies ask Rasa for the dialogue states of the tracker's whole history
(``Domain.states_for_tracker_history``), up to three times a prediction and a
few predictions a turn, although MemoizationPolicy then keeps the last four
and the rules are a few states long. Rasa replays every applied event of the
session into a fresh tracker and builds a state before each action, so a turn
costs in proportion to the conversation's length. py-spy, one conversation on
one worker (profiles of turns 0-49 and 350-399): this replay was 62% of the
late turns' CPU, and turn 350-399 took 7.9 times as long as turn 0-49.

Here the replay is kept, per conversation and per set of arguments, and
resumed: when the session's applied events still start with the very events
(the same objects: the tracker store hands back the tracker it saved, see
assistant/rasa_server/tracker_store.py) that were replayed before, only the new events are
applied, and the states built before each action so far are reused. The state
after the last event is built afresh each call, as Rasa does. When the
applied events changed near their end instead (a form's step undoes the
previous step's listen and message: py-spy, turns 350-399 of one
conversation, replaying from the start after that was 16% of the CPU), the
replay goes back to the latest of its last few checkpoints, taken before each
user message, that lies before the first changed event, and goes on from
there. Anything else (a new session, another model, a tracker loaded from
the store) replays from the start, i.e. exactly Rasa's own loop.

The states are the same values Rasa computes: the same code builds them, on a
tracker that got the same events in the same order. One difference in object
identity is harmless and was checked: Rasa's featurizer normalises the states
it returns in place (user text dropped where an intent is present; for the
last state, text or intent dropped), and a cached state may already have been
normalised by an earlier call; the normalisation is idempotent and the last
state, the only one changed otherwise, is never cached.
tests/test_state_cache.py compares predictions and replies with and without
the cache on real conversations (rules, forms, the fallback, follow-ups).

Bounded: the CACHED_CONVERSATIONS most recently used (conversation, arguments)
pairs per process; each holds a tracker and a list of small dicts that share
the conversation's event objects.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Tuple

import rasa.shared.core.constants as constants
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, ActiveLoop, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.rasa_server.tracker_copy import copy_state
from assistant.shared.patching import replace

CACHED_CONVERSATIONS = 600  # 200 conversations x the two argument sets the policies use, + spare


CHECKPOINTS = 8  # the replay can go back this many user messages


@dataclass
class _Checkpoint:
    """A replay's state just before one of the events it applied."""

    position: int  # how many events had been applied
    states: int  # how many states had been kept
    last_ml_action_sub_state: Any
    turn_was_hidden: bool
    tracker: DialogueStateTracker  # a copy of its state then, without its events


@dataclass
class _Replay:
    """Rasa's loop in Domain.states_for_tracker_history, stopped after some events."""

    domain: Domain
    omit_unset_slots: bool
    ignore_rule_only_turns: bool
    rule_only_data: Optional[Dict[str, Any]]
    tracker: DialogueStateTracker  # has had exactly the replayed events applied
    states: List[State] = field(default_factory=list)  # one per ActionExecuted replayed
    last_ml_action_sub_state: Any = None
    turn_was_hidden: bool = False
    checkpoints: Deque[_Checkpoint] = field(default_factory=lambda: deque(maxlen=CHECKPOINTS))
    fold: Any = None  # the applied-events memo (_Applied) the replayed events came from

    def step(self, prior: DialogueStateTracker, hide_rule_turn: bool, states: List[State]) -> None:
        """One iteration of Rasa's loop, for the tracker `prior` (Rasa 3.6.21, domain.py:1356)."""
        domain = self.domain
        if self.ignore_rule_only_turns:
            if not self.turn_was_hidden:
                self.last_ml_action_sub_state = domain._get_prev_action_sub_state(prior)
            if not prior.followup_action and prior.latest_action_name != prior.active_loop_name:
                self.turn_was_hidden = hide_rule_turn
            if self.turn_was_hidden:
                return
        state = domain.get_active_state(prior, omit_unset_slots=self.omit_unset_slots)
        if self.ignore_rule_only_turns:
            domain._remove_rule_only_features(state, self.rule_only_data)
            if states:
                domain._substitute_rule_only_user_input(state, states[-1])
            if self.last_ml_action_sub_state:
                state[constants.PREVIOUS_ACTION] = self.last_ml_action_sub_state
        states.append(domain._clean_state(state))

    def advance(self, events: List[Any]) -> None:
        """Apply more events, keeping the state before each action (Rasa's
        generate_all_prior_trackers yields the tracker before each ActionExecuted)."""
        for event in events:
            if isinstance(event, ActionExecuted):
                self.step(self.tracker, event.hide_rule_turn, self.states)
            elif isinstance(event, UserUttered):
                self.checkpoints.append(_Checkpoint(len(self.tracker.events), len(self.states),
                                                    self.last_ml_action_sub_state, self.turn_was_hidden,
                                                    copy_state(self.tracker, ())))
            self.tracker.update(event)

    def all_states(self) -> List[State]:
        """The states so far plus the state after the last event, which is not
        kept: the next event decides whether it is a state before an action."""
        states = list(self.states)
        saved = (self.last_ml_action_sub_state, self.turn_was_hidden)
        self.step(self.tracker, False, states)
        self.last_ml_action_sub_state, self.turn_was_hidden = saved
        return states

    def continues(self, applied: List[Any], fold: Any) -> bool:
        """Do the session's applied events start with the replayed ones?

        When they come from the same incremental fold as last time
        (applied_events below: `fold` is its memo), only the first and the last
        replayed event are compared: that fold only appends events or removes
        some, and removing any event before the last replayed one moves it to
        a lower index. Comparing every event was 5% of the CPU of turns
        440-660 of one conversation (py-spy). A fold started afresh (a new
        loop's name decides past loop actions anew) is compared event by event."""
        replayed = self.tracker.events
        count = len(replayed)
        if len(applied) < count:
            return False
        if fold is not None and fold is self.fold:
            return not count or (applied[0] is replayed[0] and applied[count - 1] is replayed[-1])
        return all(a is b for a, b in zip(applied, replayed, strict=False))

    def rewind(self, applied: List[Any], fold: Any) -> bool:
        """Go back to the latest checkpoint before the first event of `applied`
        that differs from what was replayed; False if there is none."""
        if not self.checkpoints:
            return False
        replayed = self.tracker.events
        same = self._first_difference(applied, replayed, self.checkpoints[0].position, fold)
        while self.checkpoints and self.checkpoints[-1].position > same:
            self.checkpoints.pop()
        if not self.checkpoints:
            return False
        back = self.checkpoints.pop()  # advance() takes it again
        self.tracker = copy_state(back.tracker, applied[:back.position])
        del self.states[back.states:]
        self.last_ml_action_sub_state = back.last_ml_action_sub_state
        self.turn_was_hidden = back.turn_was_hidden
        return True

    def _first_difference(self, applied: List[Any], replayed: Any, start: int, fold: Any) -> int:
        """The index of the first event where `applied` and `replayed` differ.
        From the same fold, only events from `start` on are compared (the
        oldest checkpoint's position: an earlier difference sends every
        checkpoint away, and by continues()'s argument, the event just before
        `start` tells whether there is one)."""
        if fold is None or fold is not self.fold:
            start = 0
        elif start and (len(applied) < start or applied[start - 1] is not replayed[start - 1]):
            return 0
        tail = zip(applied[start:], itertools.islice(replayed, start, None), strict=False)
        different = next((index for index, (a, b) in enumerate(tail) if a is not b), None)
        return start + different if different is not None else min(len(applied), len(replayed))


class StateCache:
    def __init__(self, size: int = CACHED_CONVERSATIONS) -> None:
        self.size = size
        self._replays: OrderedDict[Tuple[str, int, bool, bool], _Replay] = OrderedDict()
        self.hits = self.misses = self.rewound = 0

    def states(self, domain: Domain, tracker: DialogueStateTracker, omit_unset_slots: bool = False,
               ignore_rule_only_turns: bool = False,
               rule_only_data: Optional[Dict[str, Any]] = None) -> List[State]:
        # Per tracker object too: a form's validation builds a temporary tracker
        # of the same conversation, which must not evict the real one's replay.
        key = (tracker.sender_id, id(tracker.events), omit_unset_slots, ignore_rule_only_turns)
        applied = tracker.applied_events()
        fold = getattr(tracker, "_applied_memo", None)
        replay = self._replays.pop(key, None)
        if replay is not None and (replay.domain is not domain or replay.rule_only_data != rule_only_data):
            replay = None
        elif replay is not None and not replay.continues(applied, fold):
            if replay.rewind(applied, fold):
                self.rewound += 1
            else:
                replay = None
        if replay is None:
            self.misses += 1
            replay = _Replay(domain, omit_unset_slots, ignore_rule_only_turns, rule_only_data,
                             tracker.init_copy())
        else:
            self.hits += 1
        new_events = applied[len(replay.tracker.events):]
        replay.advance(new_events)
        replay.fold = fold
        self._replays[key] = replay
        if len(self._replays) > self.size:
            self._replays.popitem(last=False)
        return replay.all_states()

    def forget(self, sender_id: str) -> None:
        for key in [key for key in self._replays if key[0] == sender_id]:
            del self._replays[key]

    def __len__(self) -> int:
        return len(self._replays)


CACHE = StateCache()


def install(cache: StateCache = CACHE) -> None:
    """Serve Domain.states_for_tracker_history from `cache` (same arguments, same states)."""

    def states_for_tracker_history(self: Domain, tracker: DialogueStateTracker,
                                   omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False,
                                   rule_only_data: Optional[Dict[str, Any]] = None) -> List[State]:
        return cache.states(self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data)

    replace(Domain, "states_for_tracker_history", states_for_tracker_history)


@dataclass
class _Applied:
    """Rasa's fold in DialogueStateTracker.applied_events, after the first `count` events."""

    events: Any  # the tracker's deque, which Rasa only ever appends to
    count: int
    first: Any
    last: Any
    loop_names: List[str]
    applied: List[Any]


def _fold(tracker: DialogueStateTracker, events: Any, loop_names: List[str], applied: List[Any]) -> None:
    """Rasa 3.6.21's loop (trackers.py:492), over `events`, onto `applied`."""
    from rasa.shared.core.events import ActionReverted, Restarted, SessionStarted, UserUtteranceReverted

    for event in events:
        if isinstance(event, (Restarted, SessionStarted)):
            applied.clear()
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (isinstance(event, ActionExecuted) and event.action_name in loop_names
              and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)


def applied_events(tracker: DialogueStateTracker) -> List[Any]:
    """Rasa's applied_events, continued from where the same tracker's last call
    stopped when only events were appended since and none names a new loop
    (Rasa decides a loop action's fate by the names of *all* the loops in the
    events, so a new loop name means starting over)."""
    events = tracker.events
    memo: Optional[_Applied] = getattr(tracker, "_applied_memo", None)
    if (memo is None or memo.events is not events or len(events) < memo.count
            or (memo.count and (events[0] is not memo.first or events[memo.count - 1] is not memo.last))):
        memo = None
    if memo is not None:
        new = list(itertools.islice(events, memo.count, None))
        if any(isinstance(event, ActiveLoop) and event.name and event.name not in memo.loop_names
               for event in new):
            memo = None
    if memo is None:
        loop_names = [event.name for event in events if isinstance(event, ActiveLoop) and event.name]
        memo = _Applied(events, 0, None, None, loop_names, [])
        new = list(events)
    _fold(tracker, new, memo.loop_names, memo.applied)
    if events:
        memo.count, memo.first, memo.last = len(events), events[0], events[-1]
    tracker._applied_memo = memo
    return list(memo.applied)


def install_applied_events() -> None:
    replace(DialogueStateTracker, "applied_events", applied_events)
