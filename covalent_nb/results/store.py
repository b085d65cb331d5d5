"""Where dispatches are kept beyond the kernel's memory.

Placeholder until the durable store lands: :class:`MemoryStore` keeps nothing
beyond the registry of live results.  The dispatcher talks to the active store
only through :func:`active_store` and these three calls:

``dispatch_submitted(result)``
    a dispatch is registered (graph, inputs, snapshot, lineage known);
``dispatch_ended(result)``
    the dispatch ended; return only once its records are durable;
``load(dispatch_id)``
    a :class:`~covalent_nb.results.result.Result` rebuilt from storage, or None.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["MemoryStore", "active_store"]


class MemoryStore:
    """Keeps nothing: results live only in this kernel's registry."""

    location = "memory"

    def dispatch_submitted(self, result: Any) -> None:
        pass

    def dispatch_ended(self, result: Any) -> None:
        pass

    def load(self, dispatch_id: str) -> Optional[Any]:
        return None

    def list_dispatches(self) -> list:
        return []


_store = MemoryStore()


def active_store() -> Any:
    """Return the store the dispatcher writes to."""
    return _store
