"""The Rasa server's speed-ups: patches that change nothing but speed.

* Rasa validates every action server reply with ``jsonschema.validate``, which
  re-checks the (large, constant) events schema against its meta-schema and
  builds a new validator on every call: about a quarter of a busy server's CPU
  in the profile (py-spy, `make bench` load). Here the validator is built once;
  a reply that fails still goes through Rasa's own check, so errors and their
  messages are unchanged.
* Rasa's message processor deep-copies events and parse results on every turn
  only to pass them to debug-level log calls, whether or not debug logging is
  on (about a tenth of the CPU). Those copies are skipped: the log calls still
  get the same values, rendered at once when debug logging is enabled.
* Each run of the model graph recomputes which nodes it needs by walking the
  (constant) graph recursively, once per shared dependency (about a twelfth of
  the CPU). The answer is kept per graph and targets.
* Turning a stored or received event back into an object looks its class up
  by walking the whole tree of Event subclasses, on every event (about a
  tenth of the CPU when a tracker is loaded). The classes are indexed by type
  name once; an unknown name is looked up Rasa's way, after a fresh index.
* That graph runs through dask's scheduler, whose bookkeeping costs about an
  eighth of the CPU for a dozen nodes in one thread. The server runs it with
  assistant/rasa_server/graph_runner.py's plain loop instead (same inputs, outputs, errors).
* Both policies rebuild the dialogue states of the whole session, several
  times a turn, and Rasa recomputes the session's applied events each time it
  is asked: a turn cost in proportion to the conversation's length (62% of
  the CPU of turns 350-399 of one conversation). assistant/rasa_server/state_cache.py
  resumes both from where the previous call stopped (going back to a recent
  checkpoint when a form step rewrites the last turn), and so does each copy
  of the tracker Rasa makes before an action and for a form's steps
  (assistant/rasa_server/tracker_copy.py; 13% and 8% of those turns); RulePolicy
  is given the last states its rules can match, stops matching rules once
  none can change and formats its debug text only when it is logged, and
  MemoizationPolicy's states are cut to its max_history from the end
  (assistant/rasa_server/rule_speedups.py; 20% and 20%); the action server is
  sent the recent part of the session, each event's JSON encoded once
  (assistant/rasa_server/action_payload.py; 30%), issue 20.

Each speed-up is checked by the test suite (tests/test_server_speedups.py) and
measured by `make bench`, whose baseline runs plain `rasa` without them.

Every patch is checked against the installed Rasa version first
(assistant/shared/patching.py).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from assistant.shared.patching import replace


def cache_action_result_validation() -> None:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)
    stock_validation = RemoteAction._validate_action_result

    def validate(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if validator.is_valid(result):
            return True
        return stock_validation(self, result)  # raises Rasa's own, explained error

    replace(RemoteAction, "_validate_action_result", validate)


class _NoCopyForLogs:
    """Stands in for the `copy` module inside rasa.core.processor, where
    deepcopy is only used for the arguments of debug log calls."""

    @staticmethod
    def deepcopy(value: Any) -> Any:
        return value


def skip_copies_for_debug_logs() -> None:
    import rasa.core.processor

    replace(rasa.core.processor, "copy", _NoCopyForLogs)


def cache_minimal_graph_schemas() -> None:
    from rasa.engine.graph import GraphSchema

    stock_minimal = GraphSchema.minimal_graph_schema
    cache: Dict[Tuple[int, Optional[Tuple[str, ...]]], Tuple[GraphSchema, GraphSchema]] = {}

    def minimal_graph_schema(self: GraphSchema, targets: Optional[List[str]] = None) -> GraphSchema:
        key = (id(self), tuple(targets) if targets else None)
        cached = cache.get(key)
        if cached is None or cached[0] is not self:  # (an id can be reused by a new schema)
            cached = cache[key] = (self, stock_minimal(self, targets))
        return cached[1]

    replace(GraphSchema, "minimal_graph_schema", minimal_graph_schema)


def index_event_types() -> None:
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    stock_resolve = Event.resolve_by_type
    by_name: Dict[str, Any] = {}

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        if type_name not in by_name:  # first use, or a class imported since
            by_name.clear()
            for cls in all_subclasses(Event):
                by_name.setdefault(cls.type_name, cls)  # the first match wins, as in Rasa
        found = by_name.get(type_name)
        return found if found is not None else stock_resolve(type_name, default)

    replace(Event, "resolve_by_type", staticmethod(resolve_by_type))


def run_graphs_without_dask() -> None:
    import rasa.core.processor

    from assistant.rasa_server.graph_runner import SequentialGraphRunner

    replace(rasa.core.processor, "DaskGraphRunner", SequentialGraphRunner)  # what loads the model to serve


def cache_dialogue_states() -> None:
    from assistant.rasa_server import action_payload, rule_speedups, state_cache, tracker_copy

    state_cache.install()
    state_cache.install_applied_events()
    tracker_copy.install()
    rule_speedups.install()
    action_payload.install()


def apply_speedups() -> None:
    cache_action_result_validation()
    skip_copies_for_debug_logs()
    cache_minimal_graph_schemas()
    index_event_types()
    run_graphs_without_dask()
    cache_dialogue_states()
