"""What ``%dispatch`` and ``%redispatch`` give back.

:class:`DispatchHandle`
    The value of ``h = %dispatch workflow(1, 2)``: ``h.dispatch_id`` is the id,
    ``h.result()`` waits for the :class:`~covalent_nb.Result`.
:func:`text_summary`
    The line that stands in for a dispatch's live graph where the widget
    cannot be shown (with what failed, for a FAILED dispatch) (the live view itself is in :mod:`covalent_nb.notebook.panel`,
    beside the panel its button opens).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from ..states import NodeKind
from ..api import get_result
from ..results.result import Result

__all__ = ["DispatchHandle", "text_summary"]

log = logging.getLogger(__name__)


class DispatchHandle:
    """A started dispatch, as returned by ``%dispatch`` and ``%redispatch``.

    ``handle.view`` shows the live graph again.  ``str(handle)`` is the dispatch id, so the handle can go wherever an id
    goes in an f-string; ``ct.get_result(handle.dispatch_id)`` is
    :meth:`result` without waiting.
    """

    __slots__ = ("dispatch_id", "view", "_lattice")

    def __init__(self, dispatch_id: str, view: Any = None) -> None:
        self.dispatch_id = dispatch_id
        #: What the magic showed: the live graph's widget, or its text summary.
        self.view = view
        self._lattice = getattr(get_result(dispatch_id).lattice, "__name__", "?")

    def result(self, timeout: Optional[float] = None) -> Result:
        """Wait for the dispatch to end and return its Result.

        Raises ``TimeoutError`` if *timeout* seconds pass first.
        """
        result = get_result(self.dispatch_id)
        if not result.wait(timeout):
            raise TimeoutError(f"dispatch {self.dispatch_id} of {self._lattice} has not ended "
                               f"after {timeout} s (status {result.status})")
        return result

    @property
    def status(self) -> Any:
        """The dispatch's current status (it does not wait)."""
        return get_result(self.dispatch_id).status

    def __str__(self) -> str:
        return self.dispatch_id

    def __repr__(self) -> str:
        return f"DispatchHandle({self.dispatch_id!r}, lattice={self._lattice!r})"


def text_summary(result: Result, note: str = "") -> str:
    """One line that stands in for the live graph; for a FAILED dispatch, what failed below it."""
    kinds = result.graph.kinds
    tasks = sum(1 for kind in kinds if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE))
    line = (f"dispatch {result.dispatch_id} of {getattr(result.lattice, '__name__', '?')}: "
            f"{result.status}, {tasks} task(s), {len(kinds)} node(s)")
    if result.parent_dispatch_id:
        line += f", redispatched from {result.parent_dispatch_id}"
    line += f" [{note}]" if note else ""
    return "\n".join([line, *result.failure_lines()])
