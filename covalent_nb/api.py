"""Covalent's dispatch functions: ``dispatch``, ``dispatch_sync``, ``get_result`` and
``cancel``, served by the kernel-local dispatcher (``redispatch`` is in
:mod:`covalent_nb.redispatch`).

This layer wires the dispatch layer to the results layer: it freezes and traces
a lattice, builds the :class:`~covalent_nb.results.result.Result`, registers it,
hands the dispatcher its :data:`SERVICES` and starts it.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any, Callable, NamedTuple, Optional

from .dispatch.runtime import RUNTIME
from .dispatch.dispatcher import Dispatcher
from .dispatch.freeze import Frozen, freeze, thaw
from .dispatch.gcpause import collector_paused
from .dispatch.reuse import FunctionKeys, function_keys
from .dispatch.node_records import DispatchRecord
from .dispatch.services import DispatchServices
from .config import get_config
from .results.history_source import HistorySource
from .results.result import Result
from .results.store import active_store, end_dispatch
from .workflow.electron import Electron
from .workflow.lattice import Lattice, Trace

__all__ = ["dispatch", "dispatch_sync", "get_result", "cancel", "FrozenWork", "ChildOf", "start_dispatch",
           "frozen_work",
           "find_result", "start_sublattice", "ignored_address"]


def ignored_address(dispatcher_addr: Optional[str], where: str) -> None:
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


class FrozenWork(NamedTuple):
    """What a dispatch runs: the frozen copies of its lattice, replacements and arguments,
    and the :class:`~covalent_nb.dispatch.freeze.Frozen` bytes they came from."""

    lattice: Lattice
    replacements: dict
    args: tuple
    kwargs: dict
    snapshot: Frozen


class ChildOf(NamedTuple):
    """How a sublattice's dispatch hangs off its parent's node.

    ``on_end(child)`` reports its end to the parent's dispatcher;
    ``before_start(child)`` lets the parent record it before any task runs;
    ``cancel_flag`` is ``(parent's CancelFlag, node id)``, so cancelling the
    parent stops the child's tasks at once.
    """

    on_end: Callable[[Result], None]
    before_start: Callable[[Result], None]
    cancel_flag: tuple


def start_dispatch(frozen: FrozenWork, trace: Trace, *, parent: Optional[Result] = None,
                   reuse: bool = False, run: bool = True, fkeys: Optional[FunctionKeys] = None,
                   child_of: Optional[ChildOf] = None, history: bool = False) -> Result:
    """Register a traced dispatch and start its dispatcher; return its Result.

    *parent* is the dispatch it was redispatched from (or, for a sublattice,
    the earlier run of the same sublattice to reuse from) and *reuse* whether
    its results may be reused; *history* whether any earlier dispatch in the
    store may serve a node (see :mod:`covalent_nb.results.history_source`);
    *fkeys* the function keys when already known; *child_of* ties a
    sublattice's dispatch to its parent's node.
    """
    lattice, replacements, args, kwargs, work = frozen
    graph = trace.graph
    dispatch_id = str(uuid.uuid4())
    if fkeys is None:
        fkeys = function_keys(graph, unfrozen=work.error)
    result = Result(dispatch_id, lattice.copy_for_dispatch(graph, args, kwargs), graph, args, kwargs,
                    parent_dispatch_id=parent.dispatch_id if parent is not None else None,
                    root_dispatch_id=parent.root_dispatch_id if parent is not None else None,
                    replacements=replacements, replaced_nodes=trace.replaced, reuse_requested=reuse,
                    reuse_history=history)
    result.function_parts = fkeys.parts
    result._function_keys = fkeys.by_marker
    result.is_sublattice_dispatch = child_of is not None
    result.will_run = run
    result.snapshot = work.data
    result.snapshot_live = work.live
    if work.error is not None:  # the workflow still runs; only reuse and a later retrace are affected
        result.snapshot_error = work.error
    elif work.live:
        kinds = sorted({type(obj).__name__ for obj in work.live})
        result.snapshot_error = (f"it reaches objects that cannot be pickled ({', '.join(kinds)}), kept "
                                 "live: only this kernel can run it again")
    dispatcher = Dispatcher(result, lattice.metadata, fkeys, SERVICES, parent=parent,
                            cancel_parent=child_of.cancel_flag if child_of else None) if run else None
    if child_of is not None:
        result.add_done_callback(child_of.on_end)
    RUNTIME.registry.register(result, dispatcher)
    active_store().dispatch_submitted(result)
    if child_of is not None:
        child_of.before_start(result)
    if dispatcher is not None:
        dispatcher.start()
    return result


def frozen_work(lattice: Lattice, replacements: dict, args: tuple, kwargs: dict) -> FrozenWork:
    """Freeze the work now and return the :class:`FrozenWork` to run.

    Its objects are the frozen copies; if the work cannot be frozen (nothing
    could be pickled), the live objects, and ``snapshot.error`` says why: such
    a dispatch runs, but none of its nodes is reused.
    """
    work = freeze(lattice, replacements, args, kwargs)
    if work.error is not None:
        return FrozenWork(lattice, replacements, args, kwargs, work)
    return FrozenWork(*thaw(work.data, work.live), work)


def dispatch(lattice: Lattice, dispatcher_addr: Optional[str] = None, *,
             disable_run: bool = False, reuse_previous_results: Optional[bool] = None) -> Callable[..., str]:
    """Return a function that dispatches *lattice* with its arguments.

    The returned function traces the lattice with the given arguments, starts
    it on the kernel's dispatcher and returns the dispatch id (a uuid4 string)
    at once; the work runs in the background.  Wrong arguments raise
    ``TypeError`` naming the lattice's signature, before anything is
    registered.  With *disable_run*, the dispatch is registered but not run.

    With *reuse_previous_results* (a covalent_nb addition; the default is the
    ``reuse_history`` setting, False unless changed), every node whose key
    (its code, what the code reaches, its inputs) matches a COMPLETED node of
    any earlier dispatch in the store takes that output instead of running:
    reuse from history, across kernels and processes sharing the home.  Each
    such node's reason names the dispatch, node and time it came from.

    >>> dispatch_id = dispatch(workflow)(1, 2)        # doctest: +SKIP
    >>> dispatch_id = dispatch(workflow, reuse_previous_results=True)(1, 2)  # doctest: +SKIP
    """
    ignored_address(dispatcher_addr, "ct.dispatch")
    lattice = _check_lattice(lattice, "ct.dispatch")
    history = bool(get_config("reuse_history") if reuse_previous_results is None else reuse_previous_results)

    def submit(*args: Any, **kwargs: Any) -> str:
        lattice.check_arguments(args, kwargs)  # before anything is pickled
        with collector_paused():
            frozen = frozen_work(lattice, {}, args, kwargs)
            trace = frozen.lattice.trace(frozen.args, frozen.kwargs)
            return start_dispatch(frozen, trace, run=not disable_run, history=history).dispatch_id

    submit.__name__ = f"dispatch_{lattice.__name__}"
    submit.__doc__ = f"Dispatch lattice {lattice.__name__}; returns the dispatch id."
    return submit


def dispatch_sync(lattice: Lattice, dispatcher_addr: Optional[str] = None, *,
                  reuse_previous_results: Optional[bool] = None) -> Callable[..., Result]:
    """Like :func:`dispatch`, but the returned function waits and returns the :class:`Result`."""
    ignored_address(dispatcher_addr, "ct.dispatch_sync")
    submit = dispatch(lattice, reuse_previous_results=reuse_previous_results)

    def run(*args: Any, **kwargs: Any) -> Result:
        return get_result(submit(*args, **kwargs), wait=True)

    return run


def find_result(dispatch_id: str) -> Result:
    """The dispatch with this id, or with the one id that starts with it (as git takes
    short ids: ``%dispatches`` shows eight characters); raises ``ValueError`` naming the
    candidates when a prefix is ambiguous, or saying where it looked when nothing matches."""
    if not isinstance(dispatch_id, str):
        raise TypeError(f"a dispatch id is a string, not {type(dispatch_id).__name__}")
    if RUNTIME.registry.lookup(dispatch_id) is None and len(dispatch_id) < 36:
        dispatch_id = _full_id(dispatch_id)
    result = RUNTIME.registry.lookup(dispatch_id)
    if result is None:
        result = active_store().load(dispatch_id)
        if result is not None:
            RUNTIME.registry.register(result, None)
    if result is None:
        raise ValueError(f"no dispatch with id {dispatch_id!r} in this kernel or in the store "
                         f"({getattr(active_store(), 'location', 'memory')}); "
                         "ct.list_dispatches() shows the known ones")
    return result


def _full_id(prefix: str) -> str:
    """The one known id starting with *prefix* (or *prefix* itself when none does)."""
    if len(prefix) < 4:
        return prefix  # too short to mean one dispatch
    found = {d.dispatch_id for d in RUNTIME.registry.all_results() if d.dispatch_id.startswith(prefix)}
    found.update(active_store().ids_starting_with(prefix))
    if len(found) > 1:
        listed = ", ".join(sorted(found)[:10])
        raise ValueError(f"the dispatch id prefix {prefix!r} is ambiguous: it starts {listed}; "
                         "give more characters")
    return found.pop() if found else prefix


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
    ignored_address(dispatcher_addr, "ct.get_result")
    if results_dir is not None:
        warnings.warn("ct.get_result: results_dir is ignored; results live in the covalent_nb store "
                      "(ct.get_config('home'))", stacklevel=2)
    result = find_result(dispatch_id)
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
    result = find_result(dispatch_id)
    dispatcher = RUNTIME.registry.running(dispatch_id)
    if dispatcher is None or result.ended:
        return f"dispatch {dispatch_id} has already ended ({result.status}); nothing to cancel"
    if task_ids is not None:
        task_ids = [task_ids] if isinstance(task_ids, int) else list(task_ids)
        for node in task_ids:
            result._table.check(node)
    dispatcher.cancel(task_ids)
    return (f"cancellation of dispatch {dispatch_id} requested" if task_ids is None else
            f"cancellation of node(s) {task_ids} of dispatch {dispatch_id} requested")


def start_sublattice(lattice: Lattice, args: list, kwargs: dict, reuse_from: Optional[Result],
                     on_end: Callable, before_start: Callable,
                     cancel_parent: Optional[tuple] = None, *, history: bool = False) -> Result:
    """Start a sublattice's own dispatch (called by a dispatcher for a sublattice node).

    *lattice* and the arguments are already the parent dispatch's private copies; they are
    pickled for the child's snapshot, not copied again.  *before_start(child)* runs once the
    child is registered and before it runs, so the parent can record it (and cancel it)
    before any of its tasks start.
    """
    args, kwargs = tuple(args), dict(kwargs)
    trace = lattice.trace(args, kwargs)
    frozen = FrozenWork(lattice, {}, args, kwargs, freeze(lattice, {}, args, kwargs))
    return start_dispatch(frozen, trace, parent=reuse_from, reuse=reuse_from is not None,
                          child_of=ChildOf(on_end, before_start, cancel_parent), history=history)


def _make_durable(record: DispatchRecord) -> None:
    end_dispatch(record)  # in the store the dispatch started in, even if the settings changed since


#: What every dispatcher is handed instead of importing the layers above it.
SERVICES = DispatchServices(start_child=start_sublattice, running=RUNTIME.registry.running,
                            make_durable=_make_durable, ended=RUNTIME.registry.dispatch_ended,
                            publish=RUNTIME.events.publish, history=HistorySource(active_store))
