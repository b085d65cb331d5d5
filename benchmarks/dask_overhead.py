"""What ``executor="dask"`` costs per task, and when Dask pays off.

The kernel's own cluster (worker processes, 1 thread each, on 127.0.0.1, TLS) serves every
measurement, so covalent_nb and plain ``client.submit`` meet the same
scheduler and workers.  Every number is the median of ``--repeats`` runs,
after a warm-up run of each kind.

Overhead (trivial tasks, so only overhead is measured):

``fan-out``  N independent ``inc(i)``:
    plain: ``client.submit`` each, then ``client.gather`` all of them;
    plain + start event: the same, each task also logging the start event
    covalent_nb's RUNNING status rides on (what RUNNING costs);
    covalent_nb: a lattice of N Dask electrons, dispatch to result (tracing,
    keys, dispatcher and the gather of every value included).
``chain``  ``inc(inc(...inc(0)))`` N deep:
    plain, at once: every link submitted up front with the previous future,
    only the end gathered (Dask pipelines the links on the cluster);
    plain, value by value: submit a link, wait for its value, submit the next
    with the future: what a driver that needs every value does, as the kernel
    does (the store and the graph widget show every node's output);
    covalent_nb.
Rows with ``executor="local"`` show the dispatcher's own share.

Scaling: a fan-out of 8 CPU-bound pure-Python tasks of T ms each on the local
thread executor (one GIL: they take turns) and on Dask's worker processes.

Usage::

    python benchmarks/dask_overhead.py                     # 2 workers, 7 repeats
    python benchmarks/dask_overhead.py --workers 4 --repeats 7
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import covalent_nb as ct


# -- the work ----------------------------------------------------------------------------
def inc(x):
    return x + 1


def inc_announced(x, topic):
    # What covalent_nb's worker-side wrapper adds for RUNNING: one start event.
    import distributed

    distributed.get_worker().log_event(topic, ["dispatch", x, time.time_ns() // 1000])
    return x + 1


def spin(n):
    """Pure-Python CPU work: holds the GIL for the whole call."""
    total = 0
    for i in range(n):
        total += i * i
    return total


dask_inc = ct.electron(inc, executor="dask")
local_inc = ct.electron(inc, executor="local")
dask_spin = ct.electron(spin, executor="dask")
local_spin = ct.electron(spin, executor="local")


def fanout_lattice(task):
    @ct.lattice
    def fanout(n):
        return [task(i) for i in range(n)]

    return fanout


def chain_lattice(task):
    @ct.lattice
    def chain(n):
        x = 0
        for _ in range(n):
            x = task(x)
        return x

    return chain


def spin_lattice(task):
    @ct.lattice
    def spread(n, copies):
        return [task(n) for _ in range(copies)]

    return spread


# -- timing -------------------------------------------------------------------------------
def interleaved_medians(cases: list, repeats: int) -> list:
    """Median wall time (s) of each ``() -> None`` in *cases*.

    Every case runs once to warm up (imports on the workers, connections),
    then the cases take turns, *repeats* rounds: a change of load on a shared
    machine then hits every case alike, not only the ones measured last.
    """
    for run in cases:
        run()
    times: list = [[] for _ in cases]
    for _ in range(repeats):
        for run, spent in zip(cases, times):
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def dispatch_and_wait(lattice, *args):
    result = ct.dispatch_sync(lattice)(*args)
    if result.status != ct.Status.COMPLETED:
        raise RuntimeError(f"benchmark dispatch ended {result.status}: {result.error}")
    return result.result


def calibrate_spin() -> float:
    """Loop iterations of :func:`spin` per millisecond in this process (best of 5)."""
    n = 200_000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        spin(n)
        best = min(best, time.perf_counter() - start)
    return n / (best * 1000)


# -- the measurements ------------------------------------------------------------------------
def overhead_rows(client, n_fanout: int, n_chain: int, repeats: int) -> list:
    topic = "covalent_nb-benchmark-start"
    client.subscribe_topic(topic, lambda event: None)

    def plain_fanout():
        futures = [client.submit(inc, i, pure=False) for i in range(n_fanout)]
        client.gather(futures)

    def plain_fanout_announced():
        futures = [client.submit(inc_announced, i, topic, pure=False) for i in range(n_fanout)]
        client.gather(futures)

    def plain_chain_at_once():
        future = client.submit(inc, 0, pure=False)
        for _ in range(n_chain - 1):
            future = client.submit(inc, future, pure=False)
        future.result()

    def plain_chain_value_by_value():
        future = client.submit(inc, 0, pure=False)
        future.result()
        for _ in range(n_chain - 1):
            future = client.submit(inc, future, pure=False)
            future.result()

    fan_dask, fan_local = fanout_lattice(dask_inc), fanout_lattice(local_inc)
    chain_dask, chain_local = chain_lattice(dask_inc), chain_lattice(local_inc)
    measured = [
        ("fan-out", n_fanout, "plain `client.submit` + `gather`", plain_fanout, "plain"),
        ("fan-out", n_fanout, "plain + a start event per task", plain_fanout_announced, None),
        ("fan-out", n_fanout, 'covalent_nb `executor="dask"`', lambda: dispatch_and_wait(fan_dask, n_fanout), "ours"),
        ("fan-out", n_fanout, 'covalent_nb `executor="local"` (no Dask)', lambda: dispatch_and_wait(fan_local, n_fanout), None),
        ("chain", n_chain, "plain, all links submitted at once", plain_chain_at_once, "plain"),
        ("chain", n_chain, "plain, value by value", plain_chain_value_by_value, None),
        ("chain", n_chain, 'covalent_nb `executor="dask"`', lambda: dispatch_and_wait(chain_dask, n_chain), "ours"),
        ("chain", n_chain, 'covalent_nb `executor="local"` (no Dask)', lambda: dispatch_and_wait(chain_local, n_chain), None),
    ]
    rows = []
    baseline: dict = {}
    medians = interleaved_medians([case[3] for case in measured], repeats)
    for (workload, n, how, _, role), seconds in zip(measured, medians):
        if role == "plain":
            baseline[workload] = seconds
        rows.append({"workload": workload, "n": n, "how": how, "seconds": seconds,
                     "per_task_us": seconds / n * 1e6, "role": role})
    for row in rows:
        row["vs_plain"] = row["seconds"] / baseline[row["workload"]]
    client.unsubscribe_topic(topic)
    return rows


def scaling_rows(task_ms: list, copies: int, repeats: int) -> list:
    per_ms = calibrate_spin()
    on_dask, on_threads = spin_lattice(dask_spin), spin_lattice(local_spin)
    rows = []
    for ms in task_ms:
        n = max(1, int(per_ms * ms))
        threads, dask = interleaved_medians([lambda: dispatch_and_wait(on_threads, n, copies),
                                             lambda: dispatch_and_wait(on_dask, n, copies)], repeats)
        rows.append({"task_ms": ms, "threads": threads, "dask": dask, "speedup": threads / dask})
    return rows


# -- the report ----------------------------------------------------------------------------------
def markdown(overhead: list, scaling: list, workers: int, copies: int) -> str:
    lines = [f"Overhead on the kernel's cluster ({workers} worker processes x 1 thread, TLS), trivial tasks:", "",
             "| workload | tasks | how | wall (median) | per task | vs plain |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    for row in overhead:
        mark = "**" if row["role"] == "ours" else ""
        lines.append(f"| {row['workload']} | {row['n']} | {row['how']} | {row['seconds'] * 1e3:.0f} ms | "
                     f"{row['per_task_us'] / 1e3:.2f} ms | {mark}{row['vs_plain']:.2f}x{mark} |")
    lines += ["", f"CPU-bound fan-out: {copies} pure-Python tasks of T ms each:", "",
              "| T per task | local threads (one GIL) | Dask processes | speed-up |",
              "| ---: | ---: | ---: | ---: |"]
    for row in scaling:
        lines.append(f"| {row['task_ms']:g} ms | {row['threads'] * 1e3:.0f} ms | {row['dask'] * 1e3:.0f} ms | "
                     f"{row['speedup']:.2f}x |")
    return "\n".join(lines)


def guidance(overhead: list, scaling: list, workers: int) -> str:
    ours = {row["workload"]: row for row in overhead if row["role"] == "ours"}
    fan, chain = ours["fan-out"], ours["chain"]
    overhead_ms = fan["per_task_us"] / 1e3
    # From the first task length on which Dask stays >1.2x faster for every longer one.
    paying = None
    for index, row in enumerate(scaling):
        if all(later["speedup"] > 1.2 for later in scaling[index:]):
            paying = row["task_ms"]
            break
    measured = (f"in this run Dask was clearly faster (>1.2x) from {paying:g} ms per task on"
                if paying is not None else "in this run Dask was never clearly faster for the lengths tried")
    # n tasks of T ms: threads take n*T (one GIL); W processes about n*T/W plus
    # n overheads paid one after the other in the kernel and the scheduler.
    break_even = overhead_ms * workers / (workers - 1) if workers > 1 else float("inf")
    return (
        f"Guidance: a Dask task costs about {overhead_ms:.1f} ms in a fan-out and "
        f"{chain['per_task_us'] / 1e3:.1f} ms per link of a chain (links go to Dask together and run "
        f"back to back on the cluster), {fan['vs_plain']:.2f}x and {chain['vs_plain']:.2f}x plain "
        f"client.submit on the same cluster.  CPU-bound pure-Python tasks, "
        f"which the kernel's threads run one at a time under the GIL, gain from {workers} worker "
        f"processes once a task runs longer than about {break_even:.0f} ms on idle cores "
        f"(overhead x W/(W-1)); {measured} this machine, whose cores other work was using.  Keep tasks "
        f"of a few milliseconds, and I/O-bound ones, local (the default); put electrons that compute "
        f"for 100 ms or more, or need more cores or memory than the kernel has, on Dask."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fanout", type=int, default=200, help="tasks in the fan-out")
    parser.add_argument("--chain", type=int, default=50, help="links in the chain")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--task-ms", default="1,10,100,500", help="CPU-bound task lengths to try (ms)")
    parser.add_argument("--copies", type=int, default=8, help="tasks in the CPU-bound fan-out")
    options = parser.parse_args()

    import distributed
    from distributed import Client, SpecCluster

    from covalent_nb.dispatch.executors.dask import close_local_cluster, local_cluster

    ct.set_config(store="memory", dask_address=None, dask_workers=options.workers,
                  dask_threads_per_worker=1, dask_dashboard=False)
    cluster: SpecCluster = local_cluster()  # the cluster executor="dask" uses
    # a second client on it, for the plain side (with the cluster's TLS credentials)
    client = Client(cluster, security=cluster.security, set_as_default=False)
    try:
        client.wait_for_workers(options.workers)
        overhead = overhead_rows(client, options.fanout, options.chain, options.repeats)
        task_ms = [float(ms) for ms in options.task_ms.split(",")]
        scaling = scaling_rows(task_ms, options.copies, max(1, options.repeats // 2))
    finally:
        client.close()
        close_local_cluster()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Machine: {os.cpu_count()} cores, load average {load} at the end; Python "
          f"{platform.python_version()}, distributed {distributed.__version__}.")
    print()
    print(markdown(overhead, scaling, options.workers, options.copies))
    print()
    print(guidance(overhead, scaling, options.workers))


if __name__ == "__main__":
    main()
