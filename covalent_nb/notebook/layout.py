"""Where each node of a lattice graph is drawn, computed once per graph shape.

Two engines give the same result type:

``dot``
    Graphviz's hierarchical layout, through the Python ``graphviz`` package,
    when the ``dot`` binary is installed.  Best-looking; ``"auto"`` uses it up
    to :data:`DOT_MAX_NODES` nodes.
``layered``
    A layered layout in pure Python on networkx (longest-path layers, a few
    barycentre sweeps against crossings, then x placed under the parents), so
    a machine with only pip still gets a readable top-down picture.

Recolouring a node never moves it: positions depend on the graph's *shape*
(names, kinds, edges) only, so they are cached by ``graph.shape_key()`` and a
redispatch of the same lattice reuses its layout.

Coordinates are pixels, y grows downwards, and each position is a node's
centre.  Parameter and postprocess nodes are small dots.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

from ..states import NodeKind

__all__ = [
    "Layout", "GraphShape", "layout_graph", "compute_layout", "compute_positions", "dot_available",
    "display_label", "node_size", "item_size", "choose_direction", "AUX_KINDS", "ENGINES",
    "DOT_MAX_NODES", "clear_cache", "cached", "compact_labels", "printable", "resolve_engine",
]

#: Node kinds drawn small and hidden by the "hide parameters" toggle.
AUX_KINDS = frozenset({NodeKind.PARAMETER, NodeKind.POSTPROCESS})
ENGINES = ("auto", "dot", "layered")

_PARAMETER_PREFIX = ":parameter:"
_LABEL_MAX = 24
_NODE_HEIGHT = 30
_AUX_SIZE = 14
_NODE_GAP = 18      # horizontal space between neighbours in a layer
_LAYER_GAP = 48     # vertical space between layers
_MARGIN = 20
_CACHE_SIZE = 32
#: "auto" uses dot up to this many nodes.  Beyond, dot's network simplex takes
#: seconds (11 s for a 10,000-node map-reduce here) where the layered layout
#: takes a tenth of one, and at the zoom that shows such a graph the two
#: pictures read alike.
DOT_MAX_NODES = 2500


class GraphShape(Protocol):
    """What the layout reads from a graph (``TransportGraph`` provides it)."""

    names: Sequence[str]
    kinds: Sequence[str]
    edges: Sequence[tuple]

    def shape_key(self) -> str: ...


@dataclass(frozen=True)
class Layout:
    """Node centres and sizes in pixels, plus the drawing's bounding box.

    ``direction`` is ``"TB"`` (layers top to bottom) or ``"LR"`` (left to right).
    """

    x: tuple[int, ...]
    y: tuple[int, ...]
    w: tuple[int, ...]
    h: tuple[int, ...]
    width: int
    height: int
    engine: str
    direction: str = "TB"


#: Item roles of a drawing (see :mod:`.grouping`): an electron box, a
#: parameter dot, a bookkeeping chip, an auxiliary chip (postprocess), a group.
ROLES = "epbag"
#: The canvas a first view is judged against when choosing the direction (px).
REFERENCE_VIEW = (960, 640)


def item_size(label: str, role: str) -> tuple[int, int]:
    """Width and height in pixels of a drawn item (labels at 12 px stay inside)."""
    if role == "p":
        return _AUX_SIZE, _AUX_SIZE
    if role in "ba":
        return max(36, min(220, round(7 * len(label)) + 18)), 22
    if role == "g":  # the label, then "4,998 done, 2 running, 1 failed" under it, then the bar
        return max(250, min(320, round(7.6 * len(label)) + 90)), 60
    return max(56, min(230, round(7.4 * len(label)) + 24)), 32


def display_label(name: str, kind: str) -> str:
    """The short text drawn on a node.

    Parameters show their value (Covalent names them ``:parameter:<value>``);
    bookkeeping nodes get a plain word; long names are cut with an ellipsis.
    """
    if kind == NodeKind.PARAMETER and name.startswith(_PARAMETER_PREFIX):
        label = name[len(_PARAMETER_PREFIX):]
    elif kind == NodeKind.POSTPROCESS:
        label = "postprocess"
    elif kind == NodeKind.ELECTRON_LIST:
        label = "list"
    elif kind == NodeKind.ELECTRON_DICT:
        label = "dict"
    else:
        label = name.lstrip(":").replace("sublattice:", "", 1) if name.startswith(":") else name
    label = " ".join(printable(label).split())  # newlines in a repr would break the box
    return label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…"


def compact_labels(graph: Any, nodes: Sequence[int]) -> list[str]:
    """Labels of *nodes* as a drawing shows them, told apart and compact.

    * getters read as code: ``split["X_train"]``, ``split.coef_``, ``split()[0]``;
    * electron lists and dicts as ``[3 items]`` / ``{2 keys}``, postprocess as ``result``;
    * electrons with the same name among *nodes* are told apart by the argument
      whose value differs between them (``fit(c=0.1)``), else by number (``evaluate #2``);
    * parameters show their value, as :func:`display_label` does.
    """
    names, kinds, edges = graph.names, graph.kinds, graph.edges
    values = getattr(graph, "values", None)
    wanted = set(nodes)
    inputs: dict[int, list[tuple[str, int]]] = {}
    for edge in edges:
        if edge[1] in wanted:
            inputs.setdefault(edge[1], []).append((str(edge[2]), edge[0]))

    def value_text(param: int) -> str:
        value = values[param] if values is not None and param < len(values) else None
        if isinstance(value, str):
            text = '"' + value + '"'
        elif value is None:
            text = names[param][len(_PARAMETER_PREFIX):]
        else:
            try:
                text = repr(value)
            except Exception:
                text = "…"
        text = " ".join(_printable(text).split())
        return text if len(text) <= 16 else text[:15] + "…"

    labels: dict[int, str] = {}
    by_name: dict[str, list[int]] = {}
    for v in nodes:
        name, kind = names[v], kinds[v]
        if kind == NodeKind.GETTER and name.startswith(":"):
            base, _, op = name[1:].rpartition(".")
            params = [s for e, s in inputs.get(v, ()) if kinds[s] == NodeKind.PARAMETER]
            if op == "__getitem__" and base and params:
                labels[v] = f"{base}[{value_text(params[-1])}]"
            elif op == "__getattr__" and base and params:
                raw = values[params[-1]] if values is not None else None
                labels[v] = f"{base}.{raw if isinstance(raw, str) else value_text(params[-1])}"
            else:
                labels[v] = name[1:]
        elif kind == NodeKind.ELECTRON_LIST:
            count = len(inputs.get(v, ()))
            labels[v] = f"[{count:,} item{'s' if count != 1 else ''}]"
        elif kind == NodeKind.ELECTRON_DICT:
            count = len(inputs.get(v, ()))
            labels[v] = "{" + f"{count:,} key{'s' if count != 1 else ''}" + "}"
        elif kind == NodeKind.POSTPROCESS:
            labels[v] = "result"
        else:
            labels[v] = display_label(name, kind)
            if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE):
                by_name.setdefault(labels[v], []).append(v)
    for label, same in by_name.items():
        if len(same) < 2:
            continue
        args = [{e: value_text(s) for e, s in inputs.get(v, ()) if kinds[s] == NodeKind.PARAMETER}
                for v in same]
        common = set(args[0]).intersection(*args[1:])
        telling = [e for e in sorted(common) if len({a[e] for a in args}) == len(same)]
        for k, v in enumerate(same):
            if telling:
                labels[v] = f"{label}({telling[0]}={args[k][telling[0]]})"
            else:
                labels[v] = f"{label} #{k + 1}"
    return [_cut(_printable(labels[v]), 32) for v in nodes]


# C0 controls but tab and newlines, DEL, C1 controls, and what XML 1.0 forbids besides.
_CONTROL = dict.fromkeys([*(c for c in range(32) if c not in (9, 10, 13)), *range(127, 160),
                          0xFFFE, 0xFFFF])
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """*text* without ANSI escape sequences and control characters (XML 1.0 forbids most)."""
    return _SURROGATE.sub("", _ANSI.sub("", text).translate(_CONTROL))


_printable = printable


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def node_size(label: str, kind: str) -> tuple[int, int]:
    """Width and height of a node in pixels: boxes fit their label, aux nodes are dots."""
    if kind in AUX_KINDS:
        return _AUX_SIZE, _AUX_SIZE
    return max(48, min(200, 7 * len(label) + 20)), _NODE_HEIGHT


def dot_available() -> bool:
    """True when Graphviz's ``dot`` binary is on PATH."""
    return shutil.which("dot") is not None


_cache: "OrderedDict[tuple, Layout]" = OrderedDict()
_cache_lock = threading.Lock()


def layout_graph(graph: GraphShape, engine: str = "auto") -> Layout:
    """Return the layout of *graph*, computing it only for a shape not seen before.

    *engine* is ``"dot"``, ``"layered"`` or ``"auto"`` (dot when the binary
    exists and the graph has at most :data:`DOT_MAX_NODES` nodes).  Asking
    for ``"dot"`` without the binary raises ``RuntimeError``.
    """
    engine = _resolve_engine(engine, len(graph.names))
    key = (graph.shape_key(), engine)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    layout = compute_layout(graph.names, graph.kinds, graph.edges, engine)
    with _cache_lock:
        _cache[key] = layout
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return layout


def clear_cache() -> None:
    """Forget every cached layout."""
    with _cache_lock:
        _cache.clear()


def cached(key: tuple, compute) -> Layout:
    """The layout cached under *key*, computed by ``compute()`` the first time."""
    with _cache_lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    layout = compute()
    with _cache_lock:
        _cache[key] = layout
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return layout


def compute_layout(names: Sequence[str], kinds: Sequence[str], edges: Sequence[tuple],
                   engine: str = "auto") -> Layout:
    """Lay out a graph given as node names, kinds and ``(source, target, ...)`` edges."""
    engine = _resolve_engine(engine, len(names))
    sizes = [node_size(display_label(n, k), k) for n, k in zip(names, kinds)]
    return compute_positions(sizes, _unique_pairs(edges), engine, "TB")


def compute_positions(sizes: Sequence[tuple[int, int]], pairs: Sequence[tuple[int, int]],
                      engine: str = "auto", direction: str = "TB") -> Layout:
    """Place boxes of *sizes* joined by *pairs* in layers along *direction* (``TB`` or ``LR``).

    ``direction="auto"`` takes whichever of the two shows the drawing bigger
    in a :data:`REFERENCE_VIEW` canvas (:func:`choose_direction`).
    """
    engine = _resolve_engine(engine, len(sizes))
    if direction == "auto":
        return choose_direction(sizes, pairs, engine)
    if direction not in ("TB", "LR"):
        raise ValueError(f"direction must be TB, LR or auto, not {direction!r}")
    if engine == "dot":
        x, y = _dot_positions(sizes, pairs, direction)
    elif direction == "LR":  # lay out the transposed boxes top-down, then transpose back
        y, x = _layered_positions([(h, w) for w, h in sizes], pairs)
    else:
        x, y = _layered_positions(sizes, pairs)
    return _normalise(x, y, sizes, engine, direction)


def choose_direction(sizes: Sequence[tuple[int, int]], pairs: Sequence[tuple[int, int]],
                     engine: str) -> Layout:
    """The top-down or the left-to-right layout, whichever fits a notebook's view at a bigger zoom.

    A chain reads left to right in a wide cell; a fan-out, top to bottom.  When
    both fit at full size top-down wins; when the top-down drawing is taller
    than the view, left-to-right wins unless it must be shown much smaller
    (a notebook scrolls down, but a cell is wider than it is tall).
    """
    view_w, view_h = REFERENCE_VIEW

    def zoom(layout: Layout) -> float:
        return min(1.0, view_w / max(1, layout.width), view_h / max(1, layout.height))

    down = compute_positions(sizes, pairs, engine, "TB")
    if len(sizes) > 2000 or zoom(down) >= 1.0:
        return down
    across = compute_positions(sizes, pairs, engine, "LR")
    if down.height > view_h and down.height > down.width:
        return across if zoom(across) >= zoom(down) * 0.85 else down
    return across if zoom(across) > zoom(down) * 1.05 else down


def resolve_engine(engine: str, size: int) -> str:
    """The engine ``"auto"`` means for a drawing of *size* items (see :func:`layout_graph`)."""
    return _resolve_engine(engine, size)


def _resolve_engine(engine: str, size: int) -> str:
    if engine not in ENGINES:
        raise ValueError(f"layout engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "auto":
        return "dot" if dot_available() and size <= DOT_MAX_NODES else "layered"
    if engine == "dot" and not dot_available():
        raise RuntimeError("the 'dot' layout needs Graphviz's dot binary on PATH "
                           "(apt-get install graphviz); use engine='layered'")
    return engine


def _unique_pairs(edges: Sequence[tuple]) -> list[tuple[int, int]]:
    # f(x, x) gives two edges between the same nodes; one is enough to place them.
    seen: dict[tuple[int, int], None] = {}
    for edge in edges:
        seen.setdefault((edge[0], edge[1]), None)
    return list(seen)


def _normalise(x: Sequence[float], y: Sequence[float], sizes: Sequence[tuple[int, int]],
               engine: str, direction: str = "TB") -> Layout:
    """Shift so the drawing starts at the margin; round to whole pixels."""
    if not sizes:
        return Layout((), (), (), (), 2 * _MARGIN, 2 * _MARGIN, engine, direction)
    left = min(xi - w / 2 for xi, (w, _) in zip(x, sizes))
    top = min(yi - h / 2 for yi, (_, h) in zip(y, sizes))
    xs = tuple(round(xi - left + _MARGIN) for xi in x)
    ys = tuple(round(yi - top + _MARGIN) for yi in y)
    width = max(xi + w / 2 for xi, (w, _) in zip(xs, sizes)) + _MARGIN
    height = max(yi + h / 2 for yi, (_, h) in zip(ys, sizes)) + _MARGIN
    return Layout(xs, ys, tuple(w for w, _ in sizes), tuple(h for _, h in sizes),
                  int(round(width)), int(round(height)), engine, direction)


# -- dot ---------------------------------------------------------------------

def _dot_positions(sizes: Sequence[tuple[int, int]], pairs: Sequence[tuple[int, int]],
                   direction: str = "TB") -> tuple[list[float], list[float]]:
    import graphviz

    n = len(sizes)
    # Only positions are needed: no edge routing (splines=false).
    lines = [
        "digraph G {",
        f'graph [rankdir={direction}, splines=false, nodesep={_NODE_GAP / 72:.3f}, '
        f'ranksep={_LAYER_GAP / 72:.3f}];',
        'node [shape=box, fixedsize=true, label=""];',
    ]
    lines.extend(f'{i} [width={w / 72:.3f}, height={h / 72:.3f}];' for i, (w, h) in enumerate(sizes))
    lines.extend(f"{s} -> {t};" for s, t in pairs)
    lines.append("}")
    out = graphviz.pipe("dot", "plain", "\n".join(lines).encode())
    x = [0.0] * n
    y = [0.0] * n
    for line in out.decode().splitlines():
        if line.startswith("node "):
            _, name, px, py, *_ = line.split()
            i = int(name)
            # plain output is in inches with y growing upwards.
            x[i] = float(px) * 72
            y[i] = -float(py) * 72
    return x, y


# -- layered (networkx) ------------------------------------------------------

def _layered_positions(sizes: Sequence[tuple[int, int]],
                       pairs: Sequence[tuple[int, int]]) -> tuple[list[float], list[float]]:
    import networkx as nx

    n = len(sizes)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(pairs)
    order = list(nx.topological_sort(graph))
    preds = [list(graph.predecessors(i)) for i in range(n)]
    succs = [list(graph.successors(i)) for i in range(n)]

    # Longest-path layers; then sources (parameters, mostly) move down to sit
    # just above their first consumer instead of all crowding the top row.
    layer = [0] * n
    for v in order:
        if preds[v]:
            layer[v] = max(layer[u] for u in preds[v]) + 1
    for v in reversed(order):
        if not preds[v] and succs[v]:
            layer[v] = min(layer[s] for s in succs[v]) - 1
    depth = max(layer, default=0) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for v in range(n):  # creation order: Covalent's numbering reads left to right
        rows[layer[v]].append(v)

    # Barycentre sweeps (down, up, down) reduce crossings.
    index = [0.0] * n
    for row in rows:
        for k, v in enumerate(row):
            index[v] = k / max(1, len(row) - 1)
    for neighbours, sweep in ((preds, rows[1:]), (succs, rows[-2::-1]), (preds, rows[1:])):
        for row in sweep:
            def key(v: int, nbrs=neighbours) -> float:
                return sum(index[u] for u in nbrs[v]) / len(nbrs[v]) if nbrs[v] else index[v]
            row.sort(key=key)
            for k, v in enumerate(row):
                index[v] = k / max(1, len(row) - 1)

    # x: each node as close as possible under its parents (top-down), sources
    # then over their children (bottom-up), without overlapping neighbours.
    x = [0.0] * n
    for row in rows:
        _pack(row, [None] * len(row), sizes, x)
    for row in rows[1:]:
        _pack(row, [_mean(x, preds[v]) for v in row], sizes, x)
    for row in reversed(rows[:-1]):
        _pack(row, [_mean(x, succs[v]) if not preds[v] else x[v] for v in row], sizes, x)

    row_height = [max((sizes[v][1] for v in row), default=0) for row in rows]
    y = [0.0] * n
    top = 0.0
    for row, height in zip(rows, row_height):
        for v in row:
            y[v] = top + height / 2
        top += height + _LAYER_GAP
    return x, y


def _mean(x: Sequence[float], nodes: Sequence[int]) -> Optional[float]:
    return sum(x[u] for u in nodes) / len(nodes) if nodes else None


def _pack(row: Sequence[int], desired: Sequence[Optional[float]],
          sizes: Sequence[tuple[int, int]], x: list[float]) -> None:
    """Place *row* left to right in order, each node near its desired x.

    Nodes are pushed right only as far as needed to clear their left
    neighbour, then the whole row shifts so that on average nodes sit where
    they want to be; nodes without a wish follow their neighbours.
    """
    if not row:
        return
    placed: list[float] = []
    cursor = float("-inf")
    for k, v in enumerate(row):
        w = sizes[v][0]
        want = desired[k]
        if want is None:
            want = cursor + w / 2 + _NODE_GAP if placed else 0.0
        left_limit = cursor + _NODE_GAP + w / 2 if placed else float("-inf")
        pos = max(want, left_limit)
        placed.append(pos)
        cursor = pos + w / 2
    wishes = [(p, d) for p, d in zip(placed, desired) if d is not None]
    if wishes:
        shift = sum(d - p for p, d in wishes) / len(wishes)
    else:  # no wishes at all: centre the row on 0
        shift = -(placed[0] - sizes[row[0]][0] / 2 + cursor) / 2
    for v, p in zip(row, placed):
        x[v] = p + shift
