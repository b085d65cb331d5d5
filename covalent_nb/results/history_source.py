"""Reuse from history: where a dispatch finds earlier runs of the same work.

``ct.dispatch(lattice, reuse_previous_results=True)`` reuses, for every node,
an earlier COMPLETED node with the same key (see :mod:`covalent_nb.dispatch.reuse`)
from any dispatch the active store holds: this kernel's, an earlier kernel's,
another process's once its records are durable.  The dispatcher reaches this
module only through its services (``DispatchServices.history``):

* :meth:`HistorySource.find` asks the active store's index: the SQLite store's
  ``node_keys`` table (one indexed lookup per key), or, for the in-memory
  store, an index of this kernel's ended dispatches (:class:`KernelIndex`);
* :meth:`HistorySource.output` reads the chosen node's output, from this
  kernel's result when it is here, else from the store.

Deleted and pruned dispatches leave the index with their records, so nothing
deleted is reused.  FAILED and CANCELLED nodes, outputs the store could not
keep, and nodes without a key (``reusable=False`` ones salt theirs) are never
in it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from ..dispatch.reuse import HistoryHit
from ..dispatch.runtime import RUNTIME
from ..serialization import IMMUTABLE
from ..states import NodeKind, Status
from .values import StoreError

__all__ = ["HistorySource", "KernelIndex"]


class HistorySource:
    """The dispatcher's way into the history: *active_store()* returns the store in use.

    The API layer makes the one the dispatchers are handed (``covalent_nb.api.SERVICES``).
    """

    def __init__(self, active_store: Callable[[], Any]) -> None:
        self.active_store = active_store

    def find(self, keys: Iterable[str]) -> dict:
        """``{key: HistoryHit}``: the newest stored COMPLETED node for each key that has one."""
        return self.active_store().find_keys(keys)

    def last_parts(self, lattice_name: str, exclude: str) -> Any:
        """``(dispatch id, function parts)`` of the newest earlier dispatch of the same lattice, or None:
        what a node recomputed under reuse from history compares its code with, to say what changed."""
        return self.active_store().last_function_parts(lattice_name, exclude)

    def output(self, hit: HistoryHit) -> tuple:
        """``(value, pickled bytes or None, sublattice result or None)`` of the node *hit* names."""
        result = RUNTIME.registry.lookup(hit.dispatch_id)
        if result is None:
            result = self.active_store().load(hit.dispatch_id)
            if result is None:
                raise StoreError(f"dispatch {hit.dispatch_id} is no longer in the store")
            RUNTIME.registry.register(result, None)
        table = result._table
        node = hit.node_id
        value = table.output.raw[node]
        if type(value) in IMMUTABLE and node not in table.frozen:
            return value, None, table.sublattice.get(node)
        value, data = table.pristine(node)
        return value, data, table.sublattice.get(node)


class KernelIndex:
    """The history of the in-memory store: this kernel's ended dispatches, indexed by node key.

    Built lazily: each ended dispatch is indexed once, the first time a
    dispatch looks for history after it ended.
    """

    def __init__(self) -> None:
        self._indexed: set = set()
        self._by_key: dict = {}

    def find(self, keys: Iterable[str]) -> dict:
        registry = RUNTIME.registry
        for result in registry.all_results():
            if result.dispatch_id not in self._indexed and result.ended:
                self._add(result)
        found = {}
        stale = False
        for key in keys:
            hit = self._by_key.get(key)
            if hit is None:
                continue
            if registry.lookup(hit.dispatch_id) is None:  # deleted since: never reused
                stale = True
                continue
            found[key] = hit
        if stale:  # drop what was deleted; an older run of the same key may still be here
            self._indexed.clear()
            self._by_key.clear()
            return self.find(keys)
        return found

    def _add(self, result: Any) -> None:
        self._indexed.add(result.dispatch_id)
        table = result._table
        kinds = result.graph.kinds
        completed = Status.COMPLETED
        unstorable = table.unstorable
        for node, key in enumerate(table.key or ()):
            if key is None or kinds[node] == NodeKind.PARAMETER or table.status[node] is not completed \
                    or node in unstorable:
                continue
            end = table.end[node] or 0
            known = self._by_key.get(key)
            if known is None or end > known.end_us:
                self._by_key[key] = HistoryHit(result.dispatch_id, node, end)
