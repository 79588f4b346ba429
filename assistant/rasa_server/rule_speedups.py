"""The policies' work per prediction bounded by their rules and max_history,
not by the conversation (issue 20).

RulePolicy is given the states of the whole session (it has no max_history)
and, per prediction, twice:

* matches its rules against them from the latest state backwards, going on
  through every older state even after no rule is left, or every rule left is
  shorter than the states already checked (then each older state keeps them
  all: ``_is_rule_applicable`` is True past a rule's length). Here the walk
  stops at that point; the set of rules it returns is the same.
* formats all of them into a text for a debug-level log line (and
  deep-copies that text), whether or not debug logging is on. Here the text
  is made only when the log line is rendered, and reads the same.

Measured with py-spy on turns 350-399 of one conversation: the two were 8.5%
and 11% of the CPU.

After those and the state cache (assistant/rasa_server/state_cache.py), what
still went through every state of the session, at every prediction, was
(py-spy, turns 350-399): RulePolicy encoding all of them as JSON when no rule
applies (11% of the CPU: the text is only compared with its rules' keys, to
tell whether a rule is one the stories don't use), and both policies
normalising all of them, or filtering them, before keeping the few they use
(9%). So RulePolicy is given the last states its longest rule could match,
plus one: every rule check reads those alone, and a key made of more states
than any rule has matches no rule either way (so the prediction is the
same). Its debug log line still shows, when rendered, all the states,
normalised as Rasa would. MemoizationPolicy's featurizer keeps its last
max_history states (those without action_unlikely_intent, where asked) by
walking back from the end, as Rasa's filter-then-slice would.

tests/test_rule_speedups.py checks all of it against Rasa's own on real
conversations (and tests/test_state_cache.py the predictions).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Set, Tuple

from rasa.core.featurizers.tracker_featurizers import (
    MaxHistoryTrackerFeaturizer,
    TrackerFeaturizer,
    _is_prev_action_unlikely_intent_in_state,
)
from rasa.core.policies.policy import Policy, SupportedData
from rasa.core.policies.rule_policy import (
    RULES,
    RULES_FOR_LOOP_UNHAPPY_PATH,
    RULES_NOT_IN_STORIES,
    RulePolicy,
)
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.trackers import DialogueStateTracker

from assistant.shared.patching import replace

# id(lookup) -> (lookup, its size, its longest rule in states): the policy's lookups are constant
_longest: Dict[int, Tuple[Dict[str, Any], int, int]] = {}


def _longest_rule(policy: RulePolicy, lookup: Any) -> int:
    cached = _longest.get(id(lookup))
    if cached is None or cached[0] is not lookup or cached[1] != len(lookup):
        # (RULES_NOT_IN_STORIES also names default and loop rules: those are no states)
        longest = max((len(policy._rule_key_to_state(key)) for key in lookup if key.startswith("[")),
                      default=0)
        cached = _longest[id(lookup)] = (lookup, len(lookup), longest)
    return cached[2]


def get_possible_keys(self: RulePolicy, lookup: Dict[str, Any], states: List[Any]) -> Set[str]:
    """Rasa 3.6.21's RulePolicy._get_possible_keys, stopping when nothing can change."""
    possible_keys = set(lookup.keys())
    longest = _longest_rule(self, lookup)
    for i, state in enumerate(reversed(states)):
        if not possible_keys or i >= longest:
            break
        possible_keys = {key for key in possible_keys if self._is_rule_applicable(key, i, state)}
    return possible_keys


class RecentStates(list):
    """The last states of a session (what the rules can match), and all of them."""

    def __init__(self, recent: List[State], full: List[State]) -> None:
        super().__init__(recent)
        self.full = full


def rule_prediction_states(self: RulePolicy, tracker: DialogueStateTracker, domain: Domain,
                           use_text_for_last_user_input: bool = False,
                           rule_only_data: Optional[Dict[str, Any]] = None) -> List[State]:
    """Rasa 3.6.21's Policy._prediction_states for RulePolicy (MaxHistoryTrackerFeaturizer
    without max_history, rule data: no turns or action_unlikely_intent ignored), the
    last states only."""
    featurizer = self.featurizer
    if (type(featurizer) is not MaxHistoryTrackerFeaturizer or featurizer.max_history
            or self.supported_data() == SupportedData.ML_DATA):
        return STOCK_PREDICTION_STATES(self, tracker, domain, use_text_for_last_user_input, rule_only_data)
    states = featurizer._create_states(tracker, domain, rule_only_data=rule_only_data)
    longest = max(_longest_rule(self, self.lookup.get(name, ()))
                  for name in (RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RULES_NOT_IN_STORIES))
    recent = RecentStates(states[-(longest + 1):], states)
    featurizer._choose_last_user_input([recent], use_text_for_last_user_input)  # in place, as Rasa does
    return recent


def sliced_prediction_states(self: MaxHistoryTrackerFeaturizer, trackers: List[DialogueStateTracker],
                             domain: Domain, use_text_for_last_user_input: bool = False,
                             ignore_rule_only_turns: bool = False,
                             rule_only_data: Optional[Dict[str, Any]] = None,
                             ignore_action_unlikely_intent: bool = False) -> List[List[State]]:
    """Rasa 3.6.21's MaxHistoryTrackerFeaturizer.prediction_states, walking back
    from the end only as far as max_history needs."""
    if not self.max_history:
        return STOCK_SLICED(self, trackers, domain, use_text_for_last_user_input, ignore_rule_only_turns,
                            rule_only_data, ignore_action_unlikely_intent)
    trackers_as_states = []
    for tracker in trackers:
        states = self._create_states(tracker, domain, ignore_rule_only_turns=ignore_rule_only_turns,
                                     rule_only_data=rule_only_data)
        kept: List[State] = []
        for state in reversed(states):
            if len(kept) == self.max_history:
                break
            if not (ignore_action_unlikely_intent and _is_prev_action_unlikely_intent_in_state(state)):
                kept.append(state)
        trackers_as_states.append(kept[::-1])
    self._choose_last_user_input(trackers_as_states, use_text_for_last_user_input)
    return trackers_as_states


STOCK_PREDICTION_STATES = Policy._prediction_states
STOCK_SLICED = MaxHistoryTrackerFeaturizer.prediction_states


class FormattedStates:
    """Policy.format_tracker_states(states), made when shown."""

    def __init__(self, states: List[Any], format_states: Any) -> None:
        self._states = states
        self._format = format_states
        self._text: Any = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._format(_all_states(self._states))
        return str(self._text)

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: Any) -> bool:
        return str(self) == (str(other) if isinstance(other, FormattedStates) else other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __deepcopy__(self, memo: Any) -> FormattedStates:
        return self  # it is only read


def _all_states(states: List[State]) -> List[State]:
    """All the session's states, as Rasa would have normalised them in place:
    the recent ones were; the older ones are normalised in a copy."""
    if not isinstance(states, RecentStates) or len(states.full) == len(states):
        return list(states)
    older = copy.deepcopy(states.full[:len(states.full) - len(states)])
    TrackerFeaturizer._remove_user_text_if_intent([older])
    return older + list(states)


def install() -> None:
    stock_format = Policy.format_tracker_states

    def format_tracker_states(states: List[Any]) -> Any:
        return FormattedStates(states, stock_format)

    replace(RulePolicy, "_get_possible_keys", get_possible_keys)
    replace(RulePolicy, "_prediction_states", rule_prediction_states)
    replace(MaxHistoryTrackerFeaturizer, "prediction_states", sliced_prediction_states)
    # Only RulePolicy._find_action_from_rules calls it, for its debug log line.
    replace(Policy, "format_tracker_states", staticmethod(format_tracker_states))
