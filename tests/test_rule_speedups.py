"""assistant/rasa_server/rule_speedups.py: RulePolicy finds the same rules, and its debug
log text reads the same, at every step of a conversation the stack served."""

from __future__ import annotations

import copy
from typing import Any, List

import pytest
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.rasa_server import rule_speedups


def rule_policy(agent: Any) -> RulePolicy:
    for node in agent.processor.graph_runner._instantiated_nodes.values():
        component = getattr(node, "_component", None)
        if isinstance(component, RulePolicy):
            return component
    raise AssertionError("no RulePolicy in the model")


def test_same_rules_and_log_text_along_a_served_conversation(agent: Any, served_events: List[Any],  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    policy = rule_policy(agent)
    domain = agent.processor.domain
    stock_keys = RulePolicy._get_possible_keys
    stock_format = Policy.format_tracker_states
    monkeypatch.setattr(RulePolicy, "_get_possible_keys", RulePolicy._get_possible_keys)
    monkeypatch.setattr(Policy, "format_tracker_states", Policy.format_tracker_states)
    rule_speedups.install()
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
