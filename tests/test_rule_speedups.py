"""assistant/rasa_server/rule_speedups.py: RulePolicy finds the same rules and makes the
same predictions, MemoizationPolicy sees the same states and makes the same
predictions, and RulePolicy's debug log text reads the same, at every step of
a conversation the stack served."""

from __future__ import annotations

import copy
from typing import Any, List

import pytest
from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer
from rasa.core.policies.memoization import MemoizationPolicy
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import (
    RULES,
    RULES_FOR_LOOP_UNHAPPY_PATH,
    RULES_NOT_IN_STORIES,
    RulePolicy,
)
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.rasa_server import rule_speedups


def policy_of(agent: Any, kind: type) -> Any:
    for node in agent.processor.graph_runner._instantiated_nodes.values():
        component = getattr(node, "_component", None)
        if type(component) is kind:  # (RulePolicy is a MemoizationPolicy too)
            return component
    raise AssertionError(f"no {kind.__name__} in the model")


def rule_policy(agent: Any) -> RulePolicy:
    return policy_of(agent, RulePolicy)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """rule_speedups.install(), undone after the test."""
    for name in ("_get_possible_keys", "_prediction_states"):
        monkeypatch.setattr(RulePolicy, name, getattr(RulePolicy, name))
    monkeypatch.setattr(Policy, "format_tracker_states", Policy.format_tracker_states)
    monkeypatch.setattr(MaxHistoryTrackerFeaturizer, "prediction_states",
                        MaxHistoryTrackerFeaturizer.prediction_states)
    rule_speedups.install()


def test_same_rules_and_log_text_along_a_served_conversation(agent: Any, served_events: List[Any],  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    policy = rule_policy(agent)
    domain = agent.processor.domain
    stock_keys = RulePolicy._get_possible_keys
    stock_format = Policy.format_tracker_states
    install(monkeypatch)
    tracker = DialogueStateTracker("rules", domain.slots)
    checked = 0
    for event in served_events:
        tracker.update(event)
        if not isinstance(event, (ActionExecuted, UserUttered)):
            continue
        states = tracker.past_states(domain)
        for lookup in (policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH]):
            assert policy._get_possible_keys(lookup, states) == stock_keys(policy, lookup, states)
        text = policy.format_tracker_states(states)
        assert str(copy.deepcopy(text)) == stock_format(states) and text == stock_format(states)
        assert repr(text) == repr(stock_format(states))
        checked += 1
    assert checked > 100


def predictions(agent: Any, events: List[Any]) -> List[Any]:
    """At each step: RulePolicy's prediction, whether its source is a rule the
    stories don't use, and its debug text (from intent and from text);
    MemoizationPolicy's prediction and the states it is given."""
    rules, memo = rule_policy(agent), policy_of(agent, MemoizationPolicy)
    domain = agent.processor.domain
    tracker = DialogueStateTracker("predictions", domain.slots)
    found = []
    for event in events:
        tracker.update(event)
        if not isinstance(event, (ActionExecuted, UserUttered)):
            continue
        prediction, source = rules._predict(tracker, domain)
        rule_only = rules._get_rule_only_data()
        texts = [str(rules.format_tracker_states(rules._prediction_states(tracker, domain, use_text,
                                                                           rule_only_data=rule_only)))
                 for use_text in (False, True)]
        memo_states = [memo.featurizer.prediction_states([tracker], domain, use_text,
                                                         ignore_action_unlikely_intent=ignore)
                       for use_text in (False, True) for ignore in (False, True)]
        found.append((prediction, source in rules.lookup.get(RULES_NOT_IN_STORIES, []), texts,
                      memo.predict_action_probabilities(tracker, domain), memo_states))
    return found


def test_same_predictions_from_the_recent_states(agent: Any, served_events: List[Any],  # noqa: F811
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    stock = predictions(agent, served_events)
    install(monkeypatch)
    fast = predictions(agent, served_events)
    assert len(fast) == len(stock) > 100
    for step, (ours, theirs) in enumerate(zip(fast, stock, strict=True)):
        assert ours == theirs, step
    # and RulePolicy was given fewer states than the session has, most of the way
    policy, domain = rule_policy(agent), agent.processor.domain
    tracker = DialogueStateTracker("recent", domain.slots)
    for event in served_events:
        tracker.update(event)
    recent = policy._prediction_states(tracker, domain)
    assert isinstance(recent, rule_speedups.RecentStates) and len(recent) < len(recent.full) / 10


def test_the_debug_text_shows_all_states_normalised_as_rasa_does() -> None:
    """(The served conversations' states carry no user text, so this is checked here.)"""
    def state(number: int) -> Any:
        return {"user": {"intent": "faq", "text": f"question {number}"},
                "prev_action": {"action_name": "action_listen"}}

    full = [state(number) for number in range(12)]
    stock = copy.deepcopy(full)
    MaxHistoryTrackerFeaturizer()._choose_last_user_input([stock], use_text_for_last_user_input=True)
    recent = rule_speedups.RecentStates(full[-4:], full)
    MaxHistoryTrackerFeaturizer()._choose_last_user_input([recent], use_text_for_last_user_input=True)
    shown = rule_speedups.FormattedStates(recent, Policy.format_tracker_states)
    assert str(shown) == Policy.format_tracker_states(stock)
    assert "question 11" in str(shown) and "question 3" not in str(shown)
