"""Results rebuilt from the store: lazy outputs and a result that can wait on another process.

A loaded :class:`StoredResult` is an ordinary
:class:`~covalent_nb.results.result.Result` except in two ways:

* node outputs are unpickled on first access (:class:`~covalent_nb.results.result.LazyOutputs`), so
  reading the status of a 10,000-node dispatch does not unpickle 10,000
  values, and a missing or corrupted blob fails only the node it belongs to,
  with an error naming the dispatch, the node and the file;
* a dispatch still running in another live process is loaded as it stands;
  :meth:`StoredResult.wait` then polls the store until it has ended and
  refreshes the records.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from .result import LazyOutputs, Result

_UNLOADED = LazyOutputs.unloaded()
from ..states import ENDED
from .values import StoreError

__all__ = ["LazyOutputs", "StoredResult", "StoredLattice"]

class StoredLattice:
    """Stands in for a lattice whose definition was not stored (or cannot be loaded here)."""

    def __init__(self, name: str, why: str, dispatch_id: str) -> None:
        self.__name__ = name
        self.__qualname__ = name
        self.why = why
        self.dispatch_id = dispatch_id
        self.metadata: dict = {}
        self.args: tuple = ()
        self.kwargs: dict = {}
        self.transport_graph = None

    def copy_for_dispatch(self, graph: Any, args: tuple, kwargs: dict) -> "StoredLattice":
        clone = StoredLattice(self.__name__, self.why, self.dispatch_id)
        clone.transport_graph, clone.args, clone.kwargs = graph, tuple(args), dict(kwargs)
        return clone

    def _missing(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError(f"the lattice {self.__name__} of dispatch {self.dispatch_id} is not available "
                         f"from the store ({self.why}); redispatching it with new inputs or "
                         "replacements needs its definition")

    trace = __call__ = build_graph = _missing

    def __repr__(self) -> str:
        return f"<lattice {self.__name__} (from the store, definition unavailable)>"


class StoredResult(Result):
    """A :class:`Result` rebuilt from the store (see the module docstring)."""

    _poll_s = 0.2

    def _init_stored(self, store: Any, result_node: Optional[int], result_value: Any = _UNLOADED) -> None:
        self._store = store
        self._result_node = result_node
        self._result_value = result_value

    # Result.__init__ assigns self._result; the workflow's output is then read
    # lazily from its node, like every other output.
    @property
    def _result(self) -> Any:
        value = getattr(self, "_result_value", None)
        if value is _UNLOADED:
            node = self._result_node
            value = self._table.output[node] if node is not None else None
            self._result_value = value
        return value

    @_result.setter
    def _result(self, value: Any) -> None:
        self._result_value = value

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the dispatch ends, also when another process runs it."""
        if self._done.is_set():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._store.refresh(self):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return self._done.is_set()
            pause = self._poll_s if deadline is None else max(0.0, min(self._poll_s, deadline - time.monotonic()))
            if self._done.wait(pause):
                return True

    @property
    def from_store(self) -> bool:
        """True: this result was rebuilt from the store, not run in this kernel."""
        return True

    def _mark_done_if_ended(self) -> bool:
        if self.status in ENDED:
            self._done.set()
        return self._done.is_set()
