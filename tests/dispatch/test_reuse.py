"""Reuse: by key, never by position, with a reason for every node."""

import numpy as np

import covalent_nb as ct


def run(dispatch_id):
    return ct.get_result(dispatch_id, wait=True)


def cell(source, namespace=None):
    """Run notebook-cell source in a ``__main__``-like namespace (shared across calls)."""
    namespace = namespace if namespace is not None else {"__name__": "__main__", "ct": ct}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


PIPELINE = """
OFFSET = 10

def scale(x):
    return x * 2

@ct.electron
def load(n):
    return list(range(n))

@ct.electron
def transform(values):
    return [scale(v) + OFFSET for v in values]

@ct.electron
def summarize(values):
    return sum(values)

@ct.lattice
def pipeline(n):
    return summarize(transform(load(n)))
"""


def reasons(result):
    return {result.graph.names[i]: result.get_node_result(i)["reason"]
            for i, k in enumerate(result.graph.kinds) if k == "electron"}


def redispatch_reuse(parent, *args, **replace):
    return run(ct.redispatch(parent, replace_electrons=replace or None, reuse_previous_results=True)(*args))


def test_reuse_not_requested_says_so():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    child = run(ct.redispatch(parent)())
    assert set(reasons(child).values()) == {"recomputed: reuse not requested (reuse_previous_results=False)"}
    assert child.reuse_summary()["reused"] == 0


def test_reused_nodes_say_where_from_and_have_equal_times():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    child = redispatch_reuse(parent)
    for node, kind in enumerate(child.graph.kinds):
        if kind == "parameter":
            continue
        record = child.get_node_result(node)
        assert record["reused"] and record["reused_from"] == (parent, node)
        assert record["start_time"] == record["end_time"]
        assert record["reason"] == f"reused: same code and inputs as node {node} of {parent}"
    assert child.result == run(parent).result == sum(v * 2 + 10 for v in range(3))


def test_input_change_names_the_argument_and_downstream_names_the_upstream_node():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    child = redispatch_reuse(parent, 4)
    why = reasons(child)
    assert why["load"] == "recomputed: input changed (argument 'n')"
    assert why["transform"] == "recomputed: upstream recomputed (node 0, load)"
    assert why["summarize"] == "recomputed: upstream recomputed (node 2, transform)"


def test_redispatch_runs_the_dispatched_code_even_after_a_helper_edit():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    run(parent)
    cell("def scale(x):\n    return x * 3\n", ns)  # the user edits the helper's cell afterwards
    for args in ((), (3,)):  # rerun as it stands, and retrace with (the same) new inputs
        child = redispatch_reuse(parent, *args)
        assert all(r.startswith("reused") for r in reasons(child).values()), reasons(child)
        assert child.result == run(parent).result


def test_passing_the_edited_task_recomputes_it_and_names_the_helper_that_changed():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    run(parent)
    cell("def scale(x):\n    return x * 3\n", ns)
    child = redispatch_reuse(parent, transform=ns["transform"])
    why = reasons(child)
    assert why["load"].startswith("reused")
    assert why["transform"] == "recomputed: code changed (helper 'scale')"
    assert why["summarize"] == "recomputed: upstream recomputed (node 2, transform)"
    assert child.result == sum(v * 3 + 10 for v in range(3))


def test_a_replacement_under_another_name_says_replaced():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    cell("@ct.electron\ndef transform_v2(values):\n    return values\n", ns)
    child = redispatch_reuse(parent, transform=ns["transform_v2"])
    assert reasons(child)["transform_v2"] == "recomputed: replaced (transform -> transform_v2)"


def test_matching_is_by_key_not_position():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    run(parent)
    cell("""
@ct.electron
def note(msg):
    return msg

@ct.lattice
def pipeline(n):
    note("an early extra task")
    return summarize(transform(load(n)))
""", ns)
    # A fresh dispatch of the edited lattice, then a child of it, shows shifted positions.
    grown = ct.dispatch(ns["pipeline"])(3)
    run(grown)
    child = redispatch_reuse(grown)
    assert all(child.get_node_result(i)["reused"] for i, k in enumerate(child.graph.kinds) if k == "electron")
    # Across lattices of different shapes: the parent's load/transform/summarize keys match the
    # shifted nodes of the grown graph.
    parent_keys = {k for k in run(parent)._table.key if k}
    grown_result = run(grown)
    shifted = [i for i, n in enumerate(grown_result.graph.names) if n in ("load", "transform", "summarize")]
    assert shifted == [2, 4, 5] and all(grown_result._table.key[i] in parent_keys for i in shifted)


def test_opted_out_tasks_and_their_descendants_are_recomputed():
    ns = cell("""
import random

@ct.electron(reusable=False)
def sample(n):
    return [random.random() for _ in range(n)]

@ct.electron
def mean(values):
    return sum(values) / len(values)

@ct.electron
def fixed(n):
    return n

@ct.lattice
def flow(n):
    return [mean(sample(n)), fixed(n)]
""")
    parent = ct.dispatch(ns["flow"])(5)
    child = redispatch_reuse(parent)
    why = reasons(child)
    assert why["sample"] == "recomputed: opted out (reusable=False)"
    assert why["mean"].startswith("recomputed: upstream recomputed") and "sample" in why["mean"]
    assert why["fixed"].startswith("reused")
    assert child.result[0] != run(parent).result[0]


def test_an_argument_that_cannot_be_hashed_makes_the_node_not_reusable():
    import threading

    ns = cell("""
@ct.electron
def use(lock, x):
    return x

@ct.lattice
def flow(lock, x):
    return use(lock, x)
""")
    parent = ct.dispatch(ns["flow"])(threading.Lock(), 1)
    child = redispatch_reuse(parent)
    reason = reasons(child)["use"]
    assert reason.startswith("recomputed: not reusable (argument 'lock' cannot be hashed")
    assert not child.get_node_result(0)["reused"]


def test_numpy_arguments_are_keyed_by_content():
    ns = cell("""
@ct.electron
def total(a):
    return float(a.sum())

@ct.lattice
def flow(a):
    return total(a)
""")
    parent = ct.dispatch(ns["flow"])(np.arange(5))
    assert redispatch_reuse(parent, np.arange(5)).get_node_result(0)["reused"]
    changed = redispatch_reuse(parent, np.arange(6))
    assert not changed.get_node_result(0)["reused"] and changed.result == 15.0


def test_sublattices_reuse_correctly():
    ns = cell("""
@ct.electron
def inc(x):
    return x + 1

@ct.lattice
def inner(x, y):
    return [inc(x), inc(y)]

@ct.lattice
def outer(x, y):
    return ct.electron(inner)(x, y)
""")
    parent = ct.dispatch(ns["outer"])(1, 2)
    assert run(parent).result == [2, 3]
    same = redispatch_reuse(parent)
    assert same.get_node_result(0)["reused"] and same.result == [2, 3]
    assert same.get_node_result(0)["sublattice_result"] is not None
    changed = redispatch_reuse(parent, 1, 5)
    assert changed.result == [2, 6] and not changed.get_node_result(0)["reused"]
    inner_result = changed.get_node_result(0)["sublattice_result"]
    inner_reasons = [inner_result.get_node_result(i)["reason"] for i, k in enumerate(inner_result.graph.kinds)
                     if k == "electron"]
    assert inner_reasons == [f"reused: same code and inputs as node 0 of {inner_result.parent_dispatch_id}",
                             "recomputed: input changed (argument 'x')"]


def test_summary_counts_reused_and_recomputed_with_reasons():
    ns = cell(PIPELINE)
    parent = ct.dispatch(ns["pipeline"])(3)
    summary = redispatch_reuse(parent, 4).reuse_summary()
    assert summary["reused"] == 0 and summary["recomputed"] == 4
    assert summary["reasons"] == {"recomputed": 4}


def test_reuse_key_with_file_digest_sees_a_file_the_key_cannot(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("1 2 3")
    ns = cell(f"""
PATH = {str(data)!r}

@ct.electron(reuse_key=lambda: ct.file_digest(PATH))
def load(path):
    with open(path) as handle:
        return sum(int(v) for v in handle.read().split())

@ct.lattice
def flow(path):
    return load(path)
""")
    parent = run(ct.dispatch(ns["flow"])(str(data)))
    assert parent.result == 6
    same = run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)())
    assert same.result == 6 and same.get_node_result(0)["reused"]
    data.write_text("10 20")  # the path (the input) is the same; the file behind it is not
    again = run(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)())
    record = again.get_node_result(0)
    assert again.result == 30 and not record["reused"]
    assert record["reason"].startswith("recomputed:")


def test_file_digest_names_missing_files_and_differs_by_content(tmp_path):
    path = tmp_path / "a.txt"
    missing = ct.file_digest(path)
    path.write_bytes(b"x")
    first = ct.file_digest(path)
    path.write_bytes(b"y")
    assert len({missing, first, ct.file_digest(path)}) == 3
    assert ct.file_digest(path) == ct.file_digest(str(path))


def test_reuse_key_that_is_not_callable_is_refused_with_an_example():
    import pytest

    with pytest.raises(TypeError, match=r"reuse_key takes a function of no arguments.*os\.environ"):
        ct.electron(reuse_key="MODE")(lambda x: x)
