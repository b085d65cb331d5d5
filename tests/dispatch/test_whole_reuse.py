"""A redispatch that reruns its parent's graph unchanged, every node reused at once (ReusedBlock).

The dispatcher takes that path only when every node can take the output of the
same node of the parent; these tests pin that it records, stores and shows
exactly what the node-by-node path does, and falls back to it otherwise.
"""

from __future__ import annotations

import pickle

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.reuse import PARENT_REASON, SameNodeReasons
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.notebook.publisher import fold
from covalent_nb.results.records import decode_batch, decode_plan, encode_batch, encode_plan
from covalent_nb.results.store import active_store
from covalent_nb.states import Status


@ct.electron
def make(n):
    return list(range(n))


@ct.electron
def grow(values, k):
    return values + [k]


@ct.electron
def size(values):
    return len(values)


@ct.electron
def square(x):
    return x * x


@ct.lattice
def flow(n):
    values = grow(make(n), 7)
    return [size(values), square(n), square(n)]  # two nodes with one key


def run(dispatch_id):
    return ct.get_result(dispatch_id, wait=True)


def events_of(action):
    """The events published while *action()* runs, and what it returned."""
    seen: list = []
    unsubscribe = RUNTIME.events.subscribe(lambda batch: seen.extend(batch))
    try:
        value = action()
    finally:
        unsubscribe()
    return seen, value


def comparable(result, node):
    record = result.get_node_result(node)
    return {k: record[k] for k in ("node_name", "status", "output", "error", "stdout", "reused", "key")}


def test_a_full_reuse_redispatch_is_one_block_and_records_what_node_by_node_reuse_records():
    parent = run(ct.dispatch(flow)(3))
    seen, whole = events_of(lambda: run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)()))
    kinds = [e.kind for e in seen if e.dispatch_id == whole.dispatch_id]
    assert kinds == ["dispatch_started", "nodes_reused", "dispatch_ended"]
    # the same work, given its arguments again, takes the node-by-node path
    by_node = run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(3))
    tasks = [n for n, kind in enumerate(whole.graph.kinds) if kind != "parameter"]
    assert whole.reused_nodes == tasks and whole.recomputed_nodes == []
    assert whole.reuse_summary() == {"reused": len(tasks), "recomputed": 0, "reasons": {},
                                     "from_parent": len(tasks), "from_history": 0}
    for node in tasks:
        record = whole.get_node_result(node)
        assert record["reused_from"] == (parent.dispatch_id, node)
        assert record["reason"] == f"reused: same code and inputs as node {node} of {parent.dispatch_id}"
        assert record["start_time"] == record["end_time"] is not None
        assert comparable(whole, node) == comparable(by_node, node) == comparable(parent, node) | {"reused": True}
    assert whole.result == by_node.result == parent.result == [4, 9, 9]
    assert whole.status == Status.COMPLETED


def test_each_dispatch_keeps_its_own_copy_of_a_mutable_output():
    parent = run(ct.dispatch(flow)(2))
    grown = parent.graph.names.index("grow")
    child = run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)())
    child.get_node_result(grown)["output"].append("changed in the notebook")
    assert parent.get_node_result(grown)["output"] == [0, 1, 7]
    again = run(ct.redispatch(child.dispatch_id, reuse_previous_results=True)())
    assert again.get_node_result(grown)["output"] == [0, 1, 7]


def test_the_store_keeps_a_whole_reuse_as_it_keeps_any_other(tmp_path, covalent_nb_home):
    ct.set_config(home=str(tmp_path / "home"), store="sqlite")
    try:
        parent = run(ct.dispatch(flow)(4))
        child = run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)())
        back = active_store().load(child.dispatch_id)
        assert back is not child and back.result == [5, 16, 16]
        for node in range(len(child.graph)):
            assert back.get_node_result(node) == child.get_node_result(node)
        assert back.reuse_summary() == child.reuse_summary()
        # a loaded parent (a new kernel) is reused node by node, with the same records
        RUNTIME.registry.forget(child.dispatch_id)
        grandchild = run(ct.redispatch(child.dispatch_id, reuse_previous_results=True)())
        assert grandchild.reused_nodes == child.reused_nodes and grandchild.result == [5, 16, 16]
    finally:
        from covalent_nb.results import store as store_module

        store_module._close_durable_stores()
        ct.set_config(home=str(covalent_nb_home), store="sqlite")


def test_any_node_the_parent_cannot_serve_takes_the_node_by_node_path():
    @ct.electron
    def fragile(x):
        if x > 1:
            raise ValueError("too big")
        return x

    @ct.lattice
    def wobbly(x):
        return [fragile(x), square(x)]

    parent = run(ct.dispatch(wobbly)(2))
    assert parent.status == Status.FAILED
    seen, child = events_of(lambda: run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)()))
    assert "nodes_reused" not in [e.kind for e in seen]
    assert child.reused_nodes == [parent.graph.names.index("square")]


def test_the_widget_sees_every_node_of_a_block_as_reused():
    parent = run(ct.dispatch(flow)(3))
    seen, child = events_of(lambda: run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)()))
    update = fold(child.dispatch_id, [e for e in seen if e.dispatch_id == child.dispatch_id])
    tasks = {n for n, kind in enumerate(child.graph.kinds) if kind != "parameter"}
    assert set(update.changes) == tasks and set(update.changes.values()) == {"reused"}
    assert update.started and update.ended


def test_same_node_reasons_behave_as_the_dict_they_stand_for():
    reasons = SameNodeReasons("parent-id", (1, 3, 5))
    as_dict = {n: PARENT_REASON.format(n, "parent-id") for n in (1, 3, 5)}
    assert reasons == as_dict and dict(reasons) == as_dict and len(reasons) == 3
    assert reasons.get(2) is None and 3 in reasons and 4 not in reasons
    reasons[7] = "not run: upstream node 5 (x) failed"
    reasons[3] = "given later"
    assert list(reasons) == [1, 3, 5, 7] and len(reasons) == 4 and reasons[3] == "given later"
    copy = reasons.copy()
    copy[9] = "only in the copy"
    assert 9 not in reasons
    assert pickle.loads(pickle.dumps(reasons)) == reasons
    with pytest.raises(KeyError):
        reasons[2]
    keys, unhashable, back = decode_plan(encode_plan(["a" * 32] * 8, {}, reasons))
    assert back == reasons and isinstance(back, SameNodeReasons) and keys == ["a" * 32] * 8


def test_a_batch_reused_from_one_dispatch_is_stored_as_its_id():
    payload = encode_batch([1, 3], [Status.COMPLETED] * 2, [5, 5], [5, 5], {}, [1, 3], [10, 30],
                           {"reused_from": "parent-id"})
    batch = decode_batch(payload)
    assert batch.sparse["reused_from"] == {1: ("parent-id", 1), 3: ("parent-id", 3)}
    assert batch.packed == {1: 10, 3: 30} and batch.statuses == [Status.COMPLETED] * 2
