"""The live lattice graph: an anywidget that colours each node as it runs.

``LatticeGraph(dispatch_id)`` (or ``LatticeGraph(result)``) draws the
dispatch's graph with cytoscape.js at positions computed in Python
(:mod:`.layout`), recolours nodes as the dispatch's events arrive through the
kernel's one throttled publisher (:mod:`.publisher`), shows a node's details
on click, and carries a static SVG (:mod:`.svg`) in its mime bundle for
saved notebooks opened without a kernel.

Traits (Python -> browser unless noted)
---------------------------------------
``dispatch_id`` (str), ``status`` (str: the dispatch status, e.g. RUNNING)
``graph`` (dict, set once per shape): ``labels``, ``x``, ``y``, ``w``, ``h``
    (one entry per node, pixels, node centres), ``aux`` (ids drawn small and
    hidden by the toggle: parameter and postprocess nodes), ``uncounted``
    (ids left out of the legend counts: parameter nodes), ``edges`` (flat
    ``[source0, target0, source1, target1, ...]``), ``edge_labels`` (one per
    edge pair, or empty for big graphs), ``codes`` (state code -> state name),
    ``palette`` (state -> colour, plus ``replaced``), ``width``, ``height``.
``states`` (str): one code character per node (see :mod:`.states`).
``replaced`` (list[int]): nodes whose electron was replaced at redispatch.
``hide_params`` (bool, both ways): hide parameter and postprocess nodes.
``selected`` (int, browser -> Python): the clicked node, -1 for none.
``details`` (dict): Python's answer for ``selected``: ``node_id`` plus a
    string per details field below.

Custom message (browser -> Python): ``{"event": "open_panel"}`` when the
"Redispatch…" button is pressed; see :meth:`LatticeGraph.on_open_panel`.

DOM contract (stable; the browser tests rely on it)
---------------------------------------------------
* The root element has class ``cnb-graph`` and attribute
  ``data-dispatch-id``; the cytoscape instance is ``root.__cy`` (node ids are
  the node numbers as strings: ``root.__cy.getElementById("3")``).
* ``.cnb-status`` holds the dispatch status text (and ``data-status``).
* ``.cnb-legend`` holds one ``[data-state="<state>"]`` element per state
  (pending, running, completed, reused, failed, cancelled), always present,
  whose text reads ``"<state> <count>"`` (e.g. ``completed 3``) and which
  carries ``data-count="<count>"``.  Counts cover every node except parameter
  nodes.  A ``[data-marker="replaced"]`` element counts replaced nodes (hidden
  when there are none).
* ``.cnb-details`` is the details pane (``hidden`` until a node is clicked;
  ``data-node-id`` is the shown node; ``data-loading="true"`` until Python's
  answer arrived).  It holds one ``[data-field="<name>"]`` element per field:
  node_name, node_id, status, executor, start_time, end_time, duration,
  inputs, output, stdout, stderr, error, reason, source.
* ``button.cnb-redispatch`` sends the open_panel message;
  ``input.cnb-toggle-params`` is the hide-parameters checkbox;
  ``button.cnb-fit``, ``button.cnb-zoom-in``, ``button.cnb-zoom-out``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import reprlib
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Union

import anywidget
import traitlets

from ..states import NodeKind
from ..results.history import format_duration
from ..workflow.source import source_of
from .layout import AUX_KINDS, Layout, display_label, layout_graph
from .publisher import Update, get_publisher
from .states import CODES, PALETTE, UNCOUNTED_KINDS, count_states, encode_states, status_text

__all__ = ["LatticeGraph", "node_details", "graph_payload", "BUNDLE", "AUTO_HIDE_PARAMS"]

log = logging.getLogger(__name__)

#: The ES module built from js/ by ``pip install`` (hatch-jupyter-builder).
BUNDLE = Path(__file__).resolve().parent.parent / "static" / "graph.js"

#: Graphs with more nodes start with parameter and postprocess nodes hidden.
AUTO_HIDE_PARAMS = 2000

# Edge labels help on small graphs and only cost bytes on big ones.
_EDGE_LABEL_MAX_NODES = 300
_WAIT_EDGE = "!waiting_edge"

_REPR = reprlib.Repr()
_REPR.maxstring = 160
_REPR.maxother = 160
_REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 8
_REPR.maxlevel = 3
_FIELD_MAX = 2000    # one input or output repr
_STREAM_MAX = 4000   # stdout, stderr, traceback: the end matters most
_SOURCE_MAX = 6000


def graph_payload(graph: Any, layout: Layout) -> dict:
    """The ``graph`` trait: what the browser (and the SVG) need to draw *graph*."""
    names, kinds = graph.names, graph.kinds
    pairs: list[int] = []
    labels: list[str] = []
    with_labels = len(names) <= _EDGE_LABEL_MAX_NODES
    for source, target, edge_name, *_ in graph.edges:
        pairs += (source, target)
        if with_labels:
            # Edges into bookkeeping nodes are named arg[0], arg[1]...: noise.
            useful = edge_name and edge_name != _WAIT_EDGE and kinds[target] not in (
                NodeKind.ELECTRON_LIST, NodeKind.ELECTRON_DICT, NodeKind.POSTPROCESS)
            labels.append(edge_name if useful else "")
    return {
        "labels": [display_label(n, k) for n, k in zip(names, kinds)],
        "x": list(layout.x), "y": list(layout.y), "w": list(layout.w), "h": list(layout.h),
        "aux": [i for i, k in enumerate(kinds) if k in AUX_KINDS],
        "uncounted": [i for i, k in enumerate(kinds) if k in UNCOUNTED_KINDS],
        "edges": pairs,
        "edge_labels": labels,
        "codes": {code: state for state, code in CODES.items()},
        "palette": dict(PALETTE),
        "width": layout.width,
        "height": layout.height,
        "engine": layout.engine,
    }


class LatticeGraph(anywidget.AnyWidget):
    """A live graph of one dispatch.

    Parameters
    ----------
    dispatch:
        A dispatch id (looked up with ``ct.get_result``) or a ``Result``.
    hide_params:
        Start with parameter and postprocess nodes hidden.  The default,
        None, hides them on graphs of more than :data:`AUTO_HIDE_PARAMS`
        nodes, where they are dots nobody reads and cost drawing time.
    engine:
        Layout engine: ``"auto"`` (Graphviz dot when installed, else the
        layered networkx layout), ``"dot"`` or ``"layered"``.
    """

    if BUNDLE.is_file():
        _esm = BUNDLE

    dispatch_id = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    graph = traitlets.Dict().tag(sync=True)
    states = traitlets.Unicode("").tag(sync=True)
    replaced = traitlets.List(traitlets.Int()).tag(sync=True)
    hide_params = traitlets.Bool(False).tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    details = traitlets.Dict().tag(sync=True)

    #: Called with the widget when "Redispatch…" is pressed and the widget has
    #: no callback of its own.  The redispatch panel sets this (covalent_nb.widgets).
    default_open_panel: ClassVar[Optional[Callable[["LatticeGraph"], Any]]] = None

    def __init__(self, dispatch: Union[str, Any], *, hide_params: Optional[bool] = None,
                 engine: str = "auto", **kwargs: Any) -> None:
        if not BUNDLE.is_file():
            raise RuntimeError(
                f"the graph widget's front end is not built ({BUNDLE} is missing): "
                "install covalent_nb with pip (it runs the npm build), or run "
                "`npm ci && npm run build` in js/")
        result = _resolve_result(dispatch)
        layout = layout_graph(result.graph, engine)
        self._result = result
        self._sync_lock = threading.RLock()
        self._open_panel_callbacks: list = []
        self._ended_callbacks: list = []
        self._ended_drawn = result.ended  # the final states are in the traits
        self._state_list = list(encode_states(result.node_states()))
        if hide_params is None:
            hide_params = len(result.graph) > AUTO_HIDE_PARAMS
        super().__init__(
            dispatch_id=str(result.dispatch_id),
            status=status_text(result.status),
            graph=graph_payload(result.graph, layout),
            states="".join(self._state_list),
            replaced=sorted(result.replaced_nodes),
            hide_params=hide_params,
            **kwargs,
        )
        self.on_msg(self._on_custom_msg)
        # Watch last: the publisher's first update for us re-reads every state,
        # covering whatever happened since the snapshot above.
        get_publisher().watch(self)

    # -- public ---------------------------------------------------------------------
    @property
    def result(self) -> Any:
        """The ``Result`` this widget draws."""
        return self._result

    def counts(self) -> dict[str, int]:
        """Nodes per state, as the legend shows them (parameter nodes left out)."""
        return count_states(self.states, self._result.graph.kinds)

    def to_svg(self) -> str:
        """A static SVG picture of the graph in its current state."""
        from .svg import graph_svg

        return graph_svg(self.graph, self.states, status=self.status,
                         dispatch_id=self.dispatch_id, replaced=self.replaced,
                         hide_params=self.hide_params)

    def on_open_panel(self, callback: Callable[["LatticeGraph"], Any], remove: bool = False) -> None:
        """Call *callback(widget)* when the "Redispatch…" button is pressed."""
        if remove:
            self._open_panel_callbacks.remove(callback)
        else:
            self._open_panel_callbacks.append(callback)

    def open_panel(self) -> None:
        """Do what the "Redispatch…" button does."""
        callbacks = list(self._open_panel_callbacks)
        if not callbacks and type(self).default_open_panel is not None:
            callbacks = [type(self).default_open_panel]
        if not callbacks:
            log.warning("no redispatch panel is available under this graph; run "
                        "ct.redispatch_panel(%r) in a cell", self.dispatch_id)
        for callback in callbacks:
            callback(self)

    def close(self) -> None:
        """Stop live updates and close the widget."""
        get_publisher().unwatch(self)
        super().close()

    # -- the publisher's side ------------------------------------------------------------
    def on_ended(self, callback: Callable[[], Any]) -> None:
        """Call *callback()* once the dispatch's final states are drawn (at once if they are).

        It runs on the publisher's thread right after it applied the last
        update, so whatever it shows (a saved notebook's picture) is final.
        """
        with self._sync_lock:
            if not self._ended_drawn:
                self._ended_callbacks.append(callback)
                return
        callback()

    def apply_update(self, update: Update) -> None:
        """Apply one batched update (called on the publisher's thread only)."""
        ended_now: list = []
        with self._sync_lock:
            if update.resync:  # a new watcher: read the result once, then follow the events
                self._state_list = list(encode_states(self._result.node_states()))
            elif update.started:  # parameters complete as the dispatch starts (no events of their own)
                done = CODES["completed"]
                for node_id, kind in enumerate(self._result.graph.kinds):
                    if kind == NodeKind.PARAMETER:
                        self._state_list[node_id] = done
            for node_id, state in update.changes.items():
                if 0 <= node_id < len(self._state_list):
                    self._state_list[node_id] = CODES[state]
            encoded = "".join(self._state_list)
            status = status_text(self._result.status) if update.resync and not update.status else update.status
            with self.hold_sync():
                if encoded != self.states:
                    self.states = encoded
                if status and status != self.status:
                    self.status = status
                selected = self.selected
                if selected >= 0 and (update.resync or selected in update.changes):
                    self.details = node_details(self._result, selected)
            if not self._ended_drawn and (update.ended or update.resync and self._result.ended):
                self._ended_drawn = True
                ended_now, self._ended_callbacks = self._ended_callbacks, []
        for callback in ended_now:
            try:
                callback()
            except Exception:  # a broken callback must not break the other widgets' updates
                log.exception("covalent_nb graph: an on_ended callback failed")

    # -- browser -> Python -----------------------------------------------------------------
    @traitlets.observe("selected")
    def _on_selected(self, change: dict) -> None:
        with self._sync_lock:
            node = change["new"]
            self.details = node_details(self._result, node) if node >= 0 else {}

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "open_panel":
            self.open_panel()

    # -- display -----------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        # Saved notebooks opened without a kernel (nbconvert, GitHub) cannot
        # run the widget; they fall back to this picture.
        data["image/svg+xml"] = self.to_svg()
        data["text/plain"] = repr(self)
        return data, metadata

    def __repr__(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts().items() if n)
        return f"<LatticeGraph {self.dispatch_id} {self.status}: {counts or 'no nodes'}>"


def _resolve_result(dispatch: Union[str, Any]) -> Any:
    if isinstance(dispatch, str):
        from .. import get_result

        return get_result(dispatch)
    if not (hasattr(dispatch, "dispatch_id") and hasattr(dispatch, "graph")):
        raise TypeError(f"LatticeGraph needs a dispatch id or a Result, not {type(dispatch).__name__}")
    return dispatch


# -- node details ----------------------------------------------------------------------------

def node_details(result: Any, node_id: int) -> dict:
    """The details pane's fields for one node, as short strings.

    Reprs are truncated (:mod:`reprlib`, then a length cap) so a node holding
    a large array costs a few hundred bytes, not megabytes.
    """
    graph = result.graph
    if not 0 <= node_id < len(graph):
        return {}
    record = result.get_node_result(node_id)
    start, end = record.get("start_time"), record.get("end_time")
    state = result.node_states()[node_id] if hasattr(result, "node_states") else ""
    details = {
        "node_id": node_id,
        "node_name": str(record.get("node_name", graph.names[node_id])),
        "kind": graph.kinds[node_id],
        # The widget's vocabulary (as in the legend), not the raw Status.
        "status": state or status_text(record.get("status")).lower(),
        "dispatch_status": status_text(record.get("status")),
        "executor": str(record.get("executor") or ""),
        "start_time": _format_time(start),
        "end_time": _format_time(end),
        "duration": _node_duration(start, end),
        "inputs": _inputs_text(result, node_id),
        "output": _short_repr(record.get("output")) if _has_output(record) else "",
        "stdout": _tail(record.get("stdout") or "", _STREAM_MAX),
        "stderr": _tail(record.get("stderr") or "", _STREAM_MAX),
        "error": _tail(str(record.get("error") or ""), _STREAM_MAX),
        "reason": _reason_text(record),
        "source": _source_text(graph, node_id),
    }
    return details


def _has_output(record: dict) -> bool:
    return status_text(record.get("status")) == "COMPLETED"


def _short_repr(value: Any) -> str:
    # The dispatcher may keep outputs wrapped (Covalent's TransportableObject).
    unwrap = getattr(value, "get_deserialized", None)
    if callable(unwrap) and not isinstance(value, type):
        try:
            value = unwrap()
        except Exception:
            pass
    try:
        text = _REPR.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the pane
        text = f"<repr failed: {type(exc).__name__}: {exc}>"
    return text if len(text) <= _FIELD_MAX else text[: _FIELD_MAX - 1] + "…"


def _inputs_text(result: Any, node_id: int) -> str:
    graph = result.graph
    lines = []
    for source, target, edge_name, param_type, arg_index in graph.edges:
        if target != node_id or edge_name == _WAIT_EDGE:
            continue
        if graph.kinds[source] == NodeKind.PARAMETER:
            value = graph.values[source] if hasattr(graph, "values") else None
        else:
            source_record = result.get_node_result(source)
            if not _has_output(source_record):
                lines.append(f"{edge_name} = <{graph.names[source]}({source}) not done>")
                continue
            value = source_record.get("output")
        lines.append(f"{edge_name} = {_short_repr(value)}")
    return "\n".join(lines)


def _reason_text(record: dict) -> str:
    reason = str(record.get("reason") or "")
    origin = record.get("reused_from")
    if not reason and record.get("reused") and origin:
        reason = f"reused from dispatch {origin[0]}, node {origin[1]}"
    return reason


def _source_text(graph: Any, node_id: int) -> str:
    functions = getattr(graph, "functions", None)
    function = functions[node_id] if functions is not None else None
    if function is None:
        return ""
    try:
        source = source_of(function)
    except Exception as exc:
        return f"(source not available: {type(exc).__name__})"
    if source is None:
        return f"(source of {getattr(function, '__qualname__', function)!s} is not available)"
    return source if len(source) <= _SOURCE_MAX else source[:_SOURCE_MAX] + "\n…"


def _format_time(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    return str(value)


def _node_duration(start: Any, end: Any) -> str:
    if not isinstance(start, _dt.datetime):
        return ""
    if not isinstance(end, _dt.datetime):
        return "running"
    return format_duration((end - start).total_seconds())


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
