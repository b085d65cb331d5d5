"""Bad values and damaged files: what the store says, and what stays readable."""

from __future__ import annotations

import datetime
import json
import threading

import pytest

import covalent_nb as ct
from covalent_nb.results.blobs import blob_digest
from covalent_nb.results.store import active_store
from covalent_nb.results.values import NotStored, StoreError, dumps


@ct.electron
def make_lock(x):
    return threading.Lock()  # cannot be pickled


@ct.electron
def describe(lock, x):
    return f"{type(lock).__name__} {x}"


@ct.lattice
def locked(x):
    return describe(make_lock(x), x)


def test_unpicklable_output_completes_and_is_recomputed_with_the_reason(home, run_python):
    result = ct.get_result(ct.dispatch(locked)(1), wait=True)
    assert result.status == "COMPLETED" and result.result == "lock 1"
    assert result.store_error is None
    why = result._table.unstorable[0]
    assert why == "its output could not be pickled (TypeError: cannot pickle '_thread.lock' object)"
    assert hasattr(result.get_node_result(0)["output"], "acquire")  # this kernel still has the value

    # The store kept everything else, and says what it could not keep.
    back = active_store().load(result.dispatch_id)
    assert back.status == "COMPLETED" and back.result == "lock 1"
    assert back.get_node_result(0)["output"] == NotStored(why)
    assert back.get_node_result(0)["status"] == "COMPLETED"

    # A redispatch, in this kernel or in another, recomputes that node and says why.
    again = ct.get_result(ct.redispatch(result.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert again.get_node_result(0)["reason"] == f"recomputed: previous output was not stored ({why})"
    assert again.get_node_result(2)["reused"]  # describe's output was stored: reused
    elsewhere = json.loads(run_python("""
        import json, sys, covalent_nb as ct
        r = ct.get_result(ct.redispatch(sys.argv[1], reuse_previous_results=True)(), wait=True)
        print(json.dumps([r.result, r.get_node_result(0)["reason"], r.reused_nodes]))
    """, result.dispatch_id))
    assert elsewhere == ["lock 1", f"recomputed: previous output was not stored ({why})", [2, 4]]


@ct.electron
def make_big(n):
    return list(range(n))  # about 100 kB pickled: a blob file


@ct.electron
def small(x):
    return x + 1


@ct.electron
def count(items, extra):
    return len(items) + extra


@ct.lattice
def with_blob(n):
    return count(make_big(n), small(n))


def _blob_of(home, value):
    digest = blob_digest(dumps(value))
    assert digest.startswith("b3-")  # new blobs are named by their BLAKE3 digest
    return home / "blobs" / digest[3:5] / digest


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_damaged_blob_names_dispatch_node_and_file_and_the_rest_stays_readable(home, damage):
    result = ct.get_result(ct.dispatch(with_blob)(20000), wait=True)
    assert result.result == 20000 + 20001
    path = _blob_of(home, list(range(20000)))
    assert path.exists()
    if damage == "corrupted":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:
        path.unlink()

    back = active_store().load(result.dispatch_id)
    big_node = back.graph.names.index("make_big")
    with pytest.raises(StoreError) as caught:
        back.get_node_result(big_node)
    message = str(caught.value)
    assert result.dispatch_id in message and f"node {big_node} (make_big)" in message and str(path) in message
    assert ("corrupted" if damage == "corrupted" else "missing") in message
    # Every other record reads as before.
    assert back.status == "COMPLETED" and back.result == 40001
    assert back.get_node_result(back.graph.names.index("small"))["output"] == 20001
    assert ct.list_dispatches()[0]["id"] == result.dispatch_id

    # A redispatch with reuse recomputes the damaged node rather than failing on it.
    from covalent_nb.dispatch.runtime import RUNTIME

    RUNTIME.registry.forget(result.dispatch_id)
    again = ct.get_result(ct.redispatch(result.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert again.status == "COMPLETED" and again.result == 40001
    reason = again.get_node_result(big_node)["reason"]
    if damage == "missing":  # found when the parent is loaded
        assert reason == f"recomputed: previous output was not stored (its output's blob file {path} is missing)"
    else:  # found when the redispatch reads it
        assert reason.startswith("recomputed: previous output could not be read (dispatch ") and str(path) in reason
    assert again.get_node_result(big_node)["output"] == list(range(20000))
    assert again.get_node_result(back.graph.names.index("small"))["reused"]


@ct.electron
def wait_on(event_name):
    EVENTS[event_name].wait(30)
    return event_name


@ct.lattice
def waits(name):
    return wait_on(name)


EVENTS = {"gate": threading.Event()}


def test_delete_reports_space_freed_and_keeps_shared_blobs(home):
    parent = ct.get_result(ct.dispatch(with_blob)(30000), wait=True)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert child.reused_nodes  # the big output is the parent's, and one blob serves both
    path = _blob_of(home, list(range(30000)))
    size = path.stat().st_size

    freed = ct.delete_dispatch(parent.dispatch_id)
    assert freed.dispatch_ids == [parent.dispatch_id]
    assert freed.blob_bytes == 0 and path.exists()  # the child still refers to it
    assert active_store().load(parent.dispatch_id) is None
    with pytest.raises(ValueError, match="no dispatch with id"):
        ct.get_result(parent.dispatch_id)
    from covalent_nb.dispatch.runtime import RUNTIME

    RUNTIME.registry.forget(child.dispatch_id)
    assert ct.get_result(child.dispatch_id).get_node_result(0)["output"] == list(range(30000))

    freed = ct.delete_dispatch(child.dispatch_id)
    assert not path.exists()
    assert freed.blob_bytes >= size and freed.bytes_freed == freed.blob_bytes + freed.database_bytes
    assert "freed" in str(freed) and int(freed) == freed.bytes_freed
    assert ct.list_dispatches() == []


def test_prune_by_status_age_and_count_never_touches_a_running_dispatch(home):
    ok = [ct.get_result(ct.dispatch(with_blob)(n), wait=True).dispatch_id for n in (1, 2, 3)]
    bad = ct.get_result(ct.dispatch(with_blob)("x"), wait=True)
    assert bad.status == "FAILED"
    running = ct.dispatch(waits)("gate")
    try:
        with pytest.raises(ValueError, match="say what to prune"):
            ct.prune_dispatches()
        with pytest.raises(ValueError, match="still running"):
            ct.delete_dispatch(running)
        assert ct.prune_dispatches(status=["FAILED"]).dispatch_ids == [bad.dispatch_id]
        assert ct.prune_dispatches(older_than=datetime.timedelta(days=1)).dispatch_ids == []
        assert sorted(ct.prune_dispatches(keep_last=2).dispatch_ids) == sorted(ok[:2])  # running one counts
        assert ct.prune_dispatches(older_than=datetime.timedelta(0)).dispatch_ids == [ok[2]]
        assert [d["id"] for d in ct.list_dispatches()] == [running]
    finally:
        EVENTS["gate"].set()
    assert ct.get_result(running, wait=True).result == "gate"
    assert ct.prune_dispatches(keep_last=0).dispatch_ids == [running]


@ct.electron
def double(lock, x):
    return 2 * x


@ct.lattice
def takes_lock(lock, x):
    return double(lock, x)


def test_an_argument_that_cannot_be_pickled_is_stored_in_part(home):
    result = ct.get_result(ct.dispatch(takes_lock)(threading.Lock(), 4), wait=True)
    assert result.status == "COMPLETED" and result.result == 8 and result.store_error is None
    back = active_store().load(result.dispatch_id)
    assert back.result == 8 and back.get_node_result(0)["output"] == 8
    reason = "TypeError: cannot pickle '_thread.lock' object"
    assert back.inputs["args"] == (NotStored(reason), 4)  # the tuple passed, as Covalent gives it
    assert back.graph.values[1] == NotStored(reason)
    assert any("inputs stored in part" in note for note in back.store_notes)


def test_a_home_that_cannot_be_used_leaves_dispatch_working_in_memory(home, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ct.set_config(home=str(blocker / "home"))
    with pytest.warns(RuntimeWarning, match="cannot use the store in .*a-file/home"):
        dispatch_id = ct.dispatch(with_blob)(3)
    assert ct.get_result(dispatch_id, wait=True).result == 7
    assert active_store().location == "memory" and "NotADirectoryError" in active_store().why
    assert [d["id"] for d in ct.list_dispatches()][0] == dispatch_id


@pytest.mark.parametrize("version, says", [(1, "a development format"), (99, "written by a newer covalent_nb")])
def test_a_store_of_another_format_is_left_alone(home, version, says):
    import sqlite3

    home.mkdir(mode=0o700)
    with sqlite3.connect(home / "dispatches.db") as conn:
        conn.execute("CREATE TABLE dispatches (anything)")
        conn.execute(f"PRAGMA user_version = {version}")
    with pytest.warns(RuntimeWarning, match=says):
        dispatch_id = ct.dispatch(with_blob)(1)
    assert ct.get_result(dispatch_id, wait=True).result == 3
    with sqlite3.connect(home / "dispatches.db") as conn:  # untouched
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["dispatches"]
