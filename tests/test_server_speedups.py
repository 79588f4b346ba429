"""The Rasa server's speed-ups (assistant/rasa_server/speedups.py) change nothing but speed:
the same validation results and errors, the same graph, the same log values."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import rasa.core.processor
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.actions.forms import FormAction
from rasa.core.featurizers.tracker_featurizers import MaxHistoryTrackerFeaturizer
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphComponent, GraphSchema, SchemaNode
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from assistant.rasa_server import speedups as server
from assistant.rasa_server.graph_runner import SequentialGraphRunner, execution_order


@pytest.fixture
def speedups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply them for one test; monkeypatch puts Rasa's originals back afterwards."""
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(GraphSchema, "minimal_graph_schema", GraphSchema.minimal_graph_schema)
    monkeypatch.setattr(rasa.core.processor, "copy", rasa.core.processor.copy)
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", rasa.core.processor.DaskGraphRunner)
    monkeypatch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
    monkeypatch.setattr(Domain, "states_for_tracker_history", Domain.states_for_tracker_history)
    monkeypatch.setattr(DialogueStateTracker, "applied_events", DialogueStateTracker.applied_events)
    monkeypatch.setattr(DialogueStateTracker, "copy", DialogueStateTracker.copy)
    monkeypatch.setattr(FormAction, "_temporary_tracker", FormAction._temporary_tracker)
    monkeypatch.setattr(RulePolicy, "_get_possible_keys", RulePolicy._get_possible_keys)
    monkeypatch.setattr(RulePolicy, "_prediction_states", RulePolicy._prediction_states)
    monkeypatch.setattr(MaxHistoryTrackerFeaturizer, "prediction_states",
                        MaxHistoryTrackerFeaturizer.prediction_states)
    monkeypatch.setattr(Policy, "format_tracker_states", Policy.format_tracker_states)
    monkeypatch.setattr(RemoteAction, "_action_call_format", RemoteAction._action_call_format)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
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


def test_event_classes_are_found_as_rasa_finds_them(monkeypatch: pytest.MonkeyPatch) -> None:
    names = sorted({cls.type_name for cls in all_subclasses(Event)})
    assert "user" in names and len(names) > 15
    stock = {name: Event.resolve_by_type(name) for name in names}
    with monkeypatch.context() as patch:
        patch.setattr(Event, "resolve_by_type", Event.resolve_by_type)
        server.index_event_types()
        assert {name: Event.resolve_by_type(name) for name in names} == stock
        # Names Rasa doesn't know behave as in Rasa: the default, None for "topic", or an error.
        assert Event.resolve_by_type("no_such_event", default=UserUttered) is UserUttered
        assert Event.resolve_by_type("topic") is None
        with pytest.raises(ValueError, match="Unknown event name"):
            Event.resolve_by_type("no_such_event")


def test_debug_log_values_are_not_copied(speedups: None) -> None:
    events = [{"event": "action"}]
    assert rasa.core.processor.copy.deepcopy(events) is events


TEXTS = ["hi", "does it hurt?", "can it help my tennis elbow", "how do i book", "what's the weather",
         "/faq/does_it_hurt", "I have crushing chest pain", "helo wat is dry neeedling"]


@pytest.fixture(scope="module")
def sequential_agent(model_path: Any) -> Any:
    """The trained model, loaded as the server loads it with the speed-ups on."""
    from rasa.core.agent import Agent

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rasa.core.processor, "DaskGraphRunner", rasa.core.processor.DaskGraphRunner)
        server.run_graphs_without_dask()
        agent = Agent.load(str(model_path))
    assert isinstance(agent.processor.graph_runner, SequentialGraphRunner)
    return agent


def test_the_graph_without_dask_parses_the_same(sequential_agent: Any, agent: Any) -> None:
    for text in TEXTS:
        parsed = asyncio.run(sequential_agent.parse_message(text))
        assert parsed == asyncio.run(agent.parse_message(text)), text
        assert parsed["intent"]["name"]


def test_the_graph_without_dask_answers_the_same(sequential_agent: Any, agent: Any) -> None:
    # Responses only (no action server here): greeting, FAQ answers, an emergency.
    for text in ["hi", "does it hurt?", "how long does a session take", "I have crushing chest pain"]:
        sender = f"speedups-{uuid.uuid4().hex[:8]}"
        answer = asyncio.run(sequential_agent.handle_text(text, sender_id=sender))
        assert answer and answer == asyncio.run(agent.handle_text(text, sender_id=sender)), text


def test_nodes_run_after_what_they_need_and_cycles_are_refused() -> None:
    def node(*needs: str) -> SchemaNode:
        return SchemaNode({f"i{n}": need for n, need in enumerate(needs)}, GraphComponent, "", "", {})

    schema = GraphSchema({"c": node("b", "a"), "b": node("a", "__message__"), "a": node("__message__")})
    assert execution_order(schema) == ["a", "b", "c"]
    with pytest.raises(GraphRunError, match="cycle"):
        execution_order(GraphSchema({"a": node("b"), "b": node("a")}))
