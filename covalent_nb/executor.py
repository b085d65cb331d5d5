"""Executors by class, as Covalent's ``ct.executor`` namespace.

``ct.executor.LocalExecutor`` runs electrons on threads in the kernel;
``ct.executor.DaskExecutor(address=...)`` or ``DaskExecutor(client=...)`` runs
them on Dask distributed.  The names ``"local"`` and ``"dask"`` given as an
electron's or lattice's ``executor`` mean the kernel's shared instances.

Importing this module never imports Dask: ``DaskExecutor`` is looked up on
first use, and without Dask installed that lookup raises ``ImportError`` with
the install command.
"""

from __future__ import annotations

from typing import Any

from .dispatch.executors.base import Executor
from .dispatch.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "DaskExecutor"]


def __getattr__(name: str) -> Any:
    if name == "DaskExecutor":
        try:
            from .dispatch.executors.dask import DaskExecutor
        except ImportError as exc:
            raise ImportError(
                f"ct.executor.DaskExecutor needs Dask distributed ({exc}); "
                "install it with: pip install 'covalent_nb[dask]'"
            ) from None
        globals()["DaskExecutor"] = DaskExecutor  # later lookups skip this function
        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | {"DaskExecutor"})
