"""What a redispatch can choose, and what it did: the redispatch panel's logic.

Widget-free, so it can be read and tested on its own:

* :func:`electron_rows`: the electrons of a dispatched lattice, one
  :class:`ElectronRow` per name, with what actually ran for it;
* :func:`candidates`: the notebook's electrons and functions whose signature
  can take a row's arguments (the kernel's own redispatch check decides);
* :func:`changed_since_dispatch`: whether, and how, the notebook's current
  definition differs from the one that ran;
* :func:`literal_text` and :func:`lattice_signature`: how the inputs are prefilled;
* :func:`reuse_report`: the summary of an ended dispatch, reused and
  recomputed nodes and why.
"""

from __future__ import annotations

import ast
import inspect
import reprlib
import types
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ..dispatch.runtime import RUNTIME
from ..api import get_result
from ..redispatch import check_replacement, electron_names
from ..dispatch.hashing import Unhashable, describe_changes, function_parts, parts_digest
from ..results.result import Result
from ..states import NodeKind, Status
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice

__all__ = ["ElectronRow", "electron_rows", "candidates", "changed_since_dispatch",
           "literal_text", "lattice_signature", "reuse_report", "resolve_dispatch", "short_repr"]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_LITERAL_MAX = 2000  # longer values stay as they were (placeholder), not as a wall of text
_DETAIL_LINES = 8    # per-node reasons listed in the summary before "and N more"


def short_repr(value: Any) -> str:
    """A repr short enough for a placeholder or a summary line."""
    return _REPR.repr(value)


@dataclass(frozen=True)
class ElectronRow:
    """One electron of a dispatched lattice, as the panel lists it.

    ``name`` is the electron's name in the lattice (what ``replace_electrons``
    takes); ``dispatched_name`` and ``function`` are what actually ran in the
    dispatch (a replacement's, if the dispatch itself replaced ``name``);
    ``nodes`` are its node ids.
    """

    name: str
    dispatched_name: str
    function: Any
    nodes: tuple

    @property
    def replaced(self) -> bool:
        """True when the dispatch ran a replacement in place of ``name``."""
        return self.dispatched_name != self.name


def electron_rows(result: Result) -> list[ElectronRow]:
    """The electrons of *result*'s lattice, in order of first call."""
    original = electron_names(result)
    graph = result.graph
    found: dict = {}
    for node, (name, kind) in enumerate(zip(graph.names, graph.kinds)):
        if kind not in (NodeKind.ELECTRON, NodeKind.SUBLATTICE):
            continue
        ran = name.removeprefix(":sublattice:")
        key = original.get(ran, ran)
        if key in found:
            found[key][2].append(node)
        else:
            found[key] = (ran, graph.functions[node], [node])
    return [ElectronRow(name, ran, function, tuple(nodes))
            for name, (ran, function, nodes) in found.items()]


def _as_electron(value: Any) -> Electron:
    return value if isinstance(value, Electron) else Electron(value)


def _defined_in_notebook(value: Any, namespace: Mapping[str, Any]) -> bool:
    """Electrons, lattices and plain functions the user defined (not imports, not classes)."""
    if isinstance(value, (Electron, Lattice)):
        return True
    return isinstance(value, types.FunctionType) and \
        value.__module__ == namespace.get("__name__", "__main__")


def candidates(result: Result, row: ElectronRow, namespace: Mapping[str, Any]) -> list[str]:
    """Names in *namespace* that could replace *row*: electrons and functions
    defined in the notebook whose signature can take the row's arguments,
    sorted.  The lattice itself is never a candidate."""
    own = getattr(result.lattice, "__name__", None)
    names = []
    for name, value in list(namespace.items()):
        if name.startswith("_") or not _defined_in_notebook(value, namespace):
            continue
        if isinstance(value, Lattice) and value.__name__ == own:
            continue
        try:
            check_replacement(result, row.name, _as_electron(value))
        except TypeError:  # the signature cannot take this electron's arguments
            continue
        names.append(name)
    return sorted(names)


def _comparable_parts(parts: Mapping[str, str]) -> dict:
    # The plan adds the electron's hooks to its parts; a bare definition has none.
    return {k: v for k, v in parts.items() if k != "hooks"}


def changed_since_dispatch(result: Result, row: ElectronRow,
                           namespace: Mapping[str, Any]) -> Optional[str]:
    """Say what changed when the notebook's current definition of the function
    that ran for *row* differs from the dispatched one (e.g. ``"body of
    task_2"``); None when it is unchanged, gone, or cannot be compared.

    The dispatched side is the digest taken at dispatch time
    (``result.function_parts``), so a helper edited since then counts too.
    """
    current = namespace.get(row.dispatched_name)
    if current is None or not callable(current):
        return None
    try:
        now = function_parts(current)
        dispatched = result.function_parts.get(row.dispatched_name)
        dispatched = _comparable_parts(dispatched) if dispatched else function_parts(row.function)
    except Unhashable:
        return None
    if parts_digest(now) == parts_digest(dispatched):
        return None
    return describe_changes(dispatched, now, row.dispatched_name)


def literal_text(value: Any) -> Optional[str]:
    """``repr(value)`` when reading it back gives the same value, else None."""
    try:
        text = repr(value)
        if len(text) > _LITERAL_MAX:
            return None
        back = ast.literal_eval(text)
        return text if type(back) is type(value) and bool(back == value) else None
    except Exception:  # unreadable repr, or == that is not a bool (arrays)
        return None


def lattice_signature(result: Result) -> inspect.Signature:
    """The signature of *result*'s lattice: one input field per parameter."""
    function = getattr(result.lattice, "workflow_function", result.lattice)
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):  # no signature: edit the raw args and kwargs
        kind = inspect.Parameter
        return inspect.Signature([kind("args", kind.VAR_POSITIONAL),
                                  kind("kwargs", kind.VAR_KEYWORD)])


def reuse_report(result: Result) -> list[str]:
    """Lines that summarise an ended dispatch: status, result, reuse counts and why.

    The first line is the headline (``COMPLETED · result 6 · 2 reused · 2
    recomputed``); the others give the reason per node, reused and
    recomputed, parameters left out.
    """
    summary = result.reuse_summary()
    head = [str(result.status)]
    if result.status == Status.COMPLETED:
        head.append(f"result {_REPR.repr(result.result)}")
    head += [f"{summary['reused']} reused", f"{summary['recomputed']} recomputed"]
    lines = [" · ".join(head)]
    if result.error:
        lines.append("error: " + result.error.strip().splitlines()[0])
    names = result.graph.names
    details = []
    for node in sorted(set(result.reused_nodes) | set(result.recomputed_nodes)):
        reason = result.get_node_result(node)["reason"] or "no reason recorded"
        details.append(f"{names[node]} (node {node}): {reason}")
    lines += details[:_DETAIL_LINES]
    if len(details) > _DETAIL_LINES:
        lines.append(f"and {len(details) - _DETAIL_LINES} more node(s)")
    return lines


def resolve_dispatch(dispatch: Union[str, Result, Any, None]) -> Result:
    """The Result for an id, a Result, a handle or a graph widget; the last dispatch for None."""
    if dispatch is None:
        dispatch = RUNTIME.registry.last_dispatch_id()
        if dispatch is None:
            raise ValueError("there is no dispatch in this kernel yet: dispatch a lattice first")
    if isinstance(dispatch, Result):
        return dispatch
    dispatch_id = getattr(dispatch, "dispatch_id", dispatch)  # a handle or a graph widget
    return get_result(str(dispatch_id))
