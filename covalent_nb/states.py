"""The one vocabulary of dispatch and node states, and of node kinds.

A :class:`Status` is a ``str`` so it compares equal to plain strings
(``result.status == "COMPLETED"``), prints as its bare name and survives JSON,
SQLite and pickling unchanged.  :class:`NodeKind` names the kinds of node a
traced graph holds (plain strings in the graph, so its shape marshals).
:func:`widget_state` is the one place a node's status becomes what the graph
shows, and :func:`now_us` the one clock every time is read from.  Every layer
imports this module; it imports nothing of the package.
"""

from __future__ import annotations

import enum
import time

__all__ = ["Status", "ENDED", "NodeKind", "widget_state", "now_us"]


class Status(str, enum.Enum):
    """The state of a dispatch or of one node."""

    NEW_OBJECT = "NEW_OBJECT"
    PENDING_REPLACEMENT = "PENDING_REPLACEMENT"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    #: The kernel or process ended while the dispatch was running.
    INTERRUPTED = "INTERRUPTED"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return f"Status.{self.value}"


#: Statuses after which nothing changes any more.
ENDED = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED})


class NodeKind:
    """The kinds of node in a traced graph (see :mod:`covalent_nb.workflow.graph`)."""

    ELECTRON = "electron"
    PARAMETER = "parameter"
    ELECTRON_LIST = "electron_list"
    ELECTRON_DICT = "electron_dict"
    GETTER = "getter"
    OPERATOR = "operator"
    SUBLATTICE = "sublattice"
    POSTPROCESS = "postprocess"
    #: Kinds the package adds itself (the user's tasks are electrons and sublattices).
    INTERNAL = frozenset({ELECTRON_LIST, ELECTRON_DICT, GETTER, OPERATOR, POSTPROCESS})


def widget_state(status: str, reused: bool) -> str:
    """Map a node's status (and whether it was reused) to its display state.

    The display states are ``pending``, ``running``, ``completed``, ``reused``,
    ``failed`` and ``cancelled``.
    """
    if status == Status.COMPLETED:
        return "reused" if reused else "completed"
    if status == Status.RUNNING:
        return "running"
    if status == Status.FAILED or status == Status.INTERRUPTED:
        return "failed"
    if status == Status.CANCELLED:
        return "cancelled"
    return "pending"


def now_us() -> int:
    """Integer microseconds since the epoch: the unit of every node and dispatch time."""
    return time.time_ns() // 1000

