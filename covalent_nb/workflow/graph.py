"""The transport graph: a traced lattice as flat lists.

Tracing appends to plain lists (one entry per node, one tuple per edge) and
never builds networkx objects: a prototype spent half of a 10,000-task
dispatch creating networkx dicts and letting the garbage collector scan them.
The networkx :class:`~networkx.MultiDiGraph` that users (and the layout) see is
built on demand and cached.

Node ids are a dense counter in creation order, exactly as Covalent numbers
them.  Node kinds:

``electron``      a call of an electron's function
``parameter``     a plain argument value (``:parameter:<value>``)
``electron_list`` a list, tuple or set argument gathered from its items
``electron_dict`` a dict argument gathered from its items
``getter``        ``x[i]``, ``x.attr`` or tuple unpacking of a node's output
``operator``      arithmetic on node outputs
``sublattice``    a lattice called as an electron
``postprocess``   the lattice's return value, reconstructed (always last of
                  the trace proper)
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, NamedTuple, Optional

from ..states import NodeKind, Status

__all__ = ["TransportGraph", "NodeGroups", "topological_order", "WAIT_EDGE_NAME", "PARAMETER_PREFIX",
           "POSTPROCESS_NAME"]

WAIT_EDGE_NAME = "!waiting_edge"
PARAMETER_PREFIX = ":parameter:"
POSTPROCESS_NAME = ":postprocess:reconstruct"
ELECTRON_LIST_NAME = ":electron_list:"
ELECTRON_DICT_NAME = ":electron_dict:"
SUBLATTICE_PREFIX = ":sublattice:"

_NODE_FIELDS = ("name", "function", "value", "metadata", "kind")


def topological_order(children: list, in_degree: list) -> list:
    """Order nodes parents-first (Kahn's algorithm) from per-node children and in-degrees.

    Raises ``ValueError`` when the graph has a cycle.
    """
    waiting = list(in_degree)
    order = [i for i, w in enumerate(waiting) if w == 0]
    for node in order:  # the list grows while we walk it
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                order.append(child)
    if len(order) != len(children):
        raise ValueError("the workflow graph has a cycle")
    return order


class NodeGroups(NamedTuple):
    """See :meth:`TransportGraph.node_groups`."""

    #: per group, ``(id(function), id(metadata))``
    markers: list
    #: per group, in node order, the first node of the group
    firsts: list
    #: per node, the index of its group
    of_node: list


class TransportGraph:
    """A traced workflow: nodes and edges kept as parallel lists.

    Attributes
    ----------
    names, kinds, functions, values, metadata:
        One entry per node id.  ``functions[i]`` is the callable a node runs
        (None for parameters); ``values[i]`` is a parameter's value;
        ``metadata[i]`` is the electron's metadata dict (shared by every node of
        the same electron, so it costs one reference per node).
    edges:
        ``(source, target, edge_name, param_type, arg_index)`` tuples in
        creation order; ``param_type`` is ``"arg"`` or ``"kwarg"``.
    """

    __slots__ = ("names", "kinds", "functions", "values", "metadata", "edges",
                 "_nx", "_records", "_shape_key", "_plan", "_groups", "__weakref__")

    def __init__(self) -> None:
        self.names: list = []
        self.kinds: list = []
        self.functions: list = []
        self.values: list = []
        self.metadata: list = []
        self.edges: list = []
        self._nx = None
        self._records = None  # the NodeTable of the dispatch this graph belongs to
        self._shape_key: Optional[str] = None
        self._plan = None  # the dispatcher's precomputed Plan, shared by shallow copies
        self._groups = None  # node_groups(), computed on first use, shared likewise

    def shallow_copy(self) -> "TransportGraph":
        """A new graph object sharing this one's (no longer changing) lists.

        Each dispatch binds its own records to its graph object; a redispatch
        that reruns a graph unchanged shares the lists and the plan.
        """
        clone = TransportGraph()
        for key in ("names", "kinds", "functions", "values", "metadata", "edges", "_shape_key", "_plan",
                    "_groups"):
            setattr(clone, key, getattr(self, key))
        return clone

    # -- building (the tracer's hot path: appends only) -------------------------
    def add_node(self, name: str, kind: str, function: Optional[Callable] = None,
                 value: Any = None, metadata: Optional[dict] = None) -> int:
        """Append a node and return its id."""
        node_id = len(self.names)
        self.names.append(name)
        self.kinds.append(kind)
        self.functions.append(function)
        self.values.append(value)
        self.metadata.append(metadata)
        return node_id

    def add_edge(self, source: int, target: int, edge_name: str,
                 param_type: Optional[str] = None, arg_index: Optional[int] = None) -> None:
        """Append an edge from *source* to *target*."""
        self.edges.append((source, target, edge_name, param_type, arg_index))

    # -- reading ------------------------------------------------------------
    def node_groups(self) -> "NodeGroups":
        """The nodes grouped by the (function, metadata) objects they run: every node of one electron
        shares both, so a 10,000-task fan-out has a handful of groups.

        Whatever depends only on those objects (a function's key, an executor)
        is then worked out once per group.  Computed on first use and kept
        (the lists never change once traced, and they hold the objects, so
        their ids stay theirs); shared by shallow copies.
        """
        groups = self._groups
        if groups is None:
            markers = list(zip(map(id, self.functions), map(id, self.metadata)))  # (not kept: 2 objects a node)
            first = dict(zip(reversed(markers), range(len(markers) - 1, -1, -1)))  # marker -> first node
            firsts = sorted(first.values())
            group_markers = [markers[node] for node in firsts]
            number = {marker: i for i, marker in enumerate(group_markers)}
            groups = self._groups = NodeGroups(group_markers, firsts, list(map(number.__getitem__, markers)))
        return groups

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"<TransportGraph nodes={len(self.names)} edges={len(self.edges)}>"

    def _check(self, node_id: int) -> None:
        if not isinstance(node_id, int) or not 0 <= node_id < len(self.names):
            raise KeyError(
                f"node {node_id!r} does not exist: this graph has node ids 0 to {len(self.names) - 1}"
            )

    def get_node_value(self, node_id: int, key: str) -> Any:
        """Return one attribute of a node, as Covalent's ``TransportGraph`` does.

        Keys: ``name``, ``kind``, ``function``, ``value``, ``metadata``, and,
        once the graph belongs to a dispatch, ``status``, ``output``,
        ``start_time``, ``end_time``, ``error``, ``stdout``, ``stderr`` and
        ``sublattice_result``.
        """
        self._check(node_id)
        if key in _NODE_FIELDS:
            column = {"name": self.names, "function": self.functions, "value": self.values,
                      "metadata": self.metadata, "kind": self.kinds}[key]
            value = column[node_id]
            if key == "metadata" and value is None:
                return {"executor": None, "hooks": {"deps": {}, "call_before": [], "call_after": []}}
            return value
        if self._records is not None:
            record = self._records.node_result(node_id)
            if key in record:
                return record[key]
        elif key == "status":
            return Status.NEW_OBJECT
        elif key in ("output", "start_time", "end_time", "error", "stdout", "stderr", "sublattice_result"):
            return None
        raise KeyError(f"node attribute {key!r} is unknown; known: "
                       f"{', '.join(_NODE_FIELDS + ('status', 'output', 'start_time', 'end_time', 'error', 'stdout', 'stderr', 'sublattice_result'))}")

    def set_node_value(self, node_id: int, key: str, value: Any) -> None:
        """Change a node's ``name``, ``function``, ``value`` or ``metadata`` before dispatch."""
        self._check(node_id)
        if key not in _NODE_FIELDS:
            raise KeyError(f"only {', '.join(_NODE_FIELDS)} can be set on a node, not {key!r}")
        getattr(self, {"name": "names", "function": "functions", "value": "values",
                       "metadata": "metadata", "kind": "kinds"}[key])[node_id] = value
        self._nx = None
        self._shape_key = None

    def get_dependencies(self, node_id: int) -> list:
        """Return the ids of the nodes *node_id* depends on, in edge order."""
        self._check(node_id)
        return [e[0] for e in self.edges if e[1] == node_id]

    def topological_order(self) -> list:
        """Return node ids so that every node comes after all its parents."""
        children: list = [[] for _ in self.names]
        in_degree = [0] * len(self.names)
        for source, target, *_ in self.edges:
            children[source].append(target)
            in_degree[target] += 1
        return topological_order(children, in_degree)

    def shape_key(self) -> str:
        """A digest of names, kinds and edges: equal for graphs that draw alike."""
        if self._shape_key is None:
            digest = hashlib.blake2b(digest_size=16)
            digest.update(repr((self.names, self.kinds, self.edges)).encode())
            self._shape_key = digest.hexdigest()
        return self._shape_key

    # -- the networkx face -----------------------------------------------------
    @property
    def _graph(self):
        """The networkx ``MultiDiGraph`` view (built on first use, then cached)."""
        if self._nx is None:
            self._nx = self._build_networkx()
        return self._nx

    def get_internal_graph_copy(self):
        """Return a copy of the networkx ``MultiDiGraph`` of this workflow."""
        return self._graph.copy()

    def _build_networkx(self):
        import networkx as nx

        graph = nx.MultiDiGraph()
        for node_id, name in enumerate(self.names):
            attrs = {"name": name, "kind": self.kinds[node_id], "function": self.functions[node_id],
                     "metadata": self.metadata[node_id]}
            if self.kinds[node_id] == NodeKind.PARAMETER:
                attrs["value"] = self.values[node_id]
            graph.add_node(node_id, **attrs)
        for source, target, edge_name, param_type, arg_index in self.edges:
            graph.add_edge(source, target, edge_name=edge_name, param_type=param_type,
                           arg_index=arg_index)
        return graph

    def __getstate__(self):
        return {"names": self.names, "kinds": self.kinds, "functions": self.functions,
                "values": self.values, "metadata": self.metadata, "edges": self.edges}

    def __setstate__(self, state):
        for key in ("names", "kinds", "functions", "values", "metadata", "edges"):
            setattr(self, key, state[key])
        self._nx = None
        self._records = None
        self._shape_key = None
        self._plan = None
        self._groups = None
