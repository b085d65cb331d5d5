"""The store's writer thread: everything the store writes, batched, off the dispatcher's path.

The dispatcher's event callback only puts the batch of events on
:attr:`Writer.queue`.  The writer thread takes everything queued, encodes the
immutable node records the events carry (the outputs arrive already pickled,
as their tasks returned them), writes large ones as blob files, and commits it
all in one SQLite transaction; then it takes the next lot.  It never reads a
live result's tables, and never writes them.  Under load one transaction covers
many dispatcher batches, so the cost per node stays a few microseconds.

Items on the queue:

``("submit", Submission, None)``    a new dispatch (row prepared by the caller; not waited for)
``("events", [Event, ...])``         a batch from the event stream
``("end", DispatchRecord, Waiter)``  a dispatch ended: write what is left, final status
``("flush", None, Waiter)``          commit everything queued before it
``("stop", None, Waiter)``           flush, close the connection, end the thread

A :class:`Waiter` is set once the item's transaction has committed (or
failed, with the exception).

What "durable" means here: every commit is written to SQLite's write-ahead
log (WAL mode, ``synchronous=NORMAL``), which survives the process being
killed (SIGKILL, a crash, a kernel restart) the moment the commit returns.
The log is fsync'd at checkpoints, not at each commit, so a power loss or an
operating-system crash can lose the last commits (SQLite keeps the database
consistent either way).  An fsync per dispatch cost 1-7 ms on the machines
measured, more than a small dispatch itself; ``docs/store.md`` lists what
each failure loses.
"""

from __future__ import annotations

import logging
import pickle
import queue
import sqlite3
import threading
import time
from typing import Any, NamedTuple, Optional

from .blobs import blob_digest
from .records import PACKABLE, PACKABLE_LEN, decode_batch, encode_batch, encode_plan, index_rows
from ..dispatch.node_records import NodeRecord
from ..dispatch.runtime import RUNTIME
from ..states import ENDED, Status, now_us
from ..serialization import by_value_registry_in_use
from .values import BLOB, INLINE, StoreUnavailable, dumps, loads, reason_of, sql_text
from ..dispatch.executors.remote import RemoteTree, RemoteValue, blob_exists
from . import remote_blobs

__all__ = ["Writer", "Waiter", "Submission"]

log = logging.getLogger(__name__)

#: Output types that always pack (see records.PACKABLE), whatever their value.
_SCALARS = frozenset({int, float, bool, complex, type(None)})
_NODE_KINDS = frozenset({"node_completed", "node_failed", "node_cancelled", "node_reused"})
_RETRIES = 3
#: Seconds before the first new attempt to write to a store that could not be written;
#: the pause doubles after each failed attempt, up to RETRY_MAX_S.
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0


def is_outage(error: BaseException) -> bool:
    """True when *error* comes from the store's surroundings, not from the records written.

    Disk full, a read-only file or directory, a lock held too long, a damaged
    database file: trying again later can succeed.  A record that cannot be
    encoded fails every time; it is set apart instead (see ``Writer._skip``).
    """
    return isinstance(error, (OSError, sqlite3.OperationalError)) or type(error) is sqlite3.DatabaseError


#: The sparse fields of a batch and their positions in a NodeRecord.
_SPARSE_AT = tuple((field, NodeRecord._fields.index(field))
                   for field in ("error", "stdout", "stderr", "reused_from", "executor"))


def history_indexed(conn: sqlite3.Connection) -> bool:
    """Whether this home keeps the history index (on once any process reused from history here)."""
    return conn.execute("SELECT 1 FROM settings WHERE name = 'history_index'").fetchone() is not None


def _is_busy(error: sqlite3.OperationalError) -> bool:
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _dispatch_ids(items: list) -> list:
    ids = []
    for kind, payload, _ in items:
        if kind == "submit":
            ids.append(payload.row["dispatch_id"])
        elif kind == "events":
            ids.append(payload[0].dispatch_id)
        elif kind == "end":
            ids.append(payload.dispatch_id)
    return list(dict.fromkeys(ids))


def _clear_store_error(dispatch_id: str) -> None:
    """The delayed records of a dispatch are written: its result in this kernel stops saying otherwise."""
    result = RUNTIME.registry.lookup(dispatch_id)
    if result is not None and (getattr(result, "store_error", None) or "").startswith(DELAYED):
        result.store_error = None


#: How ``Result.store_error`` starts while a dispatch's records wait for the store.
DELAYED = "not yet durable: "




class Waiter:
    """Set when an item has been committed; :meth:`wait` re-raises a failure."""

    __slots__ = ("_event", "error")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.error: Optional[BaseException] = None

    def set(self, error: Optional[BaseException] = None) -> None:
        self.error = error
        self._event.set()

    def wait(self) -> None:
        self._event.wait()
        if self.error is not None:
            raise self.error


class Submission:
    """A dispatch's row and parts, prepared (pickled) in the caller's thread."""

    __slots__ = ("result", "row", "parts", "blobs")

    def __init__(self, result: Any, row: dict, parts: dict, blobs: list) -> None:
        self.result = result
        self.row = row
        self.parts = parts  # part name -> bytes (or None)
        self.blobs = blobs  # [(digest, bytes)] the parts' references need


class _Progress:
    """What the writer knows of one dispatch between its submission and its end."""

    __slots__ = ("dispatch_id", "plan_written", "keys")

    def __init__(self, dispatch_id: str) -> None:
        self.dispatch_id = dispatch_id
        self.plan_written = False
        self.keys: Optional[tuple] = None  # node keys, for the history index (known once it starts)


class Writer:
    """One thread and one SQLite connection that do all of a store's writing.

    Owned by: the writer thread (``covalent_nb-store-writer``): the write
    connection, :attr:`progress` and checkpoints are its alone.  (It also adds
    to the store's ``known_refs``, which the caller's thread changes too when
    it loads or deletes dispatches.)
    Other threads: :meth:`put_events` (a dispatcher thread, through the event
    router) and :meth:`request` (the caller's thread for a submission, a
    dispatcher thread for an end, any thread for flush and stop) only queue
    items on :attr:`queue`; :meth:`request` then waits on the item's :class:`Waiter`.
    """

    #: Write-ahead log bytes after which an idle writer checkpoints.
    checkpoint_bytes = 4 << 20
    #: Seconds a batch of events waits for more before it is written.
    gather_s = 0.02

    def __init__(self, store: Any) -> None:
        self.store = store
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.progress: dict = {}
        self._conn: Optional[sqlite3.Connection] = None
        self._since_checkpoint = 0
        self._urgent = threading.Event()
        self._state_lock = threading.Lock()
        self._stopped = False
        #: Why the store cannot be written, while it cannot (None when it can).
        self.outage: Optional[str] = None
        #: Dispatches with records waiting for the store to be writable again.
        self.deferred: set = set()
        #: Ids of dispatches whose submission is queued and not yet written, set apart or kept
        #: for later: a read from another thread waits for them first (see :meth:`settle`).
        self.unwritten: set = set()
        self.thread = threading.Thread(target=self._main, name="covalent_nb-store-writer", daemon=True)
        self.thread.start()

    # -- called from other threads --------------------------------------------
    def put_events(self, events: list) -> None:
        self.queue.put(("events", events, None))

    def submit(self, submission: Submission) -> None:
        """Queue a new dispatch's row (not waited for: see ``SQLiteStore.dispatch_submitted``)."""
        with self._state_lock:
            if self._stopped or not self.thread.is_alive():
                raise RuntimeError("the store's writer thread has stopped")
            self.unwritten.add(submission.row["dispatch_id"])
            self.queue.put(("submit", submission, None))
        # Not urgent: written within gather_s, in one transaction with whatever follows, so a small
        # dispatch (whose end comes sooner) costs one commit, not two.  Other processes looking for
        # a new id wait longer than that (NEW_ID_GRACE_S); this process's reads call settle().

    def request(self, kind: str, payload: Any = None) -> None:
        """Queue an item and wait until it is committed."""
        waiter = Waiter()
        with self._state_lock:  # so that nothing is queued after the thread's last look
            if self._stopped or not self.thread.is_alive():
                raise RuntimeError("the store's writer thread has stopped")
            self.queue.put((kind, payload, waiter))
        self._urgent.set()
        waiter.wait()

    # -- the thread ---------------------------------------------------------------
    def _main(self) -> None:
        self._conn = conn = self.store.connect()
        # Checkpoints are run by this thread when it is idle (see _idle), not
        # inside the commit that a dispatch's end is waiting for.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        get = self.queue.get
        empty = self.queue.empty
        stopping = False
        pending: list = []  # items the store could not take (an outage), retried first, in order
        pause = RETRY_FIRST_S
        while not stopping:
            if pending:
                try:
                    items = pending + [get(timeout=pause)]
                except queue.Empty:
                    items = list(pending)
            else:
                items = [get()]
                if items[0][2] is None:
                    self._gather()
            while not empty():
                items.append(get())
            stopping = any(item[0] == "stop" for item in items)
            if stopping:  # answered once the connection is closed, below: not after this write
                stop_waiters = [w for kind, _, w in items if kind == "stop" and w is not None]
                items = [(kind, p, None) if kind == "stop" else (kind, p, w) for kind, p, w in items]
            pending = self._write_all(items)
            pause = min(pause * 2, RETRY_MAX_S) if pending else RETRY_FIRST_S
            late: list = []
            if stopping:
                if pending:
                    log.error("covalent_nb store: %s could not be written before this process ended (%s); "
                              "the records of dispatch(es) %s are not in it", self.store.location,
                              self.outage, ", ".join(_dispatch_ids(pending)) or "-")
                self._checkpoint()
                with self._state_lock:
                    self._stopped = True
                    while not empty():
                        late.append(get())
            for item in late:  # queued while stopping: never written
                if item[2] is not None:
                    item[2].set(RuntimeError("the store's writer thread has stopped"))
            items = late = []  # hold no dispatch while idle: its frozen data may be large
            if not stopping and not pending and empty():
                self._idle()
        conn.close()
        for waiter in stop_waiters:
            waiter.set(None)

    def _write_all(self, items: list) -> list:
        """Write *items*; return those to try again later because the store cannot be written.

        One item that cannot be written for a reason of its own (a record that
        does not encode) is set apart and never takes the others with it: the
        items are then written one by one.  A cause outside the items (disk
        full, a read-only home, a damaged file) keeps them, and those after
        them, for later (:attr:`outage` says why).
        """
        error = self._attempt(items)
        if error is None:
            self._written(items)
            return []
        rest = items
        if not is_outage(error):
            rest = []
            for index, item in enumerate(items):
                error = self._attempt([item]) if len(items) > 1 else error
                if error is None:
                    self._written([item])
                elif is_outage(error):
                    rest = items[index:]
                    break
                else:
                    self._skip(item, error)
            if not rest:
                self._written([])
                return []
        return self._defer(rest, error)

    def _attempt(self, items: list) -> Optional[BaseException]:
        """Prepare and commit *items* in one transaction; the exception if that failed."""
        for attempt in range(_RETRIES):
            try:
                self._write(items)
                return None
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _is_busy(exc) or attempt == _RETRIES - 1:
                    return exc
                time.sleep(0.05 * (attempt + 1))  # locked by another process for longer than the timeout
            except BaseException as exc:  # noqa: BLE001 - reported to the waiters
                self._rollback()
                return exc
        return None  # not reached

    def _settled(self, items: list) -> None:
        """*items* were written, set apart or kept for later: readers need not wait for them."""
        for kind, payload, _ in items:
            if kind == "submit":
                self.unwritten.discard(payload.row["dispatch_id"])

    def settle(self) -> None:
        """Return once the submissions queued so far were written (a read then sees them)."""
        if self.unwritten and threading.current_thread() is not self.thread:
            try:
                self.request("flush")
            except Exception:  # noqa: BLE001 - an outage: the read shows what the store has
                pass

    def _written(self, items: list) -> None:
        """*items* are committed: wake their waiters; end an outage if one was on."""
        self._settled(items)
        for item in items:
            if item[2] is not None:
                item[2].set(None)
        if self.outage is not None:
            log.warning("covalent_nb: the store in %s can be written again; the records kept while it "
                        "could not be are written", self.store.location)
            self.outage = None
            for did in self.deferred:
                _clear_store_error(did)
            self.deferred.clear()

    def _defer(self, items: list, error: BaseException) -> list:
        """The store cannot be written: keep *items* (waiters answered now) for the next attempt."""
        cause = reason_of(error)
        if self.outage is None:
            log.warning("covalent_nb: the store in %s cannot be written (%s). The records of the dispatches "
                        "ending meanwhile are kept in this process and written as soon as it can be; their "
                        "results stay readable in this kernel.", self.store.location, cause)
        self.outage = cause
        self._settled(items)
        kept = []
        for kind, payload, waiter in items:
            if waiter is not None:
                waiter.set(StoreUnavailable(f"{self.store.location} cannot be written now ({cause}); the "
                                            "records are kept in memory and written when it can be"))
            if kind == "submit":
                self.deferred.add(payload.row["dispatch_id"])
                if payload.result.store_error is None:
                    payload.result.store_error = f"{DELAYED}{self.store.location} cannot be written now " \
                                                 f"({cause}); the records are kept in memory and written " \
                                                 "when it can be"
            elif kind == "end":
                self.deferred.add(payload.dispatch_id)
            if kind in ("submit", "events", "end"):
                kept.append((kind, payload, None))
        return kept

    def _skip(self, item: tuple, error: BaseException) -> None:
        """*item* cannot be written for a reason of its own: write what can be of it, say so."""
        kind, payload, waiter = item
        self._settled([item])
        did = _dispatch_ids([item])[0] if kind in ("submit", "events", "end") else "-"
        log.error("covalent_nb store: a record of dispatch %s could not be written to %s and was left out: %s",
                  did, self.store.location, reason_of(error))
        if kind == "submit":
            self.progress.pop(did, None)  # its later records have nowhere to go
            payload.result.store_error = f"the dispatch could not be stored in {self.store.location}: " \
                                         f"{reason_of(error)}"
        elif kind == "end":
            bare = self._end_bare(payload, error)
            if bare is None:  # its status is stored; the waiter still hears what was left out
                self.progress.pop(did, None)
            else:
                log.error("covalent_nb store: nor could the end of dispatch %s be written alone: %s", did,
                          reason_of(bare))
        if waiter is not None:
            waiter.set(error)

    def _end_bare(self, record: Any, error: BaseException) -> Optional[BaseException]:
        """Record just a dispatch's final status, so that it never stays RUNNING; None once done."""
        status = record.status if record.status in ENDED else Status.FAILED
        note = f"{record.error or ''}\n(covalent_nb: part of this dispatch's records could not be stored: " \
               f"{reason_of(error)})".strip()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("UPDATE dispatches SET status = ?, error = ?, start_us = ?, end_us = ?, "
                               "updated_us = ? WHERE dispatch_id = ?",
                               (str(status), sql_text(note), record.start_us, record.end_us, now_us(),
                                record.dispatch_id))
            self._conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001
            self._rollback()
            return exc
        return None

    def _gather(self) -> None:
        """Let events accumulate for a moment: fewer, larger transactions.

        The writer sleeps on :attr:`_urgent`, not on the queue, so the
        dispatcher's batches of events do not wake it one by one (each wake-up
        costs the dispatcher a hand-over of the GIL, which on a busy machine
        is far dearer than the write).  A node's record then reaches the disk
        up to :attr:`gather_s` later, which only matters if the process is
        killed in that moment.  Anyone waiting (a submission, an end, a
        flush) sets :attr:`_urgent` and cuts the pause short.
        """
        self._urgent.wait(self.gather_s)
        self._urgent.clear()

    def _idle(self) -> None:
        if self._since_checkpoint >= self.checkpoint_bytes:
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.debug("covalent_nb store: checkpoint skipped: %s", exc)
        self._since_checkpoint = 0

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _write(self, items: list) -> None:
        """Prepare everything outside the transaction, then commit it in one go."""
        tx = self._prepare(items)
        self._commit(tx)
        self._since_checkpoint += sum(len(p) for _, p in tx.batches) + sum(len(p[2]) for p in tx.plans) + 4096
        for record in tx.ends:
            self.progress.pop(record.dispatch_id, None)

    def _prepare(self, items: list) -> "_Transaction":
        """Sort the queued items and encode their rows (no database access)."""
        tx = _Transaction(now_us())
        started: list = []
        touched: dict = {}
        node_kinds = _NODE_KINDS
        blocks: list = []  # (dispatch id, ReusedBlock)
        for kind, payload, _ in items:
            if kind == "events":
                did = payload[0].dispatch_id  # the router hands over one dispatch per batch
                records = [e.record for e in payload if e.kind in node_kinds]
                if records:
                    touched.setdefault(did, []).extend(records)
                if payload[0].kind == "dispatch_started":  # always first in its batch
                    started.append((did, payload[0].record))
                    if len(payload) > 1 and payload[1].kind == "nodes_reused":  # published right after it
                        blocks.append((did, payload[1].record))
            elif kind == "submit":
                tx.submissions.append(payload)
            elif kind == "end":
                tx.ends.append(payload)

        progress = self.progress
        for submission in tx.submissions:
            did = submission.row["dispatch_id"]
            if did not in progress:
                progress[did] = _Progress(did)
            for digest, data in submission.blobs:
                tx.blobs.append((digest, data, did, None))
                tx.blob_refs.append((digest, did, len(data)))
        by_value = by_value_registry_in_use()
        for did, plan in started:
            state = progress.get(did)
            if state is None:
                continue
            tx.plans.append((str(Status.RUNNING), plan.start_us, _encode_plan(plan), tx.now, did))
            state.plan_written = True
            state.keys = plan.keys
        for did, block in blocks:  # before any record of the same dispatch (there are none in practice)
            if did in progress:
                tx.batches.append((did, self._encode_block(did, block, by_value, tx)))
        for did, records in touched.items():
            if did not in progress:
                continue  # its submission could not be stored
            tx.batches.append((did, self._encode(did, records, by_value, tx)))
        for record in tx.ends:
            state = progress.get(record.dispatch_id)
            if state is not None:
                tx.finals.append(self._final(state, record, by_value, tx))
        return tx

    def _commit(self, tx: "_Transaction") -> None:
        """Write the blob files, then everything else in one SQLite transaction."""
        store = self.store
        for digest, data, _, _ in tx.blobs:
            if data is not None:
                store.blobs.put(data, digest)
        try:
            self._transaction(tx)
        except BaseException:
            self._rollback()
            raise

    def _transaction(self, tx: "_Transaction") -> None:
        """The SQLite transaction of :meth:`_commit` (the caller rolls back on failure)."""
        conn = self._conn
        now = tx.now
        conn.execute("BEGIN IMMEDIATE")
        gone = self._restore_files(tx)  # under the lock: see there
        if gone:
            self._record_lost(tx, gone)
        parts: list = []  # (dispatch id, part, value)
        for submission in tx.submissions:
            row = submission.row
            row["updated_us"] = now
            conn.execute(f"INSERT INTO dispatches ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(sql_text(v) for v in row.values()))
            did = row["dispatch_id"]
            parts.extend((did, name, value) for name, value in submission.parts.items())
        if tx.plans:
            conn.executemany("UPDATE dispatches SET status = ?, start_us = ?, updated_us = ? "
                             "WHERE dispatch_id = ? AND status = 'NEW_OBJECT'",
                             [(status, start, now, did) for status, start, _, _, did in tx.plans])
            parts.extend((did, "plan", plan) for _, _, plan, _, did in tx.plans)
        if tx.batches:
            conn.executemany("INSERT INTO node_batches (dispatch_id, payload) VALUES (?, ?)", tx.batches)
            conn.executemany("UPDATE dispatches SET updated_us = ? WHERE dispatch_id = ?",
                             [(now, did) for did in dict.fromkeys(did for did, _ in tx.batches)])
        if tx.blob_refs:
            conn.executemany("INSERT OR IGNORE INTO blob_refs (digest, dispatch_id, size) VALUES (?, ?, ?)",
                             tx.blob_refs)
        if tx.remote_refs:
            remote_blobs.record(conn, tx.remote_refs)
        if tx.finals:
            conn.executemany(
                "UPDATE dispatches SET status = ?, error = ?, start_us = ?, end_us = ?, updated_us = ?, "
                "reused = ?, recomputed = ? WHERE dispatch_id = ?",
                [f.row for f in tx.finals])
            for final in tx.finals:
                parts.append((final.dispatch_id, "outcome", final.outcome))
                if final.plan is not None:
                    parts.append((final.dispatch_id, "plan", final.plan))
        if parts:
            conn.executemany("INSERT OR REPLACE INTO dispatch_parts (dispatch_id, part, value) VALUES (?, ?, ?)",
                             parts)
        if tx.containers:
            conn.executemany("UPDATE dispatches SET container_id = ? WHERE dispatch_id = ?", tx.containers)
        if tx.key_rows and history_indexed(conn):  # read inside the transaction: see SQLiteStore.find_keys
            for did, keys, nodes, ends, refs, packed_nodes in tx.key_rows:
                found = conn.execute("SELECT seq FROM dispatches WHERE dispatch_id = ?", (did,)).fetchone()
                if found is not None:
                    end_of = dict(zip(nodes, ends))
                    conn.executemany("INSERT OR IGNORE INTO node_keys (key, seq, node, end_us) VALUES (?, ?, ?, ?)",
                                     index_rows(keys, found[0], (*refs, *packed_nodes), end_of))
        conn.execute("COMMIT")

    def _restore_files(self, tx: "_Transaction") -> dict:
        """Under the write lock: see that every file this transaction's records name is there.

        A delete or prune, in any process, removes a blob file once no stored
        record names it, and it unlinks under this same lock; so a file that is
        here now stays, since the records naming it are committed before the
        lock is let go.  One that went since it was written, or since a node
        chose to reuse the output it holds (the records naming it were
        deleted meanwhile), is written again from what this process holds: the
        bytes, or the value pickled again, or for a Dask output kept by
        reference the value this kernel fetched (:meth:`RemoteValue.ensure_stored`),
        each only if it still has the name's digest.  Returns ``{dispatch id:
        {file: why}}`` (a home blob by its reference bytes, other files by
        location) for the files gone for good.
        """
        store = self.store
        gone: dict = {}
        for digest, data, did, value in tx.blobs:
            if store.blobs.exists(digest):
                continue
            try:
                fresh = data if data is not None else dumps(value)
            except Exception:  # noqa: BLE001 - the value no longer pickles: the bytes are gone
                fresh = None
            if fresh is None or not store.blobs.restore(digest, fresh):
                gone.setdefault(did, {})[BLOB + digest.encode()] = (
                    f"its output's blob file {store.blobs.path(digest)} was removed (the dispatches naming it "
                    "were deleted) before this dispatch's record naming it was committed, and this process "
                    "no longer has those bytes")
        for did, reference in tx.unheld:
            location = reference.location
            try:
                if blob_exists(location):
                    continue
            except Exception:  # noqa: BLE001 - storage out of reach: it may well be there, keep the record
                continue
            try:
                restored = reference.ensure_stored()  # from the value this kernel fetched, if it did
            except Exception:  # noqa: BLE001 - the bytes could not be written again: gone
                restored = False
            if not restored:
                gone.setdefault(did, {})[location] = (
                    f"its output's blob file {location} was removed (the dispatches naming it were deleted) "
                    "before this dispatch's record naming it was committed, and this process holds neither "
                    "the value nor a Dask future of it")
        return gone

    def _record_lost(self, tx: "_Transaction", gone: dict) -> None:
        """Record as not stored, with the reason, the nodes of *tx* whose output names a file of *gone*.

        A later batch overrides an earlier one for the same node, so a batch
        appended now corrects the records this transaction carries; the
        history index leaves those nodes out, and a redispatch with reuse
        recomputes them and says why.  (Rare: decoding the batches is fine.)
        """
        for did, files in gone.items():
            final: dict = {}
            for batch_did, payload in tx.batches:
                if batch_did != did:
                    continue
                batch = decode_batch(payload)
                reused_from = batch.sparse.get("reused_from", {})
                for at, node in enumerate(batch.nodes):
                    final[node] = (batch.statuses[at], batch.starts[at], batch.ends[at], batch.refs.get(node),
                                   reused_from.get(node))
            lost = {node: (why, entry) for node, entry in final.items()
                    if entry[3] is not None and (why := _names_file(bytes(entry[3]), files)) is not None}
            if not lost:
                continue
            nodes = sorted(lost)
            sparse: dict = {"unstorable": {node: lost[node][0] for node in nodes}}
            origins = {node: lost[node][1][4] for node in nodes if lost[node][1][4] is not None}
            if origins:
                sparse["reused_from"] = origins
            statuses, starts, ends = ([lost[node][1][field] for node in nodes] for field in range(3))
            tx.batches.append((did, encode_batch(nodes, statuses, starts, ends, {}, [], [], sparse)))
            for key_did, _, _, _, refs, _ in tx.key_rows:
                if key_did == did:
                    for node in nodes:
                        refs.pop(node, None)
            for node in nodes:
                log.warning("covalent_nb: dispatch %s, node %d: %s; its record says the output was not stored "
                            "(a redispatch with reuse recomputes it)", did, node, lost[node][0])

    # -- building records ----------------------------------------------------------
    def _remote_refs(self, value: Any, did: str, tx: "_Transaction") -> None:
        """Name the blobs that Dask workers wrote for *value* (a RemoteValue, or a RemoteTree of them).

        One in this store's blobs gets a ``blob_refs`` row: the record names it
        (inline), and the row keeps the file until the dispatch is deleted.  One
        in blob storage elsewhere (a path or fsspec URL) gets a ``remote_blobs``
        row, so deleting the last dispatch naming it removes it there too.  A
        reference that holds no Dask future (an output reused by reference) is
        checked under the write lock (:meth:`_restore_files`); one that holds
        its future is this dispatch's own, checked when the dispatch ends
        (``RemoteValue.ensure_stored``), while the worker still keeps the value.
        """
        for reference in (value.references() if type(value) is RemoteTree else (value,)):
            if reference.digest is None or reference.location is None:
                continue
            if reference.future is None:
                tx.unheld.append((did, reference))
            if reference.location == self.store.blobs.path(reference.digest):
                tx.blob_refs.append((reference.digest, did, reference.size))
            else:
                tx.remote_refs.append((reference.location, did, reference.size))

    def _encode(self, did: str, records: list, by_value: bool, tx: "_Transaction") -> bytes:
        """One batch of node records, from the dispatcher's immutable records."""
        if len(records) > 1:  # a node's last record wins
            records = list({r.node_id: r for r in records}.values())
        nodes = [r.node_id for r in records]
        statuses = [r.status for r in records]
        starts = [r.start_us for r in records]
        ends = [r.end_us for r in records]
        completed = Status.COMPLETED
        packable = PACKABLE
        packed_nodes: list = []
        packed_values: list = []
        refs: dict = {}
        unstorable: dict = {}
        for record in records:
            node = record.node_id
            if record.status is not completed:
                continue
            if record.unstorable is not None:
                unstorable[node] = record.unstorable
                continue
            data = record.data  # the bytes taken when the task returned, if it took them
            value = record.output if data is None else None
            kind = type(value)
            if data is None and kind in packable and (kind is not str and kind is not bytes
                                                      or len(value) <= PACKABLE_LEN):
                packed_nodes.append(node)
                packed_values.append(value)
                continue
            self._store_value(did, node, value, data, record.reused_from, by_value, tx, refs, unstorable)
        state = self.progress.get(did)
        keys = state.keys if state is not None else None
        if keys:  # for the history index, if it is on (see _transaction): the nodes whose output is stored
            tx.key_rows.append((did, keys, nodes, ends, refs, packed_nodes))
        sparse: dict = {}
        for field, at in _SPARSE_AT:  # by position: a NodeRecord is a tuple (per node, getattr counts)
            found = {r[1]: r[at] for r in records if r[at]}
            if found:
                sparse[field] = found
        if unstorable:
            sparse["unstorable"] = unstorable
        subs = {r.node_id: r.sublattice_id for r in records if r.sublattice_id is not None}
        if subs:
            sparse["sublattice"] = subs
            tx.containers.extend((did, child) for child in subs.values())
        return encode_batch(nodes, statuses, starts, ends, refs, packed_nodes, packed_values, sparse)

    def _store_value(self, did: str, node: int, value: Any, data: Optional[bytes], source: Optional[tuple],
                     by_value: bool, tx: "_Transaction", refs: dict, unstorable: dict) -> None:
        """Put the reference to a node's output (not a packed one) in *refs*, or why not in *unstorable*."""
        known = self.store.known_refs
        ref = known.get(source) if source is not None else None
        if ref is not None:  # a large value stored before: name it, do not pickle it again
            digest = ref[1:].decode()
            tx.blobs.append((digest, data, did, value))  # if the blob went missing, rewrite it
            tx.blob_refs.append((digest, did, self.store.blobs.size(digest)))
            refs[node] = ref
            return
        kind = type(value)
        if kind is RemoteValue or kind is RemoteTree:
            self._remote_refs(value, did, tx)
        try:
            if data is None:
                data = dumps(value, by_value_registry=by_value)
        except Exception as exc:  # noqa: BLE001 - any pickling failure: stored as unstorable
            unstorable[node] = f"its output could not be pickled ({reason_of(exc)})"
            return
        if len(data) > self.store.inline_max:
            digest = blob_digest(data)
            ref = BLOB + digest.encode()
            tx.blobs.append((digest, data, did, None))
            tx.blob_refs.append((digest, did, len(data)))
            known[(did, node)] = ref
        else:
            ref = INLINE + data
        refs[node] = ref

    def _encode_block(self, did: str, block: Any, by_value: bool, tx: "_Transaction") -> bytes:
        """One batch holding a :class:`~covalent_nb.dispatch.node_records.ReusedBlock`: every node
        COMPLETED at the block's time, reused from the same node of ``block.origin``."""
        nodes = list(block.nodes)
        size = len(nodes)
        origin, data_of = block.origin, block.data
        refs: dict = {}
        unstorable: dict = {}
        rest_nodes, rest_values = nodes, block.outputs
        if data_of:  # mutable outputs: stored from the bytes taken when their tasks returned
            for node, data in data_of.items():
                self._store_value(did, node, None, data, (origin, node), by_value, tx, refs, unstorable)
            kept = [at for at, node in enumerate(nodes) if node not in data_of]
            rest_nodes, rest_values = [nodes[at] for at in kept], [block.outputs[at] for at in kept]
        if set(map(type, rest_values)) <= _SCALARS:  # the common case: every one packs, no look per node
            packed_nodes, packed_values = list(rest_nodes), list(rest_values)
        else:
            packed_nodes, packed_values = [], []
            for node, value in zip(rest_nodes, rest_values):
                kind = type(value)
                if kind in PACKABLE and (kind is not str and kind is not bytes or len(value) <= PACKABLE_LEN):
                    packed_nodes.append(node)
                    packed_values.append(value)
                else:
                    self._store_value(did, node, value, None, (origin, node), by_value, tx, refs, unstorable)
        ends = [block.time_us] * size
        state = self.progress.get(did)
        if state is not None and state.keys:  # for the history index, as in _encode
            tx.key_rows.append((did, state.keys, nodes, ends, refs, packed_nodes))
        sparse: dict = {"reused_from": origin}  # each node from its namesake (see records.encode_batch)
        if unstorable:
            sparse["unstorable"] = unstorable
        if block.sublattices:
            sparse["sublattice"] = dict(block.sublattices)
            tx.containers.extend((did, child) for child in block.sublattices.values())
        return encode_batch(nodes, [Status.COMPLETED] * size, list(ends), ends, refs, packed_nodes,
                            packed_values, sparse)

    def _final(self, state: _Progress, record: Any, by_value: bool, tx: "_Transaction") -> "_Final":
        """The last batch of a dispatch and the values of its final UPDATE."""
        did = record.dispatch_id
        if record.unreported:  # nodes that ended without an event (blocked ones)
            tx.batches.append((did, self._encode(did, list(record.unreported), by_value, tx)))
        status = record.status if record.status in ENDED else Status.FAILED
        plan = None
        if not state.plan_written or status is not Status.COMPLETED:
            plan = _encode_plan(record.plan)  # blocked nodes got their reasons after the start
        outcome = pickle.dumps({"executor_names": sorted(record.executor_names),
                                "result_node": record.result_node}, protocol=5)
        row = (str(status), sql_text(record.error), record.start_us, record.end_us, now_us(), record.reused,
               record.ran, did)
        return _Final(did, row, outcome, plan)


class _Final(NamedTuple):
    """A dispatch's final UPDATE (``row``, in the statement's order) and its last parts."""

    dispatch_id: str
    row: tuple
    outcome: bytes
    plan: Optional[bytes]


class _Transaction:
    """Everything one commit writes, gathered before the database is touched."""

    __slots__ = ("now", "submissions", "ends", "blobs", "blob_refs", "remote_refs", "batches", "plans",
                 "finals", "containers", "key_rows", "unheld")

    def __init__(self, now: int) -> None:
        self.now = now
        self.submissions: list = []  # Submission
        self.ends: list = []  # DispatchRecord
        self.blobs: list = []  # (digest, bytes or None, dispatch id, value or None)
        self.blob_refs: list = []  # (digest, dispatch id, size)
        self.remote_refs: list = []  # (location, dispatch id, size): blobs Dask workers wrote outside the home
        self.batches: list = []  # (dispatch id, payload)
        self.plans: list = []  # (status, start_us, plan bytes, updated_us, dispatch id)
        self.finals: list = []  # _Final
        self.containers: list = []  # (dispatch id, id of a sublattice dispatch one of its nodes ran)
        self.key_rows: list = []  # (dispatch id, keys, nodes, ends, refs, packed nodes) for the history index
        self.unheld: list = []  # (dispatch id, RemoteValue) named by a record, its value held by no future


def _names_file(ref: bytes, files: dict) -> Optional[str]:
    """Why the output behind value reference *ref* is gone, if it names a file of *files* (else None)."""
    why = files.get(ref)
    if why is not None or ref[:1] != INLINE:
        return why
    if not any(type(place) is str and place.encode() in ref for place in files):
        return None  # a pickled reference holds its location as text: this one names none of them
    try:
        value = loads(ref[1:])
    except Exception:  # noqa: BLE001 - not something this process can load: not a reference
        return None
    kind = type(value)
    references = value.references() if kind is RemoteTree else (value,) if kind is RemoteValue else ()
    for reference in references:
        if reference.location in files:
            return files[reference.location]
    return None


def _encode_plan(plan: Any) -> bytes:
    return encode_plan(list(plan.keys), plan.unhashable, plan.reasons)
