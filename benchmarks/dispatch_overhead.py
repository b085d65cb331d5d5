"""Per-node dispatch overhead: covalent_nb vs ``dask.threaded.get``.

Each side runs in its own fresh Python process (so one side's garbage never
slows the other), several times; the table shows medians and the ratio
covalent_nb / dask.  Both sides include building the graph: tracing the
lattice for covalent_nb, building the task dict for dask.

Workloads (trivial tasks, so only overhead is measured):

* ``fanout``: N independent ``inc(i)`` tasks and a final ``total(list)``;
* ``chain``: ``inc(inc(...inc(0)))`` N deep;
* ``seed``: the how-to's three-task workflow, dispatch to result.

Also measured: a redispatch that reuses every node (vs a fresh dispatch) and a
dispatch with key computation switched off (what keys cost).

covalent_nb runs with the default, durable SQLite store (a fresh home per
process) and, beside it, with the in-memory store (``--stores sqlite memory``,
the default; either alone with ``--stores sqlite``).

Usage::

    python benchmarks/dispatch_overhead.py            # N=10000, 5 repeats
    python benchmarks/dispatch_overhead.py --n 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import textwrap

from workloads import LATTICES, run_fresh

COVALENT_NB = textwrap.dedent("""
    import gc, json, sys, tempfile, time
    import covalent_nb as ct
    N, SHAPE, MODE, STORE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[5]
    ct.set_config(store=STORE, home=tempfile.mkdtemp(prefix="covalent_nb_bench_"))

    exec(sys.argv[4])  # the shared workloads (benchmarks/workloads.py)

    lattice, args = {"fanout": (fanout, (N,)), "chain": (chain, (N,)), "seed": (seed, (1, 2))}[SHAPE]
    if MODE == "nokeys":
        import sys as _sys
        d = _sys.modules["covalent_nb.dispatch.dispatcher"]
        d.node_keys = lambda graph, plan, fkeys, salt: ([None] * len(graph), {})
    # warm up imports and thread pool on a tiny run
    ct.get_result(ct.dispatch(seed)(1, 2), wait=True)
    # the seed is tiny: time 200 dispatches and keep the median; the big graphs once per process
    times = []
    for _ in range(200 if SHAPE == "seed" else 1):
        gc.collect()
        t0 = time.perf_counter()
        did = ct.dispatch(lattice)(*args)
        result = ct.get_result(did, wait=True)
        times.append(time.perf_counter() - t0)
    assert result.status == "COMPLETED", result.error
    out = {"seconds": sorted(times)[len(times) // 2], "nodes": len(result.graph)}
    if MODE == "redispatch":
        gc.collect()
        t2 = time.perf_counter()
        rid = ct.redispatch(did, reuse_previous_results=True)()
        again = ct.get_result(rid, wait=True)
        t3 = time.perf_counter()
        assert again.result == result.result and len(again.reused_nodes) == len(again.recomputed_nodes) + len(again.reused_nodes)
        out["redispatch_seconds"] = t3 - t2
    print(json.dumps(out))
""")

DASK = textwrap.dedent("""
    import json, sys, time
    import dask.threaded
    N, SHAPE = int(sys.argv[1]), sys.argv[2]

    def inc(x):
        return x + 1

    def total(xs):
        return sum(xs)

    def task_0(a):
        return a

    def task_1(a, b):
        return a + b

    def task_2(a, b):
        return a / b

    def build(shape):
        if shape == "fanout":
            graph = {f"inc-{i}": (inc, i) for i in range(N)}
            graph["total"] = (total, [f"inc-{i}" for i in range(N)])
            return graph, "total"
        if shape == "chain":
            graph = {"inc-0": (inc, 0)}
            for i in range(1, N):
                graph[f"inc-{i}"] = (inc, f"inc-{i - 1}")
            return graph, f"inc-{N - 1}"
        return {"t0": (task_0, 1), "t1": (task_1, "t0", 2), "t2": (task_2, "t1", 2)}, "t2"

    import gc
    dask.threaded.get(*build("seed"))  # warm up
    times = []
    for _ in range(200 if SHAPE == "seed" else 1):
        gc.collect()
        t0 = time.perf_counter()
        graph, key = build(SHAPE)
        value = dask.threaded.get(graph, key)
        times.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": sorted(times)[len(times) // 2]}))
""")


def median(values: list) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "memory"], choices=["sqlite", "memory"])
    parser.add_argument("--shapes", nargs="+", default=["fanout", "chain", "seed"])
    options = parser.parse_args()
    n = str(options.n)
    rows = []
    for shape in options.shapes:
        ours = {store: [] for store in options.stores}
        redis = {store: [] for store in options.stores}
        nokeys = {store: [] for store in options.stores}
        theirs = []
        for _ in range(options.repeats):  # interleaved, so drift hits every side alike
            theirs.append(run_fresh(DASK, n, shape)["seconds"])
            for store in options.stores:
                mine = run_fresh(COVALENT_NB, n, shape, "redispatch", LATTICES, store)
                ours[store].append(mine["seconds"])
                redis[store].append(mine["redispatch_seconds"])
                if shape != "seed":
                    nokeys[store].append(run_fresh(COVALENT_NB, n, shape, "nokeys", LATTICES, store)["seconds"])
        for store in options.stores:
            rows.append((shape, store, median(ours[store]), median(theirs), median(redis[store]),
                         median(nokeys[store]) if nokeys[store] else None))
    print(f"\nN = {options.n}, medians of {options.repeats} runs, each in a fresh process\n")
    print("| workload | store | covalent_nb | dask.threaded.get | ratio | full-reuse redispatch | "
          "redispatch / dispatch | without keys |")
    print("|---|---|---|---|---|---|---|---|")
    for shape, store, ours, theirs, redis, nokeys in rows:
        unit = lambda s: f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} µs"  # noqa: E731
        label = "SQLite (durable, default)" if store == "sqlite" else "memory"
        print(f"| {shape} | {label} | {unit(ours)} | {unit(theirs)} | {ours / theirs:.2f} | {unit(redis)} | "
              f"{redis / ours:.2f} | {unit(nokeys) if nokeys else '-'} |")


if __name__ == "__main__":
    main()
