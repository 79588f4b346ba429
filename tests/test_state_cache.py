"""The dialogue-state cache and the incremental applied_events
(assistant/rasa_server/state_cache.py) change nothing but speed: on real conversations,
held with the running stack (rules, FAQ answers and follow-ups, the
fallback, the call-back form started and cancelled, small talk), every
prediction the policies make is the same as stock Rasa's, turn by turn, on a
tracker that grows as a served one does."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.rasa_server import state_cache


def predictions(agent: Any, events: List[Any]) -> List[Any]:
    """What the policies predict before each action and after each user message,
    on one tracker updated event by event (as a served conversation grows)."""
    domain = agent.processor.domain
    tracker = DialogueStateTracker("replayed", domain.slots)
    found = []
    for event in events:
        if isinstance(event, (ActionExecuted, UserUttered)):
            prediction = agent.processor._predict_next_with_tracker(tracker)
            found.append((len(tracker.events), prediction.max_confidence_index, prediction.policy_name,
                          prediction.probabilities, [without_time(e.as_dict()) for e in prediction.events],
                          prediction.hide_rule_turn, tracker.applied_events() == applied_stock(tracker),
                          # every state, not only the last few the policies read (arguments
                          # of their own, so the policies' calls normalise none of them)
                          [tracker.past_states(domain, omit_unset_slots=True, ignore_rule_only_turns=ignore)
                           for ignore in (False, True)]))
        tracker.update(event)
    return found


def without_time(event: Dict[str, Any]) -> Dict[str, Any]:
    return {key: value for key, value in event.items() if key != "timestamp"}  # (new events: now)


STOCK_APPLIED = DialogueStateTracker.applied_events


def applied_stock(tracker: DialogueStateTracker) -> List[Any]:
    return STOCK_APPLIED(tracker)


def test_predictions_are_stock_rasas_on_a_served_conversation(agent: Any, served_events: List[Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stock = predictions(agent, served_events)
    cache = state_cache.StateCache()
    monkeypatch.setattr(Domain, "states_for_tracker_history", Domain.states_for_tracker_history)
    monkeypatch.setattr(DialogueStateTracker, "applied_events", DialogueStateTracker.applied_events)
    state_cache.install(cache)
    state_cache.install_applied_events()
    cached = predictions(agent, served_events)
    assert cached == stock
    assert all(row[-1] for row in cached)  # applied_events as Rasa's, at every step
    assert cache.hits > 10 * cache.misses  # and it was the cache that answered
    assert cache.rewound >= 5  # going back to a checkpoint after the form's steps


def test_states_are_recomputed_when_history_is_rewritten(agent: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A tracker whose events no longer start with what was replayed (another
    tracker of the same conversation, events undone) is replayed afresh."""
    domain = agent.processor.domain
    cache = state_cache.StateCache()
    stock = Domain.states_for_tracker_history
    one = DialogueStateTracker("same-id", domain.slots)
    for event in [ActionExecuted("action_listen"), UserUttered("hi", {"name": "greet", "confidence": 1.0}),
                  ActionExecuted("utter_greet"), ActionExecuted("action_listen")]:
        one.update(event)
    assert cache.states(domain, one) == stock(domain, one)
    other = DialogueStateTracker("same-id", domain.slots)
    for event in [ActionExecuted("action_listen"), SlotSet("requested_slot", "name"),
                  UserUttered("bye", {"name": "goodbye", "confidence": 1.0})]:
        other.update(event)
    assert cache.states(domain, other) == stock(domain, other)
    assert cache.states(domain, one) == stock(domain, one)
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_fold_started_afresh_is_compared_event_by_event(agent: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Within one incremental fold of the applied events, the first and last
    replayed events are enough to tell that they still start the session; when
    the fold starts afresh, a changed event in the middle is found too."""
    monkeypatch.setattr(DialogueStateTracker, "applied_events", DialogueStateTracker.applied_events)
    state_cache.install_applied_events()
    domain = agent.processor.domain
    cache = state_cache.StateCache()
    stock = Domain.states_for_tracker_history
    greet, bye = {"name": "greet", "confidence": 1.0}, {"name": "goodbye", "confidence": 1.0}
    tracker = DialogueStateTracker("afresh", domain.slots)
    for event in [ActionExecuted("action_listen"), UserUttered("hi", greet), ActionExecuted("utter_greet"),
                  ActionExecuted("action_listen"), UserUttered("bye", bye), ActionExecuted("utter_goodbye")]:
        tracker.update(event)
        assert cache.states(domain, tracker) == stock(domain, tracker)
    assert (cache.misses, cache.rewound) == (1, 0)
    tracker.events[2] = ActionExecuted("utter_default")  # changed in the middle...
    del tracker._applied_memo  # ...and folded afresh
    assert cache.states(domain, tracker) == stock(domain, tracker)
    assert cache.rewound == 1  # back to the checkpoint before "hi", not taken as a continuation


def test_the_caches_are_bounded(agent: Any) -> None:
    domain = agent.processor.domain
    cache = state_cache.StateCache(size=5)
    for number in range(20):
        tracker = DialogueStateTracker(f"visitor-{number}", domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        cache.states(domain, tracker)
    assert len(cache) == 5


def test_applied_events_follow_reverts_and_loops_as_rasa_does(agent: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from rasa.shared.core.events import ActionReverted, Restarted, UserUtteranceReverted

    domain = agent.processor.domain
    greet = {"name": "greet", "confidence": 1.0}
    script = [ActionExecuted("action_listen"), UserUttered("hi", greet), ActionExecuted("utter_greet"),
              ActionExecuted("action_listen"), UserUttered("/request_callback", greet),
              ActionExecuted("callback_form"), ActiveLoop("callback_form"), SlotSet("requested_slot", "name"),
              ActionExecuted("action_listen"), UserUttered("Sam", greet), ActionExecuted("callback_form"),
              SlotSet("requested_slot", "contact"), ActionExecuted("action_listen"),
              UserUttered("oops", greet),
              UserUtteranceReverted(), ActionExecuted("action_listen"), UserUttered("x", greet),
              ActionExecuted("callback_form"), ActionReverted(), ActionExecuted("other_form"),
              ActiveLoop("other_form"), ActionExecuted("callback_form"), ActiveLoop(None), Restarted(),
              ActionExecuted("action_listen"), UserUttered("hi", greet), ActionExecuted("utter_greet")]
    stock = []
    tracker = DialogueStateTracker("reverts", domain.slots)
    for event in script:
        tracker.update(event)
        stock.append(tracker.applied_events())
    monkeypatch.setattr(DialogueStateTracker, "applied_events", DialogueStateTracker.applied_events)
    state_cache.install_applied_events()
    tracker = DialogueStateTracker("reverts", domain.slots)
    for event, expected in zip(script, stock, strict=True):
        tracker.update(event)
        assert tracker.applied_events() == expected
        assert tracker.applied_events() == expected  # asked twice, from the memo
