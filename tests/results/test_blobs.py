"""Blob files and their names: BLAKE3 for new blobs, BLAKE2b-256 blobs of older homes still served.

Files are made and damaged on a real disk, the store is the real SQLite one.
"""

from __future__ import annotations

import os
import pickle

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import covalent_nb as ct
from covalent_nb.blob_files import blake2b_digest, blob_digest
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.results import sqlite_store, writer
from covalent_nb.results import store as store_module
from covalent_nb.results.blobs import BlobError, BlobStore
from covalent_nb.results.store import active_store
from covalent_nb.results.upkeep import remove_unreferenced, sweep_orphan_blobs
from covalent_nb.results.values import StoreError, dumps

FORMATS = {"blake3": blob_digest, "blake2b": blake2b_digest}


def _old_blob(store: BlobStore, data: bytes) -> str:
    """Write *data* as a blob of an older home: BLAKE2b-256 name, no prefix, same layout."""
    digest = blake2b_digest(data)
    os.makedirs(os.path.join(store.root, digest[:2]), exist_ok=True)
    with open(os.path.join(store.root, digest[:2], digest), "wb") as handle:
        handle.write(data)
    return digest


def test_new_blobs_are_named_by_blake3_and_old_ones_are_read_verified_listed_and_removed(tmp_path):
    blobs = BlobStore(str(tmp_path / "blobs"))
    new = blobs.put(b"new bytes" * 1000)
    old = _old_blob(blobs, b"old bytes" * 1000)
    assert new.startswith("b3-") and len(new) == 67 and len(old) == 64
    assert blobs.path(new) == str(tmp_path / "blobs" / new[3:5] / new)
    assert blobs.path(old) == str(tmp_path / "blobs" / old[:2] / old)
    assert blobs.get(new) == b"new bytes" * 1000 and blobs.get(old) == b"old bytes" * 1000
    assert {d for d, _ in blobs.files()} == {new, old}
    assert blobs.remove(old) == 9000 and not blobs.exists(old) and blobs.exists(new)


@pytest.mark.parametrize("name", ["blake3", "blake2b"])
def test_a_corrupted_blob_of_either_format_is_reported_and_never_unpickled(tmp_path, name):
    blobs = BlobStore(str(tmp_path / "blobs"))
    good = dumps(list(range(5000)))
    digest = blobs.put(good) if name == "blake3" else _old_blob(blobs, good)
    marker = tmp_path / "unpickled"
    evil = pickle.dumps(_MakesDirectory(str(marker)))  # would create the marker if it were loaded
    with open(blobs.path(digest), "wb") as handle:
        handle.write(evil)
    with pytest.raises(BlobError, match="corrupted"):
        blobs.get(digest)
    assert not marker.exists()


class _MakesDirectory:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_names_that_are_not_digests_never_become_paths(tmp_path):
    blobs = BlobStore(str(tmp_path / "blobs"))
    good = "b3-" + "a" * 64
    for bad in ("../" + "a" * 62, "b3-" + "A" * 64, "b2-" + "a" * 64, "b3" + "a" * 64, "a" * 63, "a" * 65,
                good + "\n", "b3-../" + "a" * 60, "", None, 42):
        with pytest.raises(ValueError, match="not a blob digest"):
            blobs.path(bad)
    assert not blobs.restore(good, b"bytes whose digest is another")
    assert not blobs.exists(good)
    # files with other names in the blob directory are not blobs: never listed, never swept
    (tmp_path / "blobs" / "aa").mkdir()
    for stray in ("b3-" + "b" * 64, "notes.txt", "c" * 64):  # wrong shard, no digest, wrong shard
        (tmp_path / "blobs" / "aa" / stray).write_bytes(b"x")
    assert blobs.files() == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096), name=st.sampled_from(sorted(FORMATS)))
def test_put_then_get_returns_the_bytes_under_a_validated_name_in_both_formats(tmp_path, data, name):
    blobs = BlobStore(str(tmp_path / "blobs"))
    digest = FORMATS[name](data)
    assert blobs.put(data, digest) == digest
    assert blobs.get(digest) == data
    path = blobs.path(digest)
    assert os.path.basename(path) == digest and os.path.dirname(os.path.dirname(path)) == blobs.root
    assert digest in {d for d, _ in blobs.files()}
    assert blobs.restore(digest, data)  # the same bytes under the same name: accepted
    if data:
        assert not blobs.restore(digest, data[:-1])  # other bytes under this name: refused
    assert blobs.get(digest) == data
    blobs.remove(digest)


# -- a home whose blobs were named by BLAKE2b (written before BLAKE3) ----------------------------------------
@ct.electron
def make_big(n):
    return list(range(n))  # about 100 kB pickled: a blob file


@ct.electron
def count(items):
    return len(items)


@ct.lattice
def with_blob(n):
    return count(make_big(n))


def _as_an_older_covalent_nb_wrote_it(monkeypatch, n: int):
    """A dispatch stored as before BLAKE3: the writer names its blobs by BLAKE2b-256."""
    with monkeypatch.context() as old:
        old.setattr(writer, "blob_digest", blake2b_digest)
        old.setattr(sqlite_store, "blob_digest", blake2b_digest)
        result = ct.get_result(ct.dispatch(with_blob)(n), wait=True)
    assert result.status == ct.Status.COMPLETED, result.error
    store_module._close_durable_stores()  # what follows reads the home as a new process would
    RUNTIME.registry.forget(result.dispatch_id)
    return result.dispatch_id


def test_a_home_of_blake2b_blobs_is_read_reused_and_deleted_as_before(home, monkeypatch, run_python):
    parent_id = _as_an_older_covalent_nb_wrote_it(monkeypatch, 20000)
    old = blake2b_digest(dumps(list(range(20000))))
    path = home / "blobs" / old[:2] / old
    assert path.exists() and {d for d, _ in active_store().blobs.files()} >= {old}

    assert run_python("""
        import sys, covalent_nb as ct
        r = ct.get_result(sys.argv[1])
        print(r.result, len(r.get_node_result(r.graph.names.index("make_big"))["output"]))
    """, parent_id).split() == ["20000", "20000"]

    child = ct.get_result(ct.redispatch(parent_id, reuse_previous_results=True)(), wait=True)
    big = child.graph.names.index("make_big")
    assert child.status == ct.Status.COMPLETED and child.get_node_result(big)["reused"]
    store_module._close_durable_stores()
    RUNTIME.registry.forget(child.dispatch_id)
    back = active_store().load(child.dispatch_id)
    assert back.get_node_result(big)["output"] == list(range(20000))
    # the child names the old blob: the same value was not stored again under a BLAKE3 name
    assert {d for d, _ in active_store().blobs.files()} == {old}

    size = path.stat().st_size
    assert ct.delete_dispatch(parent_id).blob_bytes == 0 and path.exists()  # the child still names it
    assert ct.delete_dispatch(child.dispatch_id).blob_bytes == size and not path.exists()


def test_a_corrupted_blake2b_blob_is_reported_by_the_store_and_never_unpickled(home, monkeypatch, tmp_path):
    parent_id = _as_an_older_covalent_nb_wrote_it(monkeypatch, 20000)
    old = blake2b_digest(dumps(list(range(20000))))
    marker = tmp_path / "unpickled"
    (home / "blobs" / old[:2] / old).write_bytes(pickle.dumps(_MakesDirectory(str(marker))))
    back = active_store().load(parent_id)
    with pytest.raises(StoreError, match="corrupted"):
        back.get_node_result(back.graph.names.index("make_big"))
    assert not marker.exists() and back.result == 20000


def test_orphaned_blobs_of_both_formats_are_swept_and_named_ones_kept(home):
    result = ct.get_result(ct.dispatch(with_blob)(20000), wait=True)
    store = active_store()
    named = blob_digest(dumps(list(range(20000))))
    orphan_new = store.blobs.put(dumps(list(range(30000))))
    orphan_old = _old_blob(store.blobs, dumps(list(range(40000))))
    past = 1_000_000_000  # long before the sweep's age limit
    for digest in (named, orphan_new, orphan_old):
        os.utime(store.blobs.path(digest), (past, past))
    assert sweep_orphan_blobs(store) > 0
    assert store.blobs.exists(named) and not store.blobs.exists(orphan_new) and not store.blobs.exists(orphan_old)
    assert remove_unreferenced(store, [named]) == 0 and store.blobs.exists(named)  # still named: kept
    assert ct.get_result(result.dispatch_id).result == 20000
