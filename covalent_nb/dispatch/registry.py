"""The kernel's registry of dispatches: live results and running dispatchers."""

from __future__ import annotations

import threading
from typing import Any, Optional

__all__ = ["register", "lookup", "running", "dispatch_ended", "last_dispatch_id"]

_lock = threading.Lock()
_results: dict = {}
_running: dict = {}
_order: list = []


def register(result: Any, dispatcher: Optional[Any]) -> None:
    with _lock:
        _results[result.dispatch_id] = result
        _order.append(result.dispatch_id)
        if dispatcher is not None:
            _running[result.dispatch_id] = dispatcher


def lookup(dispatch_id: str) -> Optional[Any]:
    return _results.get(dispatch_id)


def running(dispatch_id: str) -> Optional[Any]:
    return _running.get(dispatch_id)


def dispatch_ended(dispatch_id: str) -> None:
    with _lock:
        _running.pop(dispatch_id, None)


def last_dispatch_id() -> Optional[str]:
    """The id of the most recent top-level dispatch of this kernel, or None."""
    with _lock:
        for dispatch_id in reversed(_order):
            if not getattr(_results[dispatch_id], "is_sublattice_dispatch", False):
                return dispatch_id
    return None


def forget(dispatch_id: str) -> None:
    with _lock:
        _results.pop(dispatch_id, None)
        _running.pop(dispatch_id, None)
        if dispatch_id in _order:
            _order.remove(dispatch_id)


def all_results() -> list:
    with _lock:
        return [_results[d] for d in _order]
