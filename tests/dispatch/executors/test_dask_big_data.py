"""Issue 15: a Dask node's large output stays where it was computed (real clusters, real SQLite).

The kernel holds a :class:`RemoteValue` (key, digest, size, short repr); the
workers write the bytes into blob storage; values are fetched on first access,
in this process or a new one; reuse goes by reference.  "The kernel never
received it" is checked through the reference: nothing fetched it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import covalent_nb as ct
from covalent_nb.dispatch.executors.dask import DaskExecutor, close_local_cluster
from covalent_nb.blob_files import blob_digest, blob_relpath
from covalent_nb.dispatch.executors.remote import RemoteTree, RemoteValue
from covalent_nb.results.writer import Writer

pytestmark = [pytest.mark.dask, pytest.mark.timeout(180)]

REPO = Path(ct.__file__).resolve().parents[1]
SIZE = 3_000_000  # bytes: far above store_inline_max, small enough for a shared CI machine

CELL = '''
import numpy as np
import covalent_nb as ct

def count_run(log, name):
    if log:
        with open(log, "a") as f:
            f.write(name + "\\n")

@ct.electron(executor="dask")
def make(n, log=""):
    count_run(log, "make")
    return np.arange(n, dtype=np.uint8)

@ct.electron(executor="dask")
def total(a, log=""):
    count_run(log, "total")
    return int(a.sum(dtype=np.int64))

@ct.electron(executor="dask")
def total_twice(a, log=""):
    count_run(log, "total_twice")
    return 2 * int(a.sum(dtype=np.int64))

@ct.electron
def local_len(a):
    return len(a)

@ct.electron(executor="dask")
def total_all(values):
    items = values.values() if isinstance(values, dict) else values
    return [int(a.sum(dtype=np.int64)) for a in items]

@ct.electron
def local_lens(values):
    items = values.values() if isinstance(values, dict) else values
    return [len(a) for a in items]

@ct.lattice
def pipeline(n, log=""):
    big = make(n, log)
    return total(big, log), local_len(big)
'''


def notebook_cell(source: str) -> SimpleNamespace:
    namespace: dict = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<notebook cell>", "exec"), namespace)
    return SimpleNamespace(**namespace)


@pytest.fixture(scope="module")
def nb():
    return notebook_cell(CELL)


EXPECTED_TOTAL = int(np.arange(SIZE, dtype=np.uint8).sum(dtype=np.int64))


@pytest.fixture
def home(tmp_path):
    """A private home with the SQLite store; the kernel's cluster started for it."""
    keys = ("home", "store", "dask_address", "dask_workers", "dask_threads_per_worker", "dask_dashboard",
            "dask_blob_storage")
    settings = {key: ct.get_config(key) for key in keys}
    ct.set_config(home=str(tmp_path / "home"), store="sqlite", dask_address=None, dask_workers=2,
                  dask_threads_per_worker=1, dask_dashboard=False, dask_blob_storage=None)
    try:
        yield tmp_path / "home"
    finally:
        ct.set_config(settings)


@pytest.fixture(scope="module", autouse=True)
def cluster():
    yield
    close_local_cluster()


def node(result, name):
    (found,) = [i for i, n in enumerate(result.graph.names) if n == name]
    return found


def run_script(code: str, home: Path, timeout: float = 120) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               COVALENT_NB_HOME=str(home))
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env=env, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_large_output_stays_on_the_workers_and_is_durable_in_the_homes_blobs(home, nb):
    result = ct.dispatch_sync(nb.pipeline)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    assert result.result == (EXPECTED_TOTAL, SIZE)
    make = node(result, "make")
    reference = result._table.output.raw[make]
    assert type(reference) is RemoteValue
    # The Dask consumer took it worker to worker; only the local consumer needed the value,
    # and it fetched its own copy: the kernel's table still holds the reference alone.
    assert reference.durable and reference.reason is None
    blob = Path(reference.location)
    assert blob.parent.parent == home / "blobs" and blob.name == reference.digest
    assert reference.digest.startswith("b3-")  # the worker named it by its BLAKE3 digest
    assert blob_digest(blob.read_bytes()) == reference.digest and blob.stat().st_size == reference.size
    assert reference.future is None  # the dispatch ended: the cluster freed it, blob storage keeps it
    location = result.get_node_result(make)["output_location"]
    assert location["durable"] is True and location["size"] == reference.size > SIZE
    assert "blob storage" in location["lives"] and "uint8" in location["summary"]
    # small outputs come to the kernel as before
    assert result._table.output.raw[node(result, "total")] == EXPECTED_TOTAL
    assert result.get_node_result(node(result, "total"))["output_location"] is None


def test_the_kernel_never_fetches_an_intermediate_between_dask_tasks(home, nb):
    @ct.lattice
    def only_dask(n):
        return nb.total(nb.make(n))

    result = ct.dispatch_sync(only_dask)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    assert result.result == EXPECTED_TOTAL
    reference = result._table.output.raw[node(result, "make")]
    assert type(reference) is RemoteValue and not reference.fetched  # nothing brought it here
    value = result.get_node_result(node(result, "make"))["output"]  # fetched on first access
    assert reference.fetched and value.shape == (SIZE,) and int(value[-1]) == (SIZE - 1) % 256


def test_a_new_process_reads_lazily_and_reuses_by_reference(home, nb, tmp_path):
    log = tmp_path / "runs.log"
    parent = ct.dispatch_sync(nb.pipeline)(SIZE, str(log))
    assert parent.status == ct.Status.COMPLETED, parent.error
    assert sorted(log.read_text().split()) == ["make", "total"]
    out = run_script(f'''
        import json
        import covalent_nb as ct
        from covalent_nb.dispatch.executors.remote import RemoteValue

        def total_twice(a, log=""):
            with open(log, "a") as f:
                f.write("total_twice\\n")
            return 2 * int(a.sum(dtype="int64"))

        parent = ct.get_result({parent.dispatch_id!r})
        make = parent.graph.names.index("make")
        record = parent.get_node_result(make)
        lazy = type(parent._table.output.raw[make]) is RemoteValue
        child_id = ct.redispatch({parent.dispatch_id!r},
                                 replace_electrons={{"total": ct.electron(total_twice, executor="dask")}},
                                 reuse_previous_results=True)()
        child = ct.get_result(child_id, wait=True)
        reference = child._table.output.raw[make]
        print(json.dumps({{"lazy": lazy, "shape": list(record["output"].shape),
                          "durable": record["output_location"]["durable"],
                          "child": str(child.status), "error": child.error, "result": list(child.result),
                          "reused": child.get_node_result(make)["reused"],
                          "by_reference": type(reference) is RemoteValue}}))
        ct.shutdown()
    ''', home)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["lazy"] and report["durable"] and report["shape"] == [SIZE]
    assert report["child"] == "COMPLETED", report["error"]
    assert report["result"] == [2 * EXPECTED_TOTAL, SIZE]
    assert report["reused"] and report["by_reference"]
    # make ran once, in the first process; the new total read its input from blob storage on a worker
    assert sorted(log.read_text().split()) == ["make", "total", "total_twice"]


def test_without_blob_storage_the_record_says_not_durable_and_the_cluster_keeps_it(home, nb):
    ct.set_config(store="memory")
    result = ct.dispatch_sync(nb.pipeline)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    reference = result._table.output.raw[node(result, "make")]
    assert type(reference) is RemoteValue and not reference.durable
    assert "memory" in reference.reason
    assert reference.future is not None  # held by the kernel's reference: the cluster keeps the value
    location = result.get_node_result(node(result, "make"))["output_location"]
    assert location["durable"] is False and "Dask worker memory" in location["lives"]
    assert result.get_node_result(node(result, "make"))["output"].shape == (SIZE,)
    assert not (home / "blobs").exists() or not any((home / "blobs").rglob(reference.key))


# -- a scheduler and a worker as processes, blob storage named by an fsspec URL ------------------
def test_separate_processes_with_blob_storage_given_as_an_fsspec_url(home, nb, scheduler_and_worker, tmp_path):
    shared = tmp_path / "shared-blobs"
    url = f"file://{shared}"
    remote = DaskExecutor(address=scheduler_and_worker.address, blob_storage=url)
    unreachable = DaskExecutor(address=scheduler_and_worker.address, blob_storage=f"file://{tmp_path}/file/blobs")
    (tmp_path / "file").write_text("a file where a directory should be")
    make_there = ct.electron(nb.make.function, executor=remote)
    make_nowhere = ct.electron(nb.make.function, executor=unreachable)
    total_there = ct.electron(nb.total.function, executor=remote)

    @ct.lattice
    def workflow(n):
        return total_there(make_there(n)), make_nowhere(n)

    try:
        remote.client.wait_for_workers(1, timeout=60)
        result = ct.get_result(ct.dispatch(workflow)(SIZE))
        assert result.wait(120), result.status
        assert result.status == ct.Status.COMPLETED, result.error
        made = [i for i, n in enumerate(result.graph.names) if n == "make"]
        stored, kept = (result._table.output.raw[i] for i in made)
        assert stored.durable and stored.location.startswith(url + "/")
        assert (shared / blob_relpath(stored.digest)).stat().st_size == stored.size
        assert not stored.fetched
        assert not kept.durable and "could not write to blob storage" in kept.reason
        assert result.result[0] == EXPECTED_TOTAL
        dispatch_id = result.dispatch_id
    finally:
        remote.shutdown()
    # A new process, with the cluster gone: the durable value is read from the URL.
    out = run_script(f'''
        import covalent_nb as ct
        result = ct.get_result({dispatch_id!r})
        first = [i for i, n in enumerate(result.graph.names) if n == "make"][0]
        record = result.get_node_result(first)
        print(record["output_location"]["lives"].split()[0], record["output"].shape[0])
    ''', home)
    assert out.split() == ["blob", str(SIZE)]


# -- the lattice's return value stays a reference until someone reads it (issue 15) ------------------
def _post(result) -> int:
    return result.graph.kinds.index(ct.states.NodeKind.POSTPROCESS)


def test_the_lattices_return_value_is_fetched_only_when_result_is_read(home, nb):
    @ct.lattice
    def returns_big(n):
        big = nb.make(n)
        return [big, {"total": nb.total(big), "n": n}], big

    result = ct.dispatch_sync(returns_big)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    made = result._table.output.raw[node(result, "make")]
    held = result._table.output.raw[_post(result)]
    assert type(made) is RemoteValue and type(held) is RemoteTree
    # the postprocess and the list/dict nodes feeding it were packed from the reference
    assert len(held.references()) == 2 and not made.fetched and not held.fetched
    record = result.get_node_result(_post(result), fetch=False)
    assert record["output"] is held and record["output_location"]["size"] == made.size
    assert not made.fetched
    assert ct.get_result(result.dispatch_id) is result and not made.fetched
    value = result.result  # the first read fetches, once
    assert made.fetched and held.fetched and result.result is value
    (array, small), again = value
    assert array.shape == (SIZE,) and int(array[-1]) == (SIZE - 1) % 256
    assert small == {"total": EXPECTED_TOTAL, "n": SIZE} and again.shape == (SIZE,)


def test_a_returned_dask_output_is_read_lazily_in_a_new_process(home, nb):
    @ct.lattice
    def returns_it(n):
        return nb.make(n)

    result = ct.dispatch_sync(returns_it)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    made = result._table.output.raw[node(result, "make")]
    assert result._table.output.raw[_post(result)] is made and not made.fetched
    assert ct.get_result(result.dispatch_id).result.shape == (SIZE,) and made.fetched
    out = run_script(f'''
        import json
        import covalent_nb as ct
        from covalent_nb.dispatch.executors.remote import RemoteValue
        result = ct.get_result({result.dispatch_id!r})
        post = result.graph.kinds.index("postprocess")
        held = result._table.output.held(post)
        before = type(held) is RemoteValue and not held.fetched and held.durable
        value = result.result
        print(json.dumps({{"before": before, "after": held.fetched, "size": int(value.size),
                          "last": int(value[-1])}}))
    ''', home)
    report = json.loads(out.strip().splitlines()[-1])
    assert report == {"before": True, "after": True, "size": SIZE, "last": (SIZE - 1) % 256}


# -- outputs kept only on the cluster are freed with their dispatch ----------------------------------
def _on_workers(client, key: str) -> bool:
    """True while some worker holds the data of Dask task *key* (asked of the workers themselves)."""
    held = client.run(lambda dask_worker: [str(k) for k in dask_worker.data.keys()])
    return any(key in keys for keys in held.values()) or bool(client.who_has().get(key))


def _wait_until_freed(client, key: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while _on_workers(client, key):
        assert time.monotonic() < deadline, f"the workers still hold {key}"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["delete", "prune"])
def test_deleting_the_dispatch_frees_a_value_kept_only_on_the_cluster(home, nb, how):
    ct.set_config(store="memory")
    client = DaskExecutor().client

    @ct.lattice
    def returns_big(n):
        return nb.make(n)

    result = ct.dispatch_sync(returns_big)(SIZE)
    keeper = ct.dispatch_sync(returns_big)(SIZE)  # another dispatch's value stays where it is
    assert result.status == keeper.status == ct.Status.COMPLETED, (result.error, keeper.error)
    reference = result._table.output.raw[node(result, "make")]
    kept = keeper._table.output.raw[node(keeper, "make")]
    assert not reference.durable and reference.future is not None
    assert _on_workers(client, reference.key) and _on_workers(client, kept.key)
    if how == "delete":
        ct.delete_dispatch(result.dispatch_id)
    else:
        ct.prune_dispatches(keep_last=1)  # keeper is the newest
    _wait_until_freed(client, reference.key)
    assert reference.future is None and not reference.fetched
    with pytest.raises(LookupError, match="dispatch was deleted"):
        result.result
    assert _on_workers(client, kept.key)
    assert keeper.result.shape == (SIZE,)


def test_a_reused_value_outlives_the_deleted_parent_that_computed_it(home, nb, tmp_path):
    ct.set_config(store="memory")
    client = DaskExecutor().client

    @ct.lattice
    def returns_big(n):
        return nb.make(n)

    parent = ct.dispatch_sync(returns_big)(SIZE)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(), wait=True)
    assert child.status == ct.Status.COMPLETED, child.error
    made = node(child, "make")
    assert child.get_node_result(made)["reused"]
    key = parent._table.output.raw[made].key
    ct.delete_dispatch(parent.dispatch_id)
    assert _on_workers(client, key)  # the child's reference still holds it
    assert child.result.shape == (SIZE,)
    ct.delete_dispatch(child.dispatch_id)
    _wait_until_freed(client, key)


# -- blob storage at a URL is managed by the store: deleting the last dispatch naming a file removes it --
def test_deleting_dispatches_removes_their_files_from_blob_storage_at_a_url(home, nb, tmp_path):
    shared = tmp_path / "url-blobs"
    there = DaskExecutor(blob_storage=f"file://{shared}")  # the kernel's cluster, writing at the URL
    make_there = ct.electron(nb.make.function, executor=there)

    @ct.lattice
    def returns_big(n):
        return make_there(n)

    first = ct.dispatch_sync(returns_big)(SIZE)
    second = ct.dispatch_sync(returns_big)(SIZE)  # the same bytes: the same file
    other = ct.dispatch_sync(returns_big)(SIZE + 1)
    assert {first.status, second.status, other.status} == {ct.Status.COMPLETED}
    same, own = (r._table.output.raw[node(r, "make")] for r in (first, other))
    assert same.durable and same.location.startswith(f"file://{shared}/")
    same_file, own_file = (shared / blob_relpath(v.digest) for v in (same, own))
    assert same_file.exists() and own_file.exists()
    assert not list((tmp_path / "home").rglob(same.digest))  # not in the home's blobs

    freed = ct.delete_dispatch(first.dispatch_id)
    assert same_file.exists() and freed.blob_bytes == 0  # the second dispatch still names it
    out = run_script(f'''
        import covalent_nb as ct
        print(ct.get_result({second.dispatch_id!r}).result.shape[0])
    ''', home)
    assert out.split() == [str(SIZE)]
    freed = ct.delete_dispatch(second.dispatch_id)
    assert not same_file.exists() and freed.blob_bytes == same.size
    assert own_file.exists()
    ct.prune_dispatches(keep_last=0)
    assert not own_file.exists()


# -- a list, tuple or dict of Dask outputs given to a Dask task: packed from references ----------------------
def _kind_nodes(result, kind) -> list:
    return [i for i, k in enumerate(result.graph.kinds) if k == kind]


def test_a_collection_of_dask_outputs_reaches_a_dask_task_without_entering_the_kernel(home, nb):
    @ct.lattice
    def combine(n):
        a, b = nb.make(n), nb.make(n + 1)
        return nb.total_all([a, b]), nb.total_all((b, a)), nb.total_all({"x": a, "y": b})

    result = ct.dispatch_sync(combine)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    made = [result._table.output.raw[i] for i, n in enumerate(result.graph.names) if n == "make"]
    assert [type(m) for m in made] == [RemoteValue, RemoteValue]
    collections = [i for i in sorted(_kind_nodes(result, ct.states.NodeKind.ELECTRON_LIST)
                                     + _kind_nodes(result, ct.states.NodeKind.ELECTRON_DICT))
                   if result.graph.names[i - 1] == "total_all"]  # each feeds the task numbered before it
    assert len(collections) == 3
    packed = [result._table.output.raw[i] for i in collections]
    assert all(type(p) is RemoteTree and not p.fetched for p in packed), packed
    other = int(np.arange(SIZE + 1, dtype=np.uint8).sum(dtype=np.int64))
    assert result.result == ([EXPECTED_TOTAL, other], [other, EXPECTED_TOTAL], [EXPECTED_TOTAL, other])
    assert not any(m.fetched for m in made)  # each Dask task read them on its worker
    record = result.get_node_result(collections[0], fetch=False)
    assert record["output"] is packed[0] and record["output_location"]["count"] == 2


def test_a_collection_feeding_a_task_in_the_kernel_gives_it_the_values(home, nb):
    @ct.lattice
    def local(n):
        a, b = nb.make(n), nb.make(n + 1)
        return nb.local_lens([a, b]), nb.local_lens({"x": a, "y": b})

    result = ct.dispatch_sync(local)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    assert result.result == ([SIZE, SIZE + 1], [SIZE, SIZE + 1])


def test_a_packed_collection_reused_by_a_task_in_the_kernel_gives_it_the_values(home, nb):
    @ct.lattice
    def combine(n):
        return nb.total_all([nb.make(n), nb.make(n + 1)])

    parent = ct.dispatch_sync(combine)(SIZE)
    assert parent.status == ct.Status.COMPLETED, parent.error
    (packed,) = _kind_nodes(parent, ct.states.NodeKind.ELECTRON_LIST)
    assert type(parent._table.output.raw[packed]) is RemoteTree
    child = ct.get_result(ct.redispatch(parent.dispatch_id, replace_electrons={"total_all": nb.local_lens},
                                        reuse_previous_results=True)(), wait=True)
    assert child.status == ct.Status.COMPLETED, child.error
    assert child.get_node_result(packed)["reused"]
    assert child.result == [SIZE, SIZE + 1]


# -- a sublattice's large result reaches its parent's node as a reference ---------------------------------
def test_a_sublattices_large_dask_result_reaches_the_parent_as_a_reference(home, nb):
    @ct.lattice
    def inner(n):
        return nb.make(n)

    inner_task = ct.electron(inner)

    @ct.lattice
    def outer(n):
        big = inner_task(n)
        return nb.total(big), big

    result = ct.dispatch_sync(outer)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    sub = node(result, ":sublattice:inner")
    child = result.get_node_result(sub, fetch=False)["sublattice_result"]
    made = child._table.output.raw[node(child, "make")]
    passed = result._table.output.raw[sub]
    assert type(made) is RemoteValue and type(passed) is RemoteValue
    assert passed.key == made.key and passed.digest == made.digest  # the same value, by reference
    assert type(child.held_result) is RemoteValue and not child.held_result.fetched
    held = result.held_result
    assert type(held) is RemoteTree and held.references()[0] is passed
    assert not made.fetched and not passed.fetched  # the Dask consumer read it on its worker
    assert result.get_node_result(sub, fetch=False)["output_location"]["durable"] is True
    total, value = result.result
    assert total == EXPECTED_TOTAL and value.shape == (SIZE,) and passed.fetched


# -- summaries describe a value kept outside the kernel from its reference ----------------------------------
def test_the_panels_headline_and_text_summaries_describe_a_remote_result_without_fetching_it(home, nb):
    from covalent_nb.notebook.choices import reuse_report, reuse_report_html
    from covalent_nb.notebook.handle import text_summary

    @ct.lattice
    def returns_big(n):
        big = nb.make(n)
        return [big, nb.total(big)]

    result = ct.dispatch_sync(returns_big)(SIZE)
    assert result.status == ct.Status.COMPLETED, result.error
    made = result._table.output.raw[node(result, "make")]
    headline = reuse_report(result)[0]
    assert headline.startswith("COMPLETED · result [array([  0,   1,   2, ") and "uint8" in headline
    assert f"· {made.describe()['size_text']} in blob storage" in headline
    assert "3.0 MB in blob storage" in reuse_report_html(result)
    text = str(result)
    assert "result: [array(" in text and "3.0 MB in blob storage" in text
    assert f"make({node(result, 'make')}): array(" in text
    assert "dispatch " in text_summary(result) and repr(result).startswith("<Result ")
    assert not made.fetched  # nothing above read the value
    assert result.result[1] == EXPECTED_TOTAL and made.fetched


@pytest.mark.parametrize("how", ["delete", "prune"])
def test_the_memory_store_removes_files_workers_wrote_at_a_url_with_the_last_dispatch_naming_them(
        home, nb, tmp_path, how):
    ct.set_config(store="memory")
    shared = tmp_path / "url-blobs"
    there = DaskExecutor(blob_storage=f"file://{shared}")
    make_there = ct.electron(nb.make.function, executor=there)

    @ct.lattice
    def returns_big(n):
        return make_there(n)

    @ct.lattice
    def nested(n):
        return ct.electron(returns_big)(n)

    first = ct.dispatch_sync(returns_big)(SIZE)
    second = ct.dispatch_sync(nested)(SIZE)  # the same bytes, named by a sublattice and its parent
    other = ct.dispatch_sync(returns_big)(SIZE + 1)
    assert {first.status, second.status, other.status} == {ct.Status.COMPLETED}
    same, own = (r._table.output.raw[node(r, "make")] for r in (first, other))
    assert same.durable and same.location.startswith(f"file://{shared}/")
    same_file, own_file = (shared / blob_relpath(v.digest) for v in (same, own))
    assert same_file.exists() and own_file.exists()

    if how == "delete":
        freed = ct.delete_dispatch(first.dispatch_id)
        assert same_file.exists() and freed.blob_bytes == 0  # the second dispatch still names it
        assert second.result.shape == (SIZE,)
        freed = ct.delete_dispatch(second.dispatch_id)  # with its sublattice dispatch
        assert len(freed.dispatch_ids) == 2
        assert not same_file.exists() and freed.blob_bytes == same.size
        assert own_file.exists()
        ct.delete_dispatch(other.dispatch_id)
    else:
        freed = ct.prune_dispatches(keep_last=1)  # other is the newest
        assert not same_file.exists() and own_file.exists() and freed.blob_bytes == same.size
        ct.prune_dispatches(keep_last=0)
    assert not own_file.exists()
    assert not same.fetched and not own.fetched


# -- a shared file removed while a dispatch that wrote it again runs: written again from the worker ------------
GATE = '''
import os
import time

def wait_for(a, flag):
    while not os.path.exists(flag):
        time.sleep(0.02)
    return len(a)
'''


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_a_shared_file_removed_before_the_dispatch_that_wrote_it_again_ends_is_written_again(
        home, nb, tmp_path, store):
    """The interleaving of a race, made deterministic: dispatch B's worker writes the same bytes
    as an earlier dispatch's file; a delete of the earlier dispatch removes the file (here: the
    file goes while B still runs, after B's worker wrote it); B's end finds it gone and the worker
    that keeps the value writes it again.  The kernel never reads the value."""
    ct.set_config(store=store)
    shared = tmp_path / "url-blobs"
    there = DaskExecutor(blob_storage=f"file://{shared}")
    make_there = ct.electron(nb.make.function, executor=there)
    wait_there = ct.electron(notebook_cell(GATE).wait_for, executor=there)
    flag = tmp_path / "go"

    @ct.lattice
    def returns_big(n):
        return make_there(n)

    @ct.lattice
    def gated(n, flag):
        big = make_there(n)
        return wait_there(big, flag), big

    first = ct.dispatch_sync(returns_big)(SIZE)
    assert first.status == ct.Status.COMPLETED, first.error
    reference = first._table.output.raw[node(first, "make")]
    blob = shared / blob_relpath(reference.digest)
    second = ct.get_result(ct.dispatch(gated)(SIZE, str(flag)))
    made = node(second, "make")
    deadline = time.monotonic() + 60
    while second._table.status[made] != ct.Status.COMPLETED:  # its worker has written the file
        assert time.monotonic() < deadline and not second.ended, second.error
        time.sleep(0.02)
    if store == "memory":  # a delete now sees the running dispatch name the file: it stays
        assert ct.delete_dispatch(first.dispatch_id).blob_bytes == 0 and blob.exists()
    blob.unlink()  # what a delete of the first dispatch did after the worker wrote it
    flag.write_text("go")
    assert second.wait(60) and second.status == ct.Status.COMPLETED, second.error
    assert blob.exists() and blob_digest(blob.read_bytes()) == reference.digest  # written again
    kept = second._table.output.raw[made]
    assert kept.location == reference.location and kept.future is None and not kept.fetched
    if store == "sqlite":  # a new process reads what the record names
        out = run_script(f'''
            import covalent_nb as ct
            result = ct.get_result({second.dispatch_id!r})
            print(result.result[1].shape[0])
        ''', home)
        assert out.split() == [str(SIZE)]
    else:
        assert second.result[1].shape == (SIZE,)


# -- a reused file deleted between the reuse and the commit of the record naming it ----------------------------
@pytest.mark.parametrize("fetched", [True, False])
def test_a_reused_file_deleted_before_the_reusing_record_is_committed(home, nb, monkeypatch, fetched):
    """The race, made deterministic: the child chose to reuse the parent's durable output by reference;
    just before the child's records are committed, another process deletes the parent, and with it
    the file (no stored record names it yet).  Under the write lock the child's writer finds it gone:
    a kernel that fetched the value writes it again (nothing is lost); one that did not records the
    node as not stored, with the reason, and a redispatch recomputes it."""
    @ct.lattice
    def returns_big(n):
        return nb.make(n)

    parent = ct.dispatch_sync(returns_big)(SIZE)
    assert parent.status == ct.Status.COMPLETED, parent.error
    reference = parent._table.output.raw[node(parent, "make")]
    blob = Path(reference.location)
    assert blob.exists() and reference.future is None  # ended: only the file holds it now
    if fetched:
        assert parent.result.shape == (SIZE,)  # this kernel now holds the value
    fired = []
    commit = Writer._transaction

    def delete_parent_first(writer, tx):
        if tx.unheld and not fired:  # the transaction that names the reused reference
            fired.append(True)
            run_script(f"import covalent_nb as ct; ct.delete_dispatch({parent.dispatch_id!r})", home)
            assert not blob.exists()  # the delete removed it: no committed record named it any more
        return commit(writer, tx)

    monkeypatch.setattr(Writer, "_transaction", delete_parent_first)
    child = ct.get_result(ct.redispatch(parent.dispatch_id, reuse_previous_results=True)(), wait=True)
    monkeypatch.setattr(Writer, "_transaction", commit)
    assert fired and child.status == ct.Status.COMPLETED, child.error
    made = node(child, "make")
    assert child.get_node_result(made, fetch=False)["reused"]
    assert parent.dispatch_id not in {row["id"] for row in ct.list_dispatches()}
    assert blob.exists() == fetched  # written again from the value this kernel held, or gone
    out = run_script(f'''
        import json
        import covalent_nb as ct
        child = ct.get_result({child.dispatch_id!r})
        made = child.graph.names.index("make")
        why = child._table.unstorable.get(made)
        shape = None if why else list(child.get_node_result(made)["output"].shape)
        again = ct.get_result(ct.redispatch({child.dispatch_id!r}, reuse_previous_results=True)(), wait=True)
        print(json.dumps({{"why": why, "shape": shape, "again": str(again.status),
                          "reason": again.get_node_result(made)["reason"], "size": int(again.result.size)}}))
    ''', home)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["again"] == "COMPLETED" and report["size"] == SIZE
    if fetched:  # the child's record reads, in a new process
        assert blob_digest(blob.read_bytes()) == reference.digest
        assert report["why"] is None and report["shape"] == [SIZE]
        assert report["reason"].startswith("reused")
    else:  # gone for good: the record says so, and why; the redispatch recomputed it
        assert "was removed" in report["why"] and str(blob) in report["why"]
        assert report["reason"] == f"recomputed: previous output was not stored ({report['why']})"


def test_dask_counts_a_kept_output_at_its_size_so_its_readers_run_where_it_is(home, nb):
    from covalent_nb.dispatch.executors import dask_connection

    assert ct.dispatch_sync(nb.pipeline)(SIZE).status == ct.Status.COMPLETED  # the kernel's cluster is up
    client = dask_connection.connections()[0].client
    # a task's result as _run_on_worker keeps it on its worker: (kept outcome, summary)
    future = client.submit(_kept_pair, SIZE, pure=False)
    deadline = time.monotonic() + 60
    while not future.done():  # (its value never comes to the kernel)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    nbytes = client.run_on_scheduler(lambda dask_scheduler, key=future.key: dask_scheduler.tasks[key].nbytes)
    assert nbytes >= SIZE  # counted at its size, not as a few dozen bytes: its readers run where it is


def _kept_pair(size):
    import pickle

    import covalent_nb.dispatch.executors.dask  # noqa: F401 - as on a worker running a node
    from covalent_nb.dispatch.freeze import Output

    kept = (True, Output(None, pickle.dumps(bytes(size)), None), 0, 1, "", "")
    return kept, (True, None, 0, 1, "", "")
