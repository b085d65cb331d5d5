"""What ``ct.list_dispatches()``, ``ct.delete_dispatch()`` and ``ct.prune_dispatches()`` return.

A dispatch summary is a plain dict (the history table of ``%dispatches`` and
a DataFrame both take dicts as they are) with these keys:

``id``          the dispatch id
``lattice``     the lattice's name
``status``      a :class:`~covalent_nb.states.Status`
``start``       when it started (an aware UTC datetime), or None
``duration``    seconds from start to end (so far, while running), or None
``parent``      the id it was redispatched from, or None
``reused``      how many nodes took a previous output (None while running)
``recomputed``  how many nodes ran (None while running)
``error``       the dispatch's error text (None unless it failed or was cancelled)
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import Any, Iterable, Optional

from .failures import FAILED_COLOUR, failure_html, failures_from_error, status_badge
from .result import us_to_datetime
from ..states import ENDED, Status, now_us

__all__ = ["summary", "DispatchList", "SpaceFreed", "prune_cutoff_us", "PruneCriteria",
           "check_prune_criteria", "format_bytes", "format_duration"]


def summary(dispatch_id: str, lattice: str, status: Any, start_us: Optional[int],
            end_us: Optional[int], parent: Optional[str], reused: Optional[int],
            recomputed: Optional[int], error: Optional[str] = None) -> dict:
    """Build one summary dict (see the module docstring)."""
    status = Status(status)
    if start_us is None:
        duration = None
    else:
        finish = end_us if end_us is not None and status in ENDED else now_us()
        duration = max(0, finish - start_us) / 1e6
    return {"id": dispatch_id, "lattice": lattice, "status": status, "start": us_to_datetime(start_us),
            "duration": duration, "parent": parent, "reused": reused, "recomputed": recomputed,
            "error": error}


def summary_of(result: Any) -> dict:
    """The summary of a live :class:`~covalent_nb.results.result.Result`."""
    counts = result.reuse_summary() if result.ended else {"reused": None, "recomputed": None}
    return summary(result.dispatch_id, getattr(result.lattice, "__name__", "?"), result.status,
                   result.start_us, result.end_us, result.parent_dispatch_id, counts["reused"],
                   counts["recomputed"], result.error)


_COLUMNS = ("id", "lattice", "status", "start", "duration", "parent", "reused", "recomputed")
_ID_WIDTH = 8  # ids are shortened to this in text; the HTML shows them whole on hover


def format_duration(seconds: Optional[float]) -> str:
    """A duration for people: ``"12.3 ms"``, ``"4.56 s"``, ``"2m 05s"``, ``"1h 02m 05s"``.

    The one formatter of durations: the dispatch history (``%dispatches``,
    ``ct.list_dispatches()``) and the graph widget's details pane use it.
    None (no duration yet) is ``""``.
    """
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _format_start(start: Optional[_dt.datetime]) -> str:
    return "" if start is None else start.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _short(dispatch_id: Optional[str]) -> str:
    return "" if not dispatch_id else str(dispatch_id)[:_ID_WIDTH]


def _count(value: Optional[int]) -> str:
    return "" if value is None else str(value)


class DispatchList(list):
    """A list of summary dicts, newest first, that shows as a table.

    The one renderer of the dispatch history: ``ct.list_dispatches()`` and
    ``%dispatches`` both show it.  ``str()`` is aligned text, ``_repr_html_``
    the table a notebook shows.  A redispatch shows ``↳`` before its id and
    its parent's id in the ``parent`` column; ids are shortened to 8
    characters in text and in the cells (the HTML shows the full id on hover).
    A FAILED dispatch is marked ``✖ FAILED`` (a red badge in HTML) and
    followed by a line naming its failed electrons with the exception line
    (see :func:`~covalent_nb.results.failures.failures_from_error`).
    """

    def rows(self) -> list[list[str]]:
        """The table's cells as strings, one list per summary, in :data:`_COLUMNS` order."""
        return [[("↳ " if d.get("parent") else "") + _short(d.get("id")),
                 str(d.get("lattice") or ""),
                 ("✖ " if d.get("status") == Status.FAILED else "") + str(d.get("status") or ""),
                 _format_start(d.get("start")),
                 format_duration(d.get("duration")),
                 _short(d.get("parent")),
                 _count(d.get("reused")),
                 _count(d.get("recomputed"))] for d in self]

    @staticmethod
    def failures(record: dict) -> list:
        """What failed in the dispatch of *record* (empty unless it is FAILED)."""
        if record.get("status") != Status.FAILED:
            return []
        return failures_from_error(record.get("error"))

    def __str__(self) -> str:
        if not self:
            return "no dispatches yet"
        rows = [list(_COLUMNS), *self.rows()]
        widths = [max(len(cells[i]) for cells in rows) for i in range(len(_COLUMNS))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
                 for cells in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        out = lines[:2]
        for record, line in zip(self, lines[2:]):
            out.append(line)
            out += [f"    ✖ {failure}" for failure in self.failures(record)]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        if not self:
            return "<p>no dispatches yet</p>"
        esc = html.escape
        head = "".join(f"<th>{esc(title)}</th>" for title in _COLUMNS)
        body = []
        for record, cells in zip(self, self.rows()):
            ids = {0: record.get("id"), 5: record.get("parent")}  # id cells: the full id on hover
            tds = []
            for index, cell in enumerate(cells):
                if index == 2:
                    tds.append(f"<td>{status_badge(record.get('status') or '')}</td>")
                    continue
                if index not in ids:
                    tds.append(f"<td>{esc(cell)}</td>")
                    continue
                title = f' title="{esc(str(ids[index]))}"' if ids[index] else ""
                tds.append(f"<td{title}><code>{esc(cell)}</code></td>")
            body.append(f'<tr data-id="{esc(str(record.get("id")))}" '
                        f'data-status="{esc(str(record.get("status") or ""))}">{"".join(tds)}</tr>')
            failures = self.failures(record)
            if failures:
                body.append(f'<tr class="cnb-history-failure" data-failed-id="{esc(str(record.get("id")))}">'
                            f'<td></td><td colspan="{len(_COLUMNS) - 1}" style="text-align: left; '
                            f'border-left: 3px solid {FAILED_COLOUR}">'
                            f"{failure_html(failures, tracebacks=False)}</td></tr>")
        return (f'<table class="cnb-history"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')


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
        return now_us() - int(older_than.total_seconds() * 1e6)
    if isinstance(older_than, _dt.datetime):
        when = older_than if older_than.tzinfo else older_than.astimezone()
        return int(when.timestamp() * 1e6)
    raise TypeError("older_than is a datetime.timedelta (age) or a datetime.datetime (cutoff), e.g. "
                    f"older_than=datetime.timedelta(days=30), not {type(older_than).__name__}")


class PruneCriteria:
    """What ``prune_dispatches`` deletes, checked once for every store.

    Build it with :func:`check_prune_criteria`; :meth:`selects` says whether
    one dispatch goes, so the memory and the durable store prune alike.
    """

    __slots__ = ("cutoff_us", "keep_last", "statuses")

    def __init__(self, cutoff_us: Optional[int], keep_last: Optional[int],
                 statuses: Optional[frozenset]) -> None:
        self.cutoff_us = cutoff_us
        self.keep_last = keep_last
        self.statuses = statuses

    def selects(self, index: int, status: Any, submitted_us: Optional[int]) -> bool:
        """Whether to prune the *index*-th newest top-level dispatch (0 is the newest).

        Dispatches that have not ended are never pruned, but they count
        towards ``keep_last``.
        """
        status = Status(status)
        if status not in ENDED:
            return False
        if self.keep_last is not None and index < self.keep_last:
            return False
        if self.cutoff_us is not None and (submitted_us or 0) >= self.cutoff_us:
            return False
        return self.statuses is None or status in self.statuses


_PRUNE_EXAMPLE = ("older_than=datetime.timedelta(days=30), keep_last=100, "
                  "status=['FAILED', 'CANCELLED', 'INTERRUPTED']")


def check_prune_criteria(older_than: Any = None, keep_last: Any = None, status: Any = None) -> PruneCriteria:
    """Check ``prune_dispatches``' arguments; raise ``TypeError``/``ValueError`` saying what is wrong.

    *older_than* is a ``datetime.timedelta`` or ``datetime.datetime`` (see
    :func:`prune_cutoff_us`), *keep_last* a whole number, 0 or more, *status*
    one ended status or several (``COMPLETED``, ``FAILED``, ``CANCELLED``,
    ``INTERRUPTED``).  At least one must be given.
    """
    if older_than is None and keep_last is None and status is None:
        raise ValueError(f"say what to prune: {_PRUNE_EXAMPLE}, or several of them")
    cutoff = prune_cutoff_us(older_than)
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int)
                                  or keep_last < 0):
        raise ValueError(f"keep_last is a number of dispatches (0 or more), not {keep_last!r}")
    statuses = None
    if status is not None:
        given = [status] if isinstance(status, str) else status
        try:
            given = list(given)
        except TypeError:
            raise TypeError(f"status is a status or a list of them, e.g. status=['FAILED', 'CANCELLED'], "
                            f"not {type(status).__name__}") from None
        ended = ", ".join(sorted(str(s) for s in ENDED))
        statuses = set()
        for name in given:
            try:
                one = Status(name)
            except ValueError:
                raise ValueError(f"status {name!r} is not a dispatch status; the statuses of ended "
                                 f"dispatches are {ended}") from None
            if one not in ENDED:
                raise ValueError(f"status {name!r}: only ended dispatches are pruned, so status is "
                                 f"one or more of {ended}")
            statuses.add(one)
        if not statuses:
            raise ValueError(f"status is empty: it would prune nothing; give one or more of {ended}")
        statuses = frozenset(statuses)
    return PruneCriteria(cutoff, keep_last, statuses)
