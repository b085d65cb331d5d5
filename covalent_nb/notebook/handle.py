"""What ``%dispatch`` and ``%redispatch`` give back, and how a dispatch is shown.

:class:`DispatchHandle`
    The value of ``h = %dispatch workflow(1, 2)``: ``h.dispatch_id`` is the id,
    ``h.result()`` waits for the :class:`~covalent_nb.Result`.
:func:`live_view`
    The live graph of a dispatch (the graph widget, with room under it for the
    redispatch panel its button opens), or a one-line text summary when the
    widget cannot be shown.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Optional

import ipywidgets

from ..dispatch.api import get_result
from ..results.result import Result

__all__ = ["DispatchHandle", "LiveView", "live_view", "text_summary", "panel_slot"]

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
    """One line that stands in for the live graph."""
    kinds = result.graph.kinds
    tasks = sum(1 for kind in kinds if kind in ("electron", "sublattice"))
    line = (f"dispatch {result.dispatch_id} of {getattr(result.lattice, '__name__', '?')}: "
            f"{result.status}, {tasks} task(s), {len(kinds)} node(s)")
    if result.parent_dispatch_id:
        line += f", redispatched from {result.parent_dispatch_id}"
    return line + (f" [{note}]" if note else "")


# The view each graph this module showed sits in, so the graph's
# "Redispatch…" button can open the panel under it.  Weak keys: a closed
# graph takes the entry with it.
_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def panel_slot(graph: Any) -> Optional[Any]:
    """The box under *graph* (shown by :func:`live_view`) that holds its redispatch panel."""
    view = _views.get(graph)
    return view.slot if view is not None else None


class LiveView(ipywidgets.VBox):
    """A dispatch's live graph, with a box under it for the redispatch panel.

    Displays like the graph: its mime bundle carries the graph's static SVG,
    so a notebook saved without widget state still shows the picture.
    """

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.slot = ipywidgets.VBox(layout=ipywidgets.Layout(width="100%"))
        self.slot.add_class("cnb-panel-slot")
        super().__init__([graph, self.slot], layout=ipywidgets.Layout(width="100%"))
        self.add_class("cnb-live-view")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["image/svg+xml"] = self.graph.to_svg()
            data["text/plain"] = repr(self.graph)
        return data


def live_view(result: Result) -> Any:
    """The live graph of *result*, with an empty box under it for the panel.

    Falls back to :func:`text_summary` (a str) when the graph widget cannot be
    built, e.g. its front end is not installed; the summary says why.
    """
    try:
        from .graph_widget import LatticeGraph
        from .panel import install_graph_button

        graph = LatticeGraph(result)
    except Exception as exc:  # the widget is optional: say why it is missing, go on
        log.debug("graph widget unavailable", exc_info=True)
        return text_summary(result, f"no live graph: {type(exc).__name__}: {exc}")
    install_graph_button()
    view = LiveView(graph)
    _views[graph] = view
    return view
