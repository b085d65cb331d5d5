"""Where dispatches are kept beyond the kernel's memory, and which store is in use.

The API layer talks to the active store only through :func:`active_store`
and these three calls (the dispatcher reaches the second through its
:class:`~covalent_nb.dispatch.services.DispatchServices`):

``dispatch_submitted(result)``
    a dispatch is registered (graph, inputs, snapshot, lineage known);
``dispatch_ended(record)``
    the dispatch ended (a :class:`~covalent_nb.dispatch.node_records.DispatchRecord`);
    return only once its records are durable;
``load(dispatch_id)``
    a :class:`~covalent_nb.results.result.Result` rebuilt from storage, or None.

Node changes reach the store through the event stream
(:mod:`covalent_nb.dispatch.events`) as immutable records; the store never
reads a live result's tables.

Two stores, chosen by ``ct.get_config("store")``:

``"sqlite"`` (default)
    :class:`~covalent_nb.results.sqlite_store.SQLiteStore` in
    ``ct.get_config("home")``: survives the kernel, shared by every process
    using the same home.
``"memory"``
    :class:`MemoryStore`: nothing on disk; the kernel's registry is all
    there is.

``ct.set_config(store=..., home=...)`` takes effect for the next dispatch.  A
dispatch always ends in the store it started in.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, Iterable, Optional

from .. import config
from ..dispatch import events, registry
from .history import DispatchList, SpaceFreed, check_prune_criteria, summary_of
from .sqlite_store import STORE_OF, SQLiteStore
from .upkeep import forget_dispatch

__all__ = ["MemoryStore", "active_store", "list_dispatches", "delete_dispatch", "prune_dispatches"]

#: dispatch id -> the store that took its submission, until the dispatch ends.


class MemoryStore:
    """Keeps nothing beyond this kernel's registry of results."""

    location = "memory"

    def __init__(self, why: Optional[str] = None) -> None:
        self.why = why  # set when this replaces a durable store that could not be opened

    def dispatch_submitted(self, result: Any) -> None:
        pass

    def dispatch_ended(self, record: Any) -> None:
        owner = STORE_OF.get(record.dispatch_id)
        if owner is not None:  # started in a durable store before set_config switched
            owner.dispatch_ended(record)

    def load(self, dispatch_id: str) -> Optional[Any]:
        return None

    def list_dispatches(self, limit: Optional[int] = None, include_sublattices: bool = False) -> DispatchList:
        results = [r for r in reversed(registry.all_results())
                   if include_sublattices or not getattr(r, "is_sublattice_dispatch", False)]
        return DispatchList(summary_of(r) for r in results[:limit])

    def delete_dispatch(self, dispatch_id: str) -> SpaceFreed:
        result = registry.lookup(dispatch_id)
        if result is None:
            raise ValueError(f"no dispatch with id {dispatch_id!r} in this kernel")
        if not result.ended:
            raise ValueError(f"dispatch {dispatch_id} is still running; cancel it or wait for it to end")
        forget_dispatch(dispatch_id)
        return SpaceFreed([dispatch_id])  # memory is the garbage collector's to count

    def prune_dispatches(self, older_than: Any = None, keep_last: Optional[int] = None,
                         status: Optional[Iterable[str]] = None) -> SpaceFreed:
        criteria = check_prune_criteria(older_than, keep_last, status)
        top_level = (r for r in reversed(registry.all_results())
                     if not getattr(r, "is_sublattice_dispatch", False))
        doomed = [result.dispatch_id for index, result in enumerate(top_level)
                  if criteria.selects(index, result.status, result.start_us)]
        for dispatch_id in doomed:
            forget_dispatch(dispatch_id)
        return SpaceFreed(doomed)


_lock = threading.Lock()
_store: Optional[Any] = None
_durable: dict = {}  # home -> SQLiteStore, one per home for the life of the process
_subscribed = False


def _route(batch: list) -> None:
    """The event subscriber: hands each batch to the store its dispatch started in."""
    owner = STORE_OF.get(batch[0].dispatch_id)
    if batch[-1].dispatch_id == batch[0].dispatch_id:
        if owner is not None:
            owner.on_events(batch)
        return
    by_dispatch: dict = {}
    for event in batch:
        by_dispatch.setdefault(event.dispatch_id, []).append(event)
    for dispatch_id, part in by_dispatch.items():
        owner = STORE_OF.get(dispatch_id)
        if owner is not None:
            owner.on_events(part)


def _open_configured() -> Any:
    global _subscribed
    kind = config.get_config("store")
    if kind == "memory":
        return MemoryStore()
    if kind != "sqlite":
        raise ValueError(f"unknown store {kind!r}: use ct.set_config(store='sqlite') (durable, in "
                         "ct.get_config('home')) or store='memory' (nothing on disk)")
    home = config.get_config("home")
    store = _durable.get(home)
    if store is None:
        try:
            store = SQLiteStore(home, inline_max=config.get_config("store_inline_max"))
        except Exception as exc:  # noqa: BLE001 - dispatching must keep working
            why = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"covalent_nb cannot use the store in {home} ({why}); dispatches are kept "
                          "in this kernel's memory only", RuntimeWarning, stacklevel=3)
            return MemoryStore(why)
        _durable[home] = store
    if not _subscribed:
        events.subscribe(_route)
        _subscribed = True
    return store


def active_store() -> Any:
    """Return the store the dispatcher writes to (opened on first use)."""
    global _store
    store = _store
    if store is None:
        with _lock:
            if _store is None:
                _store = _open_configured()
            store = _store
    return store


def _on_config_change(changes: dict) -> None:
    global _store
    if {"store", "home", "store_inline_max"} & set(changes):
        with _lock:
            _store = None  # reopened lazily, so a bad value is reported by the next dispatch too
        if changes.get("store", "sqlite") not in ("sqlite", "memory"):
            raise ValueError(f"unknown store {changes['store']!r}: use 'sqlite' or 'memory'")


config.on_change(_on_config_change)


def _after_fork_in_child() -> None:
    # A forked child has the parent's store objects but not their writer
    # threads: it opens its own store (and owner lock) on first use.
    global _store
    _store = None
    _durable.clear()
    STORE_OF.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_durable_stores() -> None:
    """Close every durable store this process opened (for tests; exiting does it too).

    Results already loaded keep working, except waiting on a dispatch that
    runs elsewhere.
    """
    global _store
    with _lock:
        stores = list(_durable.values())
        _durable.clear()
        _store = None
    for store in stores:
        store.close()


# -- the public functions ---------------------------------------------------------------
def list_dispatches(limit: Optional[int] = None, *, include_sublattices: bool = False) -> DispatchList:
    """Summaries of the dispatches in the store, newest first.

    Each is a dict with ``id, lattice, status, start`` (an aware datetime or
    None), ``duration`` (seconds, or None), ``parent`` (the id it was
    redispatched from), ``reused`` and ``recomputed`` (node counts, None while
    running).  A dispatch whose process ended during the run shows as
    ``INTERRUPTED``.  With the ``"memory"`` store, this kernel's dispatches.

    >>> ct.list_dispatches(limit=5)            # doctest: +SKIP
    """
    return active_store().list_dispatches(limit, include_sublattices)


def delete_dispatch(dispatch_id: str) -> SpaceFreed:
    """Delete an ended dispatch (with its sublattice dispatches) and report the space freed.

    A value another dispatch still uses (reused, or the same content) stays.
    Dispatches redispatched from it keep their own records.
    """
    return active_store().delete_dispatch(dispatch_id)


def prune_dispatches(older_than: Any = None, keep_last: Optional[int] = None,
                     status: Optional[Iterable[str]] = None) -> SpaceFreed:
    """Delete the ended dispatches that match every criterion given; report the space freed.

    *older_than* is a ``datetime.timedelta`` (dispatched longer ago than
    that) or a ``datetime.datetime``; *keep_last* spares the N newest
    dispatches; *status* limits pruning to those statuses.  Running
    dispatches are never pruned.

    >>> ct.prune_dispatches(older_than=datetime.timedelta(days=30))   # doctest: +SKIP
    >>> ct.prune_dispatches(keep_last=50, status=["FAILED", "INTERRUPTED"])  # doctest: +SKIP
    """
    return active_store().prune_dispatches(older_than, keep_last, status)
