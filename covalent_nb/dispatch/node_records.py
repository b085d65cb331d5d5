"""Immutable records of what the dispatcher decided: the only thing other threads are handed.

The dispatcher thread owns a dispatch's state.  Whenever something about a node
is settled it publishes an :class:`~covalent_nb.dispatch.events.Event` whose
``record`` is one of these tuples; the store's writer, the graph widgets and
anyone else build what they need from them and never read the dispatcher's
tables.  (``covalent_nb.results.records`` is how the store *encodes* them.)

They are plain named tuples, built with ``tuple.__new__`` in the dispatcher's
hot loop: a record per node costs a few hundred nanoseconds.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

__all__ = ["NodeRecord", "ReusedBlock", "PlanRecord", "DispatchRecord"]


class NodeRecord(NamedTuple):
    """A node's state at one moment, as the dispatcher set it."""

    dispatch_id: str
    node_id: int
    status: str  # a covalent_nb.states.Status
    start_us: Optional[int]
    end_us: Optional[int]
    #: The output itself when it is immutable (or could not be pickled); None when ``data`` holds it.
    output: Any
    #: The output's pickled bytes, taken the moment its task returned (None for immutable values).
    data: Optional[bytes]
    error: Optional[str]
    stdout: str
    stderr: str
    executor: Optional[str]
    #: ``(dispatch_id, node_id)`` the output was reused from, or None.
    reused_from: Optional[tuple]
    #: Why the output cannot be stored (it could not be pickled), or None.
    unstorable: Optional[str]
    #: The dispatch id of the sublattice dispatch this node ran, or None.
    sublattice_id: Optional[str]


class ReusedBlock(NamedTuple):
    """Every electron-like node of a dispatch taken from its parent at once, as one record.

    Published (event ``nodes_reused``) instead of one ``node_reused`` record per
    node when a redispatch reruns its parent's graph unchanged and every node is
    reused from the same node of the parent: 10,000 records would cost more
    than the redispatch itself.  Each node is COMPLETED, started and ended at
    ``time_us``, and reused from ``(origin, node)``.
    """

    dispatch_id: str
    #: The dispatch the outputs come from (the parent); each node from the node with the same id.
    origin: str
    time_us: int
    nodes: tuple
    #: Per node (parallel to ``nodes``): its output, or None when ``data`` holds its bytes.
    outputs: tuple
    #: node id -> the pickled bytes of a mutable output (what is stored and reused).
    data: dict
    #: node id -> the dispatch id of the sublattice dispatch it ran.
    sublattices: dict


class PlanRecord(NamedTuple):
    """A dispatch's keys and reuse decisions, published as it starts (and again as it ends)."""

    start_us: Optional[int]
    keys: tuple
    unhashable: dict  # node id -> why it has no key (a copy: the dispatcher never changes it)
    reasons: dict  # node id -> why it was reused or recomputed (a copy)


class DispatchRecord(NamedTuple):
    """How a dispatch ended: what the store makes durable before the end is reported."""

    dispatch_id: str
    status: str
    error: Optional[str]
    start_us: Optional[int]
    end_us: int
    result_node: Optional[int]
    executor_names: tuple
    plan: PlanRecord
    #: Records of nodes that ended without an event of their own (never run: an upstream failed).
    unreported: tuple
    #: How many nodes were reused from a parent, and how many ran here.
    reused: int
    ran: int
