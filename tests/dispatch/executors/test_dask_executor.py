"""``executor="dask"`` on real Dask distributed clusters (no mocks).

The kernel's own cluster (2 worker processes, 1 thread each, TLS) serves the
module; some tests start a scheduler and a worker as separate processes and
reach them by address (plain TCP, and TLS with the user's credentials).  Electrons are defined the way a notebook defines
them: in a namespace whose ``__name__`` is ``__main__``, so they reach the
workers by value (cloudpickle), never by importing this file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cloudpickle
import distributed
import psutil
import pytest
from distributed.security import Security

import covalent_nb as ct
from dask_processes import scheduler_and_worker_processes
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.dispatch.executors.dask import DaskExecutor, close_local_cluster, local_cluster

pytestmark = [pytest.mark.dask, pytest.mark.timeout(120)]

REPO = Path(ct.__file__).resolve().parents[1]

# What a notebook cell would hold.  `hold` blocks a worker thread until the
# test creates a file, so the tests see tasks running without racing sleeps.
CELL = '''
import os, time
from pathlib import Path
import covalent_nb as ct

def wait_for(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.01)

def count_run(log, name):
    with open(log, "a") as f:
        f.write(name + "\\n")

@ct.electron(executor="dask")
def square(x):
    return x * x

@ct.electron(executor="dask")
def add(a, b):
    return a + b

@ct.electron(executor="dask")
def where(value):
    """The value, this process's pid and the Dask keys this task took as inputs."""
    import distributed
    worker = distributed.get_worker()
    key = worker.get_current_task()
    return value, os.getpid(), sorted(d.key for d in worker.state.tasks[key].dependencies)

@ct.electron
def where_local(value):
    return value, os.getpid()

@ct.electron(executor="dask")
def hold(tag, directory):
    Path(directory, f"started-{tag}").write_text(str(os.getpid()))
    wait_for(os.path.join(directory, f"release-{tag}"))
    return tag

@ct.electron(executor="dask")
def boom(x):
    raise ValueError(f"bad input {x}")

@ct.electron(executor="dask")
def logged_square(x, log):
    count_run(log, "square")
    return x * x

@ct.electron(executor="dask")
def logged_add(a, b, log):
    count_run(log, "add")
    return a + b

@ct.electron(executor="dask")
def logged_add_twice(a, b, log):
    count_run(log, "add_twice")
    return 2 * (a + b)
'''


def notebook_cell(source: str) -> SimpleNamespace:
    """Execute *source* as a notebook cell: its functions belong to ``__main__``."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<notebook cell>", "exec"), namespace)
    return SimpleNamespace(**namespace)


@pytest.fixture(scope="module")
def nb():
    return notebook_cell(CELL)


@pytest.fixture(scope="module")
def cluster():
    """The kernel's shared LocalCluster, as ``executor="dask"`` starts it."""
    keys = ("dask_address", "dask_workers", "dask_threads_per_worker", "dask_dashboard",
            "dask_allowed_failures", "store")
    settings = {key: ct.get_config(key) for key in keys}
    ct.set_config(dask_address=None, dask_workers=2, dask_threads_per_worker=1, dask_dashboard=False,
                  dask_allowed_failures=0, store="memory")
    try:
        sockets = listening(os.getpid())
        cluster = local_cluster()
        client = DaskExecutor().client
        client.wait_for_workers(2, timeout=60)
        opened = listening(os.getpid()) - sockets  # the scheduler's and the nannies' sockets
        yield SimpleNamespace(cluster=cluster, client=client, opened=opened)
    finally:
        close_local_cluster()
        ct.set_config(settings)  # later tests expect the session's store back


@pytest.fixture
def recorded():
    """Every event published while the test runs."""
    seen: list = []
    lock = threading.Condition()

    def listen(batch):
        with lock:
            seen.extend(batch)
            lock.notify_all()

    def wait_until(predicate, timeout=30.0):
        with lock:
            assert lock.wait_for(lambda: predicate(list(seen)), timeout), \
                f"timed out; events so far: {[(e.kind, e.node_id) for e in seen]}"

    stop = RUNTIME.events.subscribe(listen)
    yield SimpleNamespace(events=seen, wait_until=wait_until)
    stop()


def run(lattice, *args, timeout=60.0):
    result = ct.get_result(ct.dispatch(lattice)(*args))
    assert result.wait(timeout), f"dispatch still {result.status} after {timeout}s"
    return result


def nodes_named(result, name):
    return [i for i, n in enumerate(result.graph.names) if n == name]


def worker_pids(client) -> set:
    return set(client.run(os.getpid).values())


def listening(pid: int) -> set:
    """``(ip, port)`` of every TCP socket process *pid* listens on."""
    connections = psutil.Process(pid).net_connections(kind="tcp")
    return {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}


# -- the shared LocalCluster ----------------------------------------------------------
def test_lattice_runs_on_worker_processes_and_passes_futures_between_them(cluster, nb):
    @ct.lattice(executor="dask")
    def workflow(a, b):
        total = nb.add(nb.square(a), nb.square(b))
        return nb.where(total)

    result = run(workflow, 3, 4)
    assert result.status == ct.Status.COMPLETED, result.error
    value, pid, inputs = result.result
    assert value == 25
    assert pid in worker_pids(cluster.client) and pid != os.getpid()
    add_node = nodes_named(result, "add")[0]
    # `where` took `add`'s output as a Dask future: data stayed on the cluster.
    assert inputs == [f"add-{result.dispatch_id}-{add_node}"]
    for node in nodes_named(result, "square") + nodes_named(result, "add"):
        assert result.get_node_result(node)["executor"] == "dask"
    assert getattr(result, "snapshot_error", None) is None  # executors pickle with the lattice


def test_the_local_cluster_listens_on_loopback_only(cluster):
    sockets = set(cluster.opened)
    nannies = {p.pid for p in psutil.Process().children() if p.pid not in worker_pids(cluster.client)}
    for pid in worker_pids(cluster.client) | nannies:
        sockets |= listening(pid)
    assert len(sockets) >= 5  # scheduler, its HTTP server, two nannies, two workers
    assert {ip for ip, _ in sockets} == {"127.0.0.1"}
    assert 8787 not in {port for _, port in cluster.opened}  # no dashboard: nothing on Dask's usual port


# What a process of another local user can do: it knows the ports (they are in
# /proc/net/tcp) but not the kernel's credentials.  Each attempt must be refused
# before it can run anything; a task that ran would create the marker file.
INTRUDER = textwrap.dedent('''
    import json, pathlib, sys
    import distributed
    from distributed.security import Security

    addresses, marker = json.loads(sys.argv[1]), sys.argv[2]

    def plant(path=marker):
        pathlib.Path(path).write_text("ran")
        return "ran"

    attempts = []
    for address in addresses:
        host_port = address.split("://", 1)[1]
        for label, target, security in [
            ("as given, no credentials", address, None),
            ("plain tcp", "tcp://" + host_port, None),
            ("tls with credentials of its own", "tls://" + host_port, Security.temporary()),
        ]:
            try:
                with distributed.Client(target, security=security, timeout="5s",
                                        set_as_default=False) as client:
                    outcome = "CONNECTED " + str(client.submit(plant, pure=False).result(timeout=10))
            except BaseException as exc:
                outcome = "refused: " + type(exc).__name__
            attempts.append([address, label, outcome])
    print(json.dumps(attempts))
''')


def test_a_process_that_knows_only_the_port_cannot_use_the_cluster(cluster, nb, tmp_path):
    client = cluster.client
    scheduler = client.scheduler.address
    workers = sorted(client.scheduler_info()["workers"])
    assert scheduler.startswith("tls://127.0.0.1:") and all(w.startswith("tls://") for w in workers)
    marker = tmp_path / "intruder-ran"
    out = subprocess.run([sys.executable, "-c", INTRUDER, json.dumps([scheduler, workers[0]]), str(marker)],
                         capture_output=True, text=True, timeout=90, cwd=str(tmp_path),
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr
    attempts = json.loads(out.stdout)
    assert len(attempts) == 6
    for address, label, outcome in attempts:
        assert outcome.startswith("refused"), (address, label, outcome)
    assert not marker.exists()
    # ... while the kernel's own dispatches still run there
    @ct.lattice(executor="dask")
    def workflow(x):
        return nb.square(x)

    assert run(workflow, 6).result == 36


def test_running_means_running_on_a_worker(cluster, nb, recorded, tmp_path):
    # Two workers with one thread each: two holds run, the third waits its turn.
    @ct.lattice
    def workflow(directory):
        return [nb.hold(tag, directory) for tag in ("a", "b", "c")]

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    holds = nodes_named(result, "hold")

    def running(seen):
        return {e.node_id for e in seen if e.kind == "node_running" and e.dispatch_id == result.dispatch_id}

    recorded.wait_until(lambda seen: len(running(seen)) == 2)
    first_two = running(recorded.events)
    (waiting,) = set(holds) - first_two
    time.sleep(0.3)  # the third is submitted to Dask but has no thread: no RUNNING
    assert waiting not in running(recorded.events)
    assert result.get_node_result(waiting)["status"] != ct.Status.RUNNING
    assert len(list(tmp_path.glob("started-*"))) == 2
    for node in first_two:
        assert result.get_node_result(node)["status"] == ct.Status.RUNNING

    # Free one thread: the waiting hold starts and only now shows RUNNING.
    (tmp_path / f"release-{sorted(tmp_path.glob('started-*'))[0].name[len('started-'):]}").touch()
    recorded.wait_until(lambda seen: waiting in running(seen))
    for tag in ("a", "b", "c"):
        (tmp_path / f"release-{tag}").touch()
    assert result.wait(30)
    assert result.status == ct.Status.COMPLETED, result.error
    assert result.result == ["a", "b", "c"]
    for node in holds:
        record = result.get_node_result(node)
        assert record["start_time"] < record["end_time"]


def test_task_exception_fails_its_node_with_the_traceback(cluster, nb):
    @ct.lattice
    def workflow(x):
        return nb.square(x), nb.boom(x)

    result = run(workflow, 3)
    assert result.status == ct.Status.FAILED
    (boom,) = nodes_named(result, "boom")
    error = result.get_node_result(boom)["error"]
    assert "ValueError: bad input 3" in error and "in boom" in error
    (square,) = nodes_named(result, "square")
    assert result.get_node_result(square)["status"] == ct.Status.COMPLETED
    assert result.get_node_result(square)["output"] == 9


def test_a_chain_goes_to_dask_at_once_and_stops_at_a_failure(cluster, nb, recorded, tmp_path):
    @ct.lattice
    def workflow(directory):
        return nb.square(nb.square(nb.boom(nb.hold("gate", directory))))

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    (hold,) = nodes_named(result, "hold")
    recorded.wait_until(lambda seen: any(e.kind == "node_running" and e.node_id == hold
                                         and e.dispatch_id == result.dispatch_id for e in seen))
    # While the first link runs, every link is already a Dask task: Dask runs
    # them back to back, without waiting for the kernel in between.
    # (The submits may still be on their way while the first link runs: poll.)
    deadline = time.monotonic() + 10
    while True:
        keys = cluster.client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        ours = sorted(k.split("-")[0] for k in keys if result.dispatch_id in k and not k.endswith("-summary"))
        if ours == ["boom", "hold", "square", "square"]:
            break
        assert time.monotonic() < deadline, ours
        time.sleep(0.02)
    assert result.get_node_result(hold)["status"] == ct.Status.RUNNING  # held until released
    (tmp_path / "release-gate").touch()
    assert result.wait(30)
    assert result.status == ct.Status.FAILED
    (boom,) = nodes_named(result, "boom")
    assert "ValueError: bad input gate" in result.get_node_result(boom)["error"]
    assert result.get_node_result(hold)["status"] == ct.Status.COMPLETED
    for node in nodes_named(result, "square"):  # after the failure: never ran
        assert result.get_node_result(node)["status"] not in (ct.Status.COMPLETED, ct.Status.FAILED,
                                                              ct.Status.RUNNING)
        assert not any(e.kind == "node_running" and e.node_id == node and e.dispatch_id == result.dispatch_id
                       for e in recorded.events)


def test_a_killed_worker_fails_only_its_nodes(cluster, nb, recorded, tmp_path):
    @ct.lattice
    def workflow(directory):
        doomed = nb.hold("doomed", directory)
        return nb.square(7), nb.add(doomed, "never")

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    (hold,) = nodes_named(result, "hold")
    (square,) = nodes_named(result, "square")
    recorded.wait_until(lambda seen: any(e.kind == "node_completed" and e.node_id == square
                                         and e.dispatch_id == result.dispatch_id for e in seen))
    pid_file = tmp_path / "started-doomed"
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the doomed task never started"
        time.sleep(0.01)
    pid = int(pid_file.read_text())
    assert pid in worker_pids(cluster.client)
    os.kill(pid, signal.SIGKILL)

    assert result.wait(30), "the dispatch hung after its worker died"
    assert result.status == ct.Status.FAILED
    record = result.get_node_result(hold)
    assert record["status"] == ct.Status.FAILED
    assert "died" in record["error"] and "KilledWorker" in record["error"]
    assert result.get_node_result(square)["status"] == ct.Status.COMPLETED
    (add,) = nodes_named(result, "add")
    assert result.get_node_result(add)["status"] not in (ct.Status.COMPLETED, ct.Status.FAILED)
    # The nanny brings the worker back for the tests that follow.
    cluster.client.wait_for_workers(2, timeout=60)


def test_cancel_cancels_futures_of_tasks_not_started(cluster, nb, recorded, tmp_path):
    @ct.lattice
    def workflow(directory):
        return [nb.hold(tag, directory) for tag in ("a", "b", "c", "d")]

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    holds = nodes_named(result, "hold")

    def running(seen):
        return {e.node_id for e in seen if e.kind == "node_running" and e.dispatch_id == result.dispatch_id}

    def cancelled(seen):
        return {e.node_id for e in seen if e.kind == "node_cancelled" and e.dispatch_id == result.dispatch_id}

    recorded.wait_until(lambda seen: len(running(seen)) == 2)
    started = running(recorded.events)
    first, second = sorted(set(holds) - started)
    ct.cancel(result.dispatch_id, task_ids=[first])  # one queued node
    recorded.wait_until(lambda seen: first in cancelled(seen))
    assert second not in cancelled(recorded.events)
    ct.cancel(result.dispatch_id)  # then the whole dispatch
    recorded.wait_until(lambda seen: second in cancelled(seen))
    # Dask may already have handed a queued task to a worker; the cancel
    # reaches that worker a moment later.  Free the threads only then, or
    # the worker could start the task in between (its result would be dropped).
    keys = [f"hold-{result.dispatch_id}-{node}" for node in (first, second)]
    deadline = time.monotonic() + 10
    while any(cluster.client.run(lambda dask_worker, keys=keys: any(k in dask_worker.state.tasks
                                                                     for k in keys)).values()):
        assert time.monotonic() < deadline, "the cancel never reached the workers"
        time.sleep(0.02)
    for tag in "abcd":
        (tmp_path / f"release-{tag}").touch()
    assert result.wait(30)
    assert result.status == ct.Status.CANCELLED
    for node in holds:
        expected = ct.Status.COMPLETED if node in started else ct.Status.CANCELLED
        assert result.get_node_result(node)["status"] == expected
    assert len(list(tmp_path.glob("started-*"))) == 2  # the cancelled ones never ran


def test_one_lattice_mixes_local_and_dask_electrons(cluster, nb):
    on_dask_object = ct.electron(nb.where.function, executor=ct.executor.DaskExecutor())

    @ct.lattice
    def workflow(x):
        first = nb.where_local(x)            # in the kernel
        second = nb.where(first)             # executor="dask"
        third = nb.where_local(second)       # back in the kernel
        return on_dask_object(third)         # a DaskExecutor object

    result = run(workflow, 1)
    assert result.status == ct.Status.COMPLETED, result.error
    workers = worker_pids(cluster.client)
    third, fourth_pid, _ = result.result
    second, third_pid = third
    first, second_pid, _ = second
    value, first_pid = first
    assert value == 1
    assert first_pid == third_pid == os.getpid()
    assert second_pid in workers and fourth_pid in workers
    executors = [result.get_node_result(n)["executor"] for n in range(len(result.graph.names))
                 if result.graph.kinds[n] == "electron"]
    assert executors == ["local", "dask", "local", "dask"]


def test_redispatch_reuses_nodes_computed_on_dask(cluster, nb, tmp_path):
    log = str(tmp_path / "runs.log")

    @ct.lattice
    def workflow(a, b, log):
        return nb.logged_add(nb.logged_square(a, log), nb.logged_square(b, log), log)

    parent = run(workflow, 3, 4, log)
    assert parent.status == ct.Status.COMPLETED, parent.error
    assert parent.result == 25
    squares = nodes_named(parent, "logged_square")
    assert all(parent.get_node_result(n)["executor"] == "dask" for n in squares)

    child_id = ct.redispatch(parent.dispatch_id, replace_electrons={"logged_add": nb.logged_add_twice},
                             reuse_previous_results=True)()
    child = ct.get_result(child_id)
    assert child.wait(60)
    assert child.status == ct.Status.COMPLETED, child.error
    assert child.result == 50
    for node in squares:
        record = child.get_node_result(node)
        assert record["reused"] and record["reused_from"] == (parent.dispatch_id, node)
    runs = Path(log).read_text().split()
    assert sorted(runs) == ["add", "add_twice", "square", "square"]  # squares ran once, on Dask
    (add,) = nodes_named(child, "logged_add_twice")
    assert child.get_node_result(add)["executor"] == "dask"


def test_futures_are_dropped_when_the_dispatch_ends(cluster, nb):
    @ct.lattice(executor="dask")
    def workflow(a):
        return nb.add(nb.square(a), 1)

    result = run(workflow, 5)
    assert result.result == 26
    connection = DaskExecutor().connection()
    assert result.dispatch_id not in connection.dispatches
    deadline = time.monotonic() + 10
    while True:  # the release reaches the scheduler asynchronously
        keys = cluster.client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks))
        if not any(result.dispatch_id in str(key) for key in keys):
            break
        assert time.monotonic() < deadline, f"keys still held: {keys}"
        time.sleep(0.05)


# -- a scheduler and a worker started as processes, reached by address ------------------
def test_scheduler_and_worker_processes_reached_by_address(scheduler_and_worker, nb):
    address = scheduler_and_worker.address
    assert address.startswith("tcp://127.0.0.1:")  # the user's own cluster: plain TCP, as Dask starts it
    remote = ct.executor.DaskExecutor(address=address)
    on_remote = ct.electron(nb.where.function, executor=remote)

    @ct.lattice
    def workflow(x):
        return on_remote(x)

    try:
        remote.client.wait_for_workers(1, timeout=60)
        result = run(workflow, "hello")
        assert result.status == ct.Status.COMPLETED, result.error
        value, pid, _ = result.result
        assert value == "hello" and pid == scheduler_and_worker.worker.pid

        # An existing client works too, stays open, and the executor pickles without it.
        with distributed.Client(address, set_as_default=False) as client:
            wrapped = ct.executor.DaskExecutor(client=client)
            on_client = ct.electron(nb.square.function, executor=wrapped)

            @ct.lattice
            def second(x):
                return on_client(x)

            result = run(second, 12)
            assert result.status == ct.Status.COMPLETED, result.error
            assert result.result == 144
            assert client.status == "running"
            copy = cloudpickle.loads(cloudpickle.dumps(wrapped))
            assert copy.address == address and copy.client_given is None
            wrapped.shutdown()
            assert client.status == "running"  # never closed: it is the caller's

        # Once its owner closed the client, the executor's nodes fail at once, saying why.
        result = run(second, 3, timeout=30)
        assert result.status == ct.Status.FAILED
        (node,) = nodes_named(result, "square")
        assert "is closed" in result.get_node_result(node)["error"]
    finally:
        remote.shutdown()


@pytest.fixture
def tls_scheduler_and_worker(tmp_path):
    """A scheduler and a worker that accept only TLS clients with the credentials in files."""
    made = Security.temporary()
    files = {}
    for name, text in (("ca", made.tls_ca_file), ("cert", made.tls_client_cert), ("key", made.tls_client_key)):
        path = tmp_path / f"{name}.pem"
        path.write_text(text)
        path.chmod(0o600)
        files[name] = str(path)
    tls = ("--tls-ca-file", files["ca"], "--tls-cert", files["cert"], "--tls-key", files["key"])
    with scheduler_and_worker_processes(tmp_path, tls, ("--protocol", "tls"),
                                        {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True"}) as (address, _):
        security = Security(tls_ca_file=files["ca"], tls_client_cert=files["cert"],
                            tls_client_key=files["key"], require_encryption=True)
        yield SimpleNamespace(address=address, security=security)


def test_a_tls_cluster_reached_by_address_with_the_users_security(tls_scheduler_and_worker, nb):
    address, security = tls_scheduler_and_worker.address, tls_scheduler_and_worker.security
    assert address.startswith("tls://127.0.0.1:")
    remote = ct.executor.DaskExecutor(address=address, security=security)
    on_remote = ct.electron(nb.square.function, executor=remote)

    @ct.lattice
    def workflow(x):
        return on_remote(x)

    try:
        remote.client.wait_for_workers(1, timeout=60)
        result = run(workflow, 9)
        assert result.status == ct.Status.COMPLETED, result.error
        assert result.result == 81
        # the executor travels with the lattice as the paths of its credentials
        copy = cloudpickle.loads(cloudpickle.dumps(remote))
        assert copy.address == address and copy.security.tls_client_key == security.tls_client_key
        in_memory = ct.executor.DaskExecutor(address=address, security=Security.temporary())
        assert cloudpickle.loads(cloudpickle.dumps(in_memory)).security is None  # keys never stored
    finally:
        remote.shutdown()
    # without the credentials the executor cannot reach it, and its nodes fail saying so
    bare = ct.executor.DaskExecutor(address=address)
    on_bare = ct.electron(nb.square.function, executor=bare)

    @ct.lattice
    def refused(x):
        return on_bare(x)

    result = run(refused, 2, timeout=90)
    assert result.status == ct.Status.FAILED
    (node,) = nodes_named(result, "square")
    assert "could not reach Dask" in result.get_node_result(node)["error"]


# -- a script of its own: first use starts the cluster, exit closes it ------------------------
def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_script_without_a_main_guard_starts_the_cluster_and_closes_it_at_exit(tmp_path):
    # As Covalent's documentation writes scripts: no `if __name__ == "__main__":`.
    # Workers started with multiprocessing's spawn would re-run this file.
    script = tmp_path / "workflow.py"
    script.write_text(textwrap.dedent('''
        import os
        import covalent_nb as ct

        with open("imports.log", "a") as log:  # one line per process that runs this file
            log.write(f"{os.getpid()}\\n")

        @ct.electron(executor="dask")
        def where():
            return os.getpid()

        @ct.lattice
        def workflow():
            return where()

        ct.set_config(store="memory")
        result = ct.dispatch_sync(workflow)()
        workers = ct.executor.DaskExecutor().client.scheduler_info()["workers"]
        print(result.status, result.result, os.getpid(), *sorted(workers), flush=True)
    '''))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               COVALENT_NB_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path), timeout=90)
    assert out.returncode == 0, out.stderr
    status, worker_pid, script_pid, *workers = out.stdout.split()
    assert status == "COMPLETED" and worker_pid != script_pid, out.stdout + out.stderr
    assert len(workers) == 2 and all(w.startswith("tls://127.0.0.1:") for w in workers)
    assert (tmp_path / "imports.log").read_text().split() == [script_pid]  # no worker ran the script
    assert "Nanny failed" not in out.stderr and "Traceback" not in out.stderr, out.stderr
    # the script has exited: its cluster's workers are gone
    assert _gone(int(worker_pid), 15), f"worker {worker_pid} outlived the script"


def test_workers_end_when_the_kernel_is_killed(tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent('''
        import os, time
        import covalent_nb as ct

        @ct.electron(executor="dask")
        def where():
            return os.getpid()

        @ct.lattice
        def workflow():
            return where()

        ct.set_config(store="memory")
        result = ct.dispatch_sync(workflow)()
        client = ct.executor.DaskExecutor().client
        print(*client.run(os.getppid).values(), *client.run(os.getpid).values(), flush=True)
        time.sleep(600)
    '''))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               COVALENT_NB_HOME=str(tmp_path / "home"))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                               env=env, cwd=str(tmp_path))
    try:
        pids = [int(p) for p in process.stdout.readline().split()]
        assert len(pids) == 4, pids  # two nannies (children of the script), two workers
    finally:
        process.kill()  # SIGKILL: no atexit, no close
        process.wait(10)
    for pid in pids:
        assert _gone(pid, 20), f"process {pid} of the killed kernel's cluster is still running"


# -- a real notebook kernel ----------------------------------------------------------------
def test_a_notebook_kernel_runs_its_electrons_on_dask(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("COVALENT_NB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    cells = [
        "import os\nimport covalent_nb as ct\nct.set_config(store='memory')",
        "@ct.electron(executor='dask')\ndef where(x):\n    return x, os.getpid()\n\n"
        "@ct.lattice\ndef workflow(x):\n    return where(x)",
        "result = ct.dispatch_sync(workflow)(7)\n"
        "print(result.status, result.result[0], result.result[1] != os.getpid())",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(notebook, timeout=90, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    assert printed.split() == ["COMPLETED", "7", "True"], notebook.cells[-1].outputs


# -- without distributed -----------------------------------------------------------------
def test_dask_without_distributed_names_the_install_command(tmp_path):
    code = textwrap.dedent('''
        import sys
        sys.modules["distributed"] = None  # as if the [dask] extra were not installed
        import covalent_nb as ct

        @ct.electron(executor="dask")
        def f(x):
            return x

        @ct.lattice
        def wf(x):
            return f(x)

        for attempt in (lambda: ct.dispatch(wf)(1), lambda: ct.executor.DaskExecutor):
            try:
                attempt()
            except ImportError as exc:
                print("ImportError:", exc)
    ''')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               COVALENT_NB_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=60)
    lines = [line for line in out.stdout.splitlines() if line.startswith("ImportError:")]
    assert len(lines) == 2, out.stdout + out.stderr
    assert all("pip install 'covalent_nb[dask]'" in line for line in lines)
