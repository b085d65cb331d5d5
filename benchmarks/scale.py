"""Big fan-outs: time and peak memory per node, covalent_nb (both stores) vs ``dask.threaded.get``.

Each measurement runs in a fresh Python process: it imports everything and
warms up on a tiny graph, notes its resident memory, then builds and runs an
N-task fan-out (``total([inc(i) for i in range(N)])``) once, and reports the
wall time to the result and the growth of its peak resident set (``ru_maxrss``)
over that baseline, per task (the N ``inc`` tasks and the ``total``: the same
count for both; covalent_nb's graph also has a parameter node per task and a few
bookkeeping nodes, whose cost is counted in).  For covalent_nb that includes tracing,
freezing, keys, the result's tables and (with the SQLite store) the records
the writer commits; for dask, building the task dict and running it.

Usage::

    python benchmarks/scale.py                        # N = 100,000, 3 processes each
    python benchmarks/scale.py --n 1000000 --repeats 1
"""

from __future__ import annotations

import argparse
import statistics
import textwrap

from workloads import LATTICES, run_fresh

OURS = textwrap.dedent("""
    import json, resource, sys, tempfile, time
    import covalent_nb as ct
    N, STORE = int(sys.argv[1]), sys.argv[2]
    ct.set_config(store=STORE, home=tempfile.mkdtemp(prefix="covalent_nb_scale_"))
    exec(sys.argv[3])
    ct.get_result(ct.dispatch(fanout)(10), wait=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    result = ct.get_result(ct.dispatch(fanout)(N), wait=True)
    seconds = time.perf_counter() - t0
    assert result.status == "COMPLETED" and result.result == N * (N + 1) // 2, result.error
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # per task (the N inc tasks and the total), as for dask: the graph's parameter and
    # bookkeeping nodes are covalent_nb's own cost of each task
    print(json.dumps({"seconds": seconds, "bytes_per_node": (peak - base) / (N + 1),
                      "nodes": len(result.graph)}))
""")

DASK = textwrap.dedent("""
    import json, resource, sys, time
    import dask.threaded
    N = int(sys.argv[1])

    def inc(x):
        return x + 1

    def total(xs):
        return sum(xs)

    dask.threaded.get({"a": (inc, 1), "b": (total, ["a"])}, "b")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    graph = {f"inc-{i}": (inc, i) for i in range(N)}
    graph["total"] = (total, [f"inc-{i}" for i in range(N)])
    value = dask.threaded.get(graph, "total")
    seconds = time.perf_counter() - t0
    assert value == N * (N + 1) // 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "bytes_per_node": (peak - base) / (N + 1), "nodes": N + 1}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sides", nargs="+", default=["sqlite", "memory", "dask"],
                        choices=["sqlite", "memory", "dask"])
    options = parser.parse_args()
    runs: dict = {side: [] for side in options.sides}
    for _ in range(options.repeats):  # interleaved, so drift hits every side alike
        for side in options.sides:
            if side == "dask":
                runs[side].append(run_fresh(DASK, str(options.n)))
            else:
                runs[side].append(run_fresh(OURS, str(options.n), side, LATTICES))
    labels = {"sqlite": "covalent_nb, SQLite store (durable, default)", "memory": "covalent_nb, memory store",
              "dask": "dask.threaded.get"}
    print(f"\nN = {options.n:,} tasks; medians of {options.repeats} fresh processes\n")
    print("| | time to result | peak memory per task |")
    print("|---|---|---|")
    for side in options.sides:
        seconds = statistics.median(r["seconds"] for r in runs[side])
        per_node = statistics.median(r["bytes_per_node"] for r in runs[side])
        print(f"| {labels[side]} | {seconds:.2f} s | {per_node / 1024:.2f} KiB |")


if __name__ == "__main__":
    main()
