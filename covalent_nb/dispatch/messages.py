"""The messages executors (and ``cancel``) send a dispatcher: the only way anything reaches it.

Each is a small named tuple; the dispatcher's loop tells them apart by type.
Executors in the hot path build them with ``tuple.__new__`` (see
:func:`message`), which skips the named tuple's Python-level constructor.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

__all__ = ["Started", "Done", "Failed", "Skipped", "ChildEnded", "Cancel", "message"]


class Started(NamedTuple):
    """A node's function has started on its executor (``start_us``: when, if known)."""

    node_id: int
    start_us: Optional[int] = None


class Done(NamedTuple):
    """A node completed: its value (an :class:`~covalent_nb.dispatch.freeze.Output` if mutable)."""

    node_id: int
    value: Any
    start_us: int
    end_us: int
    stdout: str = ""
    stderr: str = ""


class Failed(NamedTuple):
    """A node failed: ``error`` is the traceback (or the reason it could not run), as text."""

    node_id: int
    error: str
    start_us: Optional[int] = None
    end_us: Optional[int] = None
    stdout: str = ""
    stderr: str = ""


class Skipped(NamedTuple):
    """A node was not started because it (or its dispatch) was cancelled."""

    node_id: int


class ChildEnded(NamedTuple):
    """A sublattice node's own dispatch has ended (``child`` is its result)."""

    node_id: int
    child: Any


class Cancel(NamedTuple):
    """Cancel the dispatch (``node_ids`` None) or these nodes and what depends on them."""

    node_ids: Optional[list]


message = tuple.__new__  # message(Done, (node, value, ...)): a Done without a Python-level call
