"""One stream of dispatch events that the rest of the package subscribes to.

The dispatcher publishes every state change here and knows nothing about who
listens: the store, the graph widget's publisher and the progress text are all
subscribers.  Events are delivered in batches (a list per call) on the thread of
the dispatch that produced them, so a subscriber must be quick and must not
block; anything slow belongs on the subscriber's own thread.

Event kinds:

``dispatch_started``
    ``node_id`` is None; ``status`` is ``RUNNING``; ``record`` is the plan (keys and
    reasons).  Parameter nodes are already COMPLETED when this event is published
    (they get no events of their own).
``node_running``
    The node's function has started on its executor.
``node_completed`` / ``node_failed`` / ``node_cancelled``
    The node ended; ``status`` says how.
``node_reused``
    The node was satisfied from a previous dispatch without running.
``dispatch_ended``
    ``node_id`` is None; ``status`` is the final dispatch status.  It is
    published after every node event of the dispatch.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, NamedTuple, Optional

__all__ = ["Event", "subscribe", "publish"]

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

_lock = threading.Lock()
# Replaced, never mutated, so publishers can iterate without the lock.
_subscribers: tuple = ()


def subscribe(callback: Subscriber) -> Callable[[], None]:
    """Call *callback(events)* with every batch of events from now on.

    Returns a function that unsubscribes.  The callback runs on the dispatch's
    thread; exceptions it raises are logged and otherwise ignored.
    """
    global _subscribers
    with _lock:
        _subscribers = _subscribers + (callback,)

    def unsubscribe() -> None:
        global _subscribers
        with _lock:
            _subscribers = tuple(s for s in _subscribers if s is not callback)

    return unsubscribe


def publish(events: list) -> None:
    """Deliver *events* (a list of :class:`Event`) to every subscriber."""
    if not events:
        return
    for callback in _subscribers:
        try:
            callback(events)
        except Exception:  # a broken listener must never break a dispatch
            log.exception("covalent_nb event subscriber %r failed", callback)
