"""The dispatch history that ``%dispatches`` shows: a table, newest first, with lineage.

:func:`dispatch_records` is the one place the records come from: the store's
``ct.list_dispatches()``, newest first.  The table itself is drawn by
:class:`~covalent_nb.results.history.DispatchList`, the same renderer as
``ct.list_dispatches()``'s; :class:`DispatchHistory` only adds that the
plain-text form (a terminal, a notebook's ``text/plain``) is the table too.
"""

from __future__ import annotations

from typing import Any, Optional

from ..results.history import DispatchList

__all__ = ["dispatch_records", "DispatchHistory"]


def dispatch_records(limit: Optional[int] = None) -> list[dict]:
    """The dispatches in the store, newest first, sublattice dispatches left out.

    The same dicts as :func:`covalent_nb.list_dispatches`: ``id, lattice,
    status, start`` (an aware datetime or None), ``duration`` (seconds, or
    None), ``parent`` (the id this one was redispatched from, or None),
    ``reused`` and ``recomputed`` (node counts, None while running).  With the
    durable store that includes the dispatches of earlier kernels.
    """
    from ..results.store import list_dispatches

    return list(list_dispatches(limit))


class DispatchHistory(DispatchList):
    """The dispatch history as ``%dispatches`` returns it: a :class:`DispatchList` whose repr is its table.

    A ``DispatchList`` reprs as the list of dicts it is; this one prints as
    the aligned table at a prompt as well.  :attr:`records` is the list of
    summary dicts.
    """

    @property
    def records(self) -> list[dict]:
        """The summary dicts, newest first (ids whole)."""
        return list(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))
