"""The store across real processes: a second kernel, a killed one, two at once, one still running."""

from __future__ import annotations

import json
import os
import signal
import time

import covalent_nb as ct
from covalent_nb.results.store import active_store

DISPATCH_FLOW = """
    import covalent_nb as ct

    @ct.electron
    def square(x):
        return x * x

    @ct.electron
    def add(a, b):
        return a + b

    @ct.lattice
    def flow(x, y):
        return add(square(x), square(y))

    dispatch_id = ct.dispatch(flow)(3, 4)
    assert ct.get_result(dispatch_id, wait=True).result == 25
    print(dispatch_id)
"""

READ_AND_REDISPATCH = """
    import json, sys
    import covalent_nb as ct

    @ct.electron
    def multiply(a, b):
        return a * b

    parent = ct.get_result(sys.argv[1], wait=True)
    report = {"status": str(parent.status), "result": parent.result, "lattice": parent.lattice.__name__,
              "outputs": [parent.get_node_result(i)["output"] for i in range(len(parent.graph))]}

    same = ct.get_result(ct.redispatch(sys.argv[1], reuse_previous_results=True)(), wait=True)
    report["same"] = {"result": same.result, "reused": same.reused_nodes, "recomputed": same.recomputed_nodes}

    replaced = ct.get_result(ct.redispatch(sys.argv[1], replace_electrons={"add": multiply},
                                           reuse_previous_results=True)(), wait=True)
    report["replaced"] = {"result": replaced.result, "reused": replaced.reused_nodes,
                          "reasons": {str(k): v for k, v in replaced._table.reason.items()}}
    print(json.dumps(report))
"""


def test_a_second_process_reads_and_redispatches_with_reuse(run_python):
    dispatch_id = run_python(DISPATCH_FLOW).strip()
    report = json.loads(run_python(READ_AND_REDISPATCH, dispatch_id))
    assert report["status"] == "COMPLETED" and report["result"] == 25 and report["lattice"] == "flow"
    assert report["outputs"] == [9, 3, 16, 4, 25, 25]
    # Every task node of the rerun took its output from the first process's dispatch.
    assert report["same"] == {"result": 25, "reused": [0, 2, 4, 5], "recomputed": []}
    assert report["replaced"]["result"] == 144 and report["replaced"]["reused"] == [0, 2]
    assert report["replaced"]["reasons"]["4"] == "recomputed: replaced (add -> multiply)"
    # And this (third) process sees the whole lineage.
    listed = ct.list_dispatches()
    assert len(listed) == 3 and {d["parent"] for d in listed[:2]} == {dispatch_id}
    assert [(d["reused"], d["recomputed"]) for d in listed] == [(2, 2), (4, 0), (0, 4)]


STUCK_AFTER_SOME_NODES = """
    import sys, time
    import covalent_nb as ct

    @ct.electron
    def quick(i):
        return i * 10

    @ct.electron
    def stuck(values):
        time.sleep(600)
        return sum(values)

    @ct.lattice
    def flow(n):
        return stuck([quick(i) for i in range(n)])

    print(ct.dispatch(flow)(5), flush=True)
    time.sleep(600)
"""


@ct.electron
def unstuck(values):
    return sum(values)


def _wait_for(condition, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _completed_tasks(dispatch_id) -> int:
    result = active_store().load(dispatch_id)
    if result is None:
        return 0
    return sum(1 for i, k in enumerate(result.graph.kinds)
               if k != "parameter" and result._table.status[i] == "COMPLETED")


def test_sigkill_mid_dispatch_leaves_an_interrupted_dispatch_whose_nodes_are_reusable(spawn_python, run_python,
                                                                                      home):
    process = spawn_python(STUCK_AFTER_SOME_NODES)
    dispatch_id = process.stdout.readline().strip()
    assert dispatch_id, process.stderr.read()
    # quick x 5 and the list gathering them; then stuck runs forever
    _wait_for(lambda: _completed_tasks(dispatch_id) == 6, "the quick nodes to be stored")
    assert ct.list_dispatches()[0]["status"] == "RUNNING"  # its process is alive: not interrupted

    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    # The next process to open the store finds it interrupted.
    seen = json.loads(run_python("""
        import json, covalent_nb as ct
        d = ct.list_dispatches()[0]
        print(json.dumps([d["id"], str(d["status"]), d["reused"], d["recomputed"]]))
    """))
    assert seen == [dispatch_id, "INTERRUPTED", 0, 6]
    # The killed process's owner file is gone; only this (pytest) process's remains.
    assert len(os.listdir(home / "owners")) == 1
    result = ct.get_result(dispatch_id, wait=True)
    assert result.status == ct.Status.INTERRUPTED
    assert f"(pid {process.pid} on " in result.error and "ended during the run" in result.error
    assert "6 of 8 task node(s) had completed" in result.error
    quick = [i for i, n in enumerate(result.graph.names) if n == "quick"]
    assert [result.get_node_result(i)["output"] for i in quick] == [0, 10, 20, 30, 40]
    stuck = result.graph.names.index("stuck")
    assert result.get_node_result(stuck)["status"] == "NEW_OBJECT"

    rerun = ct.get_result(ct.redispatch(dispatch_id, replace_electrons={"stuck": unstuck},
                                        reuse_previous_results=True)(), wait=True)
    assert rerun.result == 100
    assert [rerun.graph.names[i] for i in rerun.reused_nodes] == ["quick"] * 5 + [":electron_list:"]


EXIT_DURING_RUN = """
    import sys, time
    import covalent_nb as ct

    @ct.electron
    def slow(x):
        time.sleep(600)
        return x

    @ct.lattice
    def flow(x):
        return slow(x)

    print(ct.dispatch(flow)(1), flush=True)
    time.sleep(0.5)
    sys.exit(0)  # the kernel shuts down with a dispatch still running
"""


def test_exiting_during_a_run_marks_the_dispatch_interrupted(run_python):
    dispatch_id = run_python(EXIT_DURING_RUN).strip()
    listed = ct.list_dispatches()
    assert listed[0]["id"] == dispatch_id and listed[0]["status"] == "INTERRUPTED"
    assert "ended during the run" in ct.get_result(dispatch_id).error


MANY_DISPATCHES = """
    import json, os, sys, time
    import covalent_nb as ct
    name, go, count = sys.argv[1], sys.argv[2], int(sys.argv[3])

    @ct.electron
    def work(i, tag):
        return [tag, i, "x" * (i % 7)]

    @ct.electron
    def big(tag):
        return tag * 20000  # a blob

    @ct.electron
    def gather(items, blob, shared):
        return len(items), len(blob), len(shared)

    @ct.lattice
    def fan(n, tag):
        # big("s") is the same blob in every dispatch of both processes
        return gather([work(i, tag) for i in range(n)], big(tag), big("s"))

    def wait_for_file(path):
        deadline = time.monotonic() + 120
        while not os.path.exists(path):
            assert time.monotonic() < deadline, f"{path} never appeared"
            time.sleep(0.005)

    wait_for_file(go)
    # Half the dispatches, then meet the other process halfway: each one's second half starts
    # after the other's first half has finished, so the two always overlap, however fast.
    half = count // 2
    ids = [ct.dispatch(fan)(40 + k, f"{name}{k}") for k in range(half)]
    for dispatch_id in ids:
        assert ct.get_result(dispatch_id, wait=True).status == "COMPLETED"
    open(f"{go}-{name}-half", "w").close()
    wait_for_file(f"{go}-{'b' if name == 'a' else 'a'}-half")
    rest = [ct.dispatch(fan)(40 + k, f"{name}{k}") for k in range(half, count)]
    for dispatch_id in rest:
        assert ct.get_result(dispatch_id, wait=True).status == "COMPLETED"
    print(json.dumps(ids + rest))
"""


def test_two_processes_dispatching_into_one_home_lose_nothing(spawn_python, home, tmp_path):
    go = tmp_path / "go"
    count = 12
    writers = [spawn_python(MANY_DISPATCHES, name, str(go), str(count)) for name in ("a", "b")]
    time.sleep(1.0)  # both imported and waiting
    go.touch()
    ids = {}
    for name, process in zip(("a", "b"), writers):
        out, err = process.communicate(timeout=240)
        assert process.returncode == 0, err
        ids[name] = json.loads(out)
    listed = {d["id"]: d for d in ct.list_dispatches()}
    assert len(listed) == 2 * count
    spans = [(min(listed[i]["start"] for i in ids[name]),
              max(listed[i]["start"] for i in ids[name])) for name in ("a", "b")]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], "the two processes did not overlap"
    for name, dispatch_ids in ids.items():
        for k, dispatch_id in enumerate(dispatch_ids):
            assert listed[dispatch_id]["status"] == "COMPLETED"
            result = ct.get_result(dispatch_id)
            n = 40 + k
            assert result.result == (n, 20000 * len(f"{name}{k}"), 20000)
            work = [i for i, node in enumerate(result.graph.names) if node == "work"]
            assert [result.get_node_result(i)["output"] for i in work] == \
                [[f"{name}{k}", i, "x" * (i % 7)] for i in range(n)]


WAIT_FOR_GATE = """
    import os, sys, time
    import covalent_nb as ct

    @ct.electron
    def wait_for(path):
        while not os.path.exists(path):
            time.sleep(0.01)
        return "opened"

    @ct.lattice
    def gated(path):
        return wait_for(path)

    dispatch_id = ct.dispatch(gated)(sys.argv[1])
    print(dispatch_id, flush=True)
    ct.get_result(dispatch_id, wait=True)
"""


def test_get_result_waits_for_a_dispatch_running_in_another_process(spawn_python, tmp_path):
    gate = tmp_path / "gate"
    process = spawn_python(WAIT_FOR_GATE, str(gate))
    dispatch_id = process.stdout.readline().strip()
    running = ct.get_result(dispatch_id)
    assert running.status in ("NEW_OBJECT", "RUNNING") and not running.ended
    assert not running.wait(timeout=0.3)
    gate.touch()
    assert ct.get_result(dispatch_id, wait=True) is running
    assert running.ended and running.status == "COMPLETED" and running.result == "opened"
    process.communicate(timeout=30)


def test_the_owner_files_of_killed_processes_are_swept(spawn_python, run_python, home):
    process = spawn_python("""
        import time, covalent_nb as ct
        ct.list_dispatches()  # opens the store: takes an owner lock, runs nothing
        print("open", flush=True)
        time.sleep(600)
    """)
    assert process.stdout.readline().strip() == "open"
    assert len(os.listdir(home / "owners")) == 1
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    run_python("import covalent_nb as ct; ct.list_dispatches()")
    assert os.listdir(home / "owners") == []
