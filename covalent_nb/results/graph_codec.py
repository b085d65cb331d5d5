"""Storing a dispatch's graph: functions included, and never failing the dispatch.

The graph is what a later process needs to show a dispatch and to rerun it
without tracing again, so it is stored with its functions (cloudpickle: a
notebook's functions by value).  When some part cannot be pickled (a task
closing over a lock, an argument holding a socket), the graph is stored with
that part replaced by a stand-in that says why, and the dispatch runs on
unaffected.

The graph's shape (names, kinds, edges: plain strings, numbers and tuples)
is written with :mod:`marshal`, four times faster than pickling it (a
20,000-node graph: 2 ms instead of 9), and only functions, values and
metadata go through cloudpickle.  A redispatch that reruns a graph unchanged
shares the graph's lists with its parent; the bytes of the last few graphs
are remembered by the identity of those lists, so such a rerun does not
encode the graph again.
"""

from __future__ import annotations

import marshal
import pickle
import threading
from collections import OrderedDict
from typing import Any, Optional

import cloudpickle

from ..dispatch.executors import executor_name
from ..workflow.graph import TransportGraph
from .values import NotStored, UnstoredFunction, dumps, loads, reason_of

__all__ = ["encode_graph", "decode_graph", "forget"]

_FORMAT = "graph-1"
_MARSHAL_VERSION = 4  # stable since Python 3.4

_LISTS = ("names", "kinds", "functions", "values", "metadata", "edges")
_CACHE_SIZE = 4
_cache: "OrderedDict[tuple, tuple]" = OrderedDict()
_lock = threading.Lock()


def encode_graph(graph: TransportGraph) -> tuple:
    """Return ``(bytes, note)``: the pickled graph and what could not be stored (or None)."""
    lists = tuple(getattr(graph, name) for name in _LISTS)
    key = tuple(id(x) for x in lists)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], lists)):
            _cache.move_to_end(key)
            return hit[1], hit[2]
    try:
        shape = marshal.dumps((graph.names, graph.kinds, graph.edges), _MARSHAL_VERSION)
    except ValueError:  # something other than plain data in the shape: pickle it all
        shape = None
    try:
        data, note = _pack(graph, shape), None
    except Exception as exc:  # noqa: BLE001 - store what can be stored
        clone, problems = _storable_copy(graph)
        data = _pack(clone, shape)
        note = f"stored without {', '.join(problems) or 'some parts'} ({reason_of(exc)})"
    with _lock:
        _cache[key] = (lists, data, note)  # holding the lists keeps their ids from being reused
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return data, note


def forget(graph: Any) -> None:
    """Drop the cached encoding of *graph* (its dispatch was deleted: free what it holds)."""
    functions = getattr(graph, "functions", None)
    with _lock:
        for key in [k for k, (lists, _, _) in _cache.items() if lists[2] is functions]:
            del _cache[key]


def _pack(graph: TransportGraph, shape: Optional[bytes]) -> bytes:
    # cloudpickle at once: graphs nearly always hold notebook functions,
    # which plain pickle would only store by reference to __main__.
    if shape is None:
        return pickle.dumps((_FORMAT, None, cloudpickle.dumps(graph, protocol=5)), protocol=5)
    rest = cloudpickle.dumps((graph.functions, graph.values, graph.metadata), protocol=5)
    return pickle.dumps((_FORMAT, shape, rest), protocol=5)


def decode_graph(data: bytes) -> TransportGraph:
    """Rebuild a graph from :func:`encode_graph`'s bytes."""
    form, shape, rest = pickle.loads(data)
    if form != _FORMAT:
        raise ValueError(f"unknown graph format {form!r}")
    if shape is None:
        return loads(rest)
    names, kinds, edges = marshal.loads(shape)
    functions, values, metadata = loads(rest)  # never onto the notebook's live classes
    graph = TransportGraph()
    graph.__setstate__({"names": names, "kinds": kinds, "functions": functions, "values": values,
                        "metadata": metadata, "edges": edges})
    return graph


def _storable(value: Any) -> Optional[str]:
    """None if *value* pickles, else the reason it does not."""
    try:
        dumps(value)
    except Exception as exc:  # noqa: BLE001
        return reason_of(exc)
    return None


def _storable_copy(graph: TransportGraph) -> tuple:
    """A copy of *graph* with every part that cannot be pickled replaced by a stand-in."""
    clone = TransportGraph()
    clone.names, clone.kinds, clone.edges = list(graph.names), list(graph.kinds), list(graph.edges)
    problems: list = []
    verdicts: dict = {}  # id(function or metadata) -> replacement (None: keep)

    def replacement_for(obj: Any, make: Any) -> Any:
        marker = id(obj)
        if marker not in verdicts:
            why = _storable(obj)
            verdicts[marker] = None if why is None else make(why)
        return verdicts[marker]

    functions = []
    for node, function in enumerate(graph.functions):
        if function is None:
            functions.append(None)
            continue
        name = graph.names[node]
        stand_in = replacement_for(function, lambda why, n=name: UnstoredFunction(n, why))
        if stand_in is not None:
            problems.append(f"function {name}")
        functions.append(function if stand_in is None else stand_in)
    clone.functions = functions

    values = []
    for node, value in enumerate(graph.values):
        why = None if value is None else _storable(value)
        if why is not None:
            problems.append(f"value of node {node}")
        values.append(value if why is None else NotStored(why))
    clone.values = values

    metadata = []
    for meta in graph.metadata:
        if meta is None:
            metadata.append(None)
            continue
        stand_in = replacement_for(meta, lambda why, m=meta: _plain_metadata(m))
        metadata.append(meta if stand_in is None else stand_in)
    clone.metadata = metadata
    return clone, sorted(set(problems), key=problems.index)


def _plain_metadata(meta: dict) -> dict:
    """Metadata reduced to what always pickles: the executor's name, no hooks."""

    plain = {k: v for k, v in meta.items() if k not in ("executor", "hooks")}
    plain["executor"] = executor_name(meta.get("executor"))
    plain["hooks"] = {"deps": {"bash": None, "pip": None}, "call_before": [], "call_after": []}
    plain["stored_without"] = "executor object and hooks (they could not be pickled)"
    return plain
