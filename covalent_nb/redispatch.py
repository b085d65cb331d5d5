"""``ct.redispatch``: re-run a dispatched workflow with replaced tasks, new inputs and reuse.

The workflow is the parent's *as it was dispatched*: thawed from the parent's
frozen snapshot, with the replacements on top.  The functions here that the
notebook's panel and magics use to offer and check replacements
(:func:`electron_names`, :func:`check_replacement`) are public for that reason.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

from .states import NodeKind
from .api import FrozenWork, find_result, frozen_work, ignored_address, start_dispatch
from .dispatch.freeze import Frozen, thaw
from .dispatch.gcpause import collector_paused
from .dispatch.plan import plan_for
from .dispatch.reuse import function_keys
from .results.result import Result
from .workflow.electron import Electron
from .workflow.lattice import Lattice, Trace

__all__ = ["redispatch", "electron_names", "check_replacement", "prepare_replacements"]


def electron_names(parent: Result) -> dict:
    """Names a replacement may use -> the name in the original lattice."""
    names = {}
    for name, kind in zip(parent.graph.names, parent.graph.kinds):
        if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE):
            names[name.removeprefix(":sublattice:")] = name.removeprefix(":sublattice:")
    for original, replacement in parent.replacements.items():
        names[original] = original
        names[getattr(replacement, "__name__", original)] = original
    return names


def check_replacement(parent: Result, old_name: str, new: Electron) -> None:
    """Raise if *new* cannot take the arguments that *old_name* is called with."""
    function = new.function.workflow_function if new.is_sublattice else new.function
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # builtins without a signature: let the call decide
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


def prepare_replacements(parent: Result, replace_electrons: Optional[dict]) -> dict:
    merged = dict(parent.replacements)
    if not replace_electrons:
        return merged
    if not isinstance(replace_electrons, dict):
        raise TypeError("replace_electrons maps electron names to replacements, e.g. "
                        "{'task_2': task_2_redefined}")
    known = electron_names(parent)
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
        check_replacement(parent, name, replacement)
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
               reuse_previous_results: bool = False, *, reuse_history: bool = False) -> Callable[..., str]:
    """Return a function that re-runs a dispatched workflow.

    The workflow is the parent's as it was dispatched, with *replace_electrons*
    (electron name -> replacement electron or function) applied on top of the
    parent's own replacements.  Called with no arguments, the returned function
    reuses the parent's args and kwargs.  With *reuse_previous_results*, a
    node whose key (code, what the code reaches, inputs) matches a COMPLETED
    node of the parent takes its output without running (Covalent's meaning:
    the parent only).  With *reuse_history* as well (a covalent_nb addition,
    never a default), a node the parent cannot serve may take the output of
    any earlier dispatch in the store with the same key.  The parent is never
    changed.  Returns the new dispatch id at once; if the parent is still
    running, the redispatch starts when it has ended.
    """
    ignored_address(dispatcher_addr, "ct.redispatch")
    parent = find_result(dispatch_id)
    merged = prepare_replacements(parent, replace_electrons)
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
                frozen = FrozenWork(parent.lattice, merged, args, kwargs, work)
                return start_dispatch(frozen, trace, parent=parent, reuse=bool(reuse_previous_results),
                                      fkeys=fkeys, history=bool(reuse_history)).dispatch_id
            lattice, replacements = _parent_definition(parent)
            replacements.update({name: merged[name] for name in changed})
            frozen = frozen_work(lattice, replacements, args, kwargs)
            trace = frozen.lattice.trace(frozen.args, frozen.kwargs, frozen.replacements)
            return start_dispatch(frozen, trace, parent=parent, reuse=bool(reuse_previous_results),
                                  history=bool(reuse_history)).dispatch_id

    return submit
