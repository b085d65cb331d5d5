"""The durable store: SQLite (WAL) for records, content-addressed blob files for large values.

Layout of a store's home (created private to the user, mode 0700)::

    <home>/dispatches.db      SQLite database in WAL mode (mode 0600)
    <home>/blobs/ab/abcd...   values too large to keep inline, named by digest
    <home>/owners/<token>     one lock file per process using the store

Tables:

``dispatches``
    one small row per dispatch: lineage, status, times, counts, owner.
``dispatch_parts``
    the rest of a dispatch, one row per part, written once each: value
    references to its ``graph``, ``inputs`` and ``snapshot`` (``(lattice,
    replacements)``), and pickled dicts: ``facts`` (known at submission),
    ``plan`` (node keys and reuse reasons, known once it starts) and
    ``outcome`` (known at its end).  Kept apart because SQLite rewrites a
    whole row to change one column: status updates must not rewrite a
    20,000-node plan.
``node_batches``
    node records, a batch of columns per writer flush (see
    :mod:`covalent_nb.results.records`).
``blob_refs``
    which dispatch refers to which blob, so a delete removes a blob only
    when nothing else refers to it.
``node_keys``
    the history index: the reuse key of every COMPLETED node whose output is
    stored, so that ``ct.dispatch(..., reuse_previous_results=True)`` finds an
    earlier run of the same work in one indexed lookup per key, however long
    the history (see :meth:`SQLiteStore.find_keys`).  Kept only in homes
    where reuse from history has been used (``settings``): an index row costs
    10-25 µs of random B-tree insertion, as much as a small task's whole
    dispatch, which nobody who never reuses from history should pay.
``settings``
    facts about the home itself (``history_index``).

Writes go through one :class:`~covalent_nb.results.writer.Writer` thread per
store; reads, deletes and recovery use a second connection from the caller's
thread.  Any number of processes can use the same home at once: SQLite's
locks serialise their transactions, and each process's owner lock
(:mod:`covalent_nb.results.owners`) tells the others whether its unfinished
dispatches are still running or were interrupted.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import pickle
import sqlite3
import stat
import threading
import time
import warnings
from typing import Any, Callable, Iterable, Optional

from .blobs import BlobStore, blob_digest
from .graph_codec import encode_graph
from .history import DispatchList, SpaceFreed, check_prune_criteria, summary
from .loaded import StoredResult
from .owners import OwnerLock
from .reading import build_result, fill_records
from .records import decode_batch, decode_plan
from ..dispatch.reuse import HistoryHit
from ..states import NodeKind, Status, now_us
from .upkeep import delete, mark_interrupted, recover, sweep_orphan_blobs
from .values import BLOB, INLINE, NotStored, StoreError, StoreUnavailable, dumps, reason_of
from .records import index_rows
from .writer import DELAYED, Submission, Writer, history_indexed

__all__ = ["SQLiteStore"]

#: dispatch id -> the durable store that is writing it (while it runs); the events router reads it.
STORE_OF: dict = {}

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 1: a development format, never released; 2: before node_keys (migrated on open)
DATABASE = "dispatches.db"
_UNFINISHED = ("NEW_OBJECT", "RUNNING")
#: How long a whole dispatch id that is not in the store is looked for again (see SQLiteStore.load).
NEW_ID_GRACE_S = 0.5
PARTS = ("graph", "inputs", "snapshot", "facts", "plan", "outcome")

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
    pid          INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dispatches_by_time ON dispatches (submitted_us);
CREATE INDEX IF NOT EXISTS dispatches_unfinished ON dispatches (status)
    WHERE status IN ('NEW_OBJECT', 'RUNNING');
CREATE INDEX IF NOT EXISTS dispatches_by_container ON dispatches (container_id)
    WHERE container_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS dispatch_parts (
    id          INTEGER PRIMARY KEY,
    dispatch_id TEXT NOT NULL,
    part        TEXT NOT NULL,       -- graph, inputs, snapshot (value references), facts, plan, outcome
    value       BLOB,
    UNIQUE (dispatch_id, part)
);
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
CREATE TABLE IF NOT EXISTS node_keys (
    key         BLOB NOT NULL,       -- a COMPLETED node's reuse key (16 bytes), its output stored
    seq         INTEGER NOT NULL,    -- dispatches.seq of its dispatch
    node        INTEGER NOT NULL,
    end_us      INTEGER NOT NULL,
    PRIMARY KEY (key, seq, node)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (
    name        TEXT PRIMARY KEY,    -- history_index: present once node_keys is kept up to date
    value       TEXT
) WITHOUT ROWID;
"""


def make_private_dir(path: str) -> None:
    """Create *path*, and any missing parent, readable by this user only (mode 0700).

    Modes are set explicitly, so a permissive umask (``umask 000``) never makes
    a world-writable parent.  A home that already exists and lets others in is
    tightened to 0700, with a warning that says so (or, when this user cannot
    change it, a warning that it is exposed).
    """
    missing = []
    parent = path
    while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            continue  # made by another process meanwhile
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask; be explicit
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            warnings.warn(f"covalent_nb's store home {path} can be used by other users (mode {mode:o}) and "
                          f"could not be made private ({exc.strerror}); anyone who can write there can make "
                          "this kernel run code when it loads a result. Choose a private home with "
                          "ct.set_config(home=...)", RuntimeWarning, stacklevel=2)
        else:
            warnings.warn(f"covalent_nb's store home {path} could be used by other users (mode {mode:o}); "
                          "it is now private to you (mode 700), because loading a stored result runs code",
                          RuntimeWarning, stacklevel=2)


def damaged(db_path: str, exc: BaseException, dispatch_id: Optional[str] = None) -> StoreError:
    """The error for a damaged database file: what is damaged, and the ways out."""
    where = f" while reading dispatch {dispatch_id}" if dispatch_id else ""
    first = (f"if only that dispatch is affected, ct.delete_dispatch({dispatch_id!r}) removes it; otherwise "
             if dispatch_id else "")
    return StoreError(f"the store's database {db_path} is damaged ({exc}){where}. To go on, {first}move "
                      f"{db_path} (with its -wal and -shm files) away (covalent_nb then starts an empty store in its place; "
                      f"'sqlite3 <moved file> .recover' can salvage what is readable)")


def _names_damage(method: Callable) -> Callable:
    """Turn SQLite's bare 'database disk image is malformed' into an error naming the file and the way out."""

    @functools.wraps(method)
    def wrapper(self: "SQLiteStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # locked, full, ...: not damage
                raise
            did = args[0] if args and isinstance(args[0], str) else getattr(args[0], "dispatch_id", None) \
                if args else None
            raise damaged(self.db_path, exc, did) from exc

    return wrapper




def _storable(value: Any) -> Any:
    """*value* if it pickles, else a NotStored saying why."""
    try:
        dumps(value)
    except Exception as exc:  # noqa: BLE001
        return NotStored(reason_of(exc))
    return value


def index_history(conn: sqlite3.Connection) -> int:
    """Fill ``node_keys`` from every dispatch stored so far; return how many rows it added."""
    before = conn.total_changes
    for seq, did, plan in conn.execute(
            "SELECT d.seq, d.dispatch_id, p.value FROM dispatches d JOIN dispatch_parts p "
            "ON p.dispatch_id = d.dispatch_id AND p.part = 'plan'").fetchall():
        try:
            keys = decode_plan(plan)[0]
            final: dict = {}
            for (payload,) in conn.execute("SELECT payload FROM node_batches WHERE dispatch_id = ? ORDER BY id",
                                           (did,)):
                batch = decode_batch(payload)
                for node, status, end in zip(batch.nodes, batch.statuses, batch.ends):
                    stored = node in batch.refs or node in batch.packed
                    final[node] = (status is Status.COMPLETED and stored, end)
        except Exception as exc:  # noqa: BLE001 - a dispatch that cannot be read is left out of history
            log.warning("covalent_nb: dispatch %s is left out of the reuse history (%s)", did, reason_of(exc))
            continue
        rows = index_rows(keys, seq, [node for node, (ok, _) in final.items() if ok],
                          {node: end for node, (_, end) in final.items()})
        conn.executemany("INSERT OR IGNORE INTO node_keys (key, seq, node, end_us) VALUES (?, ?, ?, ?)", rows)
    return conn.total_changes - before


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
        self._digests: dict = {}  # id(graph bytes) -> (the bytes, their blob digest): see _ref
        self._lock = threading.RLock()
        self._conn = self.connect()
        self._create_schema()
        self._live: dict = {}  # dispatch id -> Result submitted here and not yet ended
        self._loading: set = set()
        self._history_on = False  # the history index is known to be on (see find_keys)
        self._closed = False
        try:  # a damaged page must not make the whole store unusable: reads that miss it still work
            self.recover()
        except StoreError as exc:
            log.warning("covalent_nb: %s", exc)
        self.owner.sweep()
        try:
            sweep_orphan_blobs(self)
        except sqlite3.DatabaseError as exc:
            log.warning("covalent_nb: %s", damaged(self.db_path, exc))
        self.writer = Writer(self)
        atexit.register(self.close)

    # -- connections and schema ----------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        """A new connection to this store's database, in WAL mode."""
        if not os.path.exists(self.db_path):
            os.close(os.open(self.db_path, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite copies these modes
        conn = sqlite3.connect(self.db_path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL itself is set once, in the file (_create_schema)
        return conn

    def _create_schema(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the store in {self.home} was written by a newer covalent_nb "
                             f"(format {version}; this one reads format {SCHEMA_VERSION})")
        if version == 1:
            raise StoreError(f"the store in {self.home} has format {version}, a development format this "
                             f"covalent_nb does not read; move {self.db_path} away to start afresh")
        if version == 0:  # a new database: settings that only take effect before the first table
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: every later connection uses it
        if version == SCHEMA_VERSION:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if {"node_keys", "settings"} <= tables:
                return
            # a home of this format made before those two tables existed (never released): add them
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA.split(";"):  # (so no comment in _SCHEMA may hold a semicolon)
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- the dispatcher's three calls ---------------------------------------------
    def dispatch_submitted(self, result: Any) -> None:
        """Queue a new dispatch for the store and return at once.

        The writer commits its row before any other record of the dispatch,
        within :attr:`Writer.gather_s` (at once when something waits, such as
        the dispatch's end).  Never raises: a dispatch that cannot be stored
        still runs, with ``result.store_error`` saying why.
        """
        try:
            submission = self._submission(result)
        except Exception as exc:  # noqa: BLE001
            result.store_error = f"the dispatch could not be stored in {self.home}: {reason_of(exc)}"
            log.warning("covalent_nb: %s", result.store_error)
            return
        self._live[result.dispatch_id] = result
        STORE_OF[result.dispatch_id] = self
        try:
            self.writer.submit(submission)
        except Exception as exc:  # noqa: BLE001 - the writer has stopped (the process is exiting)
            self._live.pop(result.dispatch_id, None)
            STORE_OF.pop(result.dispatch_id, None)
            result.store_error = f"the dispatch could not be stored in {self.home}: {reason_of(exc)}"

    def on_events(self, events: list) -> None:
        """Receive a batch of the dispatcher's events (only queues them)."""
        if not self._closed:
            self.writer.put_events(events)

    def dispatch_ended(self, record: Any) -> None:
        """Write a dispatch's remaining records (a DispatchRecord); return once they are durable."""
        STORE_OF.pop(record.dispatch_id, None)
        if self._live.pop(record.dispatch_id, None) is None:
            return  # never stored (see dispatch_submitted)
        try:
            self.writer.request("end", record)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"{DELAYED}the end of dispatch {record.dispatch_id} is known in this "
                                   f"kernel only for now: {exc}") from None
        except Exception as exc:
            raise StoreError(f"the records of dispatch {record.dispatch_id} could not be written to "
                             f"{self.db_path}: {reason_of(exc)}") from exc

    @_names_damage
    def last_function_parts(self, lattice_name: str, exclude: str) -> Optional[tuple]:
        """``(dispatch id, function parts)`` of the newest other stored dispatch of a lattice called
        *lattice_name* (what its electrons' code was made of), or None."""
        self.writer.settle()
        with self._lock:
            found = self._conn.execute(
                "SELECT d.dispatch_id, p.value FROM dispatches d JOIN dispatch_parts p "
                "ON p.dispatch_id = d.dispatch_id AND p.part = 'facts' "
                "WHERE d.lattice_name = ? AND d.dispatch_id != ? ORDER BY d.seq DESC LIMIT 1",
                (lattice_name, exclude)).fetchone()
        if found is None:
            return None
        return found[0], pickle.loads(found[1]).get("function_parts") or {}

    def find_keys(self, keys: Iterable[str]) -> dict:
        """The newest stored COMPLETED node for each of *keys*: ``{key: HistoryHit}``.

        One lookup in the ``node_keys`` index per key (in chunks), so the cost
        follows the number of keys asked for, not the size of the history.
        The first lookup in a home turns the index on and fills it from every
        dispatch stored so far (once; in the same transaction that turns it on,
        so that no writer, in any process, can commit records in between that
        neither it nor the catch-up indexes).
        """
        if not self._history_on:
            self._turn_history_on()
        wanted = {}
        for key in keys:
            try:
                wanted[bytes.fromhex(key)] = key
            except (TypeError, ValueError):
                continue  # not a digest: never stored under it
        best: dict = {}
        with self._lock:
            conn = self._conn
            items = list(wanted)
            for start in range(0, len(items), 500):
                chunk = items[start:start + 500]
                rows = conn.execute("SELECT key, seq, node, end_us FROM node_keys WHERE key IN "
                                    f"({','.join('?' * len(chunk))})", chunk).fetchall()
                for key, seq, node, end_us in rows:
                    found = best.get(key)
                    if found is None or end_us > found[2]:
                        best[key] = (seq, node, end_us)
            seqs = sorted({seq for seq, _, _ in best.values()})
            ids: dict = {}
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                ids.update(conn.execute("SELECT seq, dispatch_id FROM dispatches WHERE seq IN "
                                        f"({','.join('?' * len(chunk))})", chunk).fetchall())
        return {wanted[key]: HistoryHit(ids[seq], node, end_us) for key, (seq, node, end_us) in best.items()
                if seq in ids}

    @_names_damage
    def _turn_history_on(self) -> None:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                added = 0
                if not history_indexed(conn):
                    t0 = time.perf_counter()
                    added = index_history(conn)
                    conn.execute("INSERT OR IGNORE INTO settings (name, value) VALUES ('history_index', 'on')")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if added:
            log.warning("covalent_nb: reuse from history is used in %s for the first time: indexed the %d "
                        "completed node(s) stored so far in %.1f s (once)", self.home, added,
                        time.perf_counter() - t0)
        self._history_on = True

    def ids_starting_with(self, prefix: str, limit: int = 10) -> list:
        """Ids of stored dispatches that start with *prefix* (at most *limit*)."""
        self.writer.settle()  # this process's own new dispatches first
        low, high = prefix, prefix + "\U0010ffff"
        with self._lock:
            rows = self._conn.execute("SELECT dispatch_id FROM dispatches WHERE dispatch_id >= ? AND "
                                      "dispatch_id < ? ORDER BY dispatch_id LIMIT ?", (low, high, limit))
            return [row[0] for row in rows.fetchall()]

    @_names_damage
    def load(self, dispatch_id: str) -> Optional[StoredResult]:
        """Rebuild a dispatch's :class:`Result` from the store, or return None.

        ``ct.dispatch`` returns before its row is committed (within a millisecond
        or so, see :meth:`dispatch_submitted`), so an id that is not there yet is
        looked for again for up to :data:`NEW_ID_GRACE_S` before it is called unknown.
        """
        self.writer.settle()  # this process's own new dispatches first
        row = self._row(dispatch_id)
        deadline = time.monotonic() + NEW_ID_GRACE_S
        while row is None and len(dispatch_id) == 36 and time.monotonic() < deadline:
            time.sleep(0.01)  # another process may have just dispatched it
            row = self._row(dispatch_id)
        if row is None:
            return None
        if row["status"] in _UNFINISHED and row["owner"] != self.owner.token:
            self.recover()
            row = self._row(dispatch_id)
        return build_result(self, row)

    # -- submission ------------------------------------------------------------------
    def _ref(self, data: bytes, blobs: list, cached: bool = False) -> bytes:
        if len(data) > self.inline_max:
            # *cached*: bytes graph_codec keeps (a rerun of the same graph hands over the same object)
            seen = self._digests.get(id(data)) if cached else None
            if seen is not None and seen[0] is data:
                digest = seen[1]
            else:
                digest = blob_digest(data)
                if cached:
                    if len(self._digests) >= 4:  # as many as graph_codec keeps
                        self._digests.clear()  # (any thread may dispatch: no iteration over it)
                    self._digests[id(data)] = (data, digest)  # held: the id stays theirs
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
        except Exception as exc:  # noqa: BLE001 - the dispatch runs anyway: keep what pickles
            inputs_data = dumps({"args": [_storable(v) for v in inputs["args"]],
                                 "kwargs": {k: _storable(v) for k, v in inputs["kwargs"].items()}})
            inputs_note = f"inputs stored in part ({reason_of(exc)})"
        facts = {
            "replaced_nodes": sorted(result.replaced_nodes),
            "reuse_requested": bool(result.reuse_requested),
            "reuse_history": bool(getattr(result, "reuse_history", False)),
            "function_parts": result.function_parts,
            "executor_names": sorted(result.executor_names),
            "snapshot_error": getattr(result, "snapshot_error", None),
            "graph_note": graph_note,
            "inputs_note": inputs_note,
        }
        task_count = len(graph.kinds) - graph.kinds.count(NodeKind.PARAMETER)
        row = {
            "dispatch_id": result.dispatch_id,
            "lattice_name": getattr(result.lattice, "__name__", "?"),
            "status": str(Status.NEW_OBJECT),
            "will_run": int(result.will_run),
            "sublattice": int(bool(getattr(result, "is_sublattice_dispatch", False))),
            "parent_id": result.parent_dispatch_id,
            "root_id": result.root_dispatch_id,
            "submitted_us": now_us(),
            "node_count": len(graph),
            "task_count": task_count,
            "owner": self.owner.token,
            "host": self.owner.host,
            "pid": self.owner.pid,
        }
        parts = {
            "graph": self._ref(graph_data, blobs, cached=True),
            "inputs": self._ref(inputs_data, blobs),
            "snapshot": None if result.snapshot is None else self._ref(result.snapshot, blobs),
            "facts": pickle.dumps(facts, protocol=5),
        }
        return Submission(result, row, parts, blobs)

    # -- reading -----------------------------------------------------------------------
    def _row(self, dispatch_id: str) -> Optional[dict]:
        """A dispatch's row and parts as one dict (parts absent from the store are None)."""
        with self._lock:
            cursor = self._conn.execute("SELECT * FROM dispatches WHERE dispatch_id = ?", (dispatch_id,))
            values = cursor.fetchone()
            if values is None:
                return None
            row = dict(zip((c[0] for c in cursor.description), values))
            row.update(dict.fromkeys(PARTS))
            row.update(self._conn.execute("SELECT part, value FROM dispatch_parts WHERE dispatch_id = ?",
                                          (dispatch_id,)).fetchall())
        return row

    def batches(self, dispatch_id: str) -> list:
        """The decoded node batches of a dispatch, oldest first (unreadable ones skipped, logged)."""
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

    @_names_damage
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
        fill_records(self, result, row)
        return True

    # -- history -------------------------------------------------------------------------
    @_names_damage
    def list_dispatches(self, limit: Optional[int] = None, include_sublattices: bool = False) -> DispatchList:
        """Summaries of the stored dispatches, newest first (see :mod:`.history`)."""
        self.writer.settle()  # this process's own new dispatches first
        self.recover()
        query = ("SELECT dispatch_id, lattice_name, status, start_us, end_us, parent_id, reused, recomputed, "
                 "error FROM dispatches" + ("" if include_sublattices else " WHERE sublattice = 0") +
                 " ORDER BY submitted_us DESC, seq DESC")
        parameters: tuple = ()
        if limit is not None:
            query += " LIMIT ?"
            parameters = (int(limit),)
        with self._lock:
            rows = self._conn.execute(query, parameters).fetchall()
        return DispatchList(summary(*row) for row in rows)

    @_names_damage
    def delete_dispatch(self, dispatch_id: str) -> SpaceFreed:
        """Delete one ended dispatch (and its sublattice dispatches); report the space freed."""
        self.writer.settle()  # this process's own new dispatches first
        row = self._row(dispatch_id)
        if row is None:
            raise ValueError(f"no dispatch with id {dispatch_id!r} in the store {self.home}")
        if row["status"] in _UNFINISHED:
            self.recover()
            row = self._row(dispatch_id)
            if row["status"] in _UNFINISHED:
                raise ValueError(f"dispatch {dispatch_id} is still running (process {row['pid']} on "
                                 f"{row['host']}); cancel it or wait for it to end before deleting it")
        return delete(self, [dispatch_id])

    @_names_damage
    def prune_dispatches(self, older_than: Any = None, keep_last: Optional[int] = None,
                         status: Optional[Iterable[str]] = None) -> SpaceFreed:
        """Delete ended dispatches matching every criterion given; report the space freed."""
        self.writer.settle()  # this process's own new dispatches first
        criteria = check_prune_criteria(older_than, keep_last, status)
        self.recover()
        with self._lock:
            rows = self._conn.execute(
                "SELECT dispatch_id, status, submitted_us FROM dispatches WHERE sublattice = 0 "
                "ORDER BY submitted_us DESC, seq DESC").fetchall()
        doomed = [did for index, (did, row_status, submitted) in enumerate(rows)
                  if criteria.selects(index, row_status, submitted)]
        return delete(self, doomed)

    @_names_damage
    def recover(self) -> list:
        """Mark INTERRUPTED the unfinished dispatches whose process has ended; return their ids."""
        return recover(self)

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
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT dispatch_id, host, pid, task_count, ? FROM dispatches WHERE owner = ? "
                    "AND will_run = 1 AND status IN ('NEW_OBJECT', 'RUNNING')",
                    (now_us(), self.owner.token)).fetchall()
            mark_interrupted(self, rows)
        except sqlite3.Error as exc:
            log.warning("covalent_nb: could not mark interrupted dispatches: %s", exc)
        with self._lock:
            self._conn.close()
        self.owner.release()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass
