"""A static SVG of a lattice graph, for notebooks opened without a kernel.

The widget's mime bundle carries this picture next to the widget view, so
nbconvert's HTML and GitHub, which cannot run the widget, still show the
graph with the same positions, colours and legend (as text) as the live view,
frozen at the moment the output was produced.

The SVG uses presentation attributes only (no ``<style>``, no scripts), which
survives sanitisers and cannot restyle the page it is inlined into.  Nodes
are grouped by state so each colour is written once.  Above
:data:`MAX_DRAWN_NODES` nodes only the legend is drawn: a picture of ten
thousand boxes is megabytes that nobody can read.
"""

from __future__ import annotations

import re
from html import escape
from typing import Iterable, Mapping, Sequence

from ..states import NodeKind
from .states import PALETTE, STATES, count_states, decode_states

__all__ = ["graph_svg", "text_colour_on", "MAX_DRAWN_NODES"]

#: Larger graphs get a legend and a note instead of a drawing.
MAX_DRAWN_NODES = 5000
_MAX_LABELLED_NODES = 600
_MAX_ARROWED_EDGES = 1500
_MAX_WIDTH = 960
_MAX_GRAPH_HEIGHT = 1600
_HEADER = 58
_BACKGROUND = "#ffffff"
_TEXT = "#1f2328"
_MUTED = "#616161"
_EDGE = "#9e9e9e"
_BORDER = "#5f6b7a"
_FONT = "-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"


def text_colour_on(fill: str) -> str:
    """Black or white, whichever contrasts more with *fill* ("#rrggbb").

    The same rule as the browser's ``textColourOn``, so labels match.
    """
    m = re.fullmatch(r"#?([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})", fill or "")
    if not m:
        return "#000000"

    def channel(h: str) -> float:
        c = int(h, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(h) for h in m.groups())
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "#ffffff"


def graph_svg(graph: Mapping, states: "str | Sequence[str]", *, status: str = "",
              dispatch_id: str = "", replaced: Iterable[int] = (),
              hide_params: bool = False) -> str:
    """Draw *graph* (the widget's ``graph`` payload) in *states* as an SVG string.

    *states* is the encoded state string or a list of state names.
    """
    names = decode_states(states) if isinstance(states, str) else list(states)
    palette = {**PALETTE, **graph.get("palette", {})}
    n = len(graph["labels"])
    uncounted = set(graph.get("uncounted", ()))
    counts = count_states(names, [NodeKind.PARAMETER if i in uncounted else "" for i in range(n)])
    replaced = set(replaced)
    uid = "cnb-" + re.sub(r"[^A-Za-z0-9_-]", "", dispatch_id)[:40]

    drawn = 0 < n <= MAX_DRAWN_NODES and len(names) == n
    gw, gh = graph.get("width", 0), graph.get("height", 0)
    scale = min(1.0, _MAX_WIDTH / gw, _MAX_GRAPH_HEIGHT / gh) if drawn and gw and gh else 1.0
    legend_width = 16 + sum(_legend_item_width(s, counts[s]) for s in STATES)
    if replaced:
        legend_width += _legend_item_width("replaced", len(replaced))
    width = max(legend_width, round(gw * scale) if drawn else 0, 320)
    graph_height = round(gh * scale) if drawn else 28
    height = _HEADER + graph_height

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{uid}" class="cnb-graph-svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="{_FONT}" font-size="12" role="img" '
        f'aria-label="{escape(_summary(dispatch_id, status, counts))}">',
        f'<rect width="{width}" height="{height}" rx="4" fill="{_BACKGROUND}" stroke="#e0e0e0"/>',
        f'<text x="8" y="18" fill="{_TEXT}" font-weight="600" class="cnb-status">'
        f'{escape(status)}</text>',
        f'<text x="{8 + 9 * len(status) + 12}" y="18" fill="{_MUTED}">'
        f'dispatch {escape(dispatch_id)}</text>',
    ]
    out.append(_legend(counts, palette, len(replaced), y=40))
    if drawn:
        out.append(f'<svg x="0" y="{_HEADER}" width="{width}" height="{graph_height}" '
                   f'viewBox="0 0 {width / scale:g} {gh}" preserveAspectRatio="xMinYMin meet">')
        out.append(_drawing(graph, names, palette, replaced, hide_params, uid))
        out.append("</svg>")
    elif n > MAX_DRAWN_NODES:
        out.append(f'<text x="8" y="{_HEADER + 16}" fill="{_MUTED}">{n} nodes: too many to draw '
                   'statically; run the notebook to see the live graph.</text>')
    out.append("</svg>")
    return "".join(out)


def _summary(dispatch_id: str, status: str, counts: Mapping[str, int]) -> str:
    parts = ", ".join(f"{s} {c}" for s, c in counts.items())
    return f"Lattice graph of dispatch {dispatch_id}, {status}: {parts}"


def _legend_item_width(name: str, count: int) -> int:
    return 14 + 7 * (len(name) + 1 + len(str(count))) + 14


def _legend(counts: Mapping[str, int], palette: Mapping[str, str], replaced: int, y: int) -> str:
    parts = ['<g class="cnb-legend">']
    x = 8
    for state in STATES:
        count = counts.get(state, 0)
        parts.append(
            f'<g data-state="{state}" data-count="{count}">'
            f'<rect x="{x}" y="{y - 10}" width="11" height="11" rx="2" fill="{palette[state]}" '
            f'stroke="{_BORDER}" stroke-width="0.5"/>'
            f'<text x="{x + 15}" y="{y}" fill="{_TEXT}">{state} {count}</text></g>')
        x += _legend_item_width(state, count)
    if replaced:
        parts.append(
            f'<g data-marker="replaced" data-count="{replaced}">'
            f'<rect x="{x}" y="{y - 10}" width="11" height="11" rx="2" fill="none" '
            f'stroke="{palette["replaced"]}" stroke-width="2.5"/>'
            f'<text x="{x + 15}" y="{y}" fill="{_TEXT}">replaced {replaced}</text></g>')
    parts.append("</g>")
    return "".join(parts)


def _drawing(graph: Mapping, names: Sequence[str], palette: Mapping[str, str],
             replaced: set, hide_params: bool, uid: str) -> str:
    x, y, w, h = graph["x"], graph["y"], graph["w"], graph["h"]
    aux = set(graph.get("aux", ()))
    hidden = aux if hide_params else set()
    labels = graph["labels"]
    n = len(labels)
    flat = graph["edges"]
    pairs = [(flat[k], flat[k + 1]) for k in range(0, len(flat), 2)]
    pairs = [(s, t) for s, t in pairs if s not in hidden and t not in hidden]
    arrows = len(pairs) <= _MAX_ARROWED_EDGES
    out = []

    # Edges: from the bottom of the source to the top of the target (top-down layout).
    if arrows:
        out.append(f'<defs><marker id="{uid}-arrow" viewBox="0 0 8 8" refX="8" refY="4" '
                   f'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
                   f'<path d="M0 0L8 4L0 8z" fill="{_EDGE}"/></marker></defs>')
    path = "".join(f"M{x[s]} {y[s] + h[s] / 2:g}L{x[t]} {y[t] - h[t] / 2:g}" for s, t in pairs)
    if path:
        marker = "" if not arrows else f' marker-end="url(#{uid}-arrow)"'
        if arrows:  # marker-end marks a path's last point only: one path per edge
            out.append(f'<g fill="none" stroke="{_EDGE}" stroke-width="1"{marker}>')
            out.extend(f'<path d="M{x[s]} {y[s] + h[s] / 2:g}L{x[t]} {y[t] - h[t] / 2:g}"/>'
                       for s, t in pairs)
            out.append("</g>")
        else:
            out.append(f'<path d="{path}" fill="none" stroke="{_EDGE}" stroke-width="1"/>')

    # Nodes, one group per state so each colour is written once.
    by_state: dict[str, list[int]] = {}
    for i in range(n):
        if i not in hidden:
            by_state.setdefault(names[i], []).append(i)
    for state, members in by_state.items():
        fill = palette.get(state, palette["pending"])
        dash = ' stroke-dasharray="3 2"' if state == "cancelled" else ""
        out.append(f'<g class="cnb-nodes" data-state="{state}" fill="{fill}" stroke="{_BORDER}" '
                   f'stroke-width="1"{dash}>')
        for i in members:
            if i in aux:
                out.append(f'<circle cx="{x[i]}" cy="{y[i]}" r="{w[i] / 2:g}" stroke="none"/>')
            else:
                out.append(f'<rect x="{x[i] - w[i] / 2:g}" y="{y[i] - h[i] / 2:g}" '
                           f'width="{w[i]}" height="{h[i]}" rx="5"/>')
        out.append("</g>")

    marked = [i for i in sorted(replaced) if 0 <= i < n and i not in hidden]
    if marked:
        out.append(f'<g fill="none" stroke="{palette["replaced"]}" stroke-width="3">')
        out.extend(f'<rect x="{x[i] - w[i] / 2 - 3:g}" y="{y[i] - h[i] / 2 - 3:g}" '
                   f'width="{w[i] + 6}" height="{h[i] + 6}" rx="7"/>' for i in marked)
        out.append("</g>")

    if n <= _MAX_LABELLED_NODES:
        inside: dict[str, list[int]] = {}
        for i in range(n):
            if i not in hidden and i not in aux:
                colour = text_colour_on(palette.get(names[i], palette["pending"]))
                inside.setdefault(colour, []).append(i)
        for colour, members in inside.items():
            out.append(f'<g fill="{colour}" font-size="11" text-anchor="middle" '
                       f'dominant-baseline="central">')
            out.extend(f'<text x="{x[i]}" y="{y[i]}">{escape(labels[i])}</text>' for i in members)
            out.append("</g>")
        # Parameters sit just above their consumer: label above, clear of the edge.
        params = set(graph.get("uncounted", ()))
        small = [i for i in range(n) if i in aux and i not in hidden]
        if small:
            out.append(f'<g fill="{_MUTED}" font-size="9" text-anchor="middle">')
            out.extend(
                f'<text x="{x[i]}" y="{y[i] - h[i] / 2 - 3 if i in params else y[i] + h[i] / 2 + 10:g}">'
                f'{escape(labels[i])}</text>' for i in small)
            out.append("</g>")
    return "".join(out)
