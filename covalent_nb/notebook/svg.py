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
from html import escape as _escape
from typing import Iterable, Mapping, Sequence

from ..states import NodeKind
from .layout import printable
from .states import PALETTE, STATES, count_states, decode_states

__all__ = ["graph_svg", "text_colour_on", "group_counts", "group_state", "group_summary",
           "MAX_DRAWN_NODES"]

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


def escape(text: str) -> str:
    """*text* safe in XML text and attributes: control characters and ANSI codes dropped."""
    return _escape(printable(str(text)))


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

    *states* is the encoded state string or a list of state names, one per
    node.  Groups are drawn as one box with a count and a stacked bar of
    their members' states, as the live view draws them.
    """
    names = decode_states(states) if isinstance(states, str) else list(states)
    palette = {**PALETTE, **graph.get("palette", {})}
    n = graph.get("n", len(names))
    kinds = graph.get("kinds", "")
    counts = count_states(names, [NodeKind.PARAMETER if k == "p" else "" for k in kinds]
                          if len(kinds) == len(names) else None)
    electrons = [names[i] for i, k in enumerate(kinds) if k in "es" and i < len(names)]
    done = sum(1 for s in electrons if s in ("completed", "reused"))
    replaced = set(replaced)
    dispatch_id = printable(dispatch_id)
    status = printable(status)
    uid = "cnb-" + re.sub(r"[^A-Za-z0-9_-]", "", dispatch_id)[:40]

    items = len(graph.get("labels", ()))
    drawn = 0 < items <= MAX_DRAWN_NODES and len(names) == n
    gw, gh = graph.get("width", 0), graph.get("height", 0)
    scale = min(1.0, _MAX_WIDTH / gw, _MAX_GRAPH_HEIGHT / gh) if drawn and gw and gh else 1.0
    legend_width = 16 + sum(_legend_item_width(s, counts[s]) for s in STATES)
    if replaced:
        legend_width += _legend_item_width("replaced", len(replaced))
    width = max(legend_width, round(gw * scale) if drawn else 0, 420)
    graph_height = round(gh * scale) if drawn else 28
    height = _HEADER + graph_height
    progress = f"{done:,} / {len(electrons):,} electrons done"

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{uid}" class="cnb-graph-svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="{_FONT}" font-size="12" role="img" '
        f'aria-label="{escape(_summary(dispatch_id, status, counts))}">',
        f'<rect width="{width}" height="{height}" rx="4" fill="{_BACKGROUND}" stroke="#e0e0e0"/>',
        f'<text x="8" y="18" fill="{_TEXT}" font-weight="600" class="cnb-status">'
        f'{escape(status)}</text>',
        f'<text x="{8 + 9 * len(status) + 12}" y="18" fill="{_MUTED}">'
        f'<tspan class="cnb-progress">{escape(progress)}</tspan> · dispatch {escape(dispatch_id)}</text>',
    ]
    out.append(_legend(counts, palette, len(replaced), y=40))
    if drawn:
        out.append(f'<svg x="0" y="{_HEADER}" width="{width}" height="{graph_height}" '
                   f'viewBox="0 0 {width / scale:g} {gh}" preserveAspectRatio="xMinYMin meet">')
        out.append(_drawing(graph, names, palette, replaced, hide_params, uid))
        out.append("</svg>")
    elif items > MAX_DRAWN_NODES:
        out.append(f'<text x="8" y="{_HEADER + 16}" fill="{_MUTED}">{items} nodes: too many to draw '
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


def group_counts(runs: Sequence[Sequence[int]], names: Sequence[str]) -> dict[str, int]:
    """Members of a group per state (every state present)."""
    counts = dict.fromkeys(STATES, 0)
    for start, step, count in runs:
        for i in range(start, start + step * count, step or 1):
            counts[names[i]] = counts.get(names[i], 0) + 1
    return counts


def group_state(counts: Mapping[str, int]) -> str:
    """The state a group is coloured by: failed, running, pending... whichever comes first."""
    for state in ("failed", "running", "pending", "cancelled", "completed", "reused"):
        if counts.get(state):
            return state
    return "pending"


def group_summary(label: str, count: int, counts: Mapping[str, int]) -> str:
    """``"featurize ×5,000: 4,998 done, 2 running"`` (the same words as the live view)."""
    parts = []
    done = counts.get("completed", 0) + counts.get("reused", 0)
    if done:
        parts.append(f"{done:,} done")
    for state in ("running", "failed", "cancelled", "pending"):
        if counts.get(state):
            parts.append(f"{counts[state]:,} {state}")
    return f"{label} ×{count:,}: " + ", ".join(parts)


def _drawing(graph: Mapping, names: Sequence[str], palette: Mapping[str, str],
             replaced: set, hide_params: bool, uid: str) -> str:
    x, y, w, h = graph["x"], graph["y"], graph["w"], graph["h"]
    labels = graph["labels"]
    roles = graph.get("roles", "e" * len(labels))
    ids = graph.get("ids", [str(i) for i in range(len(labels))])
    m = len(labels)
    direction = graph.get("direction", "TB")
    hidden = {k for k in range(m) if hide_params and roles[k] in "pa"}
    groups = {g["item"]: g for g in graph.get("groups", ()) if g.get("item", -1) >= 0}
    item_state: list[str] = []
    group_info: dict[int, tuple] = {}
    for k in range(m):
        if roles[k] == "g":
            g = groups[k]
            runs = g["runs"]
            counts = group_counts(runs, names)
            if g.get("shown"):  # the page drawn node by node is not in the group's box
                first, last = g["shown"]
                members = [i for start, step, c in runs for i in range(start, start + step * c, step or 1)]
                for i in members[first:last + 1]:
                    counts[names[i]] -= 1
            group_info[k] = (counts, sum(counts.values()))
            item_state.append(group_state(counts))
        else:
            item_state.append(names[int(ids[k])])
    flat = graph["edges"]
    pairs = [(flat[k], flat[k + 1]) for k in range(0, len(flat), 2)]
    pairs = [(s, t) for s, t in pairs if s not in hidden and t not in hidden]
    arrows = len(pairs) <= _MAX_ARROWED_EDGES
    out = []

    def ends(s: int, t: int) -> str:
        if direction == "LR":
            return f"M{x[s] + w[s] / 2:g} {y[s]}L{x[t] - w[t] / 2:g} {y[t]}"
        return f"M{x[s]} {y[s] + h[s] / 2:g}L{x[t]} {y[t] - h[t] / 2:g}"

    if arrows:
        out.append(f'<defs><marker id="{uid}-arrow" viewBox="0 0 8 8" refX="8" refY="4" '
                   f'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
                   f'<path d="M0 0L8 4L0 8z" fill="{_EDGE}"/></marker></defs>')
    if pairs:
        if arrows:  # marker-end marks a path's last point only: one path per edge
            out.append(f'<g fill="none" stroke="{_EDGE}" stroke-width="1" '
                       f'marker-end="url(#{uid}-arrow)">')
            out.extend(f'<path d="{ends(s, t)}"/>' for s, t in pairs)
            out.append("</g>")
        else:
            out.append(f'<path d="{"".join(ends(s, t) for s, t in pairs)}" fill="none" '
                       f'stroke="{_EDGE}" stroke-width="1"/>')

    # Nodes, one group per state so each colour is written once.
    by_state: dict[str, list[int]] = {}
    for k in range(m):
        if k not in hidden and roles[k] != "g":
            by_state.setdefault(item_state[k], []).append(k)
    for state, members in by_state.items():
        fill = palette.get(state, palette["pending"])
        dash = ' stroke-dasharray="3 2"' if state == "cancelled" else ""
        out.append(f'<g class="cnb-nodes" data-state="{state}" fill="{fill}" stroke="{_BORDER}" '
                   f'stroke-width="1"{dash}>')
        for k in members:
            if roles[k] == "p":
                out.append(f'<circle cx="{x[k]}" cy="{y[k]}" r="{w[k] / 2:g}" stroke="none"/>')
            else:
                radius = 11 if roles[k] in "ba" else 5
                out.append(f'<rect x="{x[k] - w[k] / 2:g}" y="{y[k] - h[k] / 2:g}" '
                           f'width="{w[k]}" height="{h[k]}" rx="{radius}"/>')
        out.append("</g>")

    # Groups: a box outlined in its state's colour, the label, the summary and a stacked bar.
    for k, (counts, total) in group_info.items():
        g = groups[k]
        left, top = x[k] - w[k] / 2, y[k] - h[k] / 2
        stroke = palette.get(item_state[k], palette["pending"])
        summary = group_summary(labels[k], g["count"], counts)
        out.append(f'<g class="cnb-group" data-group="{escape(g["id"])}" data-count="{g["count"]}">'
                   f'<rect x="{left:g}" y="{top:g}" width="{w[k]}" height="{h[k]}" rx="6" '
                   f'fill="{_BACKGROUND}" stroke="{stroke}" stroke-width="2.5"/>'
                   f'<rect x="{left + 4:g}" y="{top + 4:g}" width="{w[k]}" height="{h[k]}" rx="6" '
                   f'fill="none" stroke="{_BORDER}" stroke-width="0.5" opacity="0.6"/>'
                   f'<text x="{x[k]}" y="{top + 17:g}" fill="{_TEXT}" font-size="12" font-weight="600" '
                   f'text-anchor="middle">{escape(labels[k])} ×{g["count"]:,}</text>'
                   f'<text x="{x[k]}" y="{top + 32:g}" fill="{_MUTED}" font-size="11" '
                   f'text-anchor="middle"><title>{escape(summary)}</title>'
                   f'{escape(summary.split(": ", 1)[-1])}</text>')
        bar_x, bar_w = left + 8, w[k] - 16
        offset = 0.0
        for state in ("completed", "reused", "running", "failed", "cancelled", "pending"):
            part = counts.get(state, 0)
            if not part or not total:
                continue
            width = bar_w * part / total
            out.append(f'<rect x="{bar_x + offset:.1f}" y="{top + h[k] - 14:g}" width="{width:.1f}" '
                       f'height="7" fill="{palette[state]}"/>')
            offset += width
        out.append("</g>")

    marked = [k for k in range(m) if roles[k] != "g" and int(ids[k]) in replaced and k not in hidden]
    if marked:
        out.append(f'<g fill="none" stroke="{palette["replaced"]}" stroke-width="3">')
        out.extend(f'<rect x="{x[k] - w[k] / 2 - 3:g}" y="{y[k] - h[k] / 2 - 3:g}" '
                   f'width="{w[k] + 6}" height="{h[k] + 6}" rx="7"/>' for k in marked)
        out.append("</g>")

    if m <= _MAX_LABELLED_NODES:
        inside: dict[str, list[int]] = {}
        for k in range(m):
            if k not in hidden and roles[k] in "eba":
                colour = text_colour_on(palette.get(item_state[k], palette["pending"]))
                inside.setdefault(colour, []).append(k)
        for colour, members in inside.items():
            out.append(f'<g fill="{colour}" font-size="12" text-anchor="middle" '
                       f'dominant-baseline="central">')
            out.extend(f'<text x="{x[k]}" y="{y[k]}">{escape(labels[k])}</text>' for k in members)
            out.append("</g>")
        # Parameters sit just before their consumer: label beside, clear of the edge.
        small = [k for k in range(m) if roles[k] == "p" and k not in hidden]
        if small:
            out.append(f'<g fill="{_MUTED}" font-size="11" text-anchor="middle">')
            out.extend(f'<text x="{x[k]}" y="{y[k] - h[k] / 2 - 3:g}">{escape(labels[k])}</text>'
                       for k in small)
            out.append("</g>")
    return "".join(out)
