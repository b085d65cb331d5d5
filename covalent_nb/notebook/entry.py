"""The notebook face's entry points, as ``covalent_nb`` exports them.

They import IPython and ipywidgets only when called, so ``import
covalent_nb`` stays quick in plain scripts and worker processes.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..results.result import Result
from . import tracebacks

__all__ = ["load_ipython_extension", "unload_ipython_extension", "redispatch_panel", "show"]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext covalent_nb``: register ``%%lattice``, ``%dispatch``,
    ``%redispatch`` and ``%dispatches``."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext covalent_nb``: remove the magics."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)


def redispatch_panel(dispatch_id: Optional[str] = None,
                     namespace: Optional[Mapping[str, Any]] = None) -> Any:
    """A :class:`~covalent_nb.notebook.panel.RedispatchPanel` for *dispatch_id*
    (the kernel's last dispatch when omitted): replace electrons, edit the
    inputs, choose reuse, and redispatch with one click."""
    from .panel import RedispatchPanel

    return RedispatchPanel(dispatch_id, namespace)


def show(dispatch_id: Any) -> Any:
    """The live graph of a dispatch (its id, a ``Result`` or a handle).

    Returns a view holding the :class:`~covalent_nb.notebook.graph_widget.LatticeGraph`
    (its ``graph`` attribute) with room below it for the redispatch panel that
    the graph's "Redispatch…" button opens.  Where the widget cannot be built
    (no front end installed), returns a one-line text summary that says why.
    """
    from ..api import get_result
    from .panel import live_view

    if isinstance(dispatch_id, Result):
        result = dispatch_id
    else:
        result = get_result(str(getattr(dispatch_id, "dispatch_id", dispatch_id)))
    return live_view(result)


def _live_view(result: Result) -> Any:
    from .panel import live_view  # ipywidgets and anywidget: only once a result is displayed

    return live_view(result)


Result.display_hook = _live_view  # a result shown in a notebook is its live graph
tracebacks.install()  # a task failing in a notebook: its traceback as IPython formats it
