"""The notebook face's entry points, as ``covalent_nb`` exports them.

They import IPython and ipywidgets only when called, so ``import
covalent_nb`` stays quick in plain scripts and worker processes.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = ["load_ipython_extension", "unload_ipython_extension", "redispatch_panel"]


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
