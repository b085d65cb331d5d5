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

from typing import Any, Optional

from ..workflow.tracing import gather_set
from .hashing import (Hasher, Unhashable, describe_changes, digest, hooks_digest, parts_digest,
                      reuse_key_digest)

__all__ = ["function_keys", "node_keys", "decide_reuse", "Reuse"]

_LITERAL_KEYS = {int: "int:", float: "float:", bool: "bool:", type(None): "none:", str: "str:"}

_INTERNAL_KINDS = frozenset({"electron_list", "electron_dict", "getter", "operator", "postprocess"})


def function_keys(graph: Any, unfrozen: Optional[str] = None) -> tuple:
    """Digest every distinct function of *graph*, once each.

    Returns ``(keys, parts, problems)``: ``keys`` maps ``id(function)`` to its
    digest (absent when it cannot be hashed), ``parts`` maps each electron's
    name to its :func:`~covalent_nb.dispatch.hashing.function_parts` (used to
    explain a change later) and ``problems`` maps ``id(function)`` to the
    reason it cannot be hashed.  Runs at dispatch time, in the caller's
    thread, on the dispatch's frozen copies: exactly what the tasks will run.
    With *unfrozen* (why the work could not be frozen), no function gets a key:
    tasks then run the live objects, which a key cannot vouch for.
    """
    keys: dict = {}
    parts_by_name: dict = {}
    problems: dict = {}
    seen: set = set()
    hasher = Hasher()  # one pass: helpers shared by many tasks are digested once
    kinds, functions, metadata, names = graph.kinds, graph.functions, graph.metadata, graph.names
    for node_id, function in enumerate(functions):
        if function is None:
            continue
        marker = (id(function), id(metadata[node_id]))
        if marker in seen:
            continue
        seen.add(marker)
        kind = kinds[node_id]
        if unfrozen is not None and kind not in _INTERNAL_KINDS:
            problems[marker] = f"the workflow could not be frozen at dispatch ({unfrozen})"
            continue
        try:
            if kind in _INTERNAL_KINDS:
                parts = {"internal": f"{kind}:{getattr(function, '__name__', '?')}"}
            else:
                parts = dict(hasher.function_parts(function))
                hooks = hooks_digest(metadata[node_id], hasher)
                if hooks:
                    parts["hooks"] = hooks
                extra = reuse_key_digest(metadata[node_id], hasher)
                if extra:
                    parts["reuse_key"] = extra
            keys[marker] = parts_digest(parts)
            if kind in ("electron", "sublattice"):
                parts_by_name.setdefault(names[node_id], parts)
        except Unhashable as exc:
            problems[marker] = str(exc)
    return keys, parts_by_name, problems


def node_keys(graph: Any, plan: Any, fkeys: dict, problems: dict, salt: str) -> tuple:
    """Compute every node's key in topological order.

    Returns ``(keys, unhashable)`` where ``unhashable`` maps node ids to the
    reason their key is missing.
    """
    size = len(graph)
    keys: list = [None] * size
    unhashable: dict = {}
    kinds, functions, metadata, values = graph.kinds, graph.functions, graph.metadata, graph.values
    inputs, waits = plan.inputs, plan.waits
    hasher = Hasher()
    for node in plan.order:
        kind = kinds[node]
        if kind == "parameter":
            value = values[node]
            kind_of_value = type(value)
            if kind_of_value in _LITERAL_KEYS and (kind_of_value is not str or len(value) <= 64):
                # Small literals are their own key (no digest: this runs once per parameter);
                # the prefix keeps them apart from digests, which are bare hex.
                keys[node] = _LITERAL_KEYS[kind_of_value] + repr(value)
                continue
            try:
                keys[node] = hasher.value(value)
            except Unhashable as exc:
                unhashable[node] = str(exc)
            continue
        marker = (id(functions[node]), id(metadata[node]))
        fkey = fkeys.get(marker)
        if fkey is None:
            unhashable[node] = problems.get(marker, "its function cannot be hashed")
            continue
        pieces = [kind, fkey]
        # a set's items are gathered in iteration order, which differs between processes
        unordered = functions[node] is gather_set
        for source, edge_name, param_type, arg_index in inputs[node]:
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
                meta = metadata[node]
                if meta is not None and not meta.get("reusable", True):
                    pieces.append("salt:" + salt)
                keys[node] = digest(*pieces)
    return keys, unhashable


class Reuse:
    """The reuse decision of a whole dispatch.

    ``reused`` maps node ids to the parent's node id they take the output of;
    ``reasons`` maps every electron-like node id to a sentence saying why it
    was reused or recomputed.
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
                 reuse_requested: bool) -> Reuse:
    """Decide, for every non-parameter node, reuse or recompute, with a reason.

    *parent* is the parent dispatch's :class:`~covalent_nb.results.result.Result`
    (or None for a first dispatch).
    """
    decision = Reuse()
    reasons = decision.reasons
    kinds, names, metadata = graph.kinds, graph.names, graph.metadata
    if parent is None:
        for node, kind in enumerate(kinds):
            if kind != "parameter":
                reasons[node] = "first dispatch"
        return decision
    if not reuse_requested:
        for node, kind in enumerate(kinds):
            if kind != "parameter":
                reasons[node] = "recomputed: reuse not requested (reuse_previous_results=False)"
        return decision

    from ..results.status import Status

    table = parent._table
    completed = Status.COMPLETED
    parent_keys = table.key
    unstorable = table.unstorable  # outputs the store could not keep are never reused
    index: dict = {}
    for pnode, pkey in enumerate(parent_keys):
        if pkey is not None and table.status[pnode] is completed and pnode not in unstorable:
            index.setdefault(pkey, pnode)
    pid = parent.dispatch_id
    reused = decision.reused
    inputs, waits = plan.inputs, plan.waits
    parent_graph = parent.graph
    by_name: Optional[dict] = None
    old_names = {getattr(v, "__name__", k): k for k, v in (replacements or {}).items()}
    for node in plan.order:
        kind = kinds[node]
        if kind == "parameter":
            continue
        key = keys[node]
        if key is not None:
            hit = index.get(key)
            # a node that waits for a recomputed node (a side effect) is recomputed too
            if hit is not None and (not waits[node] or all(w in reused for w in waits[node])):
                reused[node] = hit
                reasons[node] = f"reused: same code and inputs as node {hit} of {pid}"
                continue
        # Recomputed: find the first cause, most specific first.
        if node in replaced:
            reasons[node] = _replaced_reason(names[node], old_names, parent, parts_by_name)
            continue
        meta = metadata[node]
        if meta is not None and not meta.get("reusable", True):
            reasons[node] = "recomputed: opted out (reusable=False)"
            continue
        upstream = next((src for src, *_ in inputs[node] if kinds[src] != "parameter" and src not in reused),
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
        bad_param = next(((src, edge) for src, edge, *_ in inputs[node] if src in unhashable), None)
        if bad_param is not None:
            reasons[node] = (f"recomputed: not reusable (argument {bad_param[1]!r} cannot be hashed: "
                             f"{unhashable[bad_param[0]]})")
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
        if kind in ("electron", "sublattice") and old_parts is not None and new_parts is not None \
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
    from .plan import plan_for

    parent_keys = parent._table.key
    parent_inputs = {(edge_name, param_type, arg_index): parent_keys[source]
                     for source, edge_name, param_type, arg_index in plan_for(parent.graph).inputs[twin]}
    for source, edge_name, param_type, arg_index in node_inputs:
        if parent_inputs.get((edge_name, param_type, arg_index)) != keys[source]:
            return edge_name
    if len(parent_inputs) != len(node_inputs):
        return "(number of arguments)"
    return None
