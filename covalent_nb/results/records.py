"""Node records as column batches: how the writer stores them and a load reads them.

The writer stores the nodes that ended since its last flush as one *batch*:
a row of ``node_batches`` whose payload holds columns (node ids, status codes,
start and end times, values, sparse fields).  One row per node would cost
about 2.5 µs per node in SQLite, 25 ms for a 10,000-task dispatch, most of
the store's 25 % budget on its own; a batch costs one pickle of a few lists.
A later batch overrides an earlier one for the same node, so a load applies
them in order.

Values come two ways.  Outputs of the plain built-in scalar types (``int``,
``float``, short ``str``...) are *packed*: pickled together as one list per
batch, because one ``pickle.dumps`` call per tiny value costs more than the
rest of the node's record.  Every other output is pickled on its own and kept
as a value reference (inline bytes, or a blob for a large one), so it loads
lazily and a damaged blob affects that node only.

Parameter nodes get no records: their outputs are the graph's values and they
complete when the dispatch starts.  The *plan* (every node's key and reuse
reason, known when the dispatch starts) is stored once per dispatch; keys are
packed as 16 raw bytes each.
"""

from __future__ import annotations

import pickle
from itertools import repeat
from typing import Any, Optional

from ..states import Status
from ..dispatch.reuse import SameNodeReasons

__all__ = ["STATUSES", "SPARSE_FIELDS", "PACKABLE", "encode_batch", "decode_batch", "Batch",
           "summarize", "encode_plan", "decode_plan", "index_rows"]

#: Status <-> one-byte code (the order is part of the on-disk format: append only).
STATUSES: tuple = (Status.NEW_OBJECT, Status.PENDING_REPLACEMENT, Status.RUNNING, Status.COMPLETED,
                   Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
_CODE = {status: code for code, status in enumerate(STATUSES)}

#: Sparse per-node fields kept as ``{node id: value}``.
SPARSE_FIELDS = ("error", "stdout", "stderr", "reused_from", "executor", "sublattice", "unstorable")

#: Exact types whose values are packed (pickling them cannot fail or name ``__main__``).
PACKABLE = frozenset({int, float, bool, type(None), complex, str, bytes})
#: Longer strings and bytes are stored on their own (and may become blobs).
PACKABLE_LEN = 1024

_FORMAT = 1
#: Marks a plan's reasons stored as "each node reused from the same node of this parent" (encode_plan).
_SAME_NODES = "same-nodes-of"


def encode_batch(nodes: list, statuses: list, starts: list, ends: list, refs: dict,
                 packed_nodes: list, packed_values: list, sparse: dict) -> bytes:
    """Encode one batch of node records.

    ``refs`` maps nodes to value references (bytes); ``packed_nodes`` and
    ``packed_values`` are parallel lists of nodes and their packable outputs;
    ``sparse`` maps each of :data:`SPARSE_FIELDS` present to ``{node: value}``
    (a sublattice given by its dispatch id); ``reused_from`` may instead be a
    dispatch id: every node of the batch was reused from the node with the
    same id of that dispatch (a whole-dispatch reuse, stored without 10,000
    tuples).
    """
    if statuses and statuses.count(statuses[0]) == len(statuses):
        codes = bytes((_CODE[statuses[0]],)) * len(statuses)
    else:
        codes = bytes(map(_CODE.__getitem__, statuses))
    packed = pickle.dumps(packed_values, protocol=5) if packed_nodes else None
    return pickle.dumps((_FORMAT, nodes, codes, starts, ends, refs, packed_nodes, packed, sparse),
                        protocol=5)


class Batch:
    """A decoded batch: parallel lists, value references, packed values, sparse fields."""

    __slots__ = ("nodes", "statuses", "starts", "ends", "refs", "packed", "sparse")

    def __init__(self, nodes: list, statuses: list, starts: list, ends: list, refs: dict,
                 packed: dict, sparse: dict) -> None:
        self.nodes = nodes
        self.statuses = statuses
        self.starts = starts
        self.ends = ends
        self.refs = refs  # node -> value reference
        self.packed = packed  # node -> value
        self.sparse = sparse


def decode_batch(payload: bytes) -> Batch:
    """Decode a payload written by :func:`encode_batch` (ValueError if it is not one)."""
    decoded = pickle.loads(payload)
    if not isinstance(decoded, tuple) or not decoded or decoded[0] != _FORMAT:
        raise ValueError("not a node batch of a known format")
    _, nodes, codes, starts, ends, refs, packed_nodes, packed, sparse = decoded
    values = dict(zip(packed_nodes, pickle.loads(packed))) if packed_nodes else {}
    origin = sparse.get("reused_from")
    if type(origin) is str:  # every node from the same node of one dispatch (see encode_batch)
        sparse["reused_from"] = dict(zip(nodes, zip(repeat(origin), nodes)))
    return Batch(nodes, [STATUSES[c] for c in codes], starts, ends, refs, values, sparse)


def summarize(batches: list) -> tuple:
    """``(completed, reused, recomputed, last_end_us)`` over the final records of *batches*."""
    final: dict = {}
    for batch in batches:
        reused = batch.sparse.get("reused_from", {})
        for node, status, start, end in zip(batch.nodes, batch.statuses, batch.starts, batch.ends):
            final[node] = (status, start, end, node in reused)
    completed = sum(1 for s, *_ in final.values() if s is Status.COMPLETED)
    reused = sum(1 for *_, r in final.values() if r)
    recomputed = sum(1 for _, start, _, r in final.values() if start is not None and not r)
    ends = [end for _, _, end, _ in final.values() if end is not None]
    last: Optional[int] = max(ends) if ends else None
    return completed, reused, recomputed, last


def encode_plan(keys: list, unhashable: dict, reasons: Any) -> bytes:
    """Encode every node's key and reason (keys as raw bytes when they are 32 hex digits).

    *reasons* is a dict, or a :class:`~covalent_nb.dispatch.reuse.SameNodeReasons`
    (every node reused from its namesake in the parent), stored as the parent
    id, the list of nodes and the reasons given one by one.
    """
    if type(reasons) is SameNodeReasons:
        reasons = (_SAME_NODES, reasons.parent_id, list(reasons.nodes), reasons.given)
    missing = [i for i, k in enumerate(keys) if k is None] if None in keys else []
    try:
        packed: Any = bytes.fromhex("".join(["0" * 32 if k is None else k for k in keys] if missing else keys))
        if len(packed) != 16 * len(keys):
            raise ValueError("keys of another length")
    except (TypeError, ValueError):
        packed = list(keys)
    return pickle.dumps((_FORMAT, len(keys), packed, missing, unhashable, reasons), protocol=5)


def decode_plan(payload: bytes) -> tuple:
    """Return ``(keys, unhashable, reasons)`` from :func:`encode_plan`'s bytes (*reasons* a dict or
    a :class:`~covalent_nb.dispatch.reuse.SameNodeReasons`)."""
    _, size, packed, missing, unhashable, reasons = pickle.loads(payload)
    if isinstance(packed, bytes):
        text = packed.hex()
        keys: list = [text[i:i + 32] for i in range(0, 32 * size, 32)]
        for i in missing:
            keys[i] = None
    else:
        keys = list(packed)
    if type(reasons) is tuple and reasons and reasons[0] == _SAME_NODES:
        _, parent_id, nodes, given = reasons
        reasons = SameNodeReasons(parent_id, nodes, given)
    return keys, unhashable, reasons


def index_rows(keys: Any, seq: int, nodes: Any, end_of: dict) -> list:
    """``node_keys`` rows ``(key bytes, seq, node, end_us)`` for *nodes* of the dispatch *seq*."""
    rows = []
    for node in nodes:
        key = keys[node] if node < len(keys) else None
        if key is not None and len(key) == 32:
            try:
                rows.append((bytes.fromhex(key), seq, node, end_of.get(node) or 0))
            except ValueError:
                continue
    return rows
