"""Redispatch: replaced tasks, new inputs, lineage, and a parent that never changes."""

import threading
import time

import pytest

import covalent_nb as ct


@ct.electron
def add(x, y):
    return x + y


@ct.electron
def square(x):
    return x ** 2


@ct.electron
def cube(x):
    return x ** 3


@ct.electron
def multiply(x, y):
    return x * y


@ct.lattice
def workflow(x, y):
    return square(add(x, y))


def run(dispatch_id):
    return ct.get_result(dispatch_id, wait=True)


# -- Covalent's own scenarios ----------------------------------------------------
def test_covalents_replacement_scenarios():
    parent = ct.dispatch(workflow)(2, 3)
    assert run(parent).result == 25
    assert run(ct.redispatch(parent, replace_electrons={"square": cube})()).result == 125
    assert run(ct.redispatch(parent, replace_electrons={"add": multiply})()).result == 36
    assert run(ct.redispatch(parent, replace_electrons={"add": multiply})(2, 5)).result == 100
    assert run(ct.redispatch(parent)(2, 5)).result == 49


def test_covalents_reuse_scenarios():
    parent = ct.dispatch(workflow)(2, 3)
    run(parent)
    cubed = run(ct.redispatch(parent, replace_electrons={"square": cube}, reuse_previous_results=True)())
    assert cubed.result == 125
    assert cubed.get_node_result(0)["reused"] and not cubed.get_node_result(3)["reused"]
    same = run(ct.redispatch(parent, reuse_previous_results=True)())
    assert same.result == 25
    electrons = [i for i, k in enumerate(same.graph.kinds) if k != "parameter"]
    assert all(same.get_node_result(i)["reused"] for i in electrons)


def test_covalents_failure_then_fixed_inputs_scenario():
    @ct.electron
    def divide(x, y):
        return x / y

    @ct.electron
    def identity(x):
        return x

    @ct.lattice
    def flow(x, y):
        return divide(identity(x), y)

    parent = ct.dispatch(flow)(1, 0)
    assert run(parent).status == "FAILED"
    fixed = run(ct.redispatch(parent, reuse_previous_results=True)(1, 1))
    assert fixed.status == "COMPLETED" and fixed.result == 1.0
    assert fixed.get_node_result(0)["reused"]


def test_a_failed_node_is_never_reused_and_says_why(tmp_path):
    marker = str(tmp_path / "attempts")

    @ct.electron
    def flaky(x, marker):
        with open(marker, "a") as handle:
            handle.write("x")
        if open(marker).read() == "x":
            raise RuntimeError("first time fails")
        return x

    @ct.lattice
    def flow(x, marker):
        return flaky(x, marker)

    parent = ct.dispatch(flow)(1, marker)
    assert run(parent).status == "FAILED"
    again = run(ct.redispatch(parent, reuse_previous_results=True)())
    assert again.result == 1 and open(marker).read() == "xx"
    assert again.get_node_result(0)["reason"].startswith("recomputed: previous run FAILED")


# -- API details ---------------------------------------------------------------------
def test_no_arguments_reuse_the_parents_args_and_kwargs():
    @ct.lattice
    def flow(x, y=1):
        return add(x, y)

    parent = ct.dispatch(flow)(2, y=40)
    assert run(parent).result == 42
    child = run(ct.redispatch(parent)())
    assert child.result == 42 and child.inputs == {"args": (2,), "kwargs": {"y": 40}}


def test_lineage_parent_and_root():
    first = ct.dispatch(workflow)(1, 1)
    second = ct.redispatch(first)()
    third = ct.redispatch(second)(2, 2)
    assert run(first).parent_dispatch_id is None and run(first).root_dispatch_id == first
    assert run(second).parent_dispatch_id == first and run(second).root_dispatch_id == first
    assert run(third).parent_dispatch_id == second and run(third).root_dispatch_id == first


def test_replacements_persist_through_a_redispatch_of_a_redispatch():
    parent = ct.dispatch(workflow)(2, 3)
    child = ct.redispatch(parent, replace_electrons={"square": cube})()
    grandchild = run(ct.redispatch(child)(1, 1))
    assert grandchild.result == 8
    assert "cube" in grandchild.graph.names and "square" not in grandchild.graph.names
    # the replacement can itself be replaced, by its original or its new name
    assert run(ct.redispatch(child, replace_electrons={"cube": square})()).result == 25


def test_a_plain_function_is_accepted_as_replacement():
    def halve(x):
        return x / 2

    parent = ct.dispatch(workflow)(2, 2)
    assert run(ct.redispatch(parent, replace_electrons={"square": halve})()).result == 2.0


def test_bad_replacements_fail_before_anything_runs():
    parent = ct.dispatch(workflow)(2, 3)
    with pytest.raises(ValueError, match=r"'sqaure', which is not an electron of lattice workflow; "
                                         r"its electrons are: add, square"):
        ct.redispatch(parent, replace_electrons={"sqaure": cube})
    with pytest.raises(TypeError, match="must be callable"):
        ct.redispatch(parent, replace_electrons={"square": 3})

    @ct.electron
    def needs_two(a, b):
        return a

    with pytest.raises(TypeError, match=r"replacement needs_two\(a, b\) cannot take the arguments of "
                                        r"square\(x\)"):
        ct.redispatch(parent, replace_electrons={"square": needs_two})
    with pytest.raises(ValueError, match="no dispatch with id"):
        ct.redispatch("not-an-id")


def test_the_parent_is_never_changed():
    parent_id = ct.dispatch(workflow)(2, 3)
    parent = run(parent_id)
    before = [dict(r) for r in parent.get_all_node_results()]
    run(ct.redispatch(parent_id, replace_electrons={"square": cube}, reuse_previous_results=True)())
    run(ct.redispatch(parent_id, reuse_previous_results=True)(5, 5))
    run(ct.redispatch(parent_id, reuse_previous_results=True)())
    after = parent.get_all_node_results()
    assert after == before
    assert parent.result == 25 and parent.graph.names[3] == "square"


def test_redispatch_of_a_running_parent_starts_after_it_ends():
    @ct.electron
    def slow(x):
        time.sleep(0.5)
        return x

    @ct.lattice
    def flow(x):
        return add(slow(x), 1)

    parent = ct.dispatch(flow)(1)
    deadline = time.monotonic() + 5
    while ct.get_result(parent).status != "RUNNING":  # its thread takes it up within a moment
        assert time.monotonic() < deadline
        time.sleep(0.001)
    t0 = time.perf_counter()
    child = ct.redispatch(parent, reuse_previous_results=True)()
    assert time.perf_counter() - t0 < 0.4  # the call does not block
    assert ct.get_result(child).status == "NEW_OBJECT"
    assert ct.get_result(parent).status == "RUNNING"
    result = run(child)
    assert result.result == 2
    assert result.get_node_result(0)["reused"], result.get_node_result(0)["reason"]


def test_a_task_that_reaches_something_unhashable_is_recomputed_with_the_reason():
    gate = threading.Event()
    gate.set()

    @ct.electron
    def gated(x):
        gate.wait()
        return x

    @ct.lattice
    def flow(x):
        return gated(x)

    parent = ct.dispatch(flow)(1)
    child = run(ct.redispatch(parent, reuse_previous_results=True)())
    reason = child.get_node_result(0)["reason"]
    assert not child.get_node_result(0)["reused"]
    assert reason.startswith("recomputed: not reusable") and "closure value 'gate'" in reason


def test_no_change_redispatch_reruns_the_parents_graph_without_tracing():
    @ct.lattice
    def flow(x):
        return square(x)

    parent = ct.dispatch(flow)(3)
    run(parent)
    child = run(ct.redispatch(parent, reuse_previous_results=True)())
    assert child.result == 9
    assert child.graph.names is run(parent).graph.names  # shared, not rebuilt by a new trace


def test_redispatch_runs_the_workflow_as_it_was_dispatched():
    namespace = {"__name__": "__main__", "ct": ct}
    exec("@ct.electron\ndef step(x):\n    return x + 1\n\n"
         "@ct.lattice\ndef flow(x):\n    return step(x)\n", namespace)
    parent = ct.dispatch(namespace["flow"])(1)
    assert run(parent).result == 2
    exec("@ct.electron\ndef step(x):\n    return x + 100\n", namespace)  # edited after dispatch
    assert run(ct.redispatch(parent)(5)).result == 6


def test_a_snapshot_that_cannot_be_restored_says_what_to_do():
    parent = run(ct.dispatch(workflow)(2, 3))
    parent.snapshot = b"not a pickle"  # as if stored by a kernel whose modules are gone
    with pytest.raises(RuntimeError, match=r"cannot be restored from its snapshot .*dispatch the lattice again"):
        ct.redispatch(parent.dispatch_id)(1, 1)


def test_a_redispatch_of_a_dispatch_registered_without_running_runs():
    parent_id = ct.dispatch(workflow, disable_run=True)(2, 3)
    parent = ct.get_result(parent_id)
    assert parent.status == "NEW_OBJECT"
    child = run(ct.redispatch(parent_id, reuse_previous_results=True)())
    assert child.status == "COMPLETED" and child.result == run(ct.dispatch(workflow)(2, 3)).result
    assert not any(child.get_node_result(i)["reused"] for i in range(len(child.graph)))
    assert ct.get_result(parent_id).status == "NEW_OBJECT"  # the parent itself never runs


def test_a_unique_prefix_of_a_dispatch_id_is_accepted_everywhere_and_an_ambiguous_one_is_refused():
    from types import SimpleNamespace

    from covalent_nb.dispatch.runtime import RUNTIME

    parent = run(ct.dispatch(workflow)(2, 3))
    short = parent.dispatch_id[:8]  # what %dispatches shows
    assert ct.get_result(short) is parent
    child = run(ct.redispatch(short, reuse_previous_results=True)())
    assert child.parent_dispatch_id == parent.dispatch_id
    twins = [SimpleNamespace(dispatch_id=f"feedbee{i}-0000-4000-8000-000000000000") for i in (1, 2)]
    for twin in twins:
        RUNTIME.registry.register(twin, None)
    try:
        with pytest.raises(ValueError, match=r"prefix 'feedbee' is ambiguous: it starts feedbee1-.*, feedbee2-"):
            ct.get_result("feedbee")
        with pytest.raises(ValueError, match="no dispatch with id 'nothing-like-it'"):
            ct.get_result("nothing-like-it")
    finally:
        for twin in twins:
            RUNTIME.registry.forget(twin.dispatch_id)
