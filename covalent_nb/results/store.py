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
from ..dispatch.runtime import RUNTIME
from .history import DispatchList, SpaceFreed, check_prune_criteria, summary_of
from .history_source import KernelIndex
from .sqlite_store import STORE_OF, SQLiteStore
from . import remote_blobs
from .upkeep import forget_dispatch

__all__ = ["MemoryStore", "active_store", "list_dispatches", "delete_dispatch", "prune_dispatches"]

#: dispatch id -> the store that took its submission, until the dispatch ends.


class MemoryStore:
    """Keeps nothing beyond this kernel's registry of results."""

    location = "memory"

    def __init__(self, why: Optional[str] = None) -> None:
        self.why = why  # set when this replaces a durable store that could not be opened
        self._history = KernelIndex()
        # the dispatches the memory store took in this kernel (any instance of it: one is made each
        # time the settings change); ids are kept after deletion, as a reused output names its origin
        self._taken: set = RUNTIME.resource("memory_store_dispatches", set)

    def find_keys(self, keys: Iterable[str]) -> dict:
        """This kernel's ended dispatches as the history (see :mod:`.history_source`)."""
        return self._history.find(keys)

    def last_function_parts(self, lattice_name: str, exclude: str) -> Optional[tuple]:
        """``(dispatch id, function parts)`` of this kernel's newest other dispatch of a lattice
        called *lattice_name*, or None."""
        newest = None
        for result in RUNTIME.registry.all_results():
            if result.dispatch_id == exclude or getattr(result.lattice, "__name__", None) != lattice_name:
                continue
            if newest is None or (result.start_us or 0) > (newest.start_us or 0):
                newest = result
        return None if newest is None else (newest.dispatch_id, newest.function_parts or {})

    def dispatch_submitted(self, result: Any) -> None:
        self._taken.add(result.dispatch_id)

    def dispatch_ended(self, record: Any) -> None:
        owner = STORE_OF.get(record.dispatch_id)
        if owner is not None:  # started in a durable store before set_config switched
            owner.dispatch_ended(record)

    def load(self, dispatch_id: str) -> Optional[Any]:
        return None

    def ids_starting_with(self, prefix: str, limit: int = 10) -> list:
        return []

    def list_dispatches(self, limit: Optional[int] = None, include_sublattices: bool = False) -> DispatchList:
        results = [r for r in reversed(RUNTIME.registry.all_results())
                   if include_sublattices or not getattr(r, "is_sublattice_dispatch", False)]
        return DispatchList(summary_of(r) for r in results[:limit])

    def delete_dispatch(self, dispatch_id: str) -> SpaceFreed:
        result = RUNTIME.registry.lookup(dispatch_id)
        if result is None:
            raise ValueError(f"no dispatch with id {dispatch_id!r} in this kernel")
        if not result.ended:
            raise ValueError(f"dispatch {dispatch_id} is still running; cancel it or wait for it to end")
        return self._forget([result])

    def prune_dispatches(self, older_than: Any = None, keep_last: Optional[int] = None,
                         status: Optional[Iterable[str]] = None) -> SpaceFreed:
        criteria = check_prune_criteria(older_than, keep_last, status)
        top_level = (r for r in reversed(RUNTIME.registry.all_results())
                     if not getattr(r, "is_sublattice_dispatch", False))
        doomed = [result for index, result in enumerate(top_level)
                  if criteria.selects(index, result.status, result.start_us)]
        return self._forget(doomed)

    def _forget(self, results: list) -> SpaceFreed:
        """Forget *results* and their sublattice dispatches; remove the blob files only they named.

        A file Dask workers wrote at a path or URL (``blob_storage=``) for a
        dispatch of this store goes once no result left in this kernel names
        it; the memory itself is the garbage collector's to count.
        """
        doomed: dict = {}
        stack = list(results)
        while stack:
            result = stack.pop()
            if result.dispatch_id in doomed:
                continue
            doomed[result.dispatch_id] = result
            stack.extend(c for c in result._table.sublattice.values() if c is not None)
        files: dict = {}
        for did, result in doomed.items():
            if did in self._taken:  # a dispatch of a durable store keeps its files there
                files.update(remote_blobs.held_locations(result, self._taken.__contains__))
        for did in doomed:
            forget_dispatch(did)
        freed = remote_blobs.remove_unnamed(files, RUNTIME.registry.all_results())
        return SpaceFreed(list(doomed), freed)


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


class Stores:
    """Which store is in use, and the durable stores opened so far (one per home).

    One lives in the runtime (``RUNTIME.resource("stores", Stores)``); any
    thread may ask it for the active store, under its lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: Optional[Any] = None
        self._durable: dict = {}  # home -> SQLiteStore, one per home for the life of the process
        self._unsubscribe: Optional[Any] = None

    def active(self) -> Any:
        store = self._active
        if store is None:
            with self._lock:
                if self._active is None:
                    self._active = self._open_configured()
                store = self._active
        return store

    def _open_configured(self) -> Any:
        kind = config.get_config("store")
        if kind == "memory":
            return MemoryStore()
        if kind != "sqlite":
            raise ValueError(f"unknown store {kind!r}: use ct.set_config(store='sqlite') (durable, in "
                             "ct.get_config('home')) or store='memory' (nothing on disk)")
        home = config.get_config("home")
        store = self._durable.get(home)
        if store is None:
            try:
                store = SQLiteStore(home, inline_max=config.get_config("store_inline_max"))
            except Exception as exc:  # noqa: BLE001 - dispatching must keep working
                why = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"covalent_nb cannot use the store in {home} ({why}); dispatches are kept "
                              "in this kernel's memory only", RuntimeWarning, stacklevel=4)
                return MemoryStore(why)
            self._durable[home] = store
        if self._unsubscribe is None:
            self._unsubscribe = RUNTIME.events.subscribe(_route)
        return store

    def forget_active(self) -> None:
        """Choose the store again on next use (the settings changed)."""
        with self._lock:
            self._active = None

    def forget_all(self) -> None:
        """Drop every store without closing it (a forked child: their threads are not here)."""
        with self._lock:
            self._active = None
            self._durable.clear()
            STORE_OF.clear()

    def close(self) -> None:
        """Close every durable store this process opened (flushing their writes)."""
        with self._lock:
            stores = list(self._durable.values())
            self._durable.clear()
            self._active = None
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        for store in stores:
            store.close()


def end_dispatch(record: Any) -> None:
    """Make a dispatch's end durable in the store it started in (whatever is active now)."""
    owner = STORE_OF.get(record.dispatch_id)
    (owner if owner is not None else active_store()).dispatch_ended(record)


def _stores() -> Stores:
    return RUNTIME.resource("stores", Stores)


def active_store() -> Any:
    """Return the store the dispatcher writes to (opened on first use)."""
    return _stores().active()


def _on_config_change(changes: dict) -> None:
    if {"store", "home", "store_inline_max"} & set(changes):
        stores = RUNTIME.peek("stores")
        if stores is not None:
            stores.forget_active()  # reopened lazily, so a bad value is reported by the next dispatch too
        if changes.get("store", "sqlite") not in ("sqlite", "memory"):
            raise ValueError(f"unknown store {changes['store']!r}: use 'sqlite' or 'memory'")


config.on_change(_on_config_change)


def _after_fork_in_child() -> None:
    # A forked child has the parent's store objects but not their writer
    # threads: it opens its own store (and owner lock) on first use.
    stores = RUNTIME.peek("stores")
    if stores is not None:
        stores.forget_all()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _close_durable_stores() -> None:
    """Close every durable store this process opened (for tests; exiting does it too).

    Results already loaded keep working, except waiting on a dispatch that
    runs elsewhere.
    """
    stores = RUNTIME.peek("stores")
    if stores is not None:
        stores.close()


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
