"""RulePolicy's work per prediction bounded by its rules, not the conversation (issue 20).

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
and 11% of the CPU. tests/test_rule_speedups.py checks both against Rasa's own
on real conversations (and tests/test_state_cache.py the predictions).
"""

from __future__ import annotations

from typing import Any, Dict, List, Set, Tuple

from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy

from assistant.shared.patching import replace

# id(lookup) -> (lookup, its size, its longest rule in states): the policy's lookups are constant
_longest: Dict[int, Tuple[Dict[str, Any], int, int]] = {}


def _longest_rule(policy: RulePolicy, lookup: Dict[str, Any]) -> int:
    cached = _longest.get(id(lookup))
    if cached is None or cached[0] is not lookup or cached[1] != len(lookup):
        longest = max((len(policy._rule_key_to_state(key)) for key in lookup), default=0)
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


class FormattedStates:
    """Policy.format_tracker_states(states), made when shown."""

    def __init__(self, states: List[Any], format_states: Any) -> None:
        self._states = states
        self._format = format_states
        self._text: Any = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._format(self._states)
        return str(self._text)

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other: Any) -> bool:
        return str(self) == (str(other) if isinstance(other, FormattedStates) else other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __deepcopy__(self, memo: Any) -> FormattedStates:
        return self  # it is only read


def install() -> None:
    stock_format = Policy.format_tracker_states

    def format_tracker_states(states: List[Any]) -> Any:
        return FormattedStates(states, stock_format)

    replace(RulePolicy, "_get_possible_keys", get_possible_keys)
    # Only RulePolicy._find_action_from_rules calls it, for its debug log line.
    replace(Policy, "format_tracker_states", staticmethod(format_tracker_states))
