"""Blob files Dask workers wrote outside the home (``DaskExecutor(blob_storage=...)``), kept track of.

A Dask output written into the home's own ``blobs`` directory is one of the
store's blobs (``blob_refs``).  One written to blob storage named by a path or
an fsspec URL (a shared directory, ``s3://bucket/prefix``) is named, per
dispatch that refers to it, in the ``remote_blobs`` table::

    remote_blobs (location, dispatch_id, size)   primary key (location, dispatch_id)

so that deleting or pruning a dispatch removes such a file once no stored
dispatch refers to it any more, after the commit that forgets it (as
:func:`covalent_nb.results.upkeep.delete` does for the home's blobs).

The memory store has no table: it removes the files its deleted dispatches'
workers wrote once no result left in this kernel names them
(:func:`held_locations`, :func:`remove_unnamed`).

The table is created the first time a home needs it (inside the writer's
transaction), so a home in the current format gains it without a migration,
and a covalent_nb that does not know it reads the home as before.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from ..dispatch.executors.remote import is_remote, removal_lock, remove_blob

__all__ = ["TABLE", "record", "for_dispatches", "forget", "unreferenced", "remove", "held_locations",
           "remove_unnamed"]

log = logging.getLogger(__name__)

TABLE = """CREATE TABLE IF NOT EXISTS remote_blobs (
    location    TEXT NOT NULL,
    dispatch_id TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (location, dispatch_id)
) WITHOUT ROWID"""
_INDEX = "CREATE INDEX IF NOT EXISTS remote_blobs_by_dispatch ON remote_blobs (dispatch_id)"


def _exists(conn: Any) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'remote_blobs'").fetchone() \
        is not None


def record(conn: Any, rows: list) -> None:
    """Name ``(location, dispatch id, size)`` *rows* (inside the caller's write transaction)."""
    if not rows:
        return
    if not _exists(conn):
        conn.execute(TABLE)
        conn.execute(_INDEX)
    conn.executemany("INSERT OR IGNORE INTO remote_blobs (location, dispatch_id, size) VALUES (?, ?, ?)", rows)


def for_dispatches(conn: Any, dispatch_ids: Iterable[str]) -> dict:
    """``{location: size}`` of the files the dispatches refer to."""
    if not _exists(conn):
        return {}
    found: dict = {}
    for did in dispatch_ids:
        found.update(conn.execute("SELECT location, size FROM remote_blobs WHERE dispatch_id = ?", (did,)))
    return found


def forget(conn: Any, dispatch_ids: Iterable[str]) -> None:
    """Drop the dispatches' rows (inside the caller's write transaction)."""
    if _exists(conn):
        conn.executemany("DELETE FROM remote_blobs WHERE dispatch_id = ?", [(did,) for did in dispatch_ids])


def unreferenced(conn: Any, locations: Iterable[str]) -> list:
    """The *locations* no stored dispatch refers to any more."""
    if not _exists(conn):
        return sorted(locations)
    return [place for place in sorted(locations) if conn.execute(
        "SELECT 1 FROM remote_blobs WHERE location = ? LIMIT 1", (place,)).fetchone() is None]


def remove(store: Any, locations: dict) -> int:
    """Remove the files at *locations* (``{location: size}``) that no record names; return the bytes freed.

    Checked again under the write lock (``BEGIN IMMEDIATE``), as the home's
    blobs are: a writer in another process that has just named one keeps it.
    A file that cannot be removed (already gone, storage unreachable) is
    logged and skipped: the records are gone either way.
    """
    if not locations:
        return 0
    freed = 0
    conn = store._conn
    with store._lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for location in unreferenced(conn, locations):
                try:
                    if remove_blob(location):
                        freed += locations[location]
                except Exception as exc:  # noqa: BLE001 - unreachable storage must not fail the delete
                    log.warning("covalent_nb: the blob %s could not be removed (%s: %s)", location,
                                type(exc).__name__, exc)
        finally:
            conn.execute("COMMIT")  # nothing was written: this only lets go of the lock
    return freed


def held_locations(result: Any, origin: Any = None) -> dict:
    """``{location: size}`` of the blob files a result's outputs kept outside the kernel name.

    Looks only at what the result holds (never loads or fetches a value).
    With *origin* (a predicate on a dispatch id), a reused output counts
    only when the dispatch it came from satisfies it.
    """
    table = result._table
    reused_from = table.reused_from
    found: dict = {}
    for node, value in enumerate(table.output.raw):
        if not is_remote(value):
            continue
        source = reused_from.get(node)
        if origin is not None and source is not None and not origin(source[0]):
            continue
        for reference in (value.references() if hasattr(value, "references") else (value,)):
            if reference.location is not None:
                found[reference.location] = reference.size
    return found


def remove_unnamed(candidates: dict, live: Iterable[Any]) -> int:
    """Remove the files of *candidates* (``{location: size}``) that no result of *live* names; return bytes freed.

    Under :func:`~covalent_nb.dispatch.executors.remote.removal_lock`: a
    dispatch that ends meanwhile checks its files under the same lock and has
    a worker write a missing one again, so a file its worker had just written
    again is never lost.
    """
    if not candidates:
        return 0
    freed = 0
    with removal_lock():
        named: set = set()
        for result in live:
            named.update(held_locations(result))
        for location in sorted(set(candidates) - named):
            try:
                if remove_blob(location):
                    freed += candidates[location]
            except Exception as exc:  # noqa: BLE001 - unreachable storage must not fail the delete
                log.warning("covalent_nb: the blob %s could not be removed (%s: %s)", location,
                            type(exc).__name__, exc)
    return freed
