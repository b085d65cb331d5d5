"""What the durable store costs per node: the SQLite store vs the in-memory store.

Each side runs in fresh Python processes (each with its own empty store
home), so the two never share a warm cache, a heap or a WAL; the sides
alternate, so drift on a shared machine hits both alike.  A measurement is
one dispatch of a 10,000-task workflow, from ``ct.dispatch`` until
``ct.get_result(wait=True)`` returns, which with the SQLite store includes
making every record durable; each process measures a few dispatches in a
row (the first one of a process included).  The table shows medians and the store's cost
on top of the in-memory run, in wall-clock time and in CPU time of the
process (all threads): on a shared machine the CPU time is the steadier of
the two, since waiting for a core does not count.

Workloads (trivial tasks, so only overhead is measured):

* ``fanout``: N independent ``inc(i)`` tasks and a final ``total(list)``;
* ``chain``: ``inc(inc(...inc(0)))`` N deep.

Also shown: loading the finished dispatch in another fresh process
(``ct.get_result`` of an id this process never ran).

Usage::

    python benchmarks/store_overhead.py              # N=10000, 5 processes x 3 dispatches a side
    python benchmarks/store_overhead.py --n 2000 --repeats 3 --per-process 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import textwrap

from workloads import LATTICES, run_fresh

DISPATCH = textwrap.dedent("""
    import json, sys, time
    import covalent_nb as ct
    N, SHAPE, STORE, HOME = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    ct.set_config(store=STORE, home=HOME)

    exec(sys.argv[6])  # the shared workloads (benchmarks/workloads.py)

    lattice = {"fanout": fanout, "chain": chain}[SHAPE]
    ct.get_result(ct.dispatch(fanout)(3), wait=True)  # warm up: imports, threads, store opened
    runs = []
    for _ in range(int(sys.argv[5])):
        t0, c0 = time.perf_counter(), time.process_time()
        dispatch_id = ct.dispatch(lattice)(N)
        result = ct.get_result(dispatch_id, wait=True)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert result.status == "COMPLETED", result.error
        assert result.store_error is None, result.store_error
        runs.append({"seconds": seconds, "cpu": cpu, "dispatch_id": dispatch_id})
    print(json.dumps(runs))
""")

LOAD = textwrap.dedent("""
    import json, sys, time
    import covalent_nb as ct
    ct.set_config(store="sqlite", home=sys.argv[2])
    t0 = time.perf_counter()
    result = ct.get_result(sys.argv[1])
    value = result.result
    seconds = time.perf_counter() - t0
    assert result.status == "COMPLETED" and value is not None
    print(json.dumps({"seconds": seconds}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per store and workload")
    parser.add_argument("--per-process", type=int, default=3, help="dispatches measured in each process")
    options = parser.parse_args()
    n = str(options.n)
    rows = []
    with tempfile.TemporaryDirectory(prefix="covalent_nb_bench_") as scratch:
        per_process = str(options.per_process)
        for shape in ("fanout", "chain"):
            memory, sqlite, load = [], [], []
            for repeat in range(options.repeats):
                home = os.path.join(scratch, f"{shape}-{repeat}")
                memory.extend(run_fresh(DISPATCH, n, shape, "memory", home + "-memory", per_process, LATTICES))
                measured = run_fresh(DISPATCH, n, shape, "sqlite", home, per_process, LATTICES)
                sqlite.extend(measured)
                load.append(run_fresh(LOAD, measured[0]["dispatch_id"], home)["seconds"])
            rows.append((shape, *(statistics.median(m[key] for m in runs)
                                  for key in ("seconds", "cpu") for runs in (memory, sqlite)),
                         statistics.median(load)))
    tasks = options.n
    print(f"\nN = {options.n} tasks; medians of {options.repeats * options.per_process} dispatches "
          f"({options.per_process} in each of {options.repeats} fresh processes per side)\n")
    print("| workload | memory store | sqlite store | store cost | per task: memory → sqlite "
          "| CPU: memory → sqlite | CPU cost | load in a new process |")
    print("|---|---|---|---|---|---|---|---|")
    for shape, memory, sqlite, cpu_memory, cpu_sqlite, load in rows:
        print(f"| {shape} | {memory * 1e3:.0f} ms | {sqlite * 1e3:.0f} ms | {(sqlite / memory - 1) * 100:+.0f} % "
              f"| {memory / tasks * 1e6:.1f} → {sqlite / tasks * 1e6:.1f} µs "
              f"| {cpu_memory * 1e3:.0f} → {cpu_sqlite * 1e3:.0f} ms | {(cpu_sqlite / cpu_memory - 1) * 100:+.0f} % "
              f"| {load * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
