"""Upkeep of a SQLite store: finding interrupted dispatches, deleting dispatches.

Both run from the caller's thread on the store's own connection, in
``BEGIN IMMEDIATE`` transactions, so they serialise with every writer of the
home, in this process or another.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from ..dispatch.runtime import RUNTIME
from . import graph_codec, remote_blobs
from .history import SpaceFreed
from .records import decode_plan, index_rows, summarize

__all__ = ["delete", "forget_dispatch", "recover", "mark_interrupted", "interrupted_error",
           "remove_unreferenced", "sweep_orphan_blobs"]


def interrupted_error(pid: int, host: str, completed: int, task_count: int) -> str:
    """The error of a dispatch whose process ended while it ran."""
    return (f"the process running this dispatch (pid {pid} on {host}) ended during the run; "
            f"{completed} of {task_count} task node(s) had completed, and their outputs are kept for reuse")


def delete(store: Any, dispatch_ids: list) -> SpaceFreed:
    """Delete dispatches (and their sublattice dispatches); report the space freed."""
    if not dispatch_ids:
        return SpaceFreed()
    with store._lock:
        conn = store._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = list(dict.fromkeys(dispatch_ids))
            frontier = list(ids)
            while frontier:  # the sublattice dispatches that belong to them go too
                children = [c for (c,) in conn.execute(
                    f"SELECT dispatch_id FROM dispatches WHERE container_id IN ({','.join('?' * len(frontier))})",
                    frontier)]
                frontier = [c for c in children if c not in ids]
                ids.extend(frontier)
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            free_before = conn.execute("PRAGMA freelist_count").fetchone()[0]
            digests: set = set()
            for did in ids:
                digests.update(d for (d,) in conn.execute(
                    "SELECT digest FROM blob_refs WHERE dispatch_id = ?", (did,)))
            remote = remote_blobs.for_dispatches(conn, ids)  # files Dask workers wrote outside the home
            keyed = [(did,) for did in ids]
            forget_history(conn, ids)
            conn.executemany("DELETE FROM node_batches WHERE dispatch_id = ?", keyed)
            conn.executemany("DELETE FROM dispatch_parts WHERE dispatch_id = ?", keyed)
            conn.executemany("DELETE FROM blob_refs WHERE dispatch_id = ?", keyed)
            remote_blobs.forget(conn, ids)
            conn.executemany("DELETE FROM dispatches WHERE dispatch_id = ?", keyed)
            orphans = [d for d in sorted(digests) if conn.execute(
                "SELECT 1 FROM blob_refs WHERE digest = ? LIMIT 1", (d,)).fetchone() is None]
            remote = {place: remote[place] for place in remote_blobs.unreferenced(conn, remote)}
            free_after = conn.execute("PRAGMA freelist_count").fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        # Only once the records are gone for good: a failure before the commit
        # leaves every dispatch whole; a crash after it leaves files that no
        # record names, which the next opening of the store sweeps away.
        blob_bytes = remove_unreferenced(store, orphans) + remote_blobs.remove(store, remote)
        try:
            conn.execute("PRAGMA incremental_vacuum")  # give the freed pages back to the file system
        except sqlite3.Error:
            pass
    for did in ids:
        forget_dispatch(did)
        for key in [k for k in list(store.known_refs) if k[0] == did]:  # list(): the writer adds keys
            store.known_refs.pop(key, None)
    return SpaceFreed(ids, blob_bytes, max(0, free_after - free_before) * page_size)


def forget_history(conn: Any, dispatch_ids: list) -> None:
    """Take *dispatch_ids* out of the history index (inside the caller's transaction)."""
    for did in dispatch_ids:
        found = conn.execute("SELECT d.seq, p.value FROM dispatches d LEFT JOIN dispatch_parts p ON "
                             "p.dispatch_id = d.dispatch_id AND p.part = 'plan' WHERE d.dispatch_id = ?",
                             (did,)).fetchone()
        if found is None:
            continue
        seq, plan = found
        try:
            keys = decode_plan(plan)[0] if plan is not None else None
        except Exception:  # noqa: BLE001 - an unreadable plan: find its rows the slow way
            keys = None
        if keys is None:
            conn.execute("DELETE FROM node_keys WHERE seq = ?", (seq,))
            continue
        rows = [row[:3] for row in index_rows(keys, seq, range(len(keys)), {})]
        conn.executemany("DELETE FROM node_keys WHERE key = ? AND seq = ? AND node = ?", rows)


def remove_unreferenced(store: Any, digests: Any) -> int:
    """Remove the blob files of *digests* that no record refers to; return the bytes freed.

    Unlinks under the write lock (``BEGIN IMMEDIATE``): a writer that names one of
    these blobs checks the file exists under the same lock, and writes it again.
    """
    digests = sorted(digests)
    if not digests:
        return 0
    conn = store._conn
    with store._lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            freed = sum(store.blobs.remove(d) for d in digests
                        if conn.execute("SELECT 1 FROM blob_refs WHERE digest = ? LIMIT 1", (d,)).fetchone() is None)
        finally:
            conn.execute("COMMIT")  # nothing was written: this only lets go of the lock
    return freed


#: Blob files younger than this are spared by the sweep: another process may be about
#: to commit the record that names one (it rechecks under the lock, but need not find it gone).
SWEEP_MIN_AGE_S = 600


def sweep_orphan_blobs(store: Any, min_age_s: float = SWEEP_MIN_AGE_S) -> int:
    """Remove blob files that no record refers to (left by a crash during a delete); return bytes freed."""
    cutoff = time.time() - min_age_s
    old = [d for d, mtime in store.blobs.files() if mtime < cutoff]
    if not old:
        return 0
    with store._lock:
        named = {d for (d,) in store._conn.execute("SELECT DISTINCT digest FROM blob_refs")}
    return remove_unreferenced(store, (d for d in old if d not in named))


def forget_dispatch(dispatch_id: str) -> None:
    """Let go of a deleted dispatch in this kernel: its result and its cached graph encoding."""
    result = RUNTIME.registry.lookup(dispatch_id)
    if result is not None:
        graph_codec.forget(result.graph)
    RUNTIME.registry.forget(dispatch_id)


def recover(store: Any) -> list:
    """Mark INTERRUPTED the unfinished dispatches whose process has ended; return their ids."""
    with store._lock:
        rows = store._conn.execute(
            "SELECT dispatch_id, owner, host, pid, task_count, updated_us FROM dispatches "
            "WHERE status IN ('NEW_OBJECT', 'RUNNING') AND will_run = 1").fetchall()
    verdicts: dict = {}
    dead = []
    for did, owner, host, pid, task_count, updated_us in rows:
        if owner not in verdicts:
            verdicts[owner] = store.owner.alive(owner)
        if verdicts[owner] is False:
            dead.append((did, host, pid, task_count, updated_us))
    marked = mark_interrupted(store, dead)
    for owner, alive in verdicts.items():
        if alive is False:
            store.owner.forget(owner)
    return marked


def mark_interrupted(store: Any, rows: list) -> list:
    """Mark the dispatches of *rows* ``(id, host, pid, task_count, last_seen_us)`` INTERRUPTED.

    Their completed nodes keep their records (and so stay reusable); the
    counts and the end time come from what was stored before the process ended.
    """
    updates = []
    for did, host, pid, task_count, last_seen_us in rows:
        completed, reused, recomputed, last_end = summarize(store.batches(did))
        end_us = max(x for x in (last_seen_us, last_end) if x is not None)
        updates.append((interrupted_error(pid, host, completed, task_count), end_us, reused, recomputed, did))
    if not updates:
        return []
    with store._lock:
        conn = store._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # The status condition makes two processes recovering at once harmless.
            conn.executemany(
                "UPDATE dispatches SET status = 'INTERRUPTED', error = ?, end_us = ?, reused = ?, "
                "recomputed = ? WHERE dispatch_id = ? AND status IN ('NEW_OBJECT', 'RUNNING')", updates)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return [u[-1] for u in updates]
