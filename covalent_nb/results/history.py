"""What ``ct.list_dispatches()``, ``ct.delete_dispatch()`` and ``ct.prune_dispatches()`` return.

A dispatch summary is a plain dict (the history table of ``%dispatches`` and
a DataFrame both take dicts as they are) with these keys:

``id``          the dispatch id
``lattice``     the lattice's name
``status``      a :class:`~covalent_nb.results.status.Status`
``start``       when it started (an aware UTC datetime), or None
``duration``    seconds from start to end (so far, while running), or None
``parent``      the id it was redispatched from, or None
``reused``      how many nodes took a previous output (None while running)
``recomputed``  how many nodes ran (None while running)
"""

from __future__ import annotations

import datetime as _dt
import html
import time
from typing import Any, Iterable, Optional

from .result import us_to_datetime
from .status import ENDED, Status

__all__ = ["summary", "DispatchList", "SpaceFreed", "prune_cutoff_us", "format_bytes"]


def summary(dispatch_id: str, lattice: str, status: Any, start_us: Optional[int],
            end_us: Optional[int], parent: Optional[str], reused: Optional[int],
            recomputed: Optional[int]) -> dict:
    """Build one summary dict (see the module docstring)."""
    status = Status(status)
    if start_us is None:
        duration = None
    else:
        finish = end_us if end_us is not None and status in ENDED else time.time_ns() // 1000
        duration = max(0, finish - start_us) / 1e6
    return {"id": dispatch_id, "lattice": lattice, "status": status, "start": us_to_datetime(start_us),
            "duration": duration, "parent": parent, "reused": reused, "recomputed": recomputed}


def summary_of(result: Any) -> dict:
    """The summary of a live :class:`~covalent_nb.results.result.Result`."""
    counts = result.reuse_summary() if result.ended else {"reused": None, "recomputed": None}
    return summary(result.dispatch_id, getattr(result.lattice, "__name__", "?"), result.status,
                   result.start_us, result.end_us, result.parent_dispatch_id, counts["reused"],
                   counts["recomputed"])


_COLUMNS = ("id", "lattice", "status", "start", "duration", "parent", "reused", "recomputed")


def _cell(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "start":
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if key == "duration":
        return f"{value:.3f} s" if value < 60 else f"{value / 60:.1f} min"
    return str(value)


class DispatchList(list):
    """A list of summary dicts, newest first, that prints as a table."""

    def _rows(self) -> list:
        return [[_cell(k, d.get(k)) for k in _COLUMNS] for d in self]

    def __str__(self) -> str:
        if not self:
            return "no dispatches"
        rows = [list(_COLUMNS)] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in _COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self._rows())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def format_bytes(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


class SpaceFreed:
    """What a delete or prune removed.

    ``dispatch_ids`` lists the dispatches removed (sublattice dispatches
    included), ``bytes_freed`` the space given back: blob files deleted plus
    database pages released.  ``int(freed)`` is ``bytes_freed``.
    """

    __slots__ = ("dispatch_ids", "bytes_freed", "blob_bytes", "database_bytes")

    def __init__(self, dispatch_ids: Iterable[str] = (), blob_bytes: int = 0, database_bytes: int = 0) -> None:
        self.dispatch_ids = list(dispatch_ids)
        self.blob_bytes = blob_bytes
        self.database_bytes = database_bytes
        self.bytes_freed = blob_bytes + database_bytes

    def __int__(self) -> int:
        return self.bytes_freed

    def __repr__(self) -> str:
        count = len(self.dispatch_ids)
        return (f"deleted {count} dispatch{'es' if count != 1 else ''}, freed {format_bytes(self.bytes_freed)} "
                f"({format_bytes(self.blob_bytes)} of blob files, {format_bytes(self.database_bytes)} "
                "of database pages)")

    __str__ = __repr__


def prune_cutoff_us(older_than: Any) -> Optional[int]:
    """Microseconds since the epoch before which dispatches are old enough to prune."""
    if older_than is None:
        return None
    if isinstance(older_than, _dt.timedelta):
        return time.time_ns() // 1000 - int(older_than.total_seconds() * 1e6)
    if isinstance(older_than, _dt.datetime):
        when = older_than if older_than.tzinfo else older_than.astimezone()
        return int(when.timestamp() * 1e6)
    raise TypeError("older_than is a datetime.timedelta (age) or a datetime.datetime (cutoff), e.g. "
                    f"older_than=datetime.timedelta(days=30), not {type(older_than).__name__}")
