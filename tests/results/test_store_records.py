"""The SQLite store in one process: what is stored, where, and how it reads back."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

import covalent_nb as ct
from covalent_nb.results.loaded import StoredResult
from covalent_nb.results.store import active_store
from covalent_nb.results.values import StoreError


@ct.electron
def square(x):
    return x * x


@ct.electron
def add(a, b):
    return a + b


@ct.electron
def shout(text):
    print(f"shouting {text}")
    return text.upper() + "!"


@ct.lattice
def flow(x, y):
    return add(square(x), square(y))


@ct.lattice
def words(text):
    return shout(text)


@ct.electron
def explode(x):
    raise ValueError(f"no good: {x}")


@ct.lattice
def failing(x):
    return square(explode(x))


@ct.lattice
def inner(x):
    return square(x)


@ct.electron
@ct.lattice
def inner_electron(x):
    return square(x)


@ct.lattice
def outer(x):
    return add(inner_electron(x), 1)


def run(dispatch_id):
    return ct.get_result(dispatch_id, wait=True)


def stored(dispatch_id) -> StoredResult:
    """The dispatch as the store has it (read back from disk, not the live result)."""
    result = active_store().load(dispatch_id)
    assert isinstance(result, StoredResult)
    return result


def test_records_are_durable_when_get_result_returns(home):
    dispatch_id = ct.dispatch(flow)(3, 4)
    assert run(dispatch_id).result == 25
    # A connection of our own, not the store's: the rows must already be committed.
    with sqlite3.connect(home / "dispatches.db") as conn:
        status, lattice, end_us = conn.execute(
            "SELECT status, lattice_name, end_us FROM dispatches WHERE dispatch_id = ?", (dispatch_id,)).fetchone()
        batches = conn.execute("SELECT count(*) FROM node_batches WHERE dispatch_id = ?", (dispatch_id,)).fetchone()
    assert (status, lattice) == ("COMPLETED", "flow") and end_us is not None
    assert batches[0] >= 1


def test_a_loaded_result_has_everything_the_live_one_has(home):
    live = run(ct.dispatch(flow)(3, 4))
    back = stored(live.dispatch_id)
    assert back is not live and back.ended and back.from_store
    assert back.status == "COMPLETED" and back.result == 25
    assert back.inputs == {"args": (3, 4), "kwargs": {}}
    assert back.lattice.__name__ == "flow"
    assert back.graph.names == live.graph.names and back.graph.edges == live.graph.edges
    assert back.graph.functions[0](5) == 25  # the task functions themselves came back
    assert back._table.key == live._table.key
    assert back.function_parts == live.function_parts
    assert back.snapshot == live.snapshot
    assert (back.start_us, back.end_us) == (live.start_us, live.end_us)
    for node in range(len(live.graph)):
        assert back.get_node_result(node) == live.get_node_result(node)
    assert back.executor_names == {"local"}


def test_stdout_errors_and_reasons_are_stored(home):
    shouted = stored(run(ct.dispatch(words)("hi")).dispatch_id)
    assert shouted.result == "HI!"
    assert shouted.get_node_result(0)["stdout"] == "shouting hi\n"

    failed = stored(run(ct.dispatch(failing)(2)).dispatch_id)
    assert failed.status == "FAILED"
    assert "no good: 2" in failed.error
    explode_node = failed.graph.names.index("explode")
    square_node = failed.graph.names.index("square")
    assert failed.get_node_result(explode_node)["status"] == "FAILED"
    assert "ValueError: no good: 2" in failed.get_node_result(explode_node)["error"]
    assert failed.get_node_result(square_node)["reason"].startswith("not run: upstream node")
    assert failed.result is None


def test_reuse_from_a_loaded_parent(home):
    parent = run(ct.dispatch(flow)(3, 4)).dispatch_id
    from covalent_nb.dispatch.runtime import RUNTIME

    RUNTIME.registry.forget(parent)  # as in a new kernel: only the store knows it
    child = run(ct.redispatch(parent, reuse_previous_results=True)(3, 5))
    assert child.result == 34
    assert child.reused_nodes == [0]  # square(3)
    assert child.get_node_result(0)["reused_from"] == (parent, 0)
    assert child.get_node_result(2)["reason"] == "recomputed: input changed (argument 'x')"


def test_sublattice_dispatches_are_stored_with_their_parent(home):
    top = run(ct.dispatch(outer)(3))
    assert top.result == 10
    back = stored(top.dispatch_id)
    node = back.graph.kinds.index("sublattice")
    child = back.get_node_result(node)["sublattice_result"]
    assert child is not None and child.status == "COMPLETED" and child.result == 9
    listed = [d["id"] for d in ct.list_dispatches()]
    assert top.dispatch_id in listed and child.dispatch_id not in listed
    assert child.dispatch_id in [d["id"] for d in ct.list_dispatches(include_sublattices=True)]
    freed = ct.delete_dispatch(top.dispatch_id)
    assert set(freed.dispatch_ids) == {top.dispatch_id, child.dispatch_id}
    assert active_store().load(child.dispatch_id) is None


def test_list_dispatches_newest_first_with_lineage_and_counts(home):
    first = run(ct.dispatch(flow)(3, 4))
    second = run(ct.redispatch(first.dispatch_id, reuse_previous_results=True)(3, 5))
    listed = ct.list_dispatches()
    assert [d["id"] for d in listed] == [second.dispatch_id, first.dispatch_id]
    newest = listed[0]
    assert set(newest) == {"id", "lattice", "status", "start", "duration", "parent", "reused", "recomputed",
                           "error"}
    assert newest["lattice"] == "flow" and newest["status"] == ct.Status.COMPLETED
    assert newest["parent"] == first.dispatch_id and listed[1]["parent"] is None
    assert (newest["reused"], newest["recomputed"]) == (1, 3)
    assert (listed[1]["reused"], listed[1]["recomputed"]) == (0, 4)
    assert newest["start"] == second.start_time and newest["duration"] >= 0
    assert second.dispatch_id[:8] in str(listed) and "<table class=\"cnb-history\">" in listed._repr_html_()
    assert len(ct.list_dispatches(limit=1)) == 1


def test_home_is_private_to_the_user(home):
    old = os.umask(0o022)  # the usual umask, which would leave new directories world-readable
    try:
        run(ct.dispatch(flow)(1, 2))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "blobs").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "dispatches.db").st_mode) == 0o600


def test_values_are_only_read_from_the_configured_home(home, tmp_path):
    outside = tmp_path / "outside.pickle"
    outside.write_bytes(b"not to be read")
    dispatch_id = run(ct.dispatch(flow)(1, 2)).dispatch_id
    with sqlite3.connect(home / "dispatches.db") as conn:  # a record pointing outside the home
        conn.execute("UPDATE dispatch_parts SET value = ? WHERE dispatch_id = ? AND part = 'graph'",
                     (b"@" + os.path.relpath(outside, home / "blobs").encode(), dispatch_id))
    with pytest.raises(StoreError, match="not a blob digest"):
        active_store().load(dispatch_id)
    # Another home sees nothing of this one.
    ct.set_config(home=str(tmp_path / "other"))
    assert active_store().load(dispatch_id) is None
    assert ct.list_dispatches() == []


def test_memory_store_writes_nothing(home):
    ct.set_config(store="memory")
    try:
        dispatch_id = ct.dispatch(flow)(1, 2)
        assert run(dispatch_id).result == 5
        assert active_store().location == "memory"
        assert [d["id"] for d in ct.list_dispatches()][0] == dispatch_id
        assert not home.exists()
    finally:
        ct.set_config(store="sqlite")
    assert active_store().load(dispatch_id) is None  # never reached the durable store


def test_unknown_store_is_refused(home):
    with pytest.raises(ValueError, match="unknown store"):
        ct.set_config(store="postgres")
    with pytest.raises(ValueError, match="unknown store"):
        ct.dispatch(flow)(1, 2)
    ct.set_config(store="sqlite")
    assert run(ct.dispatch(flow)(1, 2)).result == 5


GATE = threading.Event()


@ct.electron
def gated(x):
    GATE.wait(30)
    return x


@ct.lattice
def cancellable(x):
    return square(gated(x))


def test_a_cancelled_dispatch_is_stored_as_cancelled(home):
    dispatch_id = ct.dispatch(cancellable)(3)
    ct.cancel(dispatch_id)
    GATE.set()
    assert run(dispatch_id).status == "CANCELLED"
    back = stored(dispatch_id)
    assert back.status == "CANCELLED"
    statuses = {back.graph.names[i]: back.get_node_result(i)["status"] for i in range(len(back.graph))}
    assert statuses["square"] == "CANCELLED"
    assert ct.list_dispatches()[0]["status"] == "CANCELLED"


def test_a_dispatch_ends_in_the_store_it_started_in_when_the_home_changes_meanwhile(home, tmp_path):
    import threading

    from covalent_nb.dispatch.runtime import RUNTIME

    gate = threading.Event()

    @ct.electron
    def held(x):
        gate.wait(10)
        return x + 1

    @ct.lattice
    def slow(x):
        return held(x)

    started_in = active_store()
    dispatch_id = ct.dispatch(slow)(1)
    ct.set_config(home=str(tmp_path / "elsewhere"))  # while it runs
    gate.set()
    assert run(dispatch_id).result == 2
    RUNTIME.registry.forget(dispatch_id)  # as in a new kernel: only the store knows it
    back = started_in.load(dispatch_id)
    assert back is not None and back.status == "COMPLETED" and back.result == 2
    assert active_store().load(dispatch_id) is None
