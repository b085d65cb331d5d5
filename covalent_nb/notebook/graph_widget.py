"""The live lattice graph: an anywidget that colours each node as it runs.

``LatticeGraph(dispatch_id)`` (or ``LatticeGraph(result)``) draws the
dispatch's graph with cytoscape.js at positions computed in Python
(:mod:`.layout`), with structurally alike siblings (a fan-out) drawn as one
group node (:mod:`.grouping`), recolours nodes as the dispatch's events
arrive through the kernel's one throttled publisher (:mod:`.publisher`),
shows a progress header, a banner naming the failed electrons, a Cancel
button while the dispatch runs, a node's details on click, and comes with a
static SVG (:mod:`.svg`) for saved notebooks opened without a kernel.

Cancel and JupyterLab's interrupt
---------------------------------
The dispatch runs in background threads of the kernel, not in the cell that
started it.  Lab's *Interrupt kernel* (■) raises ``KeyboardInterrupt`` in the
cell that is running, if any (e.g. one waiting in ``ct.get_result(...,
wait=True)``); the dispatch itself runs on.  The widget's **Cancel** button
calls ``ct.cancel(dispatch_id)``: tasks that have not started are cancelled,
running tasks finish (a Python thread cannot be stopped), and the dispatch
ends CANCELLED.

Display
-------
Shown in a notebook (:func:`show_live`, or displaying the widget), a graph is
two outputs: the widget, and its static picture (``text/html`` holding the
SVG, plus ``image/svg+xml``) under its own display id.  Where the widget
renders, its stylesheet hides the picture of its own dispatch (a CSS
``:has()`` rule on the output area); where it cannot (nbconvert's HTML, even
with the widget state saved; GitHub; Lab without a kernel) the picture is what
shows.  A graph shown while its dispatch runs refreshes the picture, not the
widget, once the final states are drawn, so the saved picture is the final
one and the live view keeps its zoom and selection.

Traits (Python -> browser unless noted)
---------------------------------------
``dispatch_id`` (str), ``status`` (str: the dispatch status, e.g. RUNNING)
``started_at``, ``ended_at`` (float: epoch milliseconds, 0 for not yet)
``graph`` (dict, set once per shape and per expanded page): ``n`` (nodes),
    ``kinds`` (one character per node: ``e`` electron, ``s`` sublattice,
    ``p`` parameter, ``b`` bookkeeping), the drawn *items*: ``ids`` (the node
    id as a string, or ``g<k>`` for a group), ``roles`` (one character per
    item: ``e`` electron box, ``p`` parameter dot, ``b`` bookkeeping chip,
    ``a`` postprocess chip, ``g`` group), ``labels``, ``x``, ``y``, ``w``,
    ``h`` (pixels, centres), ``edges`` (flat item-index pairs),
    ``edge_labels``; ``groups`` (one dict per group: ``id``, ``label``,
    ``kind``, ``count``, ``runs`` (members as ``[start, step, count]``),
    ``item`` (its item index, -1 when all its members are on the page),
    ``page``, ``pages``, ``shown`` (the first and last member index shown, or
    None)); ``page_size``; ``functions`` (``name``, ``count``, ``runs``: electrons per
    function with two or more nodes); ``codes`` (state code -> state),
    ``palette``, ``width``, ``height``, ``engine``, ``direction`` (TB or LR).
``states`` (str): one code character per node (see :mod:`.states`).
``replaced`` (list[int]): nodes whose electron was replaced at redispatch.
``cancel_requested`` (bool): ``ct.cancel`` was called through this widget.
``failures`` (list[dict]): each failed node's ``node_id``, ``name``,
    ``line`` (the exception's last line) and ``error`` (the stored text).
``hide_params`` (bool, both ways): hide parameter and postprocess nodes.
``expanded`` (dict, both ways): group id -> the page of it drawn node by node.
``selected`` (int, browser -> Python): the clicked node, -1 for none.
``details`` (dict): Python's answer for ``selected``: ``node_id`` plus a
    string per details field below, and ``start_ms``/``end_ms`` (epoch ms).

Custom messages (browser -> Python): ``{"event": "open_panel"}`` when the
"Redispatch…" button is pressed (see :meth:`LatticeGraph.on_open_panel`);
``{"event": "cancel"}`` from the Cancel button (``ct.cancel``).

DOM contract (stable; the browser tests rely on it)
---------------------------------------------------
* The root element has class ``cnb-graph`` and attribute
  ``data-dispatch-id``; the cytoscape instance is ``root.__cy``.  A node
  drawn on its own has the node number as id
  (``root.__cy.getElementById("3")``); a group node has id ``g<k>`` and data
  ``group: true``, ``count``, ``counts`` (state -> members) and ``summary``
  (``"featurize ×5,000: 4,998 done, 2 running"``).  Clicking a group node
  expands it (its first page); ``.cnb-groupbar`` then holds one
  ``[data-group="g<k>"]`` element per expanded group with
  ``button.cnb-page-prev``, ``button.cnb-page-next`` and
  ``button.cnb-collapse``.
* ``.cnb-status`` holds the dispatch status text (and ``data-status``).
* ``.cnb-header``: ``.cnb-dispatch-id`` (the full id; ``button.cnb-copy-id``
  copies it), ``.cnb-elapsed`` (e.g. ``1.2 s``), ``.cnb-progress`` (text
  ``"<done> / <total> electrons done"`` plus failed/running counts, with
  ``data-done``, ``data-total``), ``.cnb-functions`` with one
  ``[data-function="<name>"]`` bar per function with two or more electrons
  (``data-done``, ``data-total``).  Electrons are electron and sublattice
  nodes: no parameters, getters, lists, dicts or postprocess.
* ``.cnb-legend`` holds one ``[data-state="<state>"]`` element per state
  (pending, running, completed, reused, failed, cancelled), always present,
  whose text reads ``"<state> <count>"`` (e.g. ``completed 3``) and which
  carries ``data-count="<count>"``.  Counts cover the electrons (as the
  header does), not parameters or bookkeeping nodes.  A ``[data-marker="replaced"]`` element counts replaced nodes (hidden
  when there are none).
* ``input.cnb-search`` finds a node by name (or number): Enter centres and
  selects the next match; ``.cnb-search-status`` says ``k / m`` or ``no match``.
* ``.cnb-failures`` (hidden when nothing failed) holds one
  ``[data-node-id="<id>"]`` entry per failed node (at most 20, then a
  ``.cnb-failures-more`` line): ``.cnb-failure-name`` (click: centre and select
  the node), ``.cnb-failure-line`` (the exception line) and a ``<details>``
  whose ``pre.cnb-failure-traceback`` is the full stored text.
* ``button.cnb-cancel`` (hidden unless the dispatch runs) sends the cancel message;
  once Python has called ``ct.cancel`` it reads "Cancelling…", is disabled and
  has ``data-requested="true"`` until the running tasks finish.
* ``.cnb-details`` is the details pane, laid over the canvas's right side (the
  canvas keeps its size) (``hidden`` until a node is clicked;
  ``data-node-id`` is the shown node; ``data-loading="true"`` until Python's
  answer arrived).  It holds one ``[data-field="<name>"]`` element per field:
  node_name, node_id, status, executor, start_time, end_time, duration,
  inputs, output, stdout, stderr, error, reason, source.  Times are the
  browser's local time.
* ``button.cnb-redispatch`` sends the open_panel message;
  ``input.cnb-toggle-params`` is the hide-parameters checkbox;
  ``button.cnb-fit``, ``button.cnb-zoom-in``, ``button.cnb-zoom-out``.
* The static picture's output is ``.cnb-static-graph`` (with class
  ``cnb-static-<dispatch id>``).
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import logging
import re
import reprlib
import threading
from pathlib import Path
from typing import Any, Callable, ClassVar, Optional, Union

import anywidget
import traitlets
from IPython.display import display

from ..api import cancel as _cancel, get_result
from ..states import NodeKind
from ..results.history import format_duration
from ..workflow.source import source_of
from .grouping import PAGE_SIZE, Drawing, Group, encode_runs, find_groups, make_drawing
from .layout import cached, compact_labels, compute_positions, item_size, printable, resolve_engine
from .publisher import Update, get_publisher
from .states import CODES, PALETTE, count_states, encode_states, status_text

__all__ = ["LatticeGraph", "node_details", "graph_payload", "show_live", "static_bundle",
           "BUNDLE", "AUTO_HIDE_PARAMS"]

log = logging.getLogger(__name__)

#: The ES module built from js/ by ``pip install`` (hatch-jupyter-builder).
BUNDLE = Path(__file__).resolve().parent.parent / "static" / "graph.js"

#: Graphs with more nodes start with parameter and postprocess nodes hidden.
AUTO_HIDE_PARAMS = 2000

# Edge labels help on small graphs and only cost bytes on big ones.
_EDGE_LABEL_MAX_NODES = 300
_WAIT_EDGE = "!waiting_edge"
_FAILURES_MAX = 20
_FUNCTIONS_MAX = 12
# Seconds a done callback holds the result's waiters for the picture's refresh.
_REFRESH_WAIT_S = 2.0

_REPR = reprlib.Repr()
_REPR.maxstring = 160
_REPR.maxother = 160
_REPR.maxlong = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 8
_REPR.maxlevel = 3
_FIELD_MAX = 2000    # one input or output repr
_STREAM_MAX = 4000   # stdout, stderr, traceback: the end matters most
_SOURCE_MAX = 6000

_KIND_CODES = {NodeKind.ELECTRON: "e", NodeKind.SUBLATTICE: "s", NodeKind.PARAMETER: "p"}
_ELECTRON_KINDS = (NodeKind.ELECTRON, NodeKind.SUBLATTICE)


def graph_groups(graph: Any, group: bool = True) -> tuple[Group, ...]:
    """The groups of *graph* (cached per shape); none when *group* is false."""
    if not group:
        return ()
    return cached(("groups", graph.shape_key()),
                  lambda: find_groups(graph.names, graph.kinds, graph.edges))


def _role(kind: str) -> str:
    if kind in _ELECTRON_KINDS:
        return "e"
    if kind == NodeKind.PARAMETER:
        return "p"
    if kind == NodeKind.POSTPROCESS:
        return "a"
    return "b"


def graph_payload(graph: Any, engine: str = "auto", expanded: Optional[dict] = None,
                  group: bool = True) -> dict:
    """The ``graph`` trait: what the browser (and the SVG) need to draw *graph*.

    *expanded* maps group ids to the page drawn node by node; *group* false
    draws every node on its own.
    """
    names, kinds, edges = graph.names, graph.kinds, graph.edges
    groups = graph_groups(graph, group)
    expanded = {k: int(v) for k, v in (expanded or {}).items()
                if any(g.id == k for g in groups)}
    drawing = make_drawing(kinds, edges, groups, expanded)
    items = drawing.items
    singles = [it.node for it in items if it.node >= 0]
    single_labels = iter(compact_labels(graph, singles))
    labels: list[str] = []
    roles: list[str] = []
    for it in items:
        if it.node >= 0:
            labels.append(next(single_labels))
            roles.append(_role(kinds[it.node]))
        else:
            g = groups[it.group]
            labels.append(_group_label(graph, g))
            roles.append("g")
    engine = resolve_engine(engine, len(items))
    key = ("drawing", graph.shape_key(), engine, group, tuple(sorted(drawing.pages.items())))
    sizes = [item_size(lab, role) for lab, role in zip(labels, roles)]
    layout = cached(key, lambda: compute_positions(sizes, drawing.pairs, engine, "auto"))

    pairs: list[int] = []
    edge_labels: list[str] = []
    with_labels = len(items) <= _EDGE_LABEL_MAX_NODES
    for (a, b), k in zip(drawing.pairs, drawing.edge_of):
        pairs += (a, b)
        if with_labels:
            edge = edges[k]
            target = items[b]
            # Edges into bookkeeping nodes are named arg[0], arg[1]...: noise.
            useful = (target.node >= 0 and edge[2] and edge[2] != _WAIT_EDGE
                      and kinds[target.node] not in (NodeKind.ELECTRON_LIST, NodeKind.ELECTRON_DICT,
                                                     NodeKind.POSTPROCESS, NodeKind.GETTER))
            edge_labels.append(printable(str(edge[2])) if useful else "")
    return {
        "n": len(names),
        "kinds": "".join(_KIND_CODES.get(k, "b") for k in kinds),
        "ids": [it.id for it in items],
        "roles": "".join(roles),
        "labels": labels,
        "x": list(layout.x), "y": list(layout.y), "w": list(layout.w), "h": list(layout.h),
        "edges": pairs,
        "edge_labels": edge_labels,
        "groups": [_group_entry(graph, g, gi, drawing) for gi, g in enumerate(groups)],
        "functions": _functions(graph),
        "page_size": PAGE_SIZE,
        "codes": {code: state for state, code in CODES.items()},
        "palette": dict(PALETTE),
        "width": layout.width,
        "height": layout.height,
        "engine": layout.engine,
        "direction": layout.direction,
    }


def _group_label(graph: Any, group: Group) -> str:
    if group.kind in _ELECTRON_KINDS:
        return printable(group.name)
    return compact_labels(graph, [group.members[0]])[0]


def _group_entry(graph: Any, group: Group, index: int, drawing: Drawing) -> dict:
    count = len(group.members)
    pages = max(1, -(-count // PAGE_SIZE))
    page = drawing.pages.get(index)
    item = next((k for k, it in enumerate(drawing.items) if it.group == index), -1)
    shown = None
    if page is not None:
        shown = [page * PAGE_SIZE, min(count, (page + 1) * PAGE_SIZE) - 1]
    return {"id": group.id, "label": _group_label(graph, group), "kind": _KIND_CODES.get(group.kind, "b"), "count": count,
            "runs": encode_runs(group.members), "item": item,
            "page": page if page is not None else -1, "pages": pages, "shown": shown}


def _functions(graph: Any) -> list[dict]:
    """Electrons per function, for functions with two or more nodes (the biggest first)."""
    members: dict[str, list[int]] = {}
    for v, (name, kind) in enumerate(zip(graph.names, graph.kinds)):
        if kind in _ELECTRON_KINDS:
            members.setdefault(name, []).append(v)
    many = [(name, ids) for name, ids in members.items() if len(ids) >= 2]
    many.sort(key=lambda item: (-len(item[1]), item[1][0]))
    return [{"name": printable(name), "count": len(ids), "runs": encode_runs(ids)}
            for name, ids in many[:_FUNCTIONS_MAX]]


def static_bundle(graph: "LatticeGraph") -> dict:
    """The static picture's mime bundle: the SVG as ``text/html`` (with the classes that
    let a rendered widget hide it) and as ``image/svg+xml``."""
    svg = graph.to_svg()
    return {
        "text/html": f'<div class="cnb-static-graph {static_class(graph.dispatch_id)}" '
                     f'data-dispatch-id="{_html.escape(graph.dispatch_id)}">{svg}</div>',
        "image/svg+xml": svg,
    }


def static_class(dispatch_id: str) -> str:
    """The class of the static picture of *dispatch_id* (what the widget's CSS hides)."""
    return "cnb-static-" + re.sub(r"[^A-Za-z0-9_-]", "", dispatch_id)


def show_live(view: Any, graph: Optional["LatticeGraph"] = None, text: Optional[str] = None) -> None:
    """Display *view* (a :class:`LatticeGraph`, or a widget that holds one as *graph*)
    with its static picture in the output below it.

    *text* is the widget output's ``text/plain`` (what a console shows); by
    default a line naming the dispatch (never its status, which would go stale).

    While the dispatch runs, the picture is refreshed once the final states
    are drawn (on the publisher's thread); the result's waiters are held
    until then (at most :data:`_REFRESH_WAIT_S` seconds) so a cell that waits
    for the result sees the final picture saved.  The widget's own output is
    never redrawn, so the live view keeps its zoom and selection.
    """
    graph = graph if graph is not None else view
    display(_widget_bundle(view, graph, text), raw=True)
    result = graph.result
    if result.ended and graph._ended_drawn:
        display(static_bundle(graph), raw=True)
        return
    shown = display(static_bundle(graph), raw=True, display_id=True)
    refreshed = threading.Event()

    def refresh() -> None:
        try:
            shown.update(static_bundle(graph), raw=True)
        finally:
            refreshed.set()

    graph.on_ended(refresh)
    result.add_done_callback(lambda _ended: refreshed.wait(_REFRESH_WAIT_S))


def _widget_bundle(view: Any, graph: "LatticeGraph", text: Optional[str] = None) -> dict:
    """The widget view's own bundle, without a picture (that is the other output) and
    with a text that never goes stale (no status)."""
    bundle = anywidget.AnyWidget._repr_mimebundle_(view) if isinstance(view, LatticeGraph) \
        else view._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    data = dict(data or {})
    data.pop("image/svg+xml", None)
    data["text/plain"] = text or f"<live graph of dispatch {graph.dispatch_id}>"
    return data


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
    group:
        Draw structurally alike siblings (a fan-out) as one group node
        (:mod:`.grouping`); False draws every node on its own.
    """

    if BUNDLE.is_file():
        _esm = BUNDLE

    dispatch_id = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    started_at = traitlets.Float(0.0).tag(sync=True)
    ended_at = traitlets.Float(0.0).tag(sync=True)
    graph = traitlets.Dict().tag(sync=True)
    states = traitlets.Unicode("").tag(sync=True)
    replaced = traitlets.List(traitlets.Int()).tag(sync=True)
    failures = traitlets.List().tag(sync=True)
    cancel_requested = traitlets.Bool(False).tag(sync=True)
    hide_params = traitlets.Bool(False).tag(sync=True)
    expanded = traitlets.Dict().tag(sync=True)
    selected = traitlets.Int(-1).tag(sync=True)
    details = traitlets.Dict().tag(sync=True)

    #: Called with the widget when "Redispatch…" is pressed and the widget has
    #: no callback of its own.  The redispatch panel sets this (covalent_nb.widgets).
    default_open_panel: ClassVar[Optional[Callable[["LatticeGraph"], Any]]] = None

    def __init__(self, dispatch: Union[str, Any], *, hide_params: Optional[bool] = None,
                 engine: str = "auto", group: bool = True, **kwargs: Any) -> None:
        if not BUNDLE.is_file():
            raise RuntimeError(
                f"the graph widget's front end is not built ({BUNDLE} is missing): "
                "install covalent_nb with pip (it runs the npm build), or run "
                "`npm ci && npm run build` in js/")
        result = _resolve_result(dispatch)
        self._result = result
        self._engine = engine
        self._group = group
        self._sync_lock = threading.RLock()
        self._open_panel_callbacks: list = []
        self._ended_callbacks: list = []
        self._ended_drawn = result.ended  # the final states are in the traits
        self._state_list = list(encode_states(result.node_states()))
        self._failed: dict[int, dict] = {}
        self._note_failures(i for i, c in enumerate(self._state_list) if c == CODES["failed"])
        if hide_params is None:
            hide_params = len(result.graph) > AUTO_HIDE_PARAMS
        super().__init__(
            dispatch_id=str(result.dispatch_id),
            status=status_text(result.status),
            started_at=_epoch_ms(result.start_us),
            ended_at=_epoch_ms(result.end_us) if result.ended else 0.0,
            graph=graph_payload(result.graph, engine, None, group),
            states="".join(self._state_list),
            replaced=sorted(result.replaced_nodes),
            failures=self._failure_list(),
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
        """Electrons per state, as the legend shows them (parameters and bookkeeping left out)."""
        return count_states(self.states, self._result.graph.kinds)

    def electrons(self) -> dict[str, int]:
        """Electron nodes (no parameters or bookkeeping) per state, as the header counts them."""
        kinds = self._result.graph.kinds
        counts = count_states("".join(s for s, k in zip(self.states, kinds) if k in _ELECTRON_KINDS))
        counts["total"] = sum(1 for k in kinds if k in _ELECTRON_KINDS)
        return counts

    def to_svg(self) -> str:
        """A static SVG picture of the graph in its current state."""
        from .svg import graph_svg

        return graph_svg(self.graph, self.states, status=self.status,
                         dispatch_id=self.dispatch_id, replaced=self.replaced,
                         hide_params=self.hide_params)

    def expand(self, group_id: str, page: int = 0) -> None:
        """Draw page *page* of group *group_id* node by node (what clicking the group does)."""
        self.expanded = {**self.expanded, group_id: int(page)}

    def collapse(self, group_id: str) -> None:
        """Draw group *group_id* as one node again."""
        self.expanded = {k: v for k, v in self.expanded.items() if k != group_id}

    def cancel(self) -> str:
        """Cancel the dispatch (what the Cancel button does): ``ct.cancel(dispatch_id)``.

        Tasks that have not started will not start; running tasks finish first,
        then the dispatch ends CANCELLED.  ``cancel_requested`` turns True.
        """
        answer = _cancel(self.dispatch_id)
        self.cancel_requested = True
        return answer

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
        result = self._result
        with self._sync_lock:
            if update.resync:  # a new watcher: read the result once, then follow the events
                self._state_list = list(encode_states(result.node_states()))
            elif update.started:  # parameters complete as the dispatch starts (no events of their own)
                done = CODES["completed"]
                for node_id, kind in enumerate(result.graph.kinds):
                    if kind == NodeKind.PARAMETER:
                        self._state_list[node_id] = done
            for node_id, state in update.changes.items():
                if 0 <= node_id < len(self._state_list):
                    self._state_list[node_id] = CODES[state]
            failed = CODES["failed"]
            if update.resync:
                self._failed = {}
                self._note_failures(i for i, c in enumerate(self._state_list) if c == failed)
            else:
                self._note_failures(i for i, s in update.changes.items() if s == "failed")
            encoded = "".join(self._state_list)
            status = status_text(result.status) if update.resync and not update.status else update.status
            with self.hold_sync():
                if encoded != self.states:
                    self.states = encoded
                if status and status != self.status:
                    self.status = status
                if (update.started or update.resync) and result.start_us:
                    self.started_at = _epoch_ms(result.start_us)
                # The end event comes before the Result counts as ended; its end time is set.
                if (update.ended or update.resync and result.ended) and result.end_us:
                    self.ended_at = _epoch_ms(result.end_us)
                failures = self._failure_list()
                if failures != self.failures:
                    self.failures = failures
                selected = self.selected
                if selected >= 0 and (update.resync or selected in update.changes):
                    self.details = node_details(result, selected)
            if not self._ended_drawn and (update.ended or update.resync and result.ended):
                self._ended_drawn = True
                ended_now, self._ended_callbacks = self._ended_callbacks, []
        for callback in ended_now:
            try:
                callback()
            except Exception:  # a broken callback must not break the other widgets' updates
                log.exception("covalent_nb graph: an on_ended callback failed")

    def _note_failures(self, nodes: Any) -> None:
        for node_id in nodes:
            if node_id in self._failed or len(self._failed) > _FAILURES_MAX:
                continue
            self._failed[node_id] = _failure(self._result, node_id)

    def _failure_list(self) -> list[dict]:
        return [self._failed[k] for k in sorted(self._failed)][: _FAILURES_MAX + 1]

    # -- browser -> Python -----------------------------------------------------------------
    @traitlets.observe("selected")
    def _on_selected(self, change: dict) -> None:
        with self._sync_lock:
            node = change["new"]
            self.details = node_details(self._result, node) if node >= 0 else {}

    @traitlets.observe("expanded")
    def _on_expanded(self, change: dict) -> None:
        self.graph = graph_payload(self._result.graph, self._engine, change["new"], self._group)

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if content.get("event") == "open_panel":
            self.open_panel()
        elif content.get("event") == "cancel":
            try:
                self.cancel()
            except Exception:  # an ended dispatch: nothing to cancel
                log.info("covalent_nb graph: cancel of %s failed", self.dispatch_id, exc_info=True)

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

    def _ipython_display_(self, text: Optional[str] = None) -> None:
        show_live(self, self, text)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts().items() if n)
        return f"<LatticeGraph {self.dispatch_id} {self.status}: {counts or 'no nodes'}>"


def _epoch_ms(us: Optional[int]) -> float:
    return us / 1000.0 if us else 0.0


def _failure(result: Any, node_id: int) -> dict:
    graph = result.graph
    try:
        record = result.get_node_result(node_id)
        error = str(record.get("error") or "")
    except Exception as exc:  # the banner must not break the updates
        error = f"(error not available: {type(exc).__name__})"
    text = printable(error).rstrip()
    lines = [line for line in text.splitlines() if line.strip()]
    return {"node_id": node_id, "name": printable(str(graph.names[node_id])),
            "line": lines[-1].strip()[:300] if lines else "failed",
            "error": _tail(error, _STREAM_MAX)}


def _resolve_result(dispatch: Union[str, Any]) -> Any:
    if isinstance(dispatch, str):
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
    record = result.get_node_result(node_id, fetch=False)  # a Dask output kept remote is not fetched
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
        "start_ms": _datetime_ms(start),
        "end_ms": _datetime_ms(end),
        "duration": _node_duration(start, end),
        "inputs": _inputs_text(result, node_id),
        "output": _short_repr(record.get("output")) if _has_output(record) else "",
        "location": _location_text(record.get("output_location")),
        "stdout": _tail(record.get("stdout") or "", _STREAM_MAX),
        "stderr": _tail(record.get("stderr") or "", _STREAM_MAX),
        "error": _tail(str(record.get("error") or ""), _STREAM_MAX),
        "reason": _reason_text(record),
        "source": _source_text(graph, node_id),
    }
    return details


def _location_text(where: Optional[dict]) -> str:
    """Where a Dask output kept outside the kernel lives, its size, durable or not ("" for others)."""
    if not where:
        return ""
    durable = "durable" if where.get("durable") else f"not durable: {where.get('reason') or 'no blob storage'}"
    return f"{where.get('lives')} · {where.get('size_text')} · {durable}"


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
            source_record = result.get_node_result(source, fetch=False)
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


def _datetime_ms(value: Any) -> float:
    """Epoch milliseconds of a node time (naive datetimes are UTC), 0 for none."""
    if not isinstance(value, _dt.datetime):
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.timestamp() * 1000.0


def _node_duration(start: Any, end: Any) -> str:
    if not isinstance(start, _dt.datetime):
        return ""
    if not isinstance(end, _dt.datetime):
        return "running"
    return format_duration((end - start).total_seconds())


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
