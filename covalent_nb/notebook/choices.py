"""What a redispatch can choose, and what it did: the redispatch panel's logic.

Widget-free, so it can be read and tested on its own:

* :func:`electron_rows`: the electrons of a dispatched lattice, one
  :class:`ElectronRow` per name, with what actually ran for it;
* :func:`candidates`: the notebook's electrons and functions whose signature
  can take a row's arguments (the kernel's own redispatch check decides),
  ranked by name similarity, then by recency of definition;
* :func:`changed_since_dispatch`: whether, and how, the notebook's current
  definition differs from the one that ran;
* :func:`literal_text` and :func:`lattice_signature`: how the inputs are prefilled;
* :func:`reuse_groups`, :func:`reuse_report` and :func:`reuse_report_html`:
  the summary of an ended dispatch, recomputed nodes first, grouped by
  reason, and reused nodes collapsed with a count.
"""

from __future__ import annotations

import ast
import difflib
import html
import inspect
import re
import reprlib
import sys
import types
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ..dispatch.runtime import RUNTIME
from ..api import get_result
from ..redispatch import check_replacement, electron_names
from ..dispatch.hashing import Unhashable, describe_changes, function_parts, parts_digest
from ..dispatch.executors.remote import is_remote
from ..results.result import Result, held_text
from ..states import NodeKind, Status
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice

__all__ = ["ElectronRow", "electron_rows", "candidates", "changed_since_dispatch",
           "literal_text", "lattice_signature", "similarity", "definition_order", "ReasonGroup", "reuse_groups", "reuse_report",
           "reuse_report_html", "resolve_dispatch", "short_repr"]

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_LITERAL_MAX = 2000  # longer values stay as they were (placeholder), not as a wall of text
_GROUP_LINES = 50    # nodes of one reason listed in the text summary before "and N more"
_GROUP_HTML = 500    # the same in the panel's HTML summary
_OPEN_MAX = 12       # a recomputed group of at most this many nodes starts open
_ERROR_COLOUR = "var(--jp-error-color1, #d32f2f)"
_MUTED_COLOUR = "var(--jp-ui-font-color2, #757575)"


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


def similarity(name: str, row: ElectronRow) -> float:
    """How alike *name* is to the electron of *row* (its lattice name or what ran), 0 to 1.

    :class:`difflib.SequenceMatcher`'s ratio, except that a name holding the
    other whole (``task_2_redefined`` for ``task_2``, a variant) scores at
    least 0.9: a variant outranks a sibling that differs by one character
    (``task_1``).
    """
    best = 0.0
    for target in {row.name, row.dispatched_name}:
        ratio = difflib.SequenceMatcher(None, name, target).ratio()
        shorter, longer = sorted((name, target), key=len)
        if len(shorter) >= 3 and shorter in longer:
            ratio = 0.9 + 0.1 * ratio
        best = max(best, ratio)
    return best


def definition_order(value: Any) -> int:
    """The notebook cell (execution count) that defined *value*'s code; -1 when unknown.

    Read from IPython's compiler, which names each cell's code file; outside
    IPython, and for code not defined in a cell, -1.
    """
    function = getattr(value, "workflow_function", None) or getattr(value, "function", None) or value
    code = getattr(inspect.unwrap(function), "__code__", None) if callable(function) else None
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if code is None or shell is None:
        return -1
    try:
        named = shell.compile.format_code_name(code.co_filename)
    except Exception:  # noqa: BLE001 - an older or foreign compiler: order unknown
        return -1
    match = re.fullmatch(r"In\[(\d+)\]", named[1]) if named else None
    return int(match.group(1)) if match else -1


def candidates(result: Result, row: ElectronRow, namespace: Mapping[str, Any]) -> list[str]:
    """Names in *namespace* that could replace *row*: electrons and functions
    defined in the notebook whose signature can take the row's arguments.

    Ranked as the dropdown shows them: the name most like the electron's
    first (:func:`similarity`), then the most recently defined (the later
    notebook cell, :func:`definition_order`, then the later name in the
    namespace), then by name.  The lattice itself is never a candidate.
    """
    own = getattr(result.lattice, "__name__", None)
    ranked = []
    for position, (name, value) in enumerate(list(namespace.items())):
        if name.startswith("_") or not _defined_in_notebook(value, namespace):
            continue
        if isinstance(value, Lattice) and value.__name__ == own:
            continue
        try:
            check_replacement(result, row.name, _as_electron(value))
        except TypeError:  # the signature cannot take this electron's arguments
            continue
        ranked.append((-round(similarity(name, row), 6), -definition_order(value), -position, name))
    return [name for *_, name in sorted(ranked)]


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


@dataclass(frozen=True)
class ReasonGroup:
    """Nodes of an ended dispatch that were reused, or recomputed, for the same kind of reason.

    ``verdict`` is ``"recomputed"`` or ``"reused"``; ``reason`` the kind of
    reason (``"input changed"``, ``"upstream recomputed"``, ``"same code
    and inputs"``, ``"bookkeeping"`` for the nodes covalent_nb adds itself);
    ``nodes`` one ``(node id, name, detail)`` per node, where ``detail`` is
    what the reason says about that node (``"argument 'b'"``).
    """

    verdict: str
    reason: str
    nodes: tuple

    @property
    def title(self) -> str:
        """``"recomputed, input changed (1 node)"``."""
        count = len(self.nodes)
        return f"{self.verdict}, {self.reason} ({count} node{'s' if count != 1 else ''})"


# Reasons that follow from another node's: listed after the causes.
_CONSEQUENCES = ("upstream recomputed", "waits for a recomputed node", "reuse not requested")


def _split_reason(reason: str) -> tuple:
    """``"recomputed: input changed (argument 'b')"`` -> ``("recomputed", "input changed", "argument 'b'")``."""
    verdict, _, rest = reason.partition(": ")
    if not rest:
        return "recomputed", reason or "no reason recorded", ""
    if verdict == "reused" and rest.startswith("same code and inputs as "):
        return verdict, "same code and inputs", rest.removeprefix("same code and inputs as ")
    kind, paren, detail = rest.partition(" (")
    detail = detail[:-1] if paren and detail.endswith(")") else detail
    cause = re.fullmatch(r"node (\d+), (.+)", detail) if kind in _CONSEQUENCES else None
    if cause:  # "node 2, task_1" -> "from task_1 (node 2)"
        detail = f"from {cause.group(2)} (node {cause.group(1)})"
    return verdict, kind, detail


def reuse_groups(result: Result) -> list[ReasonGroup]:
    """The nodes of an ended dispatch grouped by why they were recomputed or reused.

    Recomputed groups come first, causes (replaced, code changed, input
    changed, ...) before consequences (upstream recomputed, ...), then the
    bookkeeping nodes, then the reused nodes; within a group, node order.
    Parameter nodes are left out.
    """
    table = result._table
    kinds = result.graph.kinds
    names = result.graph.names
    groups: dict = {}
    bookkeeping = []
    for node in sorted(set(result.reused_nodes) | set(result.recomputed_nodes)):
        verdict, kind, detail = _split_reason(table.reason.get(node, ""))
        if kinds[node] in NodeKind.INTERNAL and verdict != "reused":
            bookkeeping.append((node, names[node], detail))
            continue
        groups.setdefault((verdict, kind), []).append((node, names[node], detail))

    def order(item: tuple) -> tuple:
        (verdict, kind), nodes = item
        return (verdict == "reused", kind in _CONSEQUENCES, nodes[0][0])

    found = [ReasonGroup(verdict, kind, tuple(nodes)) for (verdict, kind), nodes in
             sorted(groups.items(), key=order)]
    if bookkeeping:
        at = next((i for i, group in enumerate(found) if group.verdict == "reused"), len(found))
        found.insert(at, ReasonGroup("recomputed", "bookkeeping", tuple(bookkeeping)))
    return found


def _headline(result: Result) -> str:
    summary = result.reuse_summary()
    head = [str(result.status)]
    if result.status == Status.COMPLETED:
        held = result.held_result  # a Dask output kept remote: described from its reference, not fetched
        head.append(f"result {held_text(held) if is_remote(held) else _REPR.repr(held)}")
    head += [f"{summary['reused']} reused", f"{summary['recomputed']} recomputed"]
    return " · ".join(head)


def _by_name(nodes: tuple) -> str:
    """``"featurize ×17, task_0"``: the names of many nodes, counted."""
    counts: dict = {}
    for _node, name, _detail in nodes:
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(name if count == 1 else f"{name} ×{count}" for name, count in counts.items())


def _node_text(node: tuple) -> str:
    node_id, name, detail = node
    return f"{name} (node {node_id})" + (f": {detail}" if detail else "")


def reuse_report(result: Result) -> list[str]:
    """Lines that summarise an ended dispatch: what was recomputed and why, then what was reused.

    The first line is the headline (``COMPLETED · result 6 · 2 reused · 2
    recomputed``); a FAILED dispatch then names its failed electrons with
    their exception lines.  Then one group per reason (see
    :func:`reuse_groups`), recomputed first: a title line
    (``recomputed, replaced (1 node)``) and one indented line per node, at
    most 50 a group.  Bookkeeping and reused nodes are one line each,
    collapsed to their names and counts.
    """
    lines = [_headline(result)]
    lines += [line.lstrip() if i == 0 else line for i, line in enumerate(result.failure_lines())]
    if result.status != Status.FAILED and result.error:
        lines.append("error: " + result.error.strip().splitlines()[0])
    for group in reuse_groups(result):
        if group.verdict == "reused" or group.reason == "bookkeeping":
            lines.append(f"{group.title}: {_by_name(group.nodes)}")
            continue
        lines.append(group.title)
        lines += ["  " + _node_text(node) for node in group.nodes[:_GROUP_LINES]]
        if len(group.nodes) > _GROUP_LINES:
            lines.append(f"  and {len(group.nodes) - _GROUP_LINES} more {group.reason}: "
                         f"{_by_name(group.nodes[_GROUP_LINES:])}")
    return lines


def reuse_report_html(result: Result) -> str:
    """The summary of an ended dispatch as HTML, for the redispatch panel.

    As :func:`reuse_report`: the headline, then recomputed groups, each a
    ``<details>`` (open when it is short) listing every node up to 500 a
    group; the bookkeeping and reused nodes in closed ``<details>``, their
    title saying how many.
    """
    esc = html.escape
    status = str(result.status)
    colour = _ERROR_COLOUR if result.status != Status.COMPLETED else "inherit"
    parts = [f'<div class="cnb-summary-head" data-status="{esc(status)}">'
             f'<span class="cnb-summary" style="color: {colour}; font-weight: bold">'
             f"{esc(_headline(result))}</span></div>"]
    failures = result.failure_lines()
    if failures:
        parts.append(f'<div class="cnb-summary-failures" style="color: {_ERROR_COLOUR}">'
                     + "<br>".join(esc(line.strip()) for line in failures[1:] or failures) + "</div>")
    elif result.error:
        parts.append(f'<div class="cnb-summary-error" style="color: {_ERROR_COLOUR}">error: '
                     f"{esc(result.error.strip().splitlines()[0])}</div>")
    for group in reuse_groups(result):
        recomputed = group.verdict == "recomputed" and group.reason != "bookkeeping"
        shown = group.nodes[:_GROUP_HTML]
        items = "".join(f'<li data-node-id="{node[0]}" style="margin: 0"><code>{esc(node[1])}</code> (node {node[0]})'
                        + (f": {esc(node[2])}" if node[2] else "") + "</li>" for node in shown)
        if len(group.nodes) > len(shown):
            items += (f"<li style='margin: 0'>and {len(group.nodes) - len(shown)} more: "
                      f"{esc(_by_name(group.nodes[len(shown):]))}</li>")
        is_open = " open" if recomputed and len(group.nodes) <= _OPEN_MAX else ""
        title = esc(group.title)
        if not recomputed:
            title += f' <span style="color: {_MUTED_COLOUR}">{esc(_short_names(group.nodes))}</span>'
        mark = "cnb-summary-recomputed" if group.verdict == "recomputed" else "cnb-summary-reused"
        parts.append(f'<details class="cnb-summary-group {mark}" data-verdict="{esc(group.verdict)}" '
                     f'data-reason="{esc(group.reason)}" data-count="{len(group.nodes)}"{is_open}>'
                     f'<summary>{title}</summary><ul style="margin: 0 0 2px 0; padding-left: 24px">{items}</ul>'
                     "</details>")
    return f'<div class="cnb-summary-body">{"".join(parts)}</div>'


def _short_names(nodes: tuple) -> str:
    text = _by_name(nodes)
    return text if len(text) <= 80 else text[:77] + "…"


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
