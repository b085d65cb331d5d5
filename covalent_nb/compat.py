"""The rest of Covalent's top-level names, as notebook code touches them.

Supported here: ``sync`` (wait for dispatches to end), ``reload_config``
(settings live in the kernel: nothing to reload), ``covalent_start`` /
``covalent_stop`` (there is no server: they do nothing, and say so once) and
``is_covalent_running`` (the dispatcher is always in the kernel).  The names of
Covalent features this package does not have raise a ``NotImplementedError``
that says why and what to do instead (see :data:`UNSUPPORTED`), never a bare
``AttributeError``.
"""

from __future__ import annotations

import warnings
from typing import Optional, Union

from .api import get_result
from .dispatch.runtime import RUNTIME

__all__ = ["sync", "reload_config", "covalent_start", "covalent_stop", "is_covalent_running", "UNSUPPORTED"]

#: Covalent names without an equivalent here -> why, and what to do instead.
UNSUPPORTED = {
    "fs": "file transfers (ct.fs) move files between a client and remote executors; tasks here run "
          "where the kernel's files are: read and write them inside the task",
    "fs_strategies": "file transfer strategies have nothing to move here: tasks run where the kernel's files are",
    "leptons": "only ct.Lepton with bash commands is supported; other lepton languages are not",
    "TransportableObject": "values are not wrapped for transport here: pass and return plain Python objects",
    "get_data_store": "there is no server-side data store: results live in the kernel and in "
                      "ct.get_config('home') (see ct.list_dispatches())",
    "qelectron": "quantum electrons (QElectrons) are not supported by covalent_nb",
    "get_dispatch_graph": "use ct.get_result(dispatch_id).graph, or ct.show(dispatch_id) for the live graph",
    "triggers": "lattice triggers are not supported by covalent_nb",
    "cloud": "Covalent Cloud is a hosted service; covalent_nb runs in the kernel (executor='dask' scales out)",
}

_told: set = set()


def _say_once(name: str, text: str) -> None:
    if name not in _told:
        _told.add(name)
        warnings.warn(text, stacklevel=3)


def covalent_start(*args, **kwargs) -> None:
    """Covalent starts its server here; covalent_nb dispatches inside the kernel: nothing to start."""
    _say_once("covalent_start", "ct.covalent_start(): covalent_nb dispatches inside this kernel and needs "
                                "no server; nothing was started")


def covalent_stop(*args, **kwargs) -> None:
    """Covalent stops its server here; there is none (``ct.shutdown()`` ends covalent_nb's threads)."""
    _say_once("covalent_stop", "ct.covalent_stop(): there is no server to stop; ct.shutdown() ends "
                               "covalent_nb's threads and stores")


def is_covalent_running() -> bool:
    """Always True: the dispatcher lives in the kernel."""
    return True


def reload_config() -> None:
    """Settings live in the kernel (``ct.set_config``); there is no file to reload."""


def sync(dispatch_id: Optional[Union[str, list]] = None) -> None:
    """Wait until the given dispatch(es), or every running one, have ended (as Covalent's ``sync``)."""
    if dispatch_id is None:  # the running ones (one registered with disable_run=True never ends)
        ids = [d.result.dispatch_id for d in RUNTIME.registry.running_dispatchers() if d.thread.is_alive()]
    elif isinstance(dispatch_id, str):
        ids = [dispatch_id]
    else:
        ids = list(dispatch_id)
    for each in ids:
        get_result(each, wait=True)
