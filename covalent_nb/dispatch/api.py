"""Covalent's dispatch functions: ``dispatch``, ``dispatch_sync``, ``get_result``,
``cancel`` and ``redispatch``, served by the kernel-local dispatcher."""

from __future__ import annotations

import inspect
import uuid
import warnings
from typing import Any, Callable, Optional

from ..results.result import Result
from ..results.store import active_store
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice, Trace
from . import registry
from .dispatcher import Dispatcher
from .freeze import Frozen, freeze, thaw
from .gcpause import collector_paused
from .reuse import FunctionKeys, function_keys

__all__ = ["dispatch", "dispatch_sync", "get_result", "cancel", "redispatch"]


def _ignored_address(dispatcher_addr: Optional[str], where: str) -> None:
    if dispatcher_addr is not None:
        warnings.warn(f"{where}: dispatcher_addr={dispatcher_addr!r} is ignored; covalent_nb "
                      "dispatches inside this kernel and needs no server", stacklevel=3)


def _check_lattice(lattice: Any, where: str) -> Lattice:
    if isinstance(lattice, Lattice):
        return lattice
    what = f"the electron {lattice.__name__}" if isinstance(lattice, Electron) else \
        f"a {type(lattice).__name__}"
    raise TypeError(f"{where}() takes a lattice, but got {what}; decorate the workflow "
                    f"function with @ct.lattice")


def _start(lattice: Lattice, trace: Trace, args: tuple, kwargs: dict, work: Frozen, *,
           parent: Optional[Result] = None, replacements: Optional[dict] = None, reuse: bool = False,
           run: bool = True, on_end: Optional[Callable] = None, sublattice: bool = False,
           fkeys: Optional[FunctionKeys] = None, before_start: Optional[Callable] = None) -> Result:
    """Register a traced dispatch and start its dispatcher; return its Result.

    *lattice*, *args* and *kwargs* are the dispatch's frozen copies and *work*
    the bytes they came from (see :mod:`covalent_nb.dispatch.freeze`).
    """
    graph = trace.graph
    dispatch_id = str(uuid.uuid4())
    if fkeys is None:
        fkeys = function_keys(graph, unfrozen=work.error)
    result = Result(dispatch_id, lattice.copy_for_dispatch(graph, args, kwargs), graph, args, kwargs,
                    parent_dispatch_id=parent.dispatch_id if parent is not None else None,
                    root_dispatch_id=parent.root_dispatch_id if parent is not None else None,
                    replacements=replacements, replaced_nodes=trace.replaced, reuse_requested=reuse)
    result.function_parts = fkeys.parts
    result._function_keys = fkeys.by_marker
    result.is_sublattice_dispatch = sublattice
    result.snapshot = work.data
    result.snapshot_live = work.live
    if work.error is not None:  # the workflow still runs; only reuse and a later retrace are affected
        result.snapshot_error = work.error
    elif work.live:
        kinds = sorted({type(obj).__name__ for obj in work.live})
        result.snapshot_error = (f"it reaches objects that cannot be pickled ({', '.join(kinds)}), kept "
                                 "live: only this kernel can run it again")
    dispatcher = Dispatcher(result, lattice.metadata, fkeys, parent=parent) if run else None
    if on_end is not None:
        result.add_done_callback(on_end)
    registry.register(result, dispatcher)
    active_store().dispatch_submitted(result)
    if before_start is not None:
        before_start(result)
    if dispatcher is not None:
        dispatcher.start()
    return result


def _frozen(lattice: Lattice, replacements: dict, args: tuple, kwargs: dict) -> tuple:
    """Freeze the work now and return ``(lattice, replacements, args, kwargs, work)`` to run.

    The returned objects are the frozen copies; if the work cannot be frozen
    (an argument or global that cannot be pickled), the live objects, and
    ``work.error`` says why: such a dispatch runs, but none of its nodes is reused.
    """
    work = freeze(lattice, replacements, args, kwargs)
    if work.error is not None:
        return lattice, replacements, args, kwargs, work
    lattice, replacements, args, kwargs = thaw(work.data, work.live)
    return lattice, replacements, args, kwargs, work


def dispatch(lattice: Lattice, dispatcher_addr: Optional[str] = None, *,
             disable_run: bool = False) -> Callable[..., str]:
    """Return a function that dispatches *lattice* with its arguments.

    The returned function traces the lattice with the given arguments, starts
    it on the kernel's dispatcher and returns the dispatch id (a uuid4 string)
    at once; the work runs in the background.  Wrong arguments raise
    ``TypeError`` naming the lattice's signature, before anything is
    registered.  With *disable_run*, the dispatch is registered but not run.

    >>> dispatch_id = dispatch(workflow)(1, 2)        # doctest: +SKIP
    """
    _ignored_address(dispatcher_addr, "ct.dispatch")
    lattice = _check_lattice(lattice, "ct.dispatch")

    def submit(*args: Any, **kwargs: Any) -> str:
        lattice.check_arguments(args, kwargs)  # before anything is pickled
        with collector_paused():
            frozen_lattice, _, args, kwargs, work = _frozen(lattice, {}, args, kwargs)
            trace = frozen_lattice.trace(args, kwargs)
            return _start(frozen_lattice, trace, args, kwargs, work, run=not disable_run).dispatch_id

    submit.__name__ = f"dispatch_{lattice.__name__}"
    submit.__doc__ = f"Dispatch lattice {lattice.__name__}; returns the dispatch id."
    return submit


def dispatch_sync(lattice: Lattice, dispatcher_addr: Optional[str] = None) -> Callable[..., Result]:
    """Like :func:`dispatch`, but the returned function waits and returns the :class:`Result`."""
    _ignored_address(dispatcher_addr, "ct.dispatch_sync")
    submit = dispatch(lattice)

    def run(*args: Any, **kwargs: Any) -> Result:
        return get_result(submit(*args, **kwargs), wait=True)

    return run


def _find(dispatch_id: str) -> Result:
    if not isinstance(dispatch_id, str):
        raise TypeError(f"a dispatch id is a string, not {type(dispatch_id).__name__}")
    result = registry.lookup(dispatch_id)
    if result is None:
        result = active_store().load(dispatch_id)
        if result is not None:
            registry.register(result, None)
    if result is None:
        raise ValueError(f"no dispatch with id {dispatch_id!r} in this kernel or in the store "
                         f"({getattr(active_store(), 'location', 'memory')}); "
                         "ct.list_dispatches() shows the known ones")
    return result


def get_result(dispatch_id: str, wait: bool = False, dispatcher_addr: Optional[str] = None,
               status_only: bool = False, *, results_dir: Optional[str] = None,
               workflow_output: bool = True, intermediate_outputs: bool = True,
               sublattice_results: bool = True) -> Any:
    """Return the :class:`Result` of a dispatch.

    With *wait*, block until the dispatch has ended (woken the moment it ends,
    no polling).  With *status_only*, return ``{"id": ..., "status": ...}``.
    An unknown id raises ``ValueError`` naming it.  *results_dir*,
    *workflow_output*, *intermediate_outputs* and *sublattice_results* exist for
    Covalent compatibility: every result is always complete here.
    """
    _ignored_address(dispatcher_addr, "ct.get_result")
    if results_dir is not None:
        warnings.warn("ct.get_result: results_dir is ignored; results live in the covalent_nb store "
                      "(ct.get_config('home'))", stacklevel=2)
    result = _find(dispatch_id)
    if wait:
        result.wait()
    if status_only:
        return {"id": dispatch_id, "status": result.status}
    return result


def cancel(dispatch_id: str, task_ids: Optional[list] = None) -> str:
    """Cancel a dispatch, or only the nodes in *task_ids*.

    Nodes that have not started never start and end CANCELLED (with, for
    *task_ids*, everything downstream of them); tasks already running finish.
    Returns a message saying what happened.
    """
    result = _find(dispatch_id)
    dispatcher = registry.running(dispatch_id)
    if dispatcher is None or result.ended:
        return f"dispatch {dispatch_id} has already ended ({result.status}); nothing to cancel"
    if task_ids is not None:
        task_ids = [task_ids] if isinstance(task_ids, int) else list(task_ids)
        for node in task_ids:
            result._table.check(node)
    dispatcher.cancel(task_ids)
    return (f"cancellation of dispatch {dispatch_id} requested" if task_ids is None else
            f"cancellation of node(s) {task_ids} of dispatch {dispatch_id} requested")


# -- redispatch ----------------------------------------------------------------------
def _electron_names(parent: Result) -> dict:
    """Names a replacement may use -> the name in the original lattice."""
    names = {}
    for name, kind in zip(parent.graph.names, parent.graph.kinds):
        if kind in ("electron", "sublattice"):
            names[name.removeprefix(":sublattice:")] = name.removeprefix(":sublattice:")
    for original, replacement in parent.replacements.items():
        names[original] = original
        names[getattr(replacement, "__name__", original)] = original
    return names


def _check_replacement(parent: Result, old_name: str, new: Electron) -> None:
    """Raise if *new* cannot take the arguments that *old_name* is called with."""
    function = new.function.workflow_function if new.is_sublattice else new.function
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # builtins without a signature: let the call decide
    from .plan import plan_for

    plan = plan_for(parent.graph)
    graph = parent.graph
    for node, name in enumerate(graph.names):
        if name.removeprefix(":sublattice:") not in (old_name, getattr(parent.replacements.get(old_name), "__name__", None)):
            continue
        positional = [object()] * len(plan.arg_sources[node])
        keywords = {k: object() for k, _ in plan.kwarg_sources[node]}
        try:
            signature.bind(*positional, **keywords)
        except TypeError as exc:
            old_function = graph.functions[node]
            try:
                old_text = f"{name}{inspect.signature(getattr(old_function, 'workflow_function', old_function))}"
            except (TypeError, ValueError):
                old_text = name
            raise TypeError(
                f"replacement {new.function.__name__}{signature} cannot take the arguments of "
                f"{old_text} (node {node}: {len(positional)} positional, keywords "
                f"{sorted(keywords) or 'none'}): {exc}"
            ) from None
        return


def _prepare_replacements(parent: Result, replace_electrons: Optional[dict]) -> dict:
    merged = dict(parent.replacements)
    if not replace_electrons:
        return merged
    if not isinstance(replace_electrons, dict):
        raise TypeError("replace_electrons maps electron names to replacements, e.g. "
                        "{'task_2': task_2_redefined}")
    known = _electron_names(parent)
    for name, replacement in replace_electrons.items():
        if name not in known:
            raise ValueError(
                f"replace_electrons names {name!r}, which is not an electron of lattice "
                f"{parent.lattice.__name__}; its electrons are: {', '.join(sorted(set(known.values())))}"
            )
        if isinstance(replacement, Lattice):
            replacement = Electron(replacement)
        if not callable(replacement):
            raise TypeError(f"the replacement for {name!r} must be callable (an electron or a "
                            f"function), not {type(replacement).__name__}")
        if not isinstance(replacement, Electron):
            replacement = Electron(replacement)
        _check_replacement(parent, name, replacement)
        merged[known[name]] = replacement
    return merged


def _parent_definition(parent: Result) -> tuple:
    """``(lattice, replacements)`` as *parent* was dispatched: fresh copies from its snapshot."""
    if parent.snapshot is None:
        return parent.lattice, dict(parent.replacements)
    try:
        lattice, replacements, _, _ = thaw(parent.snapshot, getattr(parent, "snapshot_live", None))
    except Exception as exc:
        raise RuntimeError(
            f"the workflow of dispatch {parent.dispatch_id} cannot be restored from its snapshot "
            f"({type(exc).__name__}: {exc}); make what it needs importable in this kernel, or "
            "dispatch the lattice again with ct.dispatch"
        ) from exc
    return lattice, dict(replacements)


def redispatch(dispatch_id: str, dispatcher_addr: Optional[str] = None,
               replace_electrons: Optional[dict] = None,
               reuse_previous_results: bool = False) -> Callable[..., str]:
    """Return a function that re-runs a dispatched workflow.

    The workflow is the parent's as it was dispatched, with *replace_electrons*
    (electron name -> replacement electron or function) applied on top of the
    parent's own replacements.  Called with no arguments, the returned function
    reuses the parent's args and kwargs.  With *reuse_previous_results*, a
    node whose key (code, what the code reaches, inputs) matches a COMPLETED
    node of the parent takes its output without running.  The parent is never
    changed.  Returns the new dispatch id at once; if the parent is still
    running, the redispatch starts when it has ended.
    """
    _ignored_address(dispatcher_addr, "ct.redispatch")
    parent = _find(dispatch_id)
    merged = _prepare_replacements(parent, replace_electrons)
    changed = [name for name, new in merged.items() if parent.replacements.get(name) is not new]

    def submit(*args: Any, **kwargs: Any) -> str:
        if not args and not kwargs:
            args, kwargs = tuple(parent.inputs["args"]), dict(parent.inputs["kwargs"])
            same_inputs = True
        else:
            same_inputs = False
        fkeys = None
        if same_inputs and not replace_electrons and parent.snapshot is not None:
            # Rerun the parent's graph as it stands, without tracing, when its frozen functions
            # still reach what they reached at dispatch (a task may have changed a frozen global).
            fkeys = function_keys(parent.graph)
            if parent._function_keys is None or fkeys.by_marker != parent._function_keys:
                fkeys = None
        with collector_paused():
            if fkeys is not None:
                # The same definition as the parent's: its snapshot serves this dispatch too.
                work = Frozen(parent.snapshot, None, getattr(parent, "snapshot_live", None))
                trace = Trace(parent.graph.shallow_copy(), parent.replaced_nodes, frozenset())
                return _start(parent.lattice, trace, args, kwargs, work, parent=parent,
                              replacements=merged, reuse=bool(reuse_previous_results),
                              fkeys=fkeys).dispatch_id
            lattice, replacements = _parent_definition(parent)
            replacements.update({name: merged[name] for name in changed})
            lattice, replacements, args, kwargs, work = _frozen(lattice, replacements, args, kwargs)
            trace = lattice.trace(args, kwargs, replacements)
            return _start(lattice, trace, args, kwargs, work, parent=parent, replacements=replacements,
                          reuse=bool(reuse_previous_results)).dispatch_id

    return submit


def start_sublattice(lattice: Lattice, args: list, kwargs: dict, reuse_from: Optional[Result],
                     on_end: Callable, before_start: Callable) -> Result:
    """Start a sublattice's own dispatch (called by a dispatcher for a sublattice node).

    *lattice* and the arguments are already the parent dispatch's private copies; they are
    pickled for the child's snapshot, not copied again.  *before_start(child)* runs once the
    child is registered and before it runs, so the parent can record it (and cancel it)
    before any of its tasks start.
    """
    args, kwargs = tuple(args), dict(kwargs)
    trace = lattice.trace(args, kwargs)
    return _start(lattice, trace, args, kwargs, freeze(lattice, {}, args, kwargs), parent=reuse_from,
                  reuse=reuse_from is not None, on_end=on_end, sublattice=True,
                  before_start=before_start)
