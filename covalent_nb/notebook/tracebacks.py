"""A failed task's traceback as IPython formats it, when a task fails in a notebook.

:func:`install` (called when covalent_nb is imported) gives the dispatch
layer's :func:`~covalent_nb.dispatch.tracebacks.format_failure` an
:class:`IPythonFormatter`.  In a running IPython shell it formats with
IPython's own ``ultratb`` in the shell's exception mode (``%xmode``), without
colours: a notebook's frames read ``Cell In[7], line 3, in fail(x)`` with
their source lines around an arrow, as the notebook shows an error raised in
a cell.  Without a shell (a script, a Dask worker process) it declines, and
the plain :mod:`traceback` format is used.

IPython is never imported here: a shell exists only when IPython has been
imported already, and its ``ultratb`` with it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Optional

from ..dispatch.tracebacks import set_formatter

__all__ = ["IPythonFormatter", "install"]

# %xmode's modes that IPython's FormattedTB takes.  "Verbose" prints every
# frame's local variables: their reprs may be huge or secret, so a stored
# error uses "Context" (the notebook's default) instead.
_MODES = ("Plain", "Context", "Minimal")


class IPythonFormatter:
    """Format a failure with IPython's ``FormattedTB`` when a shell is running.

    Called on the executor threads: each thread has its own ``FormattedTB``.
    The "Context" mode reads source files (about 2 ms a failure); past
    *context_per_second* failures in one second (a fan-out of thousands
    failing at once) the rest of that second get IPython's "Plain" mode,
    which still names cells and shows the source line.
    """

    def __init__(self, context_per_second: int = 50) -> None:
        self.context_per_second = context_per_second
        self._local = threading.local()
        self._window = (0, 0)  # (second, failures formatted with context in it); approximate

    def _shell(self) -> Any:
        ipython = sys.modules.get("IPython")
        get_ipython = getattr(ipython, "get_ipython", None)
        return get_ipython() if get_ipython is not None else None

    def _mode(self, shell: Any) -> str:
        mode = getattr(getattr(shell, "InteractiveTB", None), "mode", "Context")
        mode = mode if mode in _MODES else "Context"
        if mode != "Context":
            return mode
        second = int(time.monotonic())
        start, count = self._window
        count = count + 1 if start == second else 1
        self._window = (second, count)
        return mode if count <= self.context_per_second else "Plain"

    def _formatter(self, ultratb: Any, mode: str) -> Any:
        made = getattr(self._local, "formatters", None)
        if made is None:
            made = self._local.formatters = {}
        formatter = made.get(mode)
        if formatter is None:
            formatter = made[mode] = ultratb.FormattedTB(mode=mode, color_scheme="NoColor")
        return formatter

    def __call__(self, exc: BaseException) -> Optional[str]:
        """IPython's text for *exc*, or None when no IPython shell is running."""
        shell = self._shell()
        ultratb = sys.modules.get("IPython.core.ultratb")
        if shell is None or ultratb is None:
            return None
        formatter = self._formatter(ultratb, self._mode(shell))
        return formatter.text(type(exc), exc, exc.__traceback__)


def install() -> None:
    """Make failed tasks' tracebacks IPython's when they fail in a notebook."""
    set_formatter(IPythonFormatter())
