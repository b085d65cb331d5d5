"""The kernel's registry of dispatches: live results and running dispatchers.

One :class:`Registry` lives in the kernel's :class:`~covalent_nb.dispatch.runtime.Runtime`.
Any thread may call it; its dicts are guarded by one lock.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

__all__ = ["Registry"]


class Registry:
    """Dispatch id -> its result (while the kernel keeps it) and its running dispatcher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict = {}
        self._running: dict = {}
        self._order: list = []

    def register(self, result: Any, dispatcher: Optional[Any]) -> None:
        with self._lock:
            self._results[result.dispatch_id] = result
            self._order.append(result.dispatch_id)
            if dispatcher is not None:
                self._running[result.dispatch_id] = dispatcher

    def lookup(self, dispatch_id: str) -> Optional[Any]:
        return self._results.get(dispatch_id)

    def running(self, dispatch_id: str) -> Optional[Any]:
        return self._running.get(dispatch_id)

    def dispatch_ended(self, dispatch_id: str) -> None:
        with self._lock:
            self._running.pop(dispatch_id, None)

    def last_dispatch_id(self) -> Optional[str]:
        """The id of the most recent top-level dispatch of this kernel, or None."""
        with self._lock:
            for dispatch_id in reversed(self._order):
                if not getattr(self._results[dispatch_id], "is_sublattice_dispatch", False):
                    return dispatch_id
        return None

    def forget(self, dispatch_id: str) -> None:
        """Let go of a dispatch (deleted, pruned): its result, and what it holds on a Dask cluster.

        Outputs kept on a cluster only for this result (Dask outputs that are
        not durable) are released, so the workers free their memory; a durable
        one stays readable from blob storage.
        """
        with self._lock:
            result = self._results.pop(dispatch_id, None)
            self._running.pop(dispatch_id, None)
            if dispatch_id in self._order:
                self._order.remove(dispatch_id)
        release = getattr(result, "release_remote_outputs", None)
        if release is not None:
            release()

    def all_results(self) -> list:
        with self._lock:
            return [self._results[d] for d in self._order]

    def running_dispatchers(self) -> list:
        with self._lock:
            return list(self._running.values())
