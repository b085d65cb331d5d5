"""One throttled thread that carries dispatch events to the live widgets.

The dispatcher publishes events on its own threads (see
:mod:`covalent_nb.dispatch.events`).  Widgets must not be touched there: a
trait set is a message on the kernel's IOPub socket, and a 10,000-task
dispatch would send tens of thousands of them.  Instead a single publisher
per kernel:

* subscribes once to the event stream; its callback only appends the events
  of watched dispatches to a pending list (quick, never blocks a dispatch);
* wakes its own daemon thread, which at most every ``interval`` seconds
  (0.1 s: about ten updates a second) drains the pending events, folds them
  per dispatch into one :class:`Update` (the last state of each node wins)
  and hands it to every widget watching that dispatch;
* runs independently of the kernel's shell thread, so updates keep flowing
  after the cell that dispatched has finished and while another cell runs.

A *target* is anything with a ``dispatch_id`` attribute and an
``apply_update(update)`` method; :class:`~covalent_nb.notebook.graph_widget.LatticeGraph`
is the one in the package.  A target that starts watching gets an update
with ``resync=True`` on the next tick: it re-reads the whole state from its
result, which closes the gap between the snapshot it was built from and the
first event it receives.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import NamedTuple, Optional, Protocol

from ..dispatch.runtime import RUNTIME
from ..states import widget_state
from .states import status_text

__all__ = ["Update", "Publisher", "get_publisher", "DEFAULT_INTERVAL"]

log = logging.getLogger(__name__)

#: Seconds between two updates of the widgets (about ten a second).
DEFAULT_INTERVAL = 0.1


class Update(NamedTuple):
    """What happened to one dispatch since the previous tick.

    ``changes`` maps node ids to their new display state; ``status`` is the
    dispatch's new status, or None if unchanged; ``resync`` asks the target to
    read every node's state from its result once (only when it starts
    watching: everything else comes from the events and their records);
    ``events`` counts the events folded into this update; ``started`` says the
    dispatch started in it (its parameters are complete, with no events of
    their own), ``ended`` that it ended (its last event is in it).
    """

    dispatch_id: str
    changes: dict
    status: Optional[str]
    resync: bool
    events: int
    started: bool = False
    ended: bool = False


class Target(Protocol):
    dispatch_id: str

    def apply_update(self, update: Update) -> None: ...


class Publisher:
    """Batches dispatch events and applies them to watching targets from one thread.

    Owned by: the publisher thread (``covalent-nb-widget-publisher``), which
    calls the targets' ``apply_update`` and so is the one writer of their
    traits (:meth:`flush` called directly, as tests do, runs on the caller's
    thread instead).
    Other threads: dispatcher threads reach it through :meth:`_on_events` (its
    event subscription), the kernel's thread through :meth:`watch` and
    :meth:`unwatch`; both only change ``_pending``, ``_targets`` and ``_fresh``
    under ``_lock`` and set ``_wake``.

    Parameters
    ----------
    interval:
        Minimum seconds between two ticks.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, list] = {}
        # dispatch id -> targets watching it; weak, so a forgotten widget goes away.
        self._targets: dict[str, weakref.WeakSet] = {}
        self._fresh: list = []  # weakrefs of targets that still need a resync
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._unsubscribe = None
        #: Number of ticks that applied at least one update (for diagnostics).
        self.ticks = 0

    # -- life cycle ----------------------------------------------------------
    @property
    def thread(self) -> Optional[threading.Thread]:
        """The publisher's thread, once started."""
        return self._thread

    def start(self) -> None:
        """Subscribe to the event stream and start the thread (idempotent)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._unsubscribe = RUNTIME.events.subscribe(self._on_events)
            self._thread = threading.Thread(
                target=self._run, name="covalent-nb-widget-publisher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe and stop the thread; pending events are dropped."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            thread = self._thread
        if unsubscribe is not None:
            unsubscribe()
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- targets -----------------------------------------------------------------
    def watch(self, target: Target) -> None:
        """Send *target* the updates of its dispatch from now on (starts the thread)."""
        self.start()
        with self._lock:
            self._targets.setdefault(target.dispatch_id, weakref.WeakSet()).add(target)
            self._fresh.append(weakref.ref(target))
        self._wake.set()

    def unwatch(self, target: Target) -> None:
        """Stop sending updates to *target*."""
        with self._lock:
            targets = self._targets.get(target.dispatch_id)
            if targets is not None:
                targets.discard(target)
                if not targets:
                    del self._targets[target.dispatch_id]
                    self._pending.pop(target.dispatch_id, None)

    def watched(self) -> set:
        """Dispatch ids that have at least one live target."""
        with self._lock:
            return {d for d, targets in self._targets.items() if len(targets)}

    # -- the event stream's side (dispatcher threads) ------------------------------
    def _on_events(self, batch: list) -> None:
        # Runs on a dispatcher thread: only filter and append, never touch widgets.
        # The membership test reads the dict without the lock (atomic in
        # CPython); a target added meanwhile is resynced on its first tick.
        targets = self._targets
        kept = [e for e in batch if e.dispatch_id in targets]
        if not kept:
            return
        with self._lock:
            for event in kept:
                self._pending.setdefault(event.dispatch_id, []).append(event)
        self._wake.set()

    # -- the publisher's thread --------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                break
            self._wake.clear()
            started = time.monotonic()
            try:
                self.flush()
            except Exception:  # the thread must outlive any one broken widget
                log.exception("covalent_nb widget publisher tick failed")
            # Throttle: events arriving during this wait are batched into the next tick.
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def flush(self) -> int:
        """Apply everything pending now; return the number of updates applied.

        Called by the publisher's thread on every tick; tests may call it too.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
            fresh, self._fresh = self._fresh, []
            targets = {d: list(ts) for d, ts in self._targets.items()}
        resync_targets = {id(t): t for t in (ref() for ref in fresh) if t is not None}

        applied = 0
        for dispatch_id, watchers in targets.items():
            update = fold(dispatch_id, pending.get(dispatch_id, ()))
            for target in watchers:
                this = update
                if id(target) in resync_targets:
                    this = update._replace(resync=True)
                if not (this.changes or this.status or this.resync or this.started or this.ended):
                    continue
                try:
                    target.apply_update(this)
                    applied += 1
                except Exception:
                    log.exception("covalent_nb widget %r failed to apply an update", target)
        if applied:
            self.ticks += 1
        return applied


def fold(dispatch_id: str, events) -> Update:
    """Fold a dispatch's events, in order, into one :class:`Update`."""
    changes: dict = {}
    status: Optional[str] = None
    started = ended = False
    count = 0
    for event in events:
        count += 1
        if event.kind == "nodes_reused":  # a ReusedBlock: every node of the dispatch reused at once
            reused = widget_state(event.status, True)
            changes.update(dict.fromkeys(event.record.nodes, reused))
            continue
        if event.node_id is None:
            status = status_text(event.status)
            started = started or event.kind == "dispatch_started"
            ended = ended or event.kind == "dispatch_ended"
            continue
        # the one mapping from a node's status to what the graph shows (covalent_nb.states)
        changes[event.node_id] = widget_state(event.status, event.kind == "node_reused")
    return Update(dispatch_id, changes, status, False, count, started, ended)


def get_publisher() -> Publisher:
    """The kernel's one publisher (kept in the runtime), started on first use."""
    publisher = RUNTIME.resource("publisher", Publisher)
    publisher.start()
    return publisher
