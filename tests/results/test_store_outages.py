"""A store that cannot be written for a while: nothing stuck RUNNING, nothing lost, one warning.

Disk full is made real with ``RLIMIT_FSIZE`` in a child process (any write past
4 KiB fails with EFBIG, as ENOSPC would); the limit is then lifted, as freeing
space would, and the store must converge to what the kernel knows.
"""

from __future__ import annotations

import json
import re
import os
import sqlite3
import subprocess
import sys
import textwrap

import covalent_nb as ct
from covalent_nb.results.store import active_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def python_env(home) -> dict:
    env = dict(os.environ, COVALENT_NB_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
    return env


@ct.electron
def fails_naming_a_latin1_file(x):
    raise FileNotFoundError(os.fsdecode(b"/data/caf\xe9-%d.csv" % x))


@ct.electron
def fine(x):
    return x * 2


@ct.lattice
def latin1(x):
    return fails_naming_a_latin1_file(x)


@ct.lattice
def healthy(x):
    return fine(x)


def _statuses(home, ids):
    with sqlite3.connect(os.path.join(home, "dispatches.db")) as conn:
        rows = dict(conn.execute("SELECT dispatch_id, status FROM dispatches"))
    return [rows.get(i) for i in ids]


def test_an_error_naming_a_non_utf8_file_is_stored_escaped_and_takes_no_other_dispatch_with_it(home):
    ids = []
    for x in range(20):  # ended close together, so their records share the writer's transactions
        ids.append(ct.dispatch(healthy)(x))
        if x % 5 == 2:
            ids.append(ct.dispatch(latin1)(x))
    results = [ct.get_result(i, wait=True) for i in ids]
    assert all(r.store_error is None for r in results), [r.store_error for r in results]
    active_store().flush()
    expected = ["FAILED" if r.lattice.__name__ == "latin1" else "COMPLETED" for r in results]
    assert _statuses(home, ids) == expected

    failed = next(r for r in results if r.status == "FAILED")
    ct.set_config(store="memory")  # read it back from the file, not from this kernel
    try:
        from covalent_nb.results.sqlite_store import SQLiteStore

        reader = SQLiteStore(str(home))
        back = reader.load(failed.dispatch_id)
        reader.close()
        assert "caf\\udce9" in back.error  # the dispatch's row: the bad byte kept, escaped
        assert os.fsdecode(b"/data/caf\xe9") in back.get_node_result(0)["error"]  # the node's: as it was
    finally:
        ct.set_config(store="sqlite")


_DISK_FULL = r"""
import json, os, resource, signal, sqlite3, sys, time
import covalent_nb as ct

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead

@ct.electron
def big(n):
    return os.urandom(n)  # a blob file when large

@ct.lattice
def flow(n):
    return big(n)

home = ct.get_config("home")
ct.get_result(ct.dispatch(flow)(10), wait=True)  # the store exists and is up to date

soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the disk is full
ids = [ct.dispatch(flow)(300_000), ct.dispatch(flow)(20)]
results = [ct.get_result(i, wait=True) for i in ids]
conn = sqlite3.connect(os.path.join(home, "dispatches.db"))
def status(i):
    row = conn.execute("SELECT status FROM dispatches WHERE dispatch_id = ?", (i,)).fetchone()
    return row and row[0]
during = {
    "kernel": [r.status for r in results],
    "sizes": [len(r.result) for r in results],
    "store_errors": [r.store_error for r in results],
    "stored": [status(i) for i in ids],
}

resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
deadline = time.monotonic() + 60
while time.monotonic() < deadline and [status(i) for i in ids] != ["COMPLETED", "COMPLETED"]:
    time.sleep(0.1)
after = {"stored": [status(i) for i in ids], "store_errors": [r.store_error for r in results]}
print(json.dumps({"ids": ids, "during": during, "after": after}))
"""


_FULL = re.compile(r"File too large|disk I/O error|database or disk is full")


def test_a_full_disk_delays_records_and_the_store_converges_once_space_is_back(home):
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(_DISK_FULL)], env=python_env(home),
                               capture_output=True, text=True, timeout=180, cwd=str(REPO))
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    during, after = report["during"], report["after"]

    # While the disk is full the dispatches run and their results are there in the kernel...
    assert during["kernel"] == ["COMPLETED", "COMPLETED"]
    assert during["sizes"] == [300_000, 20]
    # ...the store cannot have them yet, and each result says so, naming the cause.
    assert all(s in (None, "NEW_OBJECT", "RUNNING") for s in during["stored"]), during["stored"]
    for error in during["store_errors"]:
        assert error.startswith("not yet durable: ") and "File too large" in error, error
    # One warning for the whole outage, naming the cause; one more when it is over.
    warnings = [line for line in completed.stderr.splitlines() if "cannot be written (" in line]
    assert len(warnings) == 1, completed.stderr
    assert _FULL.search(warnings[0])  # SQLite's words, or the OS's
    assert "can be written again" in completed.stderr

    # Space back: the store converges to what the kernel knew, and the results stop saying otherwise.
    assert after["stored"] == ["COMPLETED", "COMPLETED"], completed.stderr
    assert after["store_errors"] == [None, None]
    # A new process reads the delayed records, the large output included.
    elsewhere = subprocess.run(
        [sys.executable, "-c", "import sys, covalent_nb as ct\n"
         "print(len(ct.get_result(sys.argv[1]).result), ct.get_result(sys.argv[2]).result.__len__())",
         *report["ids"]], env=python_env(home), capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert elsewhere.stdout.split() == ["300000", "20"]
