"""One stream of dispatch events that the rest of the package subscribes to.

The dispatcher publishes every state change here and knows nothing about who
listens: the store's router and the graph widgets' publisher are the
subscribers.  Events are delivered in batches (a list per call) on the thread of
the dispatch that produced them, so a subscriber must be quick and must not
block; anything slow belongs on the subscriber's own thread.

Event kinds:

``dispatch_started``
    ``node_id`` is None; ``status`` is ``RUNNING``; ``record`` is the plan (keys and
    reasons).  Parameter nodes are already COMPLETED when this event is published
    (they get no events of their own).
``node_running``
    The node's function has started on its executor.  Not published for a
    task that started and ended between two wake-ups of the dispatcher (its
    ``node_completed`` comes alone): nobody could have seen it running.
``node_completed`` / ``node_failed`` / ``node_cancelled``
    The node ended; ``status`` says how.
``node_reused``
    The node was satisfied from a previous dispatch without running.
``nodes_reused``
    ``node_id`` is None; every electron-like node of the dispatch was satisfied
    from the same node of its parent at once (a redispatch rerunning its
    parent's graph unchanged); ``record`` is a
    :class:`~covalent_nb.dispatch.node_records.ReusedBlock` listing them.  It
    comes right after ``dispatch_started``, in the same batch, and no
    ``node_reused`` event is published for those nodes.
``dispatch_ended``
    ``node_id`` is None; ``status`` is the final dispatch status.  It is
    published after every node event of the dispatch.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, NamedTuple, Optional

__all__ = ["Event", "EventBus"]

log = logging.getLogger(__name__)


class Event(NamedTuple):
    """A single state change of a dispatch or of one of its nodes."""

    kind: str
    dispatch_id: str
    node_id: Optional[int]
    status: str
    time: float
    #: What the dispatcher decided, immutable (see :mod:`covalent_nb.dispatch.node_records`):
    #: a NodeRecord when a node has ended (completed, reused, failed, cancelled), a PlanRecord
    #: for ``dispatch_started``, None otherwise (``node_running``: nothing is settled yet).
    record: Any = None


Subscriber = Callable[[list], None]


class EventBus:
    """The one stream of events of a kernel (it lives in the :class:`~covalent_nb.dispatch.runtime.Runtime`).

    Subscribing and unsubscribing take a lock and replace the tuple of
    subscribers; publishing reads the tuple without the lock, on the thread of
    the dispatch that publishes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: tuple = ()  # replaced, never mutated

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call *callback(events)* with every batch of events from now on.

        Returns a function that unsubscribes.  The callback runs on the dispatch's
        thread; exceptions it raises are logged and otherwise ignored.
        """
        with self._lock:
            self._subscribers = self._subscribers + (callback,)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def publish(self, events: list) -> None:
        """Deliver *events* (a list of :class:`Event`) to every subscriber."""
        if not events:
            return
        for callback in self._subscribers:
            try:
                callback(events)
            except Exception:  # a broken listener must never break a dispatch
                log.exception("covalent_nb event subscriber %r failed", callback)
