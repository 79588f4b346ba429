"""The Rasa server's speed-ups (assistant/server.py) change nothing but speed:
the same validation results and errors, the same graph, the same log values."""

from __future__ import annotations

from typing import Any

import pytest
import rasa.core.processor
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.engine.graph import GraphSchema

from assistant import server


@pytest.fixture
def speedups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply them for one test; monkeypatch puts Rasa's originals back afterwards."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(GraphSchema, "minimal_graph_schema", GraphSchema.minimal_graph_schema)
    monkeypatch.setattr(rasa.core.processor, "copy", rasa.core.processor.copy)
    server.apply_speedups()


def test_action_replies_are_validated_as_before(speedups: None) -> None:
    action = RemoteAction("action_x", None)
    good = {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "hi"}]}
    assert action._validate_action_result(good)
    with pytest.raises(ValidationError, match="Failed to validate Action server response"):
        action._validate_action_result({"events": "not a list", "responses": []})


def test_the_minimal_graph_is_the_same_and_computed_once(speedups: None, agent: Any) -> None:
    schema = agent.processor.graph_runner._graph_schema
    targets = schema.target_names[:1]
    first = schema.minimal_graph_schema(targets)
    assert first is schema.minimal_graph_schema(targets)
    assert set(first.nodes) == set(server_minimal_nodes(schema, targets))


def server_minimal_nodes(schema: GraphSchema, targets: Any) -> Any:
    """What Rasa's own method returns, recomputed here from the graph itself."""
    required, todo = set(), list(targets)
    while todo:
        name = todo.pop()
        required.add(name)
        if name in schema.nodes:
            todo += list(schema.nodes[name].needs.values())
    return required & set(schema.nodes)


def test_debug_log_values_are_not_copied(speedups: None) -> None:
    events = [{"event": "action"}]
    assert rasa.core.processor.copy.deepcopy(events) is events
