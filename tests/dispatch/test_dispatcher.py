"""The kernel-local dispatcher: execution, failures, cancellation, capture, concurrency."""

import sys
import threading
import time

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.runtime import RUNTIME


@ct.electron
def inc(x):
    return x + 1


@ct.electron
def add(a, b):
    return a + b


@ct.electron
def boom(x):
    raise ValueError(f"boom {x}")


@ct.lattice
def seed_like(a, b):
    return add(inc(a), b)


def test_dispatch_returns_an_id_at_once_and_runs_in_the_background():
    gate = threading.Event()

    @ct.electron
    def blocked():
        gate.wait(10)
        return "done"

    @ct.lattice
    def flow():
        return blocked()

    t0 = time.perf_counter()
    dispatch_id = ct.dispatch(flow)()
    assert time.perf_counter() - t0 < 2
    assert isinstance(dispatch_id, str) and len(dispatch_id) == 36
    assert ct.get_result(dispatch_id).status in ("NEW_OBJECT", "RUNNING")  # not ended: running behind
    assert not ct.get_result(dispatch_id).ended
    gate.set()
    result = ct.get_result(dispatch_id, wait=True)
    assert result.status == ct.Result.COMPLETED and result.result == "done"


def test_parameters_have_equal_times_and_ran_nodes_strictly_later_end():
    result = ct.dispatch_sync(seed_like)(1, 2)
    for node in range(len(result.graph)):
        record = result.get_node_result(node)
        assert record["status"] == "COMPLETED"
        if result.graph.kinds[node] == "parameter":
            assert record["start_time"] == record["end_time"]
        else:
            assert record["end_time"] > record["start_time"], record


def test_node_record_has_covalents_keys_and_ours():
    result = ct.dispatch_sync(seed_like)(1, 2)
    record = result.get_node_result(0)
    for key in ("node_id", "node_name", "start_time", "end_time", "status", "output", "error",
                "sublattice_result", "stdout", "stderr", "reused", "reused_from", "reason", "executor"):
        assert key in record
    assert record["node_name"] == "inc" and record["output"] == 2 and record["executor"] == "local"
    assert result.get_all_node_outputs()["add(2)"] == 4
    assert len(result.get_all_node_results()) == len(result.graph)
    assert result.inputs == {"args": (1, 2), "kwargs": {}}
    assert result.inputs.get_deserialized() == {"args": [1, 2], "kwargs": {}}
    assert result.root_dispatch_id == result.dispatch_id
    text = str(result)
    assert "COMPLETED" in text and "add(2): 4" in text


def test_status_compares_to_strings_and_prints_bare():
    result = ct.dispatch_sync(seed_like)(1, 2)
    assert result.status == "COMPLETED" and str(result.status) == "COMPLETED"
    assert f"{result.status}" == "COMPLETED"
    assert ct.get_result(result.dispatch_id, status_only=True) == {"id": result.dispatch_id,
                                                                     "status": "COMPLETED"}
    assert ct.Result.NEW_OBJ == "NEW_OBJECT" and ct.Result.FAILED == "FAILED"


def test_failure_keeps_traceback_stops_descendants_and_finishes_other_branches():
    @ct.lattice
    def flow(x):
        bad = boom(x)
        after = inc(bad)
        good = inc(x)
        return [after, good]

    result = ct.dispatch_sync(flow)(1)
    assert result.status == "FAILED"
    assert "node(s) 0 (boom) failed" in result.error and "ValueError: boom 1" in result.error
    record = result.get_node_result(0)
    assert record["status"] == "FAILED"
    assert "Traceback" in record["error"] and "raise ValueError" in record["error"]
    after = result.graph.names.index("inc")
    assert result.get_node_result(after)["status"] == "NEW_OBJECT"
    assert "upstream node 0 (boom) failed" in result.get_node_result(after)["reason"]
    good = len(result.graph.names) - 1 - result.graph.names[::-1].index("inc")
    assert result.get_node_result(good)["status"] == "COMPLETED"
    assert result.result is None


def test_failure_inside_a_chain_stops_the_rest_of_the_chain():
    @ct.electron
    def fail_at(x, at):
        if x == at:
            raise RuntimeError("stop")
        return x + 1

    @ct.lattice
    def chain(n):
        x = 0
        for _ in range(n):
            x = fail_at(x, 3)
        return x

    result = ct.dispatch_sync(chain)(6)
    statuses = [result.get_node_result(i)["status"] for i, k in enumerate(result.graph.kinds)
                if k == "electron"]
    assert statuses == ["COMPLETED"] * 3 + ["FAILED", "NEW_OBJECT", "NEW_OBJECT"]


def test_cancel_stops_nodes_that_have_not_started():
    gate = threading.Event()
    started = threading.Event()

    @ct.electron
    def slow():
        started.set()
        gate.wait(10)
        return 1

    @ct.lattice
    def flow():
        return inc(inc(slow()))

    dispatch_id = ct.dispatch(flow)()
    assert started.wait(10)
    message = ct.cancel(dispatch_id)
    assert "cancellation" in message
    # What has not started shows CANCELLED at once, while the running task runs on
    # (inc(inc(...)) is a chain the executor runs as one: its links were handed over already).
    live = ct.get_result(dispatch_id)
    electrons = [i for i, k in enumerate(live.graph.kinds) if k == "electron"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and [live.get_node_result(i)["status"] for i in electrons[1:]] \
            != ["CANCELLED", "CANCELLED"]:
        time.sleep(0.01)
    assert [live.get_node_result(i)["status"] for i in electrons] == ["RUNNING", "CANCELLED", "CANCELLED"]
    gate.set()
    result = ct.get_result(dispatch_id, wait=True)
    assert result.status == "CANCELLED"
    electron_statuses = [result.get_node_result(i)["status"] for i, k in enumerate(result.graph.kinds)
                         if k == "electron"]
    assert electron_statuses[1:] == ["CANCELLED", "CANCELLED"]
    assert "already ended" in ct.cancel(dispatch_id)


def test_cancel_selected_task_ids_cancels_them_and_their_descendants_only():
    gate = threading.Event()

    @ct.electron
    def wait_gate():
        gate.wait(10)
        return 1

    @ct.lattice
    def flow():
        g = wait_gate()
        left = inc(g)
        right = add(g, 1)
        return [inc(left), right]

    dispatch_id = ct.dispatch(flow)()
    result = ct.get_result(dispatch_id)
    left = result.graph.names.index("inc")
    ct.cancel(dispatch_id, task_ids=[left])
    time.sleep(0.05)
    gate.set()
    result = ct.get_result(dispatch_id, wait=True)
    assert result.get_node_result(left)["status"] == "CANCELLED"
    assert result.get_node_result(result.graph.names.index("add"))["status"] == "COMPLETED"
    assert result.status == "CANCELLED"


def test_stdout_and_stderr_land_in_their_own_node(capsys):
    @ct.electron
    def talk(tag):
        for i in range(50):
            print(f"{tag}-{i}")
        print(f"err-{tag}", file=sys.stderr)
        return tag

    @ct.lattice
    def flow():
        return [talk(f"t{i}") for i in range(8)]

    print("from the cell")
    result = ct.dispatch_sync(flow)()
    for node, name in enumerate(result.graph.names):
        if name != "talk":
            continue
        record = result.get_node_result(node)
        tag = record["output"]
        assert record["stdout"] == "".join(f"{tag}-{i}\n" for i in range(50))
        assert record["stderr"] == f"err-{tag}\n"
    captured = capsys.readouterr()
    assert "from the cell" in captured.out and "t0-0" not in captured.out


def test_twenty_concurrent_dispatches_stay_correct():
    @ct.electron
    def slow_inc(x):
        time.sleep(0.002)
        return x + 1

    @ct.lattice
    def flow(x, n):
        values = [slow_inc(x + i) for i in range(n)]
        return add(values[0], values[-1])

    ids = [(x, ct.dispatch(flow)(x, 10)) for x in range(25)]
    for x, dispatch_id in ids:
        result = ct.get_result(dispatch_id, wait=True)
        assert result.status == "COMPLETED"
        assert result.result == (x + 1) + (x + 10)


def test_events_come_in_order_on_one_stream():
    seen = []
    unsubscribe = RUNTIME.events.subscribe(lambda batch: seen.extend(batch))
    try:
        result = ct.dispatch_sync(seed_like)(1, 2)
    finally:
        unsubscribe()
    mine = [e for e in seen if e.dispatch_id == result.dispatch_id]
    assert mine[0].kind == "dispatch_started" and mine[-1].kind == "dispatch_ended"
    assert mine[-1].status == "COMPLETED"
    for node in (0, 2, 4):
        kinds = [e.kind for e in mine if e.node_id == node]
        # a task that starts and ends between two wake-ups of the dispatcher is never seen running
        assert kinds in (["node_running", "node_completed"], ["node_completed"])


def test_a_task_seen_running_is_published_running_before_it_ends():
    gate = threading.Event()

    @ct.electron
    def held(x):
        gate.wait(10)
        return x

    @ct.lattice
    def one(x):
        return held(x)

    seen = []
    unsubscribe = RUNTIME.events.subscribe(lambda batch: seen.extend(batch))
    try:
        dispatch_id = ct.dispatch(one)(1)
        deadline = time.monotonic() + 10
        while not any(e.kind == "node_running" and e.dispatch_id == dispatch_id for e in seen):
            assert time.monotonic() < deadline, "the running task was never published as running"
            time.sleep(0.005)
        assert ct.get_result(dispatch_id).get_node_result(0)["status"] == "RUNNING"
        gate.set()
        assert ct.get_result(dispatch_id, wait=True).status == "COMPLETED"
    finally:
        gate.set()
        unsubscribe()
    kinds = [e.kind for e in seen if e.dispatch_id == dispatch_id and e.node_id == 0]
    assert kinds == ["node_running", "node_completed"]


def test_a_broken_subscriber_does_not_break_the_dispatch():
    def broken(batch):
        raise RuntimeError("listener bug")

    unsubscribe = RUNTIME.events.subscribe(broken)
    try:
        assert ct.dispatch_sync(seed_like)(1, 2).result == 4
    finally:
        unsubscribe()


def test_wait_true_wakes_when_the_dispatch_ends():
    gate = threading.Event()

    @ct.electron
    def gated():
        gate.wait(10)
        return 5

    @ct.lattice
    def flow():
        return gated()

    dispatch_id = ct.dispatch(flow)()
    threading.Timer(0.2, gate.set).start()
    t0 = time.perf_counter()
    assert ct.get_result(dispatch_id, wait=True).result == 5
    assert time.perf_counter() - t0 < 5


def test_bad_input_errors_name_the_problem():
    with pytest.raises(TypeError, match="takes a lattice.*@ct.lattice"):
        ct.dispatch(inc)
    with pytest.raises(TypeError, match="takes a lattice"):
        ct.dispatch(lambda: 1)
    with pytest.raises(ValueError, match="no dispatch with id 'nope'"):
        ct.get_result("nope")
    result = ct.dispatch_sync(seed_like)(1, 2)
    with pytest.raises(ValueError, match=r"node 42 does not exist: node ids of this dispatch run from 0 to 4"):
        result.get_node_result(42)
    with pytest.raises(ValueError, match="unknown executor 'gpu-farm'"):
        @ct.lattice
        def flow():
            return ct.electron(executor="gpu-farm")(lambda: 1)()
        ct.dispatch(flow)()


def test_disable_run_registers_without_running():
    dispatch_id = ct.dispatch(seed_like, disable_run=True)(1, 2)
    result = ct.get_result(dispatch_id)
    assert result.status == "NEW_OBJECT"
    assert result.get_node_result(0)["status"] == "NEW_OBJECT"


def test_kwargs_reach_the_lattice():
    @ct.lattice
    def flow(a, b=10):
        return add(a, b)

    assert ct.dispatch_sync(flow)(1, b=5).result == 6
    assert ct.dispatch_sync(flow)(a=2).result == 12


def test_an_executor_that_refuses_work_fails_its_nodes_with_the_reason():
    from covalent_nb.dispatch.executors import Executor

    class Unreachable(Executor):
        name = "unreachable"

        def submit(self, run, deliver, cancel):
            raise ConnectionError("scheduler at tcp://127.0.0.1:1 refused the connection")

    @ct.electron(executor=Unreachable())
    def remote(x):
        return x

    @ct.lattice
    def flow(x):
        return [remote(x), inc(x)]

    result = ct.dispatch_sync(flow)(1)
    assert result.status == "FAILED"
    error = result.get_node_result(0)["error"]
    assert "executor 'unreachable' could not take the task" in error and "refused the connection" in error
    assert result.get_node_result(result.graph.names.index("inc"))["status"] == "COMPLETED"


def test_cancelling_a_dispatch_cancels_its_running_sublattice():
    started = threading.Event()
    gate = threading.Event()

    @ct.electron
    def hold():
        started.set()
        gate.wait(10)
        return 1

    @ct.lattice
    def inner():
        return inc(inc(hold()))

    @ct.lattice
    def outer():
        return inc(ct.electron(inner)())

    dispatch_id = ct.dispatch(outer)()
    assert started.wait(10)
    ct.cancel(dispatch_id)
    gate.set()
    result = ct.get_result(dispatch_id, wait=True)
    child = result.get_node_result(0)["sublattice_result"]
    assert child.status == "CANCELLED"
    assert result.status == "CANCELLED" and result.get_node_result(0)["status"] == "CANCELLED"


def test_lattice_executor_is_the_electrons_default_and_postprocess_runs_on_the_workflow_executor():
    from covalent_nb.dispatch.executors import LocalExecutor

    class Elsewhere(LocalExecutor):
        name = "elsewhere"

    @ct.lattice(executor=Elsewhere(max_workers=2))
    def flow(a, b):
        return [add(a, b), ct.electron(executor="local")(inc)(a)]

    result = ct.dispatch_sync(flow)(1, 2)
    executors = {result.graph.names[i]: result.get_node_result(i)["executor"]
                 for i, k in enumerate(result.graph.kinds) if k != "parameter"}
    assert executors["add"] == "elsewhere" and executors["inc"] == "local"
    assert executors[":postprocess:reconstruct"] == "local"
    assert result.result == [3, 2]


def test_done_callbacks_run_before_waiters_wake_and_at_once_when_late():
    gate = threading.Event()

    @ct.electron
    def gated():
        gate.wait(10)
        return 1

    @ct.lattice
    def flow():
        return gated()

    result = ct.get_result(ct.dispatch(flow)())
    seen = []

    def slow_callback(ended):
        time.sleep(0.2)  # waiters must not wake before this has finished
        seen.append(("early", ended.status))

    result.add_done_callback(slow_callback)
    result.add_done_callback(lambda ended: 1 / 0)  # logged, does not stop the others
    result.add_done_callback(lambda ended: seen.append(("second", ended.status)))
    gate.set()
    assert result.wait(10)
    assert seen == [("early", "COMPLETED"), ("second", "COMPLETED")]
    result.add_done_callback(lambda ended: seen.append(("late", ended.status)))
    assert seen[-1] == ("late", "COMPLETED")


BIG = 10 ** 5000  # more digits than Python will turn into a str


@ct.electron
def mod_seven(x):
    return (x + BIG) % 7


@ct.lattice
def big_flow(x):
    return mod_seven(x)


def test_an_int_of_more_than_4300_digits_as_an_argument_and_a_global_dispatches_and_is_reused():
    result = ct.dispatch_sync(big_flow)(BIG)
    assert result.status == "COMPLETED" and result.result == (2 * BIG) % 7
    assert result.get_node_result(1)["node_name"] == ":parameter:<int of 16610 bits>"
    assert "<int of 16610 bits>" in str(result)  # printing a result never fails
    again = ct.get_result(ct.redispatch(result.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert again.get_node_result(0)["reused"] and again.result == result.result
    other = ct.get_result(ct.redispatch(result.dispatch_id, reuse_previous_results=True)(BIG + 1), wait=True)
    assert not other.get_node_result(0)["reused"] and other.result == (2 * BIG + 1) % 7


def test_inputs_hold_the_tuple_of_positional_arguments_as_covalent_gives_it():
    result = ct.dispatch_sync(big_flow)(3)
    assert result.inputs["args"] == (3,) and type(result.inputs["args"]) is tuple
    assert result.inputs.get_deserialized() == {"args": [3], "kwargs": {}}


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_cancelling_a_node_whose_parent_runs_ends_the_dispatch_and_cancels_what_waits_on_it():
    # node 2 is fused behind the running node 0 (handed to the executor, not started); node 5
    # has another unfinished parent: the dispatch used to stay RUNNING forever
    first, second = threading.Event(), threading.Event()

    @ct.electron
    def hold_first(x):
        first.wait(10)
        return x

    @ct.electron
    def hold_second(x):
        second.wait(10)
        return x

    @ct.electron
    def follow(a):
        return a

    @ct.electron
    def join(a, b):
        return a + b

    @ct.lattice
    def flow(x):
        return join(follow(hold_first(x)), hold_second(x))

    dispatch_id = ct.dispatch(flow)(1)
    result = ct.get_result(dispatch_id)
    assert wait_for(lambda: result.get_node_result(0)["status"] == "RUNNING")
    ct.cancel(dispatch_id, task_ids=[2])
    # what waits on the cancelled node shows CANCELLED at once, while its parent still runs
    assert wait_for(lambda: result.get_node_result(5)["status"] == "CANCELLED")
    first.set()
    second.set()
    assert result.wait(10), "the dispatch never ended"
    statuses = [result.get_node_result(i)["status"] for i in range(len(result.graph))]
    assert result.status == "CANCELLED", statuses
    assert statuses[0] == statuses[3] == "COMPLETED" and statuses[2] == statuses[5] == "CANCELLED"



def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


@ct.electron
def length_of(data):
    return len(data)


def test_idle_local_worker_threads_keep_no_task_or_argument_alive():
    import gc

    @ct.lattice
    def flow(data):
        return length_of(data)

    ct.set_config(store="memory")  # the store's copies are not what this is about
    try:
        gc.collect()
        before = _rss_mb()
        dispatch_id = ct.dispatch(flow)(b"x" * 200_000_000)
        assert ct.get_result(dispatch_id, wait=True).result == 200_000_000
        ct.delete_dispatch(dispatch_id)
        gc.collect()
        grown = _rss_mb() - before
    finally:
        ct.set_config(store="sqlite")
    assert grown < 100, f"{grown:.0f} MB of a deleted dispatch's 200 MB argument is still held"


_NESTED = r"""
import covalent_nb as ct
ct.set_config(store="memory", local_workers=2)

@ct.electron
def leaf(x):
    return x + 1

@ct.lattice
def innermost(x):
    return leaf(x)

@ct.electron
def middle_task(x):
    return ct.dispatch_sync(innermost)(x).result

@ct.lattice
def middle(x):
    return [middle_task(x), middle_task(x + 100)]

@ct.electron
def outer_task(x):
    return ct.dispatch_sync(middle)(x).result

@ct.lattice
def outer(n):
    return [outer_task(i) for i in range(n)]

result = ct.dispatch_sync(outer)(6)
print(result.status, result.result)
"""


def test_tasks_that_dispatch_and_wait_never_deadlock_the_local_pool():
    # 6 waiting tasks, each waiting on 2 more waiting tasks, on a pool of 2 threads
    import subprocess

    completed = subprocess.run([sys.executable, "-c", _NESTED], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "COMPLETED " + str([[i + 1, i + 101] for i in range(6)])
