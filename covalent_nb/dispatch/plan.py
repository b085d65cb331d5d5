"""The plan of a graph: everything the dispatcher precomputes before running.

A plan depends only on the graph's shape, so it is computed once per graph and
shared by every dispatch that reruns the same graph (a redispatch without new
inputs or replacements).
"""

from __future__ import annotations

from typing import Any

from ..states import NodeKind
from ..workflow.graph import topological_order

__all__ = ["Plan", "plan_for"]


class Plan:
    """Precomputed structure of a graph.

    Attributes
    ----------
    order:
        Node ids, parents before children.
    inputs:
        Per node, its in-edges that carry data (wait edges excluded), in edge
        order: the graph's own ``(source, target, edge_name, param_type,
        arg_index)`` tuples.
    waits:
        Per node, the nodes it waits for without taking their output
        (``ct.wait``): a side-effect dependency, so part of its key.
    arg_sources, kwarg_sources:
        Per node, the source node of each positional argument (in position
        order) and ``(keyword, source)`` pairs.
    children, parents:
        Per node, the nodes it feeds and the nodes it takes from, once per
        edge (so ``waiting`` counts edges).
    in_degree:
        Per node, the number of in-edges (wait edges included).
    parameters:
        Ids of parameter nodes.
    tasks:
        Ids of every other node (a tuple, computed on first use).
    """

    __slots__ = ("order", "inputs", "waits", "arg_sources", "kwarg_sources", "children", "in_degree",
                 "parameters", "parents", "_tasks")

    def __init__(self, graph: Any) -> None:
        size = len(graph)
        none: tuple = ()
        # Most nodes (parameters) have no inputs and one child: share empty tuples, make a
        # one-item tuple for one edge and a list only for more, so a 10,000-task plan stays cheap.
        inputs: list = [none] * size
        children: list = [none] * size
        parents: list = [none] * size
        waits: list = [none] * size
        in_degree = [0] * size
        for edge in graph.edges:  # the graph's own tuples are kept: no copy per edge
            source, target, _, param_type, _ = edge
            # One edge: a tuple (one allocation); more: a list
            kids = children[source]
            if kids is none:
                children[source] = (target,)
            elif type(kids) is tuple:
                children[source] = [*kids, target]
            else:
                kids.append(target)
            folks = parents[target]
            if folks is none:
                parents[target] = (source,)
            elif type(folks) is tuple:
                parents[target] = [*folks, source]
            else:
                folks.append(source)
            in_degree[target] += 1
            if param_type is None:
                waits[target] = (*waits[target], source)
            else:
                into = inputs[target]
                if into is none:
                    inputs[target] = (edge,)
                elif type(into) is tuple:
                    inputs[target] = [*into, edge]
                else:
                    into.append(edge)
        arg_sources: list = [none] * size
        kwarg_sources: list = [none] * size
        for node, edges in enumerate(inputs):
            if edges is none:
                continue
            if len(edges) == 1 and edges[0][3] == "arg":  # the commonest: one positional argument
                arg_sources[node] = (edges[0][0],)
                continue
            positional = [e for e in edges if e[3] == "arg"]
            if any(positional[i][4] > positional[i + 1][4] for i in range(len(positional) - 1)):
                positional.sort(key=lambda e: e[4])
            arg_sources[node] = tuple(e[0] for e in positional)
            if len(positional) != len(edges):
                kwarg_sources[node] = tuple((e[2], e[0]) for e in edges if e[3] == "kwarg")
        self.inputs = inputs
        self.waits = waits
        self.children = children
        self.parents = parents
        self.in_degree = in_degree
        self.arg_sources = arg_sources
        self.kwarg_sources = kwarg_sources
        self.parameters = [i for i, kind in enumerate(graph.kinds) if kind == NodeKind.PARAMETER]
        self.order = topological_order(children, in_degree)
        self._tasks: Any = None

    @property
    def tasks(self) -> tuple:
        """Ids of the nodes that are not parameters, in id order."""
        if self._tasks is None:
            parameters = set(self.parameters)
            self._tasks = tuple(n for n in range(len(self.in_degree)) if n not in parameters)
        return self._tasks


def plan_for(graph: Any) -> Plan:
    """Return the (cached) plan of *graph*."""
    plan = graph._plan
    if plan is None:
        plan = graph._plan = Plan(graph)
    return plan
