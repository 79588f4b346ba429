"""Run a trained model's graph node by node, without dask.

Rasa runs the model graph (NLU pipeline, then policies) twice per message
through dask's synchronous scheduler. For a graph of a dozen nodes executed in
one thread, dask's bookkeeping (building the task graph, queueing, callbacks)
costs about as much as our whole NLU pipeline: an eighth of a busy server's CPU
in the py-spy profile. This runner does what dask does here -- each node gets
its parents' outputs, each node runs once, only the nodes the targets need --
in a fixed order worked out once per graph and targets.

Used by the server only (assistant/rasa_server/speedups.py); training keeps Rasa's runner.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.graph import GraphSchema
from rasa.engine.runner.dask import DaskGraphRunner


def execution_order(schema: GraphSchema) -> List[str]:
    """The schema's nodes, every node after the nodes it needs (depth first)."""
    order: List[str] = []
    state: Dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name) == "done" or name not in schema.nodes:
            return  # done, or a run input such as __message__
        if state.get(name) == "visiting":
            raise GraphRunError(f"The graph has a cycle through '{name}'.")
        state[name] = "visiting"
        for parent in schema.nodes[name].needs.values():
            visit(parent)
        state[name] = "done"
        order.append(name)

    for name in schema.nodes:
        visit(name)
    return order


class SequentialGraphRunner(DaskGraphRunner):
    """Rasa's graph runner with dask's scheduler replaced by a plain loop."""

    _orders: Dict[Tuple[int, Tuple[str, ...]], Tuple[GraphSchema, List[str]]] = {}

    def _order(self, schema: GraphSchema, targets: List[str]) -> List[str]:
        key = (id(schema), tuple(targets))
        cached = self._orders.get(key)
        if cached is None or cached[0] is not schema:  # (an id can be reused by a new schema)
            cached = self._orders[key] = (schema, execution_order(schema))
        return cached[1]

    def run(self, inputs: Optional[Dict[str, Any]] = None,
            targets: Optional[List[str]] = None) -> Dict[str, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        schema = self._graph_schema.minimal_graph_schema(run_targets)
        # As in dask's graph: an input is the pair (name, value), like a node's output.
        outputs: Dict[str, Any] = {}
        for name, value in (inputs or {}).items():
            if name in schema.nodes:
                raise GraphRunError(
                    f"Input value '{name}' clashes with a node name. Make sure that none of the input "
                    f"names passed to the `run` method are the same as node names in the graph schema.")
            outputs[name] = (name, value)
        try:
            for name in self._order(schema, run_targets):
                parents = schema.nodes[name].needs.values()
                outputs[name] = self._instantiated_nodes[name](*(outputs[p] for p in parents))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e
        return dict(outputs[target] for target in run_targets)
