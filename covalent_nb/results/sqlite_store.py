"""The durable store: SQLite (WAL) for records, content-addressed blob files for large values.

Layout of a store's home (created private to the user, mode 0700)::

    <home>/dispatches.db      SQLite database in WAL mode (mode 0600)
    <home>/blobs/ab/abcd...   values too large to keep inline, named by digest
    <home>/owners/<token>     one lock file per process using the store

Tables:

``dispatches``
    one row per dispatch: lineage, status, times, counts, and value
    references to its graph, inputs and snapshot (``(lattice,
    replacements)``); ``facts`` (known at submission), ``plan`` (node keys and
    reuse reasons, known once it starts) and ``outcome`` (known at its end)
    are small pickled dicts.
``node_batches``
    node records, a batch of columns per writer flush (see
    :mod:`covalent_nb.results.records`).
``blob_refs``
    which dispatch refers to which blob, so a delete removes a blob only
    when nothing else refers to it.

Writes go through one :class:`~covalent_nb.results.writer.Writer` thread per
store; reads, deletes and recovery use a second connection from the caller's
thread.  Any number of processes can use the same home at once: SQLite's
locks serialise their transactions, and each process's owner lock
(:mod:`covalent_nb.results.owners`) tells the others whether its unfinished
dispatches are still running or were interrupted.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import sqlite3
import threading
import time
from typing import Any, Iterable, Optional

import cloudpickle

from ..dispatch import registry
from .blobs import BlobError, BlobStore, blob_digest
from .graph_codec import decode_graph, encode_graph
from .history import DispatchList, SpaceFreed, prune_cutoff_us, summary
from .loaded import LazyOutputs, StoredLattice, StoredResult
from .owners import OwnerLock
from .records import SPARSE_FIELDS, decode_batch, decode_plan, summarize
from .status import ENDED, Status
from .values import BLOB, INLINE, NotStored, StoreError, dumps, loads, reason_of
from .writer import Submission, Writer

__all__ = ["SQLiteStore"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DATABASE = "dispatches.db"
_UNFINISHED = ("NEW_OBJECT", "RUNNING")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dispatches (
    seq          INTEGER PRIMARY KEY,
    dispatch_id  TEXT NOT NULL UNIQUE,
    lattice_name TEXT NOT NULL,
    status       TEXT NOT NULL,
    will_run     INTEGER NOT NULL,   -- 0 for dispatch(..., disable_run=True)
    sublattice   INTEGER NOT NULL,   -- 1 for a sublattice's own dispatch
    container_id TEXT,               -- the dispatch whose sublattice node ran this one
    parent_id    TEXT,               -- redispatched from
    root_id      TEXT NOT NULL,
    submitted_us INTEGER NOT NULL,
    start_us     INTEGER,
    end_us       INTEGER,
    updated_us   INTEGER NOT NULL,   -- last write: when an interrupted dispatch was last seen alive
    error        TEXT,
    node_count   INTEGER NOT NULL,
    task_count   INTEGER NOT NULL,   -- nodes other than parameters
    reused       INTEGER,
    recomputed   INTEGER,
    owner        TEXT NOT NULL,      -- owner token of the process that ran it
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    graph        BLOB,               -- value references (see values.py)
    inputs       BLOB,
    snapshot     BLOB,
    facts        BLOB NOT NULL,
    plan         BLOB,
    outcome      BLOB
);
CREATE INDEX IF NOT EXISTS dispatches_by_time ON dispatches (submitted_us);
CREATE INDEX IF NOT EXISTS dispatches_unfinished ON dispatches (status)
    WHERE status IN ('NEW_OBJECT', 'RUNNING');
CREATE INDEX IF NOT EXISTS dispatches_by_container ON dispatches (container_id)
    WHERE container_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS node_batches (
    id          INTEGER PRIMARY KEY,
    dispatch_id TEXT NOT NULL,
    payload     BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS node_batches_by_dispatch ON node_batches (dispatch_id);
CREATE TABLE IF NOT EXISTS blob_refs (
    digest      TEXT NOT NULL,
    dispatch_id TEXT NOT NULL,
    size        INTEGER NOT NULL,
    PRIMARY KEY (digest, dispatch_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_by_dispatch ON blob_refs (dispatch_id);
"""


def make_private_dir(path: str) -> None:
    """Create *path* (and missing parents) readable by this user only."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # makedirs' mode is filtered by the umask; be explicit


def now_us() -> int:
    return time.time_ns() // 1000


class SQLiteStore:
    """A durable store in one home directory (see the module docstring)."""

    def __init__(self, home: str, inline_max: int = 16 * 1024) -> None:
        self.home = os.path.abspath(os.path.expanduser(home))
        self.location = self.home
        self.inline_max = int(inline_max)
        make_private_dir(self.home)
        self.db_path = os.path.join(self.home, DATABASE)
        self.blobs = BlobStore(os.path.join(self.home, "blobs"))
        self.blobs.clean_tmp()
        self.owner = OwnerLock(os.path.join(self.home, "owners"))
        self.known_refs: dict = {}  # (dispatch id, node) -> blob reference of a large output
        self._lock = threading.RLock()
        self._conn = self.connect()
        self._create_schema()
        self._live: dict = {}  # dispatch id -> Result submitted here and not yet ended
        self._loading: set = set()
        self._closed = False
        self.recover()
        self.writer = Writer(self)
        atexit.register(self.close)

    # -- connections and schema ----------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection to this store's database, in WAL mode."""
        if not os.path.exists(self.db_path):
            os.close(os.open(self.db_path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite copies these modes
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect on a new database
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _create_schema(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the store in {self.home} was written by a newer covalent_nb "
                             f"(format {version}; this one reads format {SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- the dispatcher's three calls ---------------------------------------------
    def dispatch_submitted(self, result: Any) -> None:
        """Store a new dispatch; return once its row is committed.

        Never raises: a dispatch that cannot be stored still runs, with
        ``result.store_error`` saying why.
        """
        from .store import _owners

        try:
            submission = self._submission(result)
            self.writer.request("submit", submission)
        except Exception as exc:  # noqa: BLE001
            result.store_error = f"the dispatch could not be stored in {self.home}: {reason_of(exc)}"
            log.warning("covalent_nb: %s", result.store_error)
            return
        self._live[result.dispatch_id] = result
        _owners[result.dispatch_id] = self

    def on_events(self, events: list) -> None:
        """Receive a batch of the dispatcher's events (only queues them)."""
        self.writer.put_events(events)

    def dispatch_ended(self, result: Any) -> None:
        """Write a dispatch's remaining records; return once they are durable."""
        from .store import _owners

        _owners.pop(result.dispatch_id, None)
        if self._live.pop(result.dispatch_id, None) is None:
            return  # never stored (see dispatch_submitted)
        try:
            self.writer.request("end", result)
        except Exception as exc:
            raise StoreError(f"the records of dispatch {result.dispatch_id} could not be written to "
                             f"{self.db_path}: {reason_of(exc)}") from exc

    def load(self, dispatch_id: str) -> Optional[StoredResult]:
        """Rebuild a dispatch's :class:`Result` from the store, or return None."""
        row = self._row(dispatch_id)
        if row is None:
            return None
        if row["status"] in _UNFINISHED and row["owner"] != self.owner.token:
            self.recover()
            row = self._row(dispatch_id)
        return self._build(row)

    # -- submission ------------------------------------------------------------------
    def _ref(self, data: bytes, blobs: list) -> bytes:
        if len(data) > self.inline_max:
            digest = blob_digest(data)
            blobs.append((digest, data))
            return BLOB + digest.encode()
        return INLINE + data

    def _submission(self, result: Any) -> Submission:
        blobs: list = []
        graph = result.graph
        graph_data, graph_note = encode_graph(graph)
        inputs = {"args": list(result.inputs["args"]), "kwargs": dict(result.inputs["kwargs"])}
        try:
            inputs_data, inputs_note = dumps(inputs), None
        except Exception as exc:  # noqa: BLE001 - the dispatch runs anyway
            inputs_data, inputs_note = None, f"inputs could not be pickled ({reason_of(exc)})"
        facts = {
            "replaced_nodes": sorted(result.replaced_nodes),
            "reuse_requested": bool(result.reuse_requested),
            "function_parts": result.function_parts,
            "executor_names": sorted(result.executor_names),
            "snapshot_error": getattr(result, "snapshot_error", None),
            "graph_note": graph_note,
            "inputs_note": inputs_note,
        }
        task_count = sum(1 for kind in graph.kinds if kind != "parameter")
        row = {
            "dispatch_id": result.dispatch_id,
            "lattice_name": getattr(result.lattice, "__name__", "?"),
            "status": str(Status.NEW_OBJECT),
            "will_run": int(registry.running(result.dispatch_id) is not None),
            "sublattice": int(bool(getattr(result, "is_sublattice_dispatch", False))),
            "parent_id": result.parent_dispatch_id,
            "root_id": result.root_dispatch_id,
            "submitted_us": now_us(),
            "node_count": len(graph),
            "task_count": task_count,
            "owner": self.owner.token,
            "host": self.owner.host,
            "pid": self.owner.pid,
            "graph": self._ref(graph_data, blobs),
            "inputs": None if inputs_data is None else self._ref(inputs_data, blobs),
            "snapshot": None if result.snapshot is None else self._ref(result.snapshot, blobs),
            "facts": pickle.dumps(facts, protocol=5),
        }
        return Submission(result, row, blobs)

    # -- reading -----------------------------------------------------------------------
    def _row(self, dispatch_id: str) -> Optional[dict]:
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM dispatches WHERE dispatch_id = ?", (dispatch_id,))
            values = cursor.fetchone()
            if values is None:
                return None
            return dict(zip((c[0] for c in cursor.description), values))

    def _batches(self, dispatch_id: str) -> list:
        with self._lock:
            payloads = [p for (p,) in self._conn.execute(
                "SELECT payload FROM node_batches WHERE dispatch_id = ? ORDER BY id", (dispatch_id,))]
        batches = []
        for payload in payloads:
            try:
                batches.append(decode_batch(payload))
            except Exception as exc:  # noqa: BLE001 - one bad batch must not hide the others
                log.warning("covalent_nb: a batch of node records of dispatch %s in %s cannot be read (%s)",
                            dispatch_id, self.db_path, reason_of(exc))
        return batches

    def _ref_bytes(self, ref: bytes, what: str) -> bytes:
        """The bytes a value reference points to; StoreError naming *what* and the file."""
        ref = bytes(ref)
        if ref[:1] == INLINE:
            return ref[1:]
        if ref[:1] == BLOB:
            try:
                return self.blobs.get(ref[1:].decode("ascii", "replace"))
            except (BlobError, ValueError) as exc:
                raise StoreError(f"{what}: {exc}") from None
        raise StoreError(f"{what}: unknown value reference in {self.db_path}")

    def _ref_value(self, ref: bytes, what: str, decode: Any = loads) -> Any:
        data = self._ref_bytes(ref, what)
        try:
            return decode(data)
        except Exception as exc:  # noqa: BLE001
            where = f"blob file {self.blobs.path(bytes(ref)[1:].decode())}" if bytes(ref)[:1] == BLOB \
                else f"the database {self.db_path}"
            raise StoreError(f"{what}: the stored value in {where} cannot be loaded here "
                             f"({reason_of(exc)})") from exc

    def _build(self, row: dict) -> StoredResult:
        did = row["dispatch_id"]
        if did in self._loading:  # a sublattice cycle cannot happen, but never recurse forever
            raise StoreError(f"dispatch {did} refers to itself")
        self._loading.add(did)
        try:
            return self._build_unguarded(row)
        finally:
            self._loading.discard(did)

    def _build_unguarded(self, row: dict) -> StoredResult:
        did = row["dispatch_id"]
        facts = pickle.loads(row["facts"])
        if row["graph"] is None:
            raise StoreError(f"dispatch {did} was stored without its graph")
        graph = self._ref_value(row["graph"], f"dispatch {did}, its graph", decode_graph)
        if row["inputs"] is not None:
            inputs = self._ref_value(row["inputs"], f"dispatch {did}, its inputs")
        else:
            inputs = {"args": [], "kwargs": {}}
        lattice: Any = None
        replacements: dict = {}
        snapshot = None
        why = facts.get("snapshot_error") or "no snapshot was stored"
        if row["snapshot"] is not None:
            try:
                snapshot = self._ref_bytes(row["snapshot"], f"dispatch {did}, its lattice snapshot")
                lattice, replacements = cloudpickle.loads(snapshot)
            except Exception as exc:  # noqa: BLE001 - the records are still worth reading
                why = reason_of(exc)
                lattice = None
        if lattice is None:
            lattice = StoredLattice(row["lattice_name"], why, did)
        result = StoredResult(
            did, lattice.copy_for_dispatch(graph, tuple(inputs["args"]), dict(inputs["kwargs"])), graph,
            tuple(inputs["args"]), dict(inputs["kwargs"]), parent_dispatch_id=row["parent_id"],
            root_dispatch_id=row["root_id"], replacements=replacements,
            replaced_nodes=frozenset(facts["replaced_nodes"]), reuse_requested=facts["reuse_requested"])
        result.snapshot = snapshot
        result.function_parts = facts["function_parts"]
        result.executor_names = set(facts["executor_names"])
        result.is_sublattice_dispatch = bool(row["sublattice"])
        result.store_notes = [n for n in (facts.get("graph_note"), facts.get("inputs_note")) if n]
        if facts.get("snapshot_error"):
            result.snapshot_error = facts["snapshot_error"]
        result._init_stored(self, None)
        self._fill(result, row)
        return result

    def _fill(self, result: StoredResult, row: dict) -> None:
        """Set a loaded result's status and node records from *row* and its batches."""
        did = row["dispatch_id"]
        graph = result.graph
        table = result._table
        size = len(graph)
        result.status = Status(row["status"])
        result.error = row["error"]
        result.start_us, result.end_us = row["start_us"], row["end_us"]
        if row["plan"] is not None:
            keys, unhashable, reasons = decode_plan(row["plan"])
            table.key = keys
            result._unhashable = dict(unhashable)
            table.reason = dict(reasons)
        outcome = pickle.loads(row["outcome"]) if row["outcome"] is not None else {}
        if outcome.get("executor_names"):
            result.executor_names = set(outcome["executor_names"])

        status, start, end = [Status.NEW_OBJECT] * size, [None] * size, [None] * size
        values: list = [None] * size
        unloaded = LazyOutputs.unloaded()
        if result.start_us is not None:  # parameters completed when the dispatch started
            t0 = result.start_us
            for node, kind in enumerate(graph.kinds):
                if kind == "parameter":
                    status[node] = Status.COMPLETED
                    start[node] = end[node] = t0
                    values[node] = graph.values[node]
        refs: dict = {}
        sparse: dict = {field: {} for field in SPARSE_FIELDS}
        for batch in self._batches(did):
            for node, node_status, node_start, node_end in zip(batch.nodes, batch.statuses, batch.starts,
                                                               batch.ends):
                if 0 <= node < size:
                    status[node], start[node], end[node] = node_status, node_start, node_end
                    values[node] = None
                    refs.pop(node, None)
            for node, value in batch.packed.items():
                if 0 <= node < size:
                    values[node] = value
            for node, ref in batch.refs.items():
                if 0 <= node < size:
                    refs[node] = ref
                    values[node] = unloaded
            for field, entries in batch.sparse.items():
                if field in sparse:
                    sparse[field].update(entries)
        for node, reason in sparse["unstorable"].items():
            values[node] = NotStored(reason)
        for node, ref in refs.items():
            if bytes(ref)[:1] == BLOB:
                self.known_refs.setdefault((did, node), bytes(ref))
                if not self.blobs.exists(bytes(ref)[1:].decode("ascii", "replace")):
                    # Found now, so a redispatch recomputes this node and says why,
                    # instead of failing when it reaches for the value.
                    sparse["unstorable"][node] = (f"its output's blob file "
                                                  f"{self.blobs.path(bytes(ref)[1:].decode())} is missing")
        table.status, table.start, table.end = status, start, end
        table.output = LazyOutputs(values, self._output_loader(did, graph.names, refs))
        table.error = sparse["error"]
        table.stdout = sparse["stdout"]
        table.stderr = sparse["stderr"]
        table.executor = sparse["executor"]
        table.unstorable = sparse["unstorable"]
        table.reused_from = {n: tuple(v) for n, v in sparse["reused_from"].items()}
        table.sublattice = {}
        for node, child_id in sparse["sublattice"].items():
            child = registry.lookup(child_id) or self._load_child(child_id)
            if child is not None:
                table.sublattice[node] = child
        result._init_stored(self, outcome.get("result_node"))
        result._mark_done_if_ended()

    def _load_child(self, dispatch_id: str) -> Optional[StoredResult]:
        try:
            return self.load(dispatch_id)
        except StoreError as exc:
            log.warning("covalent_nb: sublattice dispatch %s cannot be loaded: %s", dispatch_id, exc)
            return None

    def _output_loader(self, did: str, names: list, refs: dict):
        def load(node: int) -> Any:
            ref = refs.get(node)
            what = f"dispatch {did}, node {node} ({names[node]}), output"
            if ref is None:
                raise StoreError(f"{what}: no stored value")
            return self._ref_value(ref, what)

        return load

    def refresh(self, result: StoredResult) -> bool:
        """Bring a loaded result up to date; True once its dispatch has ended."""
        row = self._row(result.dispatch_id)
        if row is None:
            raise StoreError(f"dispatch {result.dispatch_id} was deleted from {self.home} while waited on")
        if row["status"] in _UNFINISHED:
            self.recover()
            row = self._row(result.dispatch_id)
        if row["status"] in _UNFINISHED:
            return False
        self._fill(result, row)
        return True

    # -- history -------------------------------------------------------------------------
    def list_dispatches(self, limit: Optional[int] = None, include_sublattices: bool = False) -> DispatchList:
        """Summaries of the stored dispatches, newest first (see :mod:`.history`)."""
        self.recover()
        query = ("SELECT dispatch_id, lattice_name, status, start_us, end_us, parent_id, reused, recomputed "
                 "FROM dispatches" + ("" if include_sublattices else " WHERE sublattice = 0") +
                 " ORDER BY submitted_us DESC, seq DESC")
        parameters: tuple = ()
        if limit is not None:
            query += " LIMIT ?"
            parameters = (int(limit),)
        with self._lock:
            rows = self._conn.execute(query, parameters).fetchall()
        return DispatchList(summary(*row) for row in rows)

    def delete_dispatch(self, dispatch_id: str) -> SpaceFreed:
        """Delete one ended dispatch (and its sublattice dispatches); report the space freed."""
        row = self._row(dispatch_id)
        if row is None:
            raise ValueError(f"no dispatch with id {dispatch_id!r} in the store {self.home}")
        if row["status"] in _UNFINISHED:
            self.recover()
            row = self._row(dispatch_id)
            if row["status"] in _UNFINISHED:
                raise ValueError(f"dispatch {dispatch_id} is still running (process {row['pid']} on "
                                 f"{row['host']}); cancel it or wait for it to end before deleting it")
        return self._delete([dispatch_id])

    def prune_dispatches(self, older_than: Any = None, keep_last: Optional[int] = None,
                         status: Optional[Iterable[str]] = None) -> SpaceFreed:
        """Delete ended dispatches matching every criterion given; report the space freed."""
        if older_than is None and keep_last is None and status is None:
            raise ValueError("say what to prune: older_than=datetime.timedelta(days=30), keep_last=100, "
                             "status=['FAILED', 'CANCELLED', 'INTERRUPTED'], or several of them")
        cutoff = prune_cutoff_us(older_than)
        if keep_last is not None and (not isinstance(keep_last, int) or keep_last < 0):
            raise ValueError(f"keep_last is a number of dispatches (0 or more), not {keep_last!r}")
        statuses = None if status is None else {str(Status(s)) for s in ([status] if isinstance(status, str) else status)}
        self.recover()
        with self._lock:
            rows = self._conn.execute(
                "SELECT dispatch_id, status, submitted_us FROM dispatches WHERE sublattice = 0 "
                "ORDER BY submitted_us DESC, seq DESC").fetchall()
        doomed = []
        for index, (did, row_status, submitted) in enumerate(rows):
            if row_status in _UNFINISHED:
                continue
            if keep_last is not None and index < keep_last:
                continue
            if cutoff is not None and submitted >= cutoff:
                continue
            if statuses is not None and row_status not in statuses:
                continue
            doomed.append(did)
        return self._delete(doomed)

    def _delete(self, dispatch_ids: list) -> SpaceFreed:
        if not dispatch_ids:
            return SpaceFreed()
        with self._lock:
            conn = self._conn
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
                keyed = [(did,) for did in ids]
                conn.executemany("DELETE FROM node_batches WHERE dispatch_id = ?", keyed)
                conn.executemany("DELETE FROM blob_refs WHERE dispatch_id = ?", keyed)
                conn.executemany("DELETE FROM dispatches WHERE dispatch_id = ?", keyed)
                orphans = [d for d in sorted(digests) if conn.execute(
                    "SELECT 1 FROM blob_refs WHERE digest = ? LIMIT 1", (d,)).fetchone() is None]
                free_after = conn.execute("PRAGMA freelist_count").fetchone()[0]
                # Unlink while holding the write lock: a writer that names one of
                # these blobs checks the file exists under the same lock.
                blob_bytes = sum(self.blobs.remove(d) for d in orphans)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("PRAGMA incremental_vacuum")  # give the freed pages back to the file system
            except sqlite3.Error:
                pass
        for did in ids:
            registry.forget(did)
            for key in [k for k in self.known_refs if k[0] == did]:
                del self.known_refs[key]
        return SpaceFreed(ids, blob_bytes, max(0, free_after - free_before) * page_size)

    # -- interrupted dispatches -----------------------------------------------------------
    def recover(self) -> list:
        """Mark INTERRUPTED the unfinished dispatches whose process has ended; return their ids."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT dispatch_id, owner, host, pid, task_count, updated_us, start_us FROM dispatches "
                "WHERE status IN ('NEW_OBJECT', 'RUNNING') AND will_run = 1").fetchall()
        verdicts: dict = {}
        dead = []
        for row in rows:
            owner = row[1]
            if owner not in verdicts:
                verdicts[owner] = self.owner.alive(owner)
            if verdicts[owner] is False:
                dead.append(row)
        if not dead:
            return []
        updates = []
        for did, owner, host, pid, task_count, updated_us, start_us in dead:
            completed, reused, recomputed, last_end = summarize(self._batches(did))
            error = (f"the process running this dispatch (pid {pid} on {host}) ended during the run; "
                     f"{completed} of {task_count} task node(s) had completed, and their outputs are kept "
                     "for reuse")
            end_us = max(x for x in (updated_us, last_end, start_us) if x is not None)
            updates.append((error, end_us, reused, recomputed, did))
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE dispatches SET status = 'INTERRUPTED', error = ?, end_us = ?, reused = ?, "
                    "recomputed = ? WHERE dispatch_id = ? AND status IN ('NEW_OBJECT', 'RUNNING')", updates)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        for owner, alive in verdicts.items():
            if alive is False:
                self.owner.forget(owner)
        return [u[-1] for u in updates]

    # -- lifetime --------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        self.writer.request("flush")

    def close(self) -> None:
        """Flush, mark this process's unfinished dispatches INTERRUPTED, and let go of the home.

        Runs at interpreter exit: dispatches still running then are ended by
        the exit itself.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self.writer.request("stop")
        except Exception as exc:  # noqa: BLE001 - exiting: say so, never raise
            log.warning("covalent_nb: the store's last writes failed: %s", reason_of(exc))
        with self._lock:
            rows = self._conn.execute(
                "SELECT dispatch_id, task_count, start_us FROM dispatches WHERE owner = ? AND will_run = 1 "
                "AND status IN ('NEW_OBJECT', 'RUNNING')", (self.owner.token,)).fetchall()
            updates = []
            for did, task_count, start_us in rows:
                completed, reused, recomputed, last_end = summarize(self._batches(did))
                error = (f"the process running this dispatch (pid {self.owner.pid} on {self.owner.host}) "
                         f"ended during the run; {completed} of {task_count} task node(s) had completed, "
                         "and their outputs are kept for reuse")
                end = now_us()
                updates.append((error, end, reused, recomputed, did))
            if updates:
                try:
                    self._conn.executemany(
                        "UPDATE dispatches SET status = 'INTERRUPTED', error = ?, end_us = ?, reused = ?, "
                        "recomputed = ? WHERE dispatch_id = ? AND status IN ('NEW_OBJECT', 'RUNNING')", updates)
                except sqlite3.Error as exc:
                    log.warning("covalent_nb: could not mark interrupted dispatches: %s", exc)
            self._conn.close()
        self.owner.release()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
