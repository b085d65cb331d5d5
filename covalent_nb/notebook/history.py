"""The dispatch history that ``%dispatches`` shows: a table, newest first, with lineage.

:func:`dispatch_records` is the one place the records come from: the store's
``ct.list_dispatches()``, newest first.
"""

from __future__ import annotations

import datetime as _dt
import html
from typing import Any, Iterable, Optional


__all__ = ["dispatch_records", "DispatchHistory", "COLUMNS"]

#: Column title -> record key, in display order.
COLUMNS = (("id", "id"), ("lattice", "lattice"), ("status", "status"), ("start", "start"),
           ("duration", "duration"), ("parent", "parent"), ("reused", "reused"),
           ("recomputed", "recomputed"))


def dispatch_records(limit: Optional[int] = None) -> list[dict]:
    """The dispatches in the store, newest first, sublattice dispatches left out.

    The same dicts as :func:`covalent_nb.list_dispatches`: ``id, lattice,
    status, start`` (an aware datetime or None), ``duration`` (seconds, or
    None), ``parent`` (the id this one was redispatched from, or None),
    ``reused`` and ``recomputed`` (node counts, None while running).  With the
    durable store that includes the dispatches of earlier kernels.
    """
    from ..results.store import list_dispatches

    return list(list_dispatches(limit))


def _short(dispatch_id: Optional[str]) -> str:
    return "" if not dispatch_id else str(dispatch_id)[:8]


def _format_start(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, (int, float)):  # seconds since the epoch
        value = _dt.datetime.fromtimestamp(value, tz=_dt.timezone.utc)
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone()  # the reader's local time
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _format_duration(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, _dt.timedelta):
        value = value.total_seconds()
    seconds = float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _count(value: Any) -> str:
    return "" if value is None else str(value)


class DispatchHistory:
    """A table of dispatch records: HTML in a notebook, aligned text elsewhere.

    A redispatch shows ``↳`` before its id and its parent's short id in the
    ``parent`` column; ids are shortened to 8 characters in text (the HTML
    shows the full id on hover) and :attr:`records` keeps them whole.
    """

    def __init__(self, records: Iterable[dict]) -> None:
        self.records = list(records)

    def rows(self) -> list[list[str]]:
        """The table's cells as strings, one list per record."""
        rows = []
        for record in self.records:
            parent = record.get("parent")
            rows.append([
                ("↳ " if parent else "") + _short(record.get("id")),
                str(record.get("lattice") or ""),
                str(record.get("status") or ""),
                _format_start(record.get("start")),
                _format_duration(record.get("duration")),
                _short(parent),
                _count(record.get("reused")),
                _count(record.get("recomputed")),
            ])
        return rows

    def __len__(self) -> int:
        return len(self.records)

    def __str__(self) -> str:
        if not self.records:
            return "no dispatches yet in this kernel"
        titles = [title for title, _ in COLUMNS]
        rows = self.rows()
        widths = [max(len(cells[i]) for cells in [titles, *rows]) for i in range(len(titles))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
                 for cells in [titles, *rows]]
        lines.insert(1, "  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        if not self.records:
            return "<p>no dispatches yet in this kernel</p>"
        head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in COLUMNS)
        body = []
        for record, cells in zip(self.records, self.rows()):
            full = {0: record.get("id"), 5: record.get("parent")}
            tds = []
            for index, cell in enumerate(cells):
                title = f' title="{html.escape(str(full[index]))}"' if full.get(index) else ""
                tds.append(f"<td{title}><code>{html.escape(cell)}</code></td>" if index in full
                           else f"<td>{html.escape(cell)}</td>")
            status = html.escape(str(record.get("status") or ""))
            body.append(f'<tr data-id="{html.escape(str(record.get("id")))}" '
                        f'data-status="{status}">{"".join(tds)}</tr>')
        return (f'<table class="cnb-history"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody></table>')
