"""Executors: where tasks run.  ``"local"`` (threads in the kernel) or ``"dask"``."""

from __future__ import annotations

import threading
from typing import Any

from ...config import get_config

from .base import CancelFlag, Executor
from .local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "CancelFlag", "resolve_executor", "executor_name"]

_lock = threading.Lock()
_shared: dict = {}


def _local() -> LocalExecutor:
    executor = _shared.get("local")
    if executor is None:
        with _lock:
            executor = _shared.get("local")
            if executor is None:

                executor = _shared["local"] = LocalExecutor(max_workers=get_config("local_workers"))
    return executor


def _dask() -> Executor:
    executor = _shared.get("dask")
    if executor is None:
        with _lock:
            executor = _shared.get("dask")
            if executor is None:
                try:
                    from .dask import DaskExecutor
                except ImportError as exc:
                    raise ImportError(
                        f"executor='dask' needs Dask distributed ({exc}); "
                        "install it with: pip install 'covalent_nb[dask]'"
                    ) from None
                executor = _shared["dask"] = DaskExecutor()
    return executor


def resolve_executor(spec: Any) -> Executor:
    """Turn an executor spec (None, ``"local"``, ``"dask"`` or an object) into an executor.

    Raises ``ValueError`` naming the spec and the choices when it is unknown.
    """
    if spec is None or spec == "local":
        return _local()
    if isinstance(spec, Executor):
        return spec
    if spec == "dask":
        return _dask()
    if isinstance(spec, str):
        raise ValueError(
            f"unknown executor {spec!r}: use 'local' (threads in the kernel), 'dask', "
            "or an executor object such as ct.executor.DaskExecutor(address=...)"
        )
    raise TypeError(f"an executor is a name ('local', 'dask') or an Executor object, not {type(spec).__name__}")


def executor_name(spec: Any) -> str:
    """A short printable name for an executor spec."""
    if spec is None:
        return "local"
    if isinstance(spec, str):
        return spec
    return getattr(spec, "name", type(spec).__name__)
