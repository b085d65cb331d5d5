"""The plan of a graph: everything the dispatcher precomputes before running.

A plan depends only on the graph's shape, so it is computed once per graph and
shared by every dispatch that reruns the same graph (a redispatch without new
inputs or replacements).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Plan", "plan_for"]


class Plan:
    """Precomputed structure of a graph.

    Attributes
    ----------
    order:
        Node ids, parents before children.
    inputs:
        Per node, its in-edges ``(source, edge_name, param_type, arg_index)``
        that carry data (wait edges excluded), in edge order.
    arg_sources, kwarg_sources:
        Per node, the source node of each positional argument (in position
        order) and ``(keyword, source)`` pairs.
    children:
        Per node, the nodes it feeds, once per edge (so ``waiting`` counts edges).
    in_degree:
        Per node, the number of in-edges (wait edges included).
    parameters:
        Ids of parameter nodes.
    """

    __slots__ = ("order", "inputs", "arg_sources", "kwarg_sources", "children", "in_degree",
                 "parameters", "distinct_children", "distinct_parents")

    def __init__(self, graph: Any) -> None:
        size = len(graph)
        inputs: list = [[] for _ in range(size)]
        children: list = [[] for _ in range(size)]
        in_degree = [0] * size
        for source, target, edge_name, param_type, arg_index in graph.edges:
            children[source].append(target)
            in_degree[target] += 1
            if param_type is not None:
                inputs[target].append((source, edge_name, param_type, arg_index))
        self.inputs = inputs
        self.children = children
        self.in_degree = in_degree
        self.arg_sources: list = []
        self.kwarg_sources: list = []
        for edges in inputs:
            positional = sorted((e for e in edges if e[2] == "arg"), key=lambda e: e[3])
            self.arg_sources.append(tuple(e[0] for e in positional))
            self.kwarg_sources.append(tuple((e[1], e[0]) for e in edges if e[2] == "kwarg"))
        self.distinct_children = [list(dict.fromkeys(c)) if len(c) > 1 else c for c in children]
        parents: list = [[] for _ in range(size)]
        for source, target, *_ in graph.edges:
            parents[target].append(source)
        self.distinct_parents = [list(dict.fromkeys(p)) if len(p) > 1 else p for p in parents]
        self.parameters = [i for i, kind in enumerate(graph.kinds) if kind == "parameter"]
        self.order = graph.topological_order()


def plan_for(graph: Any) -> Plan:
    """Return the (cached) plan of *graph*."""
    plan = graph._plan
    if plan is None:
        plan = graph._plan = Plan(graph)
    return plan
