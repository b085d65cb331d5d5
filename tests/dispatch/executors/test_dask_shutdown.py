"""Shutting a Dask executor down while its dispatches run ends them (real clusters, no mocks).

Before, the connection's collector stopped first and the futures' outcomes
never reached the dispatcher: the dispatch stayed RUNNING for good and
``ct.cancel`` did not help.  Each test starts the cluster it shuts down.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.executors import dask_connection
from covalent_nb.dispatch.executors.dask import DaskExecutor, close_local_cluster

pytestmark = [pytest.mark.dask, pytest.mark.timeout(180)]

CELL = '''
import os, time
from pathlib import Path
import covalent_nb as ct

@ct.electron(executor="dask")
def hold(tag, directory):
    Path(directory, f"started-{tag}").write_text(str(os.getpid()))
    while not os.path.exists(os.path.join(directory, f"release-{tag}")):
        time.sleep(0.01)
    return tag

@ct.electron(executor="dask")
def after(x):
    return x

@ct.electron
def local_gate(directory):
    while not os.path.exists(os.path.join(directory, "release-local")):
        time.sleep(0.01)
    return "local"
'''


@pytest.fixture(scope="module")
def nb():
    namespace: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(CELL), "<notebook cell>", "exec"), namespace)
    return SimpleNamespace(**namespace)


@pytest.fixture
def fresh_cluster():
    keys = ("dask_address", "dask_workers", "dask_threads_per_worker", "dask_dashboard", "store")
    settings = {key: ct.get_config(key) for key in keys}
    ct.set_config(dask_address=None, dask_workers=1, dask_threads_per_worker=2, dask_dashboard=False,
                  store="memory")
    try:
        DaskExecutor().client.wait_for_workers(1, timeout=60)
        yield
    finally:
        close_local_cluster()
        ct.set_config(settings)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_shutdown_during_a_dispatch_fails_its_running_and_waiting_nodes(fresh_cluster, nb, tmp_path):
    @ct.lattice
    def workflow(directory):
        first = nb.hold("a", directory)           # running on the worker
        queued = nb.hold("b", directory)          # running too (two threads)
        return nb.after(first), nb.after(queued)  # submitted with them, waiting

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    _wait_for(tmp_path / "started-a")
    _wait_for(tmp_path / "started-b")
    # ...and the kernel has heard that they started (on a busy machine the worker's word comes later)
    holds = [n for n, name in enumerate(result.graph.names) if name == "hold"]
    deadline = time.monotonic() + 30
    while any(result.get_node_result(n)["status"] != ct.Status.RUNNING for n in holds):
        assert time.monotonic() < deadline, [result.get_node_result(n)["status"] for n in holds]
        time.sleep(0.02)
    shut = time.monotonic()
    DaskExecutor().shutdown()  # another object for the same cluster: what it runs ends all the same
    assert result.wait(15), f"the dispatch is still {result.status} after shutdown"
    assert time.monotonic() - shut < 15
    assert result.status == ct.Status.FAILED
    assert "shut down" in result.error
    names = result.graph.names
    for node, name in enumerate(names):
        if name == "hold":
            record = result.get_node_result(node)
            assert record["status"] == ct.Status.FAILED
            assert "was shut down while the node was running" in record["error"], record["error"]
        elif name == "after":
            status = result.get_node_result(node)["status"]
            assert status != ct.Status.COMPLETED and status != ct.Status.RUNNING
    ct.cancel(result.dispatch_id)  # cancelling the ended dispatch is harmless
    assert result.status == ct.Status.FAILED
    for tag in "ab":
        (tmp_path / f"release-{tag}").touch()


def test_nodes_not_yet_submitted_fail_instead_of_starting_a_new_cluster(fresh_cluster, nb, tmp_path):
    @ct.lattice
    def workflow(directory):
        running = nb.hold("a", directory)
        later = nb.after(nb.local_gate(directory))  # reaches Dask only after the shutdown
        return running, later

    result = ct.get_result(ct.dispatch(workflow)(str(tmp_path)))
    _wait_for(tmp_path / "started-a")
    ct.executor.DaskExecutor().shutdown()
    (tmp_path / "release-local").touch()  # now `after` is ready, on a closed connection
    assert result.wait(15), f"the dispatch is still {result.status} after shutdown"
    assert result.status == ct.Status.FAILED
    (after,) = [n for n, name in enumerate(result.graph.names) if name == "after"]
    record = result.get_node_result(after)
    assert record["status"] == ct.Status.FAILED
    assert "its remaining Dask nodes do not run" in record["error"], record["error"]
    (gate,) = [n for n, name in enumerate(result.graph.names) if name == "local_gate"]
    assert result.get_node_result(gate)["status"] == ct.Status.COMPLETED
    assert dask_connection.connections() == []  # no cluster was started again for the ended dispatch
    (tmp_path / "release-a").touch()

    # a dispatch started afterwards connects again
    @ct.lattice
    def again(x):
        return nb.after(x)

    second = ct.dispatch_sync(again)(5)
    assert second.status == ct.Status.COMPLETED, second.error
    assert second.result == 5
