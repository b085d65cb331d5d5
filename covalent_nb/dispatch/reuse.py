"""Keys and reuse: which nodes of a redispatch can take a previous result, and why.

Every node gets a *key* before anything runs: a digest of what determines its
output.  A parameter's key is its value's digest.  An electron's key combines
its function's digest (code and everything the code reaches, computed once per
function at dispatch time, see :func:`function_keys`) with the keys of its
inputs, edge by edge.  Keys are compared, not node positions: a node is reused
when a COMPLETED node of the parent dispatch has the same key, wherever it sits.

A node whose key cannot be computed (an argument or global that cannot be
hashed) gets no key and is never reused; a node that opted out
(``reusable=False``) gets a key salted with its dispatch id, so it and
everything downstream of it differ from any earlier run.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import MutableMapping
from typing import Any, Callable, NamedTuple, Optional

from ..states import NodeKind, Status

from ..workflow.tracing import gather_set
from .plan import plan_for
from .hashing import (Hasher, Unhashable, describe_changes, digest, hooks_digest, parts_digest,
                      reuse_key_digest)

__all__ = ["PARENT_REASON", "SameNodeReasons", "FunctionKeys", "function_keys", "node_keys", "decide_reuse", "Reuse", "HistoryHit",
           "from_history_reason"]

_LITERAL_KEYS = {int: "int:", float: "float:", bool: "bool:", type(None): "none:", str: "str:"}

_INTERNAL_KINDS = NodeKind.INTERNAL


class FunctionKeys:
    """What :func:`function_keys` learned about a graph's functions.

    ``per_node``
        per node id, the digest of the function it runs (None for parameters
        and for functions that cannot be keyed);
    ``by_marker``
        ``(id(function), id(metadata))`` -> digest: equal between two graphs
        exactly when they run the same objects with the same keys;
    ``parts``
        each electron's name -> its :func:`~covalent_nb.dispatch.hashing.function_parts`,
        to say later what changed;
    ``problems``
        node id -> why its function cannot be keyed;
    ``opted_out``
        ids of nodes whose electron says ``reusable=False``.
    """

    __slots__ = ("_per_node", "_by_group", "_of_node", "by_marker", "parts", "problems", "opted_out")

    def __init__(self, size: int) -> None:
        self._per_node: Optional[list] = None
        self._by_group: list = [None]  # per node group (TransportGraph.node_groups), its digest
        self._of_node: list = [0] * size
        self.by_marker: dict = {}
        self.parts: dict = {}
        self.problems: dict = {}
        self.opted_out: set = set()

    @property
    def per_node(self) -> list:
        """Per node id, the digest of its function (made on first use: a rerun of the same graph
        compares ``by_marker`` only)."""
        if self._per_node is None:
            self._per_node = list(map(self._by_group.__getitem__, self._of_node))
        return self._per_node


def function_keys(graph: Any, unfrozen: Optional[str] = None) -> FunctionKeys:
    """Digest every distinct function of *graph*, once each (see :class:`FunctionKeys`).

    Runs at dispatch time, in the caller's thread, on the dispatch's frozen
    copies: exactly what the tasks will run.  With *unfrozen* (why the work
    could not be frozen), no function gets a key: tasks then run the live
    objects, which a key cannot vouch for.
    """
    found = FunctionKeys(len(graph))
    by_marker, problems = found.by_marker, found.problems
    reasons: dict = {}  # marker -> why it cannot be keyed
    hasher = Hasher()  # one pass: helpers shared by many tasks are digested once
    kinds, functions, metadata, names = graph.kinds, graph.functions, graph.metadata, graph.names
    # Python-level work once per group of nodes running the same (function, metadata) objects, in
    # the order nodes first use them (so each electron's parts come from its first node).
    groups = graph.node_groups()
    found._of_node = groups.of_node
    by_group = found._by_group = [None] * len(groups.firsts)
    failed: dict = {}  # group -> why
    opted: set = set()
    for group, node_id in enumerate(groups.firsts):
        function = functions[node_id]
        if function is None:
            continue
        meta = metadata[node_id]
        marker = groups.markers[group]
        known = _function_key(function, meta, kinds[node_id], names[node_id], unfrozen, hasher,
                              found.parts, reasons, marker)
        if known is None:
            failed[group] = reasons[marker]
            continue
        by_marker[marker] = by_group[group] = known
        if meta is not None and not meta.get("reusable", True):
            opted.add(group)
    if failed:
        problems.update((node, failed[g]) for node, g in enumerate(groups.of_node) if g in failed)
    if opted:
        found.opted_out.update(node for node, g in enumerate(groups.of_node) if g in opted)
    return found


def _function_key(function: Any, meta: Optional[dict], kind: str, name: str, unfrozen: Optional[str],
                  hasher: Hasher, parts_by_name: dict, reasons: dict, marker: tuple) -> Optional[str]:
    if kind in _INTERNAL_KINDS:
        parts = {"internal": f"{kind}:{getattr(function, '__name__', '?')}"}
        if isinstance(function, functools.partial):  # a structure's collector: what it rebuilds counts
            parts["rebuilds"] = hasher.value(function)
        return parts_digest(parts)
    if unfrozen is not None:
        reasons[marker] = f"the workflow could not be frozen at dispatch ({unfrozen})"
        return None
    try:
        parts = dict(hasher.function_parts(function))
        hooks = hooks_digest(meta, hasher)
        if hooks:
            parts["hooks"] = hooks
        extra = reuse_key_digest(meta, hasher)
        if extra:
            parts["reuse_key"] = extra
    except Unhashable as exc:
        reasons[marker] = str(exc)
        return None
    if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE):
        parts_by_name.setdefault(name, parts)
    return parts_digest(parts)


def node_keys(graph: Any, plan: Any, fkeys: FunctionKeys, salt: str) -> tuple:
    """Compute every node's key in topological order.

    Returns ``(keys, unhashable)`` where ``unhashable`` maps node ids to the
    reason their key is missing.
    """
    size = len(graph)
    keys: list = [None] * size
    unhashable: dict = {}
    kinds, functions, values = graph.kinds, graph.functions, graph.values
    inputs, waits = plan.inputs, plan.waits
    per_node, problems, opted_out = fkeys.per_node, fkeys.problems, fkeys.opted_out
    salted = "salt:" + salt
    literal_keys = _LITERAL_KEYS
    hasher = Hasher()
    for node in plan.order:
        fkey = per_node[node]
        if fkey is None:
            if kinds[node] != NodeKind.PARAMETER:
                unhashable[node] = problems.get(node, "its function cannot be hashed")
                continue
            value = values[node]
            kind_of_value = type(value)
            if kind_of_value in literal_keys and (kind_of_value is not str or len(value) <= 64) and (
                    kind_of_value is not int or -1 << 60 < value < 1 << 60):
                # Small literals are their own key (no digest: this runs once per parameter);
                # the prefix keeps them apart from digests, which are bare hex.
                keys[node] = literal_keys[kind_of_value] + repr(value)
                continue
            try:
                keys[node] = hasher.value(value)
            except Unhashable as exc:
                unhashable[node] = str(exc)
            continue
        pieces = [kinds[node], fkey]
        # a set's items are gathered in iteration order, which differs between processes
        unordered = functions[node] is gather_set
        for source, _, edge_name, param_type, arg_index in inputs[node]:
            parent_key = keys[source]
            if parent_key is None:
                break
            pieces.append(parent_key if unordered else f"{edge_name}/{param_type}/{arg_index}={parent_key}")
        else:
            if unordered:
                pieces[2:] = sorted(pieces[2:])
            for source in waits[node]:  # a wait is a side-effect dependency: its key counts too
                parent_key = keys[source]
                if parent_key is None:
                    unhashable[node] = f"it waits for node {source}, which cannot be keyed"
                    break
                pieces.append("wait=" + parent_key)
            else:
                if node in opted_out:
                    pieces.append(salted)
                keys[node] = digest(*pieces)
    return keys, unhashable


class HistoryHit(NamedTuple):
    """An earlier COMPLETED node with a given key, found in the store's history."""

    dispatch_id: str
    node_id: int
    end_us: int


def from_history_reason(hit: HistoryHit) -> str:
    """The reason of a node reused from history: where its output comes from, and when it was made."""
    when = _dt.datetime.fromtimestamp(hit.end_us / 1e6).strftime("%Y-%m-%d %H:%M:%S") if hit.end_us else "?"
    return (f"reused from history: same code and inputs as node {hit.node_id} of {hit.dispatch_id} "
            f"(ended {when})")


_UNASKED = object()

#: The reason of a node reused from its parent: ``PARENT_REASON.format(parent node, parent id)``.
PARENT_REASON = "reused: same code and inputs as node {} of {}"


class SameNodeReasons(MutableMapping):
    """The reasons of a dispatch whose every node in *nodes* was reused from the node with the
    same id of *parent_id*: a mapping of node id to reason, as the dict it stands in for.

    Each of those reasons (:data:`PARENT_REASON`) is made when it is read, so
    a full-reuse redispatch of 10,000 tasks holds two fields, not 10,000
    sentences; reasons set later (say, for a blocked node) are kept as given.
    """

    __slots__ = ("parent_id", "nodes", "_members", "_given")

    def __init__(self, parent_id: str, nodes: Any, given: Optional[dict] = None) -> None:
        self.parent_id = parent_id
        self.nodes = tuple(nodes)
        self._members: Optional[frozenset] = None
        self._given: dict = dict(given or {})

    def _reused(self) -> frozenset:
        if self._members is None:
            self._members = frozenset(self.nodes)
        return self._members

    @property
    def given(self) -> dict:
        """The reasons set one by one (not the parent's), ``{node: reason}``."""
        return dict(self._given)

    def __getitem__(self, node: Any) -> str:
        text = self._given.get(node)
        if text is not None:
            return text
        if node in self._reused():
            return PARENT_REASON.format(node, self.parent_id)
        raise KeyError(node)

    def __setitem__(self, node: Any, text: str) -> None:
        self._given[node] = text

    def __delitem__(self, node: Any) -> None:
        if node in self._reused():
            raise TypeError("the reason of a node reused from its parent cannot be removed")
        del self._given[node]

    def __iter__(self) -> Any:
        yield from self.nodes
        reused = self._reused()
        yield from (node for node in self._given if node not in reused)

    def __len__(self) -> int:
        return len(self.nodes) + sum(1 for node in self._given if node not in self._reused())

    def __contains__(self, node: Any) -> bool:
        return node in self._given or node in self._reused()

    def copy(self) -> "SameNodeReasons":
        """A copy (cheap: the reused nodes are shared)."""
        twin = SameNodeReasons(self.parent_id, (), self._given)
        twin.nodes, twin._members = self.nodes, self._members
        return twin

    def __reduce__(self) -> tuple:
        return (SameNodeReasons, (self.parent_id, self.nodes, self._given))

    def __repr__(self) -> str:
        return f"<SameNodeReasons: {len(self.nodes)} nodes reused from {self.parent_id}, {len(self._given)} more>"


class Reuse:
    """The reuse decision of a whole dispatch.

    ``reused`` maps node ids to where they take their output from: the
    parent's node id (an ``int``), or a :class:`HistoryHit`; ``reasons`` maps
    every electron-like node id to a sentence saying why it was reused or
    recomputed.
    """

    __slots__ = ("reused", "reasons")

    def __init__(self) -> None:
        self.reused: dict = {}
        self.reasons: dict = {}


def _comparable(parent_graph: Any, node: int, name: str, kind: str, by_name: dict) -> Optional[int]:
    if node < len(parent_graph) and parent_graph.names[node] == name and parent_graph.kinds[node] == kind:
        return node
    return by_name.get((name, kind))


def decide_reuse(graph: Any, plan: Any, keys: list, unhashable: dict, parts_by_name: dict,
                 replaced: frozenset, replacements: dict, parent: Optional[Any],
                 reuse_requested: bool, history: Optional[dict] = None,
                 last_parts: Optional[Callable[[], Optional[tuple]]] = None) -> Reuse:
    """Decide, for every non-parameter node, reuse or recompute, with a reason.

    *parent* is the parent dispatch's :class:`~covalent_nb.results.result.Result`
    (or None for a first dispatch); its nodes are reused when *reuse_requested*.
    *history* (None unless reuse from history was asked for) maps keys to the
    :class:`HistoryHit` of an earlier stored node; the parent is looked at first.
    *last_parts* (with *history*, and no parent to compare with) returns
    ``(dispatch id, function parts)`` of the newest earlier dispatch of the
    same lattice, or None: an electron recomputed because its code changed
    since then says what changed.  It is called once, and only if needed.
    """
    decision = Reuse()
    reasons = decision.reasons
    kinds, names, metadata = graph.kinds, graph.names, graph.metadata
    use_parent = parent is not None and reuse_requested
    if not use_parent and history is None:
        why = "first dispatch" if parent is None else \
            "recomputed: reuse not requested (reuse_previous_results=False)"
        for node, kind in enumerate(kinds):
            if kind != NodeKind.PARAMETER:
                reasons[node] = why
        return decision

    completed = Status.COMPLETED
    index: dict = {}
    if use_parent:
        table = parent._table
        unstorable = table.unstorable  # outputs the store could not keep are never reused
        for pnode, pkey in enumerate(table.key):
            if pkey is not None and table.status[pnode] is completed and pnode not in unstorable:
                index.setdefault(pkey, pnode)
        pid = parent.dispatch_id
        parent_graph = parent.graph
    history = history or {}
    reused = decision.reused
    inputs, waits = plan.inputs, plan.waits
    by_name: Optional[dict] = None
    old_names = {getattr(v, "__name__", k): k for k, v in (replacements or {}).items()}
    previous: Any = _UNASKED  # last_parts(), once asked
    for node in plan.order:
        kind = kinds[node]
        if kind == NodeKind.PARAMETER:
            continue
        key = keys[node]
        # a node that waits for a recomputed node (a side effect) is recomputed too
        if key is not None and (not waits[node] or all(w in reused for w in waits[node])):
            hit = index.get(key)
            if hit is not None:
                reused[node] = hit
                reasons[node] = PARENT_REASON.format(hit, pid)
                continue
            found = history.get(key)
            if found is not None:
                reused[node] = found
                reasons[node] = from_history_reason(found)
                continue
        # Recomputed: find the first cause, most specific first.
        if node in replaced and use_parent:
            reasons[node] = _replaced_reason(names[node], old_names, parent, parts_by_name)
            continue
        meta = metadata[node]
        if meta is not None and not meta.get("reusable", True):
            reasons[node] = "recomputed: opted out (reusable=False)"
            continue
        upstream = next((src for src, *_ in inputs[node] if kinds[src] != NodeKind.PARAMETER and src not in reused),
                        None)
        if upstream is not None:
            reasons[node] = f"recomputed: upstream recomputed (node {upstream}, {names[upstream]})"
            continue
        waited = next((src for src in waits[node] if src not in reused), None)
        if waited is not None:
            reasons[node] = f"recomputed: waits for a recomputed node (node {waited}, {names[waited]})"
            continue
        if node in unhashable:
            reasons[node] = f"recomputed: not reusable ({unhashable[node]})"
            continue
        bad_param = next(((src, edge) for src, _, edge, *_ in inputs[node] if src in unhashable), None)
        if bad_param is not None:
            reasons[node] = (f"recomputed: not reusable (argument {bad_param[1]!r} cannot be hashed: "
                             f"{unhashable[bad_param[0]]})")
            continue
        if not use_parent:
            if previous is _UNASKED:
                previous = last_parts() if last_parts is not None else None
            if previous is not None and kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE):
                old_parts = previous[1].get(names[node])
                new_parts = parts_by_name.get(names[node])
                if old_parts is not None and new_parts is not None and old_parts != new_parts:
                    reasons[node] = (f"recomputed: code changed ({describe_changes(old_parts, new_parts, names[node])}"
                                     f", since {previous[0]})")
                    continue
            reasons[node] = "recomputed: no earlier run of the same code and inputs in the history"
            continue
        if by_name is None:
            by_name = {}
            for pnode, (pname, pkind) in enumerate(zip(parent_graph.names, parent_graph.kinds)):
                by_name.setdefault((pname, pkind), pnode)
        twin = _comparable(parent_graph, node, names[node], kind, by_name)
        if twin is None:
            reasons[node] = f"recomputed: new node (no {names[node]} in {pid})"
            continue
        if twin in unstorable:
            reasons[node] = f"recomputed: previous output was not stored ({unstorable[twin]})"
            continue
        if table.status[twin] is not completed:
            reasons[node] = f"recomputed: previous run {table.status[twin]} (node {twin} of {pid})"
            continue
        old_parts = parent.function_parts.get(names[node])
        new_parts = parts_by_name.get(names[node])
        if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE) and old_parts is not None and new_parts is not None \
                and old_parts != new_parts:
            reasons[node] = f"recomputed: code changed ({describe_changes(old_parts, new_parts, names[node])})"
            continue
        changed = _changed_input(parent, twin, inputs[node], keys)
        if changed:
            reasons[node] = f"recomputed: input changed (argument {changed!r})"
            continue
        reasons[node] = f"recomputed: no completed node with the same key in {pid}"
    return decision


def _replaced_reason(name: str, old_names: dict, parent: Any, parts_by_name: dict) -> str:
    """Why a replaced node is recomputed: a new function, or the same name with new code."""
    original = old_names.get(name, name)
    previous = parent.replacements.get(original)
    old_name = getattr(previous, "__name__", None) or original
    old_parts = parent.function_parts.get(old_name)
    new_parts = parts_by_name.get(name)
    if old_name == name and old_parts is not None and new_parts is not None:
        return f"recomputed: code changed ({describe_changes(old_parts, new_parts, name)})"
    return f"recomputed: replaced ({old_name} -> {name})"


def _changed_input(parent: Any, twin: int, node_inputs: list, keys: list) -> Optional[str]:

    parent_keys = parent._table.key
    parent_inputs = {(edge_name, param_type, arg_index): parent_keys[source]
                     for source, _, edge_name, param_type, arg_index in plan_for(parent.graph).inputs[twin]}
    for source, _, edge_name, param_type, arg_index in node_inputs:
        if parent_inputs.get((edge_name, param_type, arg_index)) != keys[source]:
            return edge_name
    if len(parent_inputs) != len(node_inputs):
        return "(number of arguments)"
    return None
