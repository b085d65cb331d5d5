"""covalent_nb: Covalent's workflow SDK, dispatched inside the Jupyter kernel.

``import covalent_nb as ct`` and Covalent code runs unchanged::

    @ct.electron
    def add(a, b):
        return a + b

    @ct.lattice
    def workflow(a, b):
        return add(a, b)

    dispatch_id = ct.dispatch(workflow)(1, 2)
    ct.get_result(dispatch_id, wait=True).result     # 3
"""

from .config import get_config, set_config
from . import executor
from .api import cancel, dispatch, dispatch_sync, get_result
from .compat import covalent_start, covalent_stop, is_covalent_running, reload_config, sync
from .compat import UNSUPPORTED as _UNSUPPORTED
from .redispatch import redispatch
from .dispatch.hashing import file_digest
from .dispatch.runtime import RUNTIME as _RUNTIME
from .notebook.entry import load_ipython_extension, redispatch_panel, show, unload_ipython_extension
from .results.result import Result
from .results.store import delete_dispatch, list_dispatches, prune_dispatches
from .states import Status

#: ``ct.status.COMPLETED`` and the rest, as Covalent's ``ct.status`` offers them: the Status enum itself.
status = Status
from .workflow.deps import DepsBash, DepsCall, DepsModule, DepsPip
from .workflow.electron import Electron, electron
from .workflow.lattice import Lattice, lattice
from .workflow.lepton import Lepton
from .workflow.tracing import wait

__version__ = "0.1.0"


def shutdown(timeout: float = 30.0) -> None:
    """End everything covalent_nb started in this process, cleanly.

    Waits up to *timeout* seconds for running dispatches, then flushes and
    closes the stores, stops the widget publisher, the local worker threads and
    any Dask cluster it started, and puts back ``sys.stdout``/``sys.stderr``.
    The next dispatch starts them afresh.
    """
    _RUNTIME.shutdown(timeout)

__all__ = [
    # Covalent's SDK
    "electron", "lattice", "Electron", "Lattice", "Lepton", "DepsBash", "DepsCall", "DepsPip", "DepsModule",
    "status",
    "dispatch", "dispatch_sync", "get_result", "redispatch", "cancel", "wait", "Result", "Status",
    "get_config", "set_config", "executor", "shutdown", "sync", "reload_config",
    "covalent_start", "covalent_stop", "is_covalent_running",
    # reuse: what the key cannot see by itself
    "file_digest",
    # the store
    "list_dispatches", "delete_dispatch", "prune_dispatches",
    # the notebook face
    "show", "redispatch_panel", "load_ipython_extension", "unload_ipython_extension",
]

# Note: ``covalent_nb.dispatch`` is the function above (Covalent's name); the subpackage of
# the same name is reached with ``from covalent_nb.dispatch import ...`` or ``sys.modules``.


def __getattr__(name: str):
    why = _UNSUPPORTED.get(name)
    if why is not None:
        raise NotImplementedError(f"ct.{name} is not supported by covalent_nb: {why}")
    raise AttributeError(f"module 'covalent_nb' has no attribute {name!r}")

