"""Executors: where tasks run.  ``"local"`` (threads in the kernel) or ``"dask"``."""

from __future__ import annotations

from typing import Any

from ...config import get_config
from ..runtime import RUNTIME

from .base import CancelFlag, Executor
from .local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "CancelFlag", "resolve_executor", "executor_name"]

def _local() -> LocalExecutor:
    return RUNTIME.executor("local", lambda: LocalExecutor(max_workers=get_config("local_workers")))


def _make_dask() -> Executor:
    try:
        from .dask import DaskExecutor  # Dask distributed is optional: imported on first use
    except ImportError as exc:
        raise ImportError(
            f"executor='dask' needs Dask distributed ({exc}); "
            "install it with: pip install 'covalent_nb[dask]'"
        ) from None
    return DaskExecutor()


def _dask() -> Executor:
    return RUNTIME.executor("dask", _make_dask)


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
