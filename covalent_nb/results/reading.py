"""Reading a dispatch back from the SQLite store: value references, records, results.

:func:`build_result` turns a ``dispatches`` row (and its node batches) into a
:class:`~covalent_nb.results.loaded.StoredResult`.  Every error names what
could not be read and where: the dispatch, the node, the blob file or the
database.  Blob files are only ever looked up by digest inside the store's
own ``blobs`` directory (:class:`~covalent_nb.results.blobs.BlobStore`).
"""

from __future__ import annotations

import io
import logging
import pickle
from typing import Any, Optional

from ..dispatch.runtime import RUNTIME
from .blobs import BlobError
from .graph_codec import decode_graph
from .loaded import LazyOutputs, StoredLattice, StoredResult
from .records import SPARSE_FIELDS, decode_plan
from ..states import NodeKind, Status
from .values import BLOB, INLINE, NotStored, StoreError, Thawer, loads, reason_of

__all__ = ["ref_bytes", "ref_value", "build_result", "fill_records"]

log = logging.getLogger(__name__)


def ref_bytes(store: Any, ref: bytes, what: str) -> bytes:
    """The bytes a value reference points to; StoreError naming *what* and the file."""
    ref = bytes(ref)
    if ref[:1] == INLINE:
        return ref[1:]
    if ref[:1] == BLOB:
        try:
            return store.blobs.get(ref[1:].decode("ascii", "replace"))
        except (BlobError, ValueError) as exc:
            raise StoreError(f"{what}: {exc}") from None
    raise StoreError(f"{what}: unknown value reference in {store.db_path}")


def ref_value(store: Any, ref: bytes, what: str, decode: Any = loads) -> Any:
    """The value a reference points to, decoded (unpickled by default); StoreError if it cannot be."""
    data = ref_bytes(store, ref, what)
    try:
        return decode(data)
    except Exception as exc:  # noqa: BLE001
        where = f"blob file {store.blobs.path(bytes(ref)[1:].decode())}" if bytes(ref)[:1] == BLOB \
            else f"the database {store.db_path}"
        raise StoreError(f"{what}: the stored value in {where} cannot be loaded here "
                         f"({reason_of(exc)})") from exc


def build_result(store: Any, row: dict) -> StoredResult:
    """Rebuild the result of the dispatch in *row* (a ``dispatches`` row as a dict)."""
    did = row["dispatch_id"]
    if did in store._loading:  # a sublattice cycle cannot happen, but never recurse forever
        raise StoreError(f"dispatch {did} refers to itself")
    store._loading.add(did)
    try:
        return _build(store, row)
    finally:
        store._loading.discard(did)


def _build(store: Any, row: dict) -> StoredResult:
    did = row["dispatch_id"]
    facts = pickle.loads(row["facts"])
    if row["graph"] is None:
        raise StoreError(f"dispatch {did} was stored without its graph")
    graph = ref_value(store, row["graph"], f"dispatch {did}, its graph", decode_graph)
    if row["inputs"] is not None:
        inputs = ref_value(store, row["inputs"], f"dispatch {did}, its inputs")
    else:
        inputs = {"args": [], "kwargs": {}}
    lattice: Any = None
    replacements: dict = {}
    snapshot = None
    why = facts.get("snapshot_error") or "no snapshot was stored"
    if row["snapshot"] is not None:
        try:
            snapshot = ref_bytes(store, row["snapshot"], f"dispatch {did}, its lattice snapshot")
            lattice, replacements = Thawer(io.BytesIO(snapshot)).load()[:2]
        except Exception as exc:  # noqa: BLE001 - the records are still worth reading
            why = reason_of(exc)
            lattice = None
    if lattice is None:
        lattice = StoredLattice(row["lattice_name"], why, did)
    result = StoredResult(
        did, lattice.copy_for_dispatch(graph, tuple(inputs["args"]), dict(inputs["kwargs"])), graph,
        tuple(inputs["args"]), dict(inputs["kwargs"]), parent_dispatch_id=row["parent_id"],
        root_dispatch_id=row["root_id"], replacements=replacements,
        replaced_nodes=frozenset(facts["replaced_nodes"]), reuse_requested=facts["reuse_requested"],
        reuse_history=facts.get("reuse_history", False))
    result.snapshot = snapshot
    result.function_parts = facts["function_parts"]
    result.executor_names = set(facts["executor_names"])
    result.is_sublattice_dispatch = bool(row["sublattice"])
    result.will_run = bool(row["will_run"])
    result.store_notes = [n for n in (facts.get("graph_note"), facts.get("inputs_note")) if n]
    if facts.get("snapshot_error"):
        result.snapshot_error = facts["snapshot_error"]
    result._init_stored(store, None)
    fill_records(store, result, row)
    return result


def fill_records(store: Any, result: StoredResult, row: dict) -> None:
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
        table.reason = reasons.copy()
    outcome = pickle.loads(row["outcome"]) if row["outcome"] is not None else {}
    if outcome.get("executor_names"):
        result.executor_names = set(outcome["executor_names"])

    status, start, end = [Status.NEW_OBJECT] * size, [None] * size, [None] * size
    values: list = [None] * size
    unloaded = LazyOutputs.unloaded()
    if result.start_us is not None:  # parameters completed when the dispatch started
        t0 = result.start_us
        for node, kind in enumerate(graph.kinds):
            if kind == NodeKind.PARAMETER:
                status[node] = Status.COMPLETED
                start[node] = end[node] = t0
                values[node] = graph.values[node]
    refs: dict = {}
    sparse: dict = {field: {} for field in SPARSE_FIELDS}
    for batch in store.batches(did):
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
            store.known_refs.setdefault((did, node), bytes(ref))
            if not store.blobs.exists(bytes(ref)[1:].decode("ascii", "replace")):
                # Found now, so a redispatch recomputes this node and says why,
                # instead of failing when it reaches for the value.
                sparse["unstorable"][node] = (f"its output's blob file "
                                              f"{store.blobs.path(bytes(ref)[1:].decode())} is missing")
    table.status, table.start, table.end = status, start, end
    table.output = LazyOutputs(values, _output_loader(store, did, graph.names, refs))
    table.error = sparse["error"]
    table.stdout = sparse["stdout"]
    table.stderr = sparse["stderr"]
    table.executor = sparse["executor"]
    table.unstorable = sparse["unstorable"]
    table.reused_from = {n: tuple(v) for n, v in sparse["reused_from"].items()}
    table.sublattice = {}
    for node, child_id in sparse["sublattice"].items():
        child = RUNTIME.registry.lookup(child_id) or _load_child(store, child_id)
        if child is not None:
            table.sublattice[node] = child
    result._init_stored(store, outcome.get("result_node"))
    result._mark_done_if_ended()


def _load_child(store: Any, dispatch_id: str) -> Optional[StoredResult]:
    try:
        return store.load(dispatch_id)
    except StoreError as exc:
        log.warning("covalent_nb: sublattice dispatch %s cannot be loaded: %s", dispatch_id, exc)
        return None


def _output_loader(store: Any, did: str, names: list, refs: dict):
    def load(node: int) -> Any:
        ref = refs.get(node)
        what = f"dispatch {did}, node {node} ({names[node]}), output"
        if ref is None:
            raise StoreError(f"{what}: no stored value")
        return ref_value(store, ref, what)

    return load
