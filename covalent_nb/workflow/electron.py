"""Electrons: the tasks of a workflow (``@ct.electron``)."""

from __future__ import annotations

import functools
import importlib
import types
from typing import Any, Callable, Optional, Sequence, Union

from .deps import DepsBash, DepsCall, DepsModule, DepsPip
from .source import remember
from .tracing import current_build, record_call

__all__ = ["Electron", "electron"]


def _as_hooks(value: Any, what: str) -> list:
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    hooks = []
    for item in items:
        if isinstance(item, (DepsCall, DepsBash, DepsPip)):
            hooks.append(item)
        elif callable(item):
            hooks.append(DepsCall(item))
        else:
            raise TypeError(f"{what} takes DepsCall/DepsBash/DepsPip objects or callables, "
                            f"not {type(item).__name__}")
    return hooks


def _as_deps_module(value: Any) -> list:
    """Check the modules named in ``deps_module`` and return their names.

    Local modules (files beside the notebook, anything not installed) already
    travel with a dispatch by value, to local threads and to Dask workers
    alike (:mod:`covalent_nb.dispatch.freeze`), so naming them changes
    nothing process-wide; the names are kept in the metadata, as Covalent does.
    """
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    names = []
    for item in items:
        if isinstance(item, DepsModule):
            item = item.module_name
        if isinstance(item, str):
            try:
                item = importlib.import_module(item)
            except ImportError as exc:
                raise ImportError(f"deps_module names {item!r}, which cannot be imported: {exc}") from None
        if not isinstance(item, types.ModuleType):
            raise TypeError(f"deps_module takes modules or module names, not {type(item).__name__}")
        names.append(item.__name__)
    return names


def make_metadata(executor: Any, deps_bash: Any, deps_pip: Any, call_before: Any,
                  call_after: Any, reusable: bool = True, deps_module: Any = None,
                  reuse_key: Optional[Callable[[], Any]] = None) -> dict:
    """Build the metadata dict in Covalent's shape, validating every hook."""
    if deps_bash is not None and not isinstance(deps_bash, DepsBash):
        deps_bash = DepsBash(deps_bash)
    if deps_pip is not None and not isinstance(deps_pip, DepsPip):
        deps_pip = DepsPip(deps_pip)
    if reuse_key is not None and not callable(reuse_key):
        raise TypeError(f"reuse_key takes a function of no arguments (called at dispatch, its result "
                        f"joins the task's key), not {type(reuse_key).__name__}; e.g. "
                        "reuse_key=lambda: os.environ.get('MODE')")
    return {
        "executor": executor,
        "hooks": {
            "deps": {"bash": deps_bash, "pip": deps_pip},
            "call_before": _as_hooks(call_before, "call_before"),
            "call_after": _as_hooks(call_after, "call_after"),
        },
        "deps_module": _as_deps_module(deps_module),
        "reusable": bool(reusable),
        "reuse_key": reuse_key,
    }


class Electron:
    """A task: a function that, inside a lattice, becomes a node of the graph.

    Called outside a lattice, an electron is a plain function call.  Called
    while a lattice traces its graph, it records a node and returns a stand-in
    for the node's output.
    """

    def __init__(self, function: Callable, metadata: Optional[dict] = None) -> None:
        if not callable(function):
            raise TypeError(f"an electron wraps a callable, not {type(function).__name__}")
        self.function = function
        self.metadata = metadata if metadata is not None else make_metadata(None, None, None, None, None)
        # a lattice says so itself (lattice.py imports this module, not the other way round)
        self.is_sublattice = getattr(type(function), "is_lattice", False) is True
        functools.update_wrapper(self, function, updated=())
        if not self.is_sublattice and hasattr(function, "__code__"):
            remember(function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        build = current_build()
        if build is None:
            return self.function(*args, **kwargs)
        return record_call(build, self, args, kwargs)

    def __repr__(self) -> str:
        return f"<electron {self.function.__name__}>"

    def __reduce__(self):
        return (Electron, (self.function, self.metadata))

    @property
    def executor(self) -> Any:
        return self.metadata["executor"]


def electron(_func: Optional[Callable] = None, *, backend: Any = None, executor: Any = None,
             files: Any = None, deps_bash: Union[DepsBash, Sequence[str], str, None] = None,
             deps_pip: Union[DepsPip, Sequence[str], None] = None,
             deps_module: Any = None,
             call_before: Union[Sequence, DepsCall, None] = None,
             call_after: Union[Sequence, DepsCall, None] = None,
             reusable: bool = True, reuse_key: Optional[Callable[[], Any]] = None) -> Any:
    """Turn a function (or a lattice) into a task of a workflow.

    Usable bare (``@electron``) or with options (``@electron(executor="dask")``).
    *executor* is ``"local"`` (threads in the kernel, the default), ``"dask"``
    or an executor object; *backend* is Covalent's old name for it.
    *deps_bash*, *deps_pip*, *call_before* and *call_after* run around the
    task; *deps_module* (modules or their names) are shipped by value to remote
    executors such as Dask.  ``reusable=False`` opts the task out of reuse on redispatch (for
    stochastic work): it and everything downstream of it are recomputed.  *reuse_key* adds
    to the task's key what the key cannot see by itself: a function of no arguments, called
    when the workflow is dispatched, whose return value is digested into the key (e.g.
    ``reuse_key=lambda: (os.environ.get("MODE"), ct.file_digest("data.csv"))``).
    *files* is not supported and raises ``NotImplementedError``.
    """
    if files:
        raise NotImplementedError(
            "electron(files=...) is not supported by covalent_nb: tasks run where the kernel's "
            "files already are; read or write the files inside the task instead"
        )
    if executor is None and backend is not None:
        executor = backend
    metadata = make_metadata(executor, deps_bash, deps_pip, call_before, call_after, reusable,
                             deps_module, reuse_key)

    def decorate(function: Callable) -> Electron:
        if isinstance(function, Electron):
            function = function.function
        return Electron(function, metadata)

    if _func is None:
        return decorate
    return decorate(_func)
