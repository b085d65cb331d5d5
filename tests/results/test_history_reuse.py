"""Reuse from history (issue 16): any earlier stored run of the same work serves a node.

``ct.dispatch(lattice, reuse_previous_results=True)`` looks in the whole store;
``ct.redispatch(..., reuse_previous_results=True)`` keeps Covalent's meaning (the
parent only) unless ``reuse_history=True`` is given as well.
"""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest

import covalent_nb as ct
from covalent_nb.results.store import active_store

RUNS = []


@ct.electron
def square(x):
    return x * x


@ct.electron
def total(values):
    return sum(values)


@ct.electron(reusable=False)
def now_and(x):
    return x


@ct.lattice
def squares(n):
    return total([square(i) for i in range(n)])


@ct.lattice
def with_opt_out(x):
    return total([square(x), now_and(square(x + 1))])


def _reasons(result):
    return {i: result.get_node_result(i)["reason"] for i in range(len(result.graph))
            if result.get_node_result(i)["reason"]}


def test_a_dispatch_reuses_from_any_earlier_dispatch_and_says_where_from_and_when(home):
    first = ct.dispatch_sync(squares)(3)
    again = ct.dispatch_sync(squares, reuse_previous_results=True)(4)  # one more square
    assert again.result == 0 + 1 + 4 + 9
    reasons = _reasons(again)
    when = datetime.datetime.fromtimestamp(first.get_node_result(0)["end_time"].timestamp())
    for node in (0, 2, 4):  # square(0), square(1), square(2): computed by the first dispatch
        assert reasons[node].startswith(f"reused from history: same code and inputs as node {node} of "
                                        f"{first.dispatch_id} (ended {when:%Y-%m-%d %H}")
        assert again.get_node_result(node)["reused"]
    assert reasons[6] == "recomputed: no earlier run of the same code and inputs in the history"  # square(3)
    summary = again.reuse_summary()
    assert (summary["reused"], summary["from_history"], summary["from_parent"]) == (3, 3, 0)


def test_without_the_keyword_a_dispatch_runs_everything_as_covalent_does(home):
    ct.dispatch_sync(squares)(3)
    plain = ct.dispatch_sync(squares)(3)
    assert plain.reused_nodes == []
    assert set(_reasons(plain).values()) == {"first dispatch"}


def test_the_reuse_history_setting_makes_it_the_default_of_dispatch(home):
    ct.dispatch_sync(squares)(3)
    ct.set_config(reuse_history=True)
    try:
        by_default = ct.dispatch_sync(squares)(3)
        opted_out = ct.dispatch_sync(squares, reuse_previous_results=False)(3)
    finally:
        ct.set_config(reuse_history=False)
    assert len(by_default.reused_nodes) == 6  # 3 squares, the list, the total, the postprocess
    assert by_default.reuse_summary()["recomputed"] == 0
    assert opted_out.reused_nodes == []


def test_opted_out_nodes_and_their_descendants_are_never_reused_from_history(home):
    ct.dispatch_sync(with_opt_out)(2)
    again = ct.dispatch_sync(with_opt_out, reuse_previous_results=True)(2)
    names = again.graph.names
    reused = {names[i] for i in again.reused_nodes}
    assert "square" in reused
    for node, name in enumerate(names):
        if name in ("now_and", "total", ":postprocess:reconstruct"):
            assert not again.get_node_result(node)["reused"], (node, name)


def test_failed_and_cancelled_nodes_are_never_reused(home):
    @ct.electron
    def fragile(x):
        if x < 0:
            raise ValueError("negative")
        return x

    @ct.lattice
    def flow(x):
        return fragile(x)

    failed = ct.dispatch_sync(flow)(-1)
    assert failed.status == "FAILED"
    again = ct.dispatch_sync(flow, reuse_previous_results=True)(-1)
    assert again.status == "FAILED" and again.reused_nodes == []
    assert "no earlier run" in again.get_node_result(0)["reason"]


def test_deleted_and_pruned_dispatches_leave_the_history_and_what_stays_is_intact(home):
    first = ct.dispatch_sync(squares)(2)
    second = ct.dispatch_sync(squares)(3)  # square(0), square(1) again: both dispatches have them
    ct.delete_dispatch(second.dispatch_id)
    again = ct.dispatch_sync(squares, reuse_previous_results=True)(3)
    sources = {again.get_node_result(n)["reason"].split(" of ")[1].split(" ")[0] for n in (0, 2)}
    assert sources == {first.dispatch_id}
    assert again.result == 5 and not again.get_node_result(4)["reused"]  # square(2) was only in `second`

    ct.prune_dispatches(keep_last=0)
    cold = ct.dispatch_sync(squares, reuse_previous_results=True)(3)
    assert cold.reused_nodes == []
    with sqlite3.connect(home / "dispatches.db") as conn:
        indexed = conn.execute("SELECT COUNT(*) FROM node_keys").fetchone()[0]
    assert indexed == len([n for n in range(len(cold.graph)) if cold.graph.kinds[n] != "parameter"])


def test_redispatch_reuses_from_its_parent_only_unless_asked_for_history(home):
    helper = ct.dispatch_sync(squares)(4)  # has square(3)
    parent = ct.dispatch_sync(squares)(3)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(4), wait=True)
    node_of_square_3 = 6
    assert not child.get_node_result(node_of_square_3)["reused"]  # Covalent's meaning: the parent only
    assert child.reuse_summary()["from_history"] == 0
    wider = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True,
                                        reuse_history=True)(4), wait=True)
    assert wider.get_node_result(node_of_square_3)["reused"]
    source = wider.get_node_result(node_of_square_3)["reason"].split(" of ")[1].split(" ")[0]
    assert source in (helper.dispatch_id, child.dispatch_id)  # the newest run of square(3)
    summary = wider.reuse_summary()
    assert summary["from_parent"] == 3 and summary["from_history"] >= 1


def test_two_processes_on_one_home_reuse_each_others_results(home, run_python):
    made_elsewhere = json.loads(run_python("""
        import json, covalent_nb as ct
        from tests.results.test_history_reuse import squares
        r = ct.dispatch_sync(squares)(5)
        print(json.dumps([r.dispatch_id, r.result]))
    """))
    here = ct.dispatch_sync(squares, reuse_previous_results=True)(5)
    assert here.result == made_elsewhere[1] == 30
    assert here.reuse_summary()["recomputed"] == 0
    assert made_elsewhere[0] in here.get_node_result(0)["reason"]

    back = json.loads(run_python("""
        import json, covalent_nb as ct
        from tests.results.test_history_reuse import squares
        r = ct.dispatch_sync(squares, reuse_previous_results=True)(6)
        print(json.dumps([r.result, r.reuse_summary()["from_history"], r.get_node_result(10)["reason"]]))
    """))
    assert back[0] == 55 and back[1] >= 5
    assert back[2] == "recomputed: no earlier run of the same code and inputs in the history"  # square(5)


def test_the_in_memory_store_has_this_kernels_history(home):
    @ct.electron
    def cube(x):
        return x ** 3 + 0.5  # code no other test runs

    @ct.lattice
    def cubes(n):
        return total([cube(i) for i in range(n)])

    ct.set_config(store="memory")
    try:
        first = ct.dispatch_sync(cubes)(3)
        again = ct.dispatch_sync(cubes, reuse_previous_results=True)(3)
        assert again.reuse_summary()["recomputed"] == 0
        assert first.dispatch_id in again.get_node_result(0)["reason"]
        ct.delete_dispatch(first.dispatch_id)
        ct.delete_dispatch(again.dispatch_id)
        cold = ct.dispatch_sync(cubes, reuse_previous_results=True)(3)
        assert cold.reused_nodes == []
    finally:
        ct.set_config(store="sqlite")


def test_a_store_written_before_the_history_index_is_indexed_when_opened(home, run_python):
    from covalent_nb.results import store as store_module

    old = ct.dispatch_sync(squares)(3)
    store_module._close_durable_stores()
    with sqlite3.connect(home / "dispatches.db") as conn:  # as the previous release left it
        conn.execute("DROP TABLE node_keys")
        conn.execute("PRAGMA user_version = 2")
    out = json.loads(run_python("""
        import json, covalent_nb as ct
        from tests.results.test_history_reuse import squares
        r = ct.dispatch_sync(squares, reuse_previous_results=True)(3)
        print(json.dumps([r.result, r.reuse_summary()["from_history"], r.get_node_result(0)["reason"]]))
    """))
    assert out[0] == 5 and out[1] == 6
    assert old.dispatch_id in out[2]


def test_dispatch_magic_reuse_option(home):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()  # the process's one shell (other tests use it too)
    shell.run_line_magic("load_ext", "covalent_nb")
    shell.user_ns["squares"] = squares
    first = ct.dispatch_sync(squares)(3)
    handle = shell.run_line_magic("dispatch", "--reuse squares(3)")
    result = ct.get_result(handle.dispatch_id, wait=True)
    assert result.reuse_summary()["from_history"] == 6
    assert first.dispatch_id in result.get_node_result(0)["reason"]
    plain = ct.get_result(shell.run_line_magic("dispatch", "squares(3)").dispatch_id, wait=True)
    assert plain.reused_nodes == []


# A notebook's pipeline, run as a script in two processes: the second with the helper edited.
EDITED_HELPER = """
import json, covalent_nb as ct

OFFSET = 10

def scale(x):
    return x * FACTOR

@ct.electron
def load(n):
    return list(range(n))

@ct.electron
def transform(values):
    return [scale(v) + OFFSET for v in values]

@ct.electron
def count(values):
    return len(values)

@ct.electron
def summarize(values):
    return sum(values)

@ct.lattice
def pipeline(n):
    values = load(n)
    return [summarize(transform(values)), count(values)]

r = ct.dispatch_sync(pipeline, reuse_previous_results=True)(4)
reasons = {r.graph.names[i]: r.get_node_result(i)["reason"]
           for i, kind in enumerate(r.graph.kinds) if kind == "electron"}
print(json.dumps([r.dispatch_id, r.result, reasons]))
"""


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_an_edited_helper_recomputes_only_what_reaches_it_and_says_so(home, run_python, store):
    if store == "sqlite":  # two processes on one home
        first_id, first, _ = json.loads(run_python("FACTOR = 2\n" + EDITED_HELPER))
        second_id, second, why = json.loads(run_python("FACTOR = 3\n" + EDITED_HELPER))
    else:  # one kernel, the in-memory store: this kernel's history
        ct.set_config(store="memory")
        outputs = []
        for factor in (2, 3):
            namespace = {"__name__": "__main__", "print": outputs.append}
            exec(compile(f"FACTOR = {factor}\n" + EDITED_HELPER, "<cell>", "exec"), namespace)
        (first_id, first, _), (second_id, second, why) = map(json.loads, outputs)
    assert first == [sum(v * 2 + 10 for v in range(4)), 4] and second == [sum(v * 3 + 10 for v in range(4)), 4]
    assert why["load"].startswith(f"reused from history: same code and inputs as node 0 of {first_id}")
    assert why["count"].startswith("reused from history: ")
    assert why["transform"] == f"recomputed: code changed (helper 'scale', since {first_id})"
    assert why["summarize"].startswith("recomputed: upstream recomputed (node ")
