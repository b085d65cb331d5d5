"""Statuses of dispatches and nodes.

A :class:`Status` is a ``str`` so it compares equal to plain strings
(``result.status == "COMPLETED"``), prints as its bare name and survives JSON,
SQLite and pickling unchanged.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "ENDED", "widget_state"]


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
