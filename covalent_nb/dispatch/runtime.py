"""The runtime: the one object that holds what covalent_nb keeps for the life of a kernel.

:data:`RUNTIME` owns the registry of dispatches, the event stream, the shared
executors (``"local"`` threads, the lazily started ``"dask"`` cluster) and the
resources kept here rather than in module globals: the Dask connections
(:mod:`covalent_nb.dispatch.executors.dask_connection`), the store selection
(:mod:`covalent_nb.results.store`) and the notebook's publisher.
:meth:`Runtime.shutdown` stops them all, newest first, and puts back
``sys.stdout``/``sys.stderr`` if task capture replaced them; a script or a test
calls it (``covalent_nb.shutdown()``) to end cleanly, and the next dispatch
starts afresh.

Importing covalent_nb starts nothing: every part is created on first use.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from . import capture
from .events import EventBus
from .registry import Registry

__all__ = ["Runtime", "RUNTIME"]


class Runtime:
    """Everything kept for the kernel's life, in one place, with one shutdown."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.registry = Registry()
        self.events = EventBus()
        self.executors: dict = {}  # "local" / "dask" -> the shared executor
        self._resources: dict = {}  # name -> object, in creation order

    def executor(self, name: str, make: Callable[[], Any]) -> Any:
        """The shared executor called *name*, made by *make()* on first use."""
        return self._get_or_make(self.executors, name, make)

    def resource(self, name: str, make: Callable[[], Any]) -> Any:
        """The resource called *name* (a store selection, a publisher), made on first use.

        A resource with a ``close()`` (or ``stop()``) method is closed by :meth:`shutdown`.
        """
        return self._get_or_make(self._resources, name, make)

    def _get_or_make(self, table: dict, name: str, make: Callable[[], Any]) -> Any:
        found = table.get(name)
        if found is None:
            with self._lock:
                found = table.get(name)
                if found is None:
                    found = table[name] = make()
        return found

    def peek(self, name: str) -> Optional[Any]:
        """The resource called *name* if it exists (never makes it)."""
        return self._resources.get(name)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Wait for running dispatches (up to *timeout* s), then stop every part, newest first."""
        for dispatcher in self.registry.running_dispatchers():
            if dispatcher.thread.is_alive():  # registered ones that never started have nothing to finish
                dispatcher.thread.join(timeout)
        with self._lock:
            resources = list(self._resources.items())[::-1]
            self._resources.clear()
            executors = list(self.executors.values())
            self.executors.clear()
        for executor in executors:  # first: an executor may still use a resource (its Dask connection)
            executor.shutdown()
        for _, resource in resources:
            close = getattr(resource, "close", None) or getattr(resource, "stop", None)
            if close is not None:
                close()
        capture.uninstall()


#: The kernel's runtime.
RUNTIME = Runtime()
