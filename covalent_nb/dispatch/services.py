"""What a dispatcher needs from the rest of the package, handed to it rather than imported.

The dispatcher sits below the results and the public API in the layers
(``workflow`` < ``dispatch`` < ``results`` < ``api`` < ``notebook``): it may not
import the store, the registry of results or the functions that start
dispatches.  The API layer builds one :class:`DispatchServices` and passes it
to every dispatcher it starts.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["DispatchServices"]


class DispatchServices:
    """The dispatcher's view of the world outside its dispatch.

    ``start_child(lattice, args, kwargs, reuse_from, on_end, before_start)``
        starts a sublattice's own dispatch and returns its result;
    ``running(dispatch_id)``
        the :class:`~covalent_nb.dispatch.dispatcher.Dispatcher` of a running
        dispatch, or None (to cancel a sublattice's dispatch);
    ``make_durable(record)``
        the explicit step "durable before reported ended": given the
        :class:`~covalent_nb.dispatch.node_records.DispatchRecord`, returns once
        the dispatch's records are stored, raises if they cannot be;
    ``ended(dispatch_id)``
        the dispatch has ended: forget its dispatcher;
    ``publish(events)``
        hand a batch of events to whoever listens (the dispatcher does not know who);
    ``history``
        where reuse from history looks (None: nowhere): ``history.find(keys)``
        returns ``{key: HistoryHit}`` for the keys an earlier stored COMPLETED
        node had, and ``history.output(hit)`` that node's ``(value, pickled
        bytes or None, sublattice result or None)``.
    """

    __slots__ = ("start_child", "running", "make_durable", "ended", "publish", "history")

    def __init__(self, start_child: Callable[..., Any], running: Callable[[str], Optional[Any]],
                 make_durable: Callable[[Any], None], ended: Callable[[str], None],
                 publish: Callable[[list], None], history: Optional[Any] = None) -> None:
        self.start_child = start_child
        self.running = running
        self.make_durable = make_durable
        self.ended = ended
        self.publish = publish
        self.history = history
