"""The Rasa server's entry point: `rasa <command>` with our speed-ups applied.

    python -m assistant.server run --model ... (the launcher does this)

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
  assistant/graph_runner.py's plain loop instead (same inputs, outputs, errors).
* Both policies rebuild the dialogue states of the whole session, several
  times a turn, and Rasa recomputes the session's applied events each time it
  is asked: a turn cost in proportion to the conversation's length (62% of
  the CPU of turns 350-399 of one conversation). assistant/state_cache.py
  resumes both from where the previous call stopped, and so does each copy
  of the tracker Rasa makes before an action (assistant/tracker_copy.py; 13%
  of those turns), and RulePolicy stops matching rules once none can change
  and formats its debug text only when it is logged (assistant/rule_speedups.py;
  20%), and the action server's request is encoded reusing each event's
  JSON (assistant/action_payload.py; 30%, the same bytes), issue 20.

Each speed-up is checked by the test suite (tests/test_server_speedups.py) and
measured by `make bench`, whose baseline runs plain `rasa` without them.

Besides speed, the server is hardened here (issue 16):

* Sanic's HTTP/1 transport gets framing checks, read deadlines and a connection
  cap (assistant/transport.py), and a worker that dies is replaced
  (assistant/worker_pool.py);
* while the action server is down, custom actions answer "try again in a
  moment" instead of nothing (assistant/action_fallback.py);
* `/` says the server runs without naming Rasa's version.

Every patch is checked against the installed Rasa and Sanic versions first
(assistant/patching.py): an unknown version stops start-up with a message.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional, Tuple

from assistant.patching import exit_if_unsupported, replace

ROOT_TEXT = "The assistant is running."


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

    from assistant.graph_runner import SequentialGraphRunner

    replace(rasa.core.processor, "DaskGraphRunner", SequentialGraphRunner)  # what loads the model to serve


def hide_version_at_root() -> None:
    """Rasa's `/` answers "Hello from Rasa: 3.6.21": a version is a free hint
    for an attacker looking for known bugs. Same route, no version."""
    import rasa.server
    from sanic import response

    def add_root_route(app: Any) -> None:
        @app.get("/")
        async def hello(request: Any) -> Any:
            return response.text(ROOT_TEXT)

    replace(rasa.server, "add_root_route", add_root_route)


def harden_http() -> None:
    """Every Sanic app Rasa configures gets the transport limits (from the
    environment) before it runs; a bad limit stops start-up with its name."""
    import rasa.core.run

    from assistant import transport, worker_pool

    try:
        limits = transport.TransportLimits.from_env()
    except ValueError as error:
        print(f"Cannot start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    transport.patch_sanic()
    worker_pool.install()
    stock_configure_app = rasa.core.run.configure_app

    def configure_app(*args: Any, **kwargs: Any) -> Any:
        app = stock_configure_app(*args, **kwargs)
        transport.install(app, limits)
        return app

    replace(rasa.core.run, "configure_app", configure_app)


def apply_hardening() -> None:
    from assistant import action_fallback

    hide_version_at_root()
    harden_http()
    action_fallback.install()


def cache_dialogue_states() -> None:
    from assistant import action_payload, rule_speedups, state_cache, tracker_copy

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


def main() -> None:
    exit_if_unsupported("rasa", "sanic", "sanic-cors")
    apply_speedups()
    apply_hardening()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    sys.argv[0] = "rasa"
    main()
