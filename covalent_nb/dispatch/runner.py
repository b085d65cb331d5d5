"""What runs on an executor: one task with its hooks, output captured.

:class:`TaskSpec` is everything an executor needs to run one node; it pickles,
so a Dask worker can run it too.  :func:`run_task` is the same on every
executor: bash and pip dependencies, ``call_before`` hooks, the function,
``call_after`` hooks, all inside the node's stdout/stderr capture.
"""

from __future__ import annotations

from typing import Any, Optional

from ..states import now_us
from .capture import capturing
from ..serialization import IMMUTABLE
from .freeze import CopyOf, Output, produced
from .executors.remote import RemoteTree, RemoteValue
from .tracebacks import format_failure

__all__ = ["TaskSpec", "run_task", "argument", "FromRun"]





class FromRun:
    """Placeholder for the output of an earlier task of the same fused run."""

    __slots__ = ("node_id",)

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id


class TaskSpec:
    """One node to run: its function, resolved arguments and hooks.

    ``arg_sources`` (one node id per positional argument) and
    ``kwarg_sources`` (``(keyword, node id)`` pairs) name the node each
    argument came from, so an executor that keeps outputs remotely (Dask) can
    pass its own handles instead of values.
    """

    __slots__ = ("dispatch_id", "node_id", "name", "function", "args", "kwargs", "hooks",
                 "arg_sources", "kwarg_sources", "shared")

    def __init__(self, dispatch_id: str, node_id: int, name: str, function: Any, args: list,
                 kwargs: dict, hooks: Optional[dict], arg_sources: tuple = (),
                 kwarg_sources: tuple = (), shared: bool = False) -> None:
        self.dispatch_id = dispatch_id
        self.node_id = node_id
        self.name = name
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.hooks = hooks
        self.arg_sources = arg_sources
        self.kwarg_sources = kwarg_sources
        # True when an argument may be shared with other consumers (a CopyOf, a FromRun or
        # an upstream Output): run_task then gives the task its own copies
        self.shared = shared

    def __getstate__(self):
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setstate__(self, state):
        for slot, value in zip(self.__slots__, state):
            setattr(self, slot, value)

    def __repr__(self) -> str:
        return f"<TaskSpec {self.dispatch_id[:8]}:{self.node_id} {self.name}>"


def _call_hooks(hooks: dict, kwargs: dict) -> list:
    deps = hooks.get("deps") or {}
    if deps.get("bash") is not None:
        deps["bash"]()
    if deps.get("pip") is not None:
        deps["pip"]()
    injected: dict = {}
    for hook in hooks.get("call_before") or ():
        value = hook()
        keyword = getattr(hook, "retval_keyword", "")
        if keyword:
            injected.setdefault(keyword, []).append(value)
    for keyword, values in injected.items():
        kwargs[keyword] = values[0] if len(values) == 1 else values
    return hooks.get("call_after") or []


def argument(value: Any) -> Any:
    """One consumer's view of an argument: its own copy of a value that others share."""
    kind = type(value)
    if kind is CopyOf:
        return value.value()
    if kind is Output:
        return value.argument()
    if kind is RemoteValue or kind is RemoteTree:  # kept on a Dask worker: this task needs the value itself
        return value.fetch()
    return value


def run_task(spec: TaskSpec) -> tuple:
    """Run *spec* and return ``(ok, value_or_traceback, start_us, end_us, stdout, stderr)``.

    A mutable value comes back as an :class:`~covalent_nb.dispatch.freeze.Output`
    holding its bytes as they were when the task returned.  Never raises for a
    failure of the task itself: the traceback comes back as text so it
    survives any executor (:func:`~covalent_nb.dispatch.tracebacks.format_failure`:
    covalent_nb's frames left out, IPython's format in a notebook).
    """
    start = now_us()
    with capturing() as captured:
        try:
            args, kwargs = spec.args, spec.kwargs
            if spec.shared:
                args = [argument(a) for a in args]
                if kwargs:
                    kwargs = {k: argument(v) for k, v in kwargs.items()}
            after = ()
            if spec.hooks is not None:
                kwargs = dict(kwargs)
                after = _call_hooks(spec.hooks, kwargs)
            value = spec.function(*args, **kwargs)
            for hook in after:
                hook()
            if type(value) not in IMMUTABLE:
                value = produced(value)
            ok = True
        except BaseException as exc:  # noqa: BLE001 - a task's failure is data
            if isinstance(exc, KeyboardInterrupt):
                raise
            # The user's frames only (not this wrapper's), as the notebook formats them
            value = format_failure(exc)
            ok = False
    end = now_us()
    if end <= start:  # a node that ran has end_time strictly after start_time
        end = start + 1
    return ok, value, start, end, captured.stdout, captured.stderr


def has_hooks(metadata: Optional[dict]) -> bool:
    """True when an electron's metadata asks for anything to run around it."""
    if not metadata:
        return False
    hooks = metadata["hooks"]
    deps = hooks["deps"]
    return bool(deps.get("bash") or deps.get("pip") or hooks["call_before"] or hooks["call_after"])
