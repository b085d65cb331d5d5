"""Node display states: their one-character encoding, colours and counts.

The graph widget and its static SVG show six states: ``pending``,
``running``, ``completed`` (recomputed in this dispatch), ``reused``,
``failed`` and ``cancelled``.  Python sends the states of all nodes to the
browser as one string with one character per node (see :data:`CODES`): a
10,000-node graph then costs 10 KB per update instead of ~110 KB for a JSON
list of names.  The code table travels with the graph, so the browser never
hard-codes it.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Optional, Sequence

from ..states import NodeKind

__all__ = [
    "STATES", "CODES", "PALETTE",
    "encode_states", "decode_states", "count_states", "status_text",
]

#: Display states in legend order.
STATES: tuple[str, ...] = ("pending", "running", "completed", "reused", "failed", "cancelled")

#: State name -> the character that stands for it in the encoded string.
CODES: Mapping[str, str] = {
    "pending": "p",
    "running": "r",
    "completed": "c",
    "reused": "u",
    "failed": "f",
    "cancelled": "x",
}

_DECODE = {code: state for state, code in CODES.items()}

#: Fill colour per state, plus the outline colour of replaced nodes.  Mid
#: tones, legible under black or white labels, so one palette serves
#: JupyterLab's light and dark themes and the static SVG alike.  Reused
#: (violet) and completed (green) differ in hue, so they tell apart at a glance.
PALETTE: Mapping[str, str] = {
    "pending": "#a7b0bc",
    "running": "#f59e0b",
    "completed": "#2f9e66",
    "reused": "#7c5cd6",
    "failed": "#e5484d",
    "cancelled": "#6b6f76",
    "replaced": "#d6409f",
}

#: Node kinds that are not counted in the legend: it counts the electrons (and sublattices),
#: the tasks the user wrote, not parameters or bookkeeping (lists, getters, the postprocess).
UNCOUNTED_KINDS = frozenset({NodeKind.PARAMETER} | NodeKind.INTERNAL)


def encode_states(states: Iterable[str]) -> str:
    """Encode display state names as one character each.

    Raises ``KeyError`` for a name that is not one of :data:`STATES`: an
    unknown state is a bug upstream, better seen than drawn as pending.
    """
    return "".join([CODES[s] for s in states])


def decode_states(encoded: str) -> list[str]:
    """Return the state names of an encoded string (unknown codes: pending)."""
    return [_DECODE.get(c, "pending") for c in encoded]


def count_states(states: Sequence[str], kinds: Optional[Sequence[str]] = None) -> dict[str, int]:
    """Count nodes per display state, every state present, zero included.

    *states* are names (or an encoded string).  When *kinds* is given, only
    electrons and sublattices are counted, as the widget's legend does.
    """
    if isinstance(states, str):
        states = decode_states(states)
    counts = dict.fromkeys(STATES, 0)
    for i, state in enumerate(states):
        if kinds is not None and kinds[i] in UNCOUNTED_KINDS:
            continue
        counts[state] = counts.get(state, 0) + 1
    return counts


def status_text(status: object) -> str:
    """The bare name of a dispatch status (``"RUNNING"``), whatever its type."""
    if status is None:
        return ""
    value = getattr(status, "value", status)
    return value if isinstance(value, str) else str(status)
