"""Reuse from history: does its cost grow with the size of the history?

One SQLite store home is filled, step by step, with more and more dispatches of a
1,000-task fan-out, each on other inputs (so each adds 1,000 new keys to the
history index: at the last step the index holds a million nodes).  At each
size, in a fresh process, it measures (medians):

* ``find``: the history lookup alone (``store.find_keys``) for the 1,001 keys of
  one such dispatch (all of them in the history);
* ``first``: the first lookup of the process; the very first lookup in a home
  turns the index on and fills it from what is stored (once: at the first size,
  10 dispatches), after which every dispatch in the home keeps it up to date;
* ``dispatch``: ``ct.dispatch(fanout, reuse_previous_results=True)(...)`` until
  ``get_result(wait=True)``, half of its tasks reused from history, next to the
  same dispatch without reuse (``plain``).

Usage::

    python benchmarks/history_lookup.py                       # 10, 100, 1000 dispatches
    python benchmarks/history_lookup.py --sizes 10 100 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import textwrap

from workloads import run_fresh

WORKFLOW = textwrap.dedent("""
    @ct.electron
    def inc(x):
        return x + 1

    @ct.electron
    def total(xs):
        return sum(xs)

    @ct.lattice
    def fanout(start, n):
        return total([inc(i) for i in range(start, start + n)])
""")

FILL = textwrap.dedent("""
    import json, sys, time
    import covalent_nb as ct
    ct.set_config(home=sys.argv[1])

    exec(sys.argv[-1])  # WORKFLOW: the fan-out of start .. start + n - 1

    first, count = int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    for k in range(first, first + count):  # dispatch k covers inputs k*1000 .. k*1000+999
        ct.get_result(ct.dispatch(fanout)(k * 1000, 1000), wait=True)
    print(json.dumps({"seconds": time.perf_counter() - t0}))
""")

MEASURE = textwrap.dedent("""
    import json, sys, time
    import covalent_nb as ct
    from covalent_nb.results.store import active_store
    ct.set_config(home=sys.argv[1])
    size, repeats = int(sys.argv[2]), int(sys.argv[3])

    exec(sys.argv[-1])  # WORKFLOW: the fan-out of start .. start + n - 1

    ct.get_result(ct.dispatch(fanout)(-10, 3), wait=True)  # warm up: imports, threads, store opened
    store = active_store()
    t0 = time.perf_counter()
    store.find_keys([])  # the home's first lookup indexes what is stored; later ones find it indexed
    first = time.perf_counter() - t0
    finds, reuse, plain = [], [], []
    for r in range(repeats):
        start = size * 1000 - 500  # inputs half in the last stored dispatch, half new
        t0 = time.perf_counter()
        dispatch_id = ct.dispatch(fanout, reuse_previous_results=True)(start, 1000)
        result = ct.get_result(dispatch_id, wait=True)
        reuse.append(time.perf_counter() - t0)
        assert result.reuse_summary()["from_history"] >= 500, result.reuse_summary()
        keys = [k for k in result._table.key if k is not None]
        t0 = time.perf_counter()
        found = store.find_keys(keys)
        finds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ct.get_result(ct.dispatch(fanout)(start + 7_000_000 + r * 1000, 1000), wait=True)
        plain.append(time.perf_counter() - t0)
        ct.delete_dispatch(dispatch_id)  # keep the history at its size
    print(json.dumps({"find": finds, "reuse": reuse, "plain": plain, "keys": len(keys),
                      "found": len(found), "first": first}))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    home = tempfile.mkdtemp(prefix="covalent_nb_history_")
    stored = 0
    print(f"| dispatches of 1,000 tasks in the store | nodes indexed | find 1,001 keys | "
          f"dispatch reusing 500 tasks from history | a dispatch of new work, no reuse | "
          f"this process's first lookup |")
    print("|---|---|---|---|---|---|")
    for size in sorted(options.sizes):
        if size > stored:
            run_fresh(FILL, home, str(stored), str(size - stored), WORKFLOW)
            stored = size
        m = run_fresh(MEASURE, home, str(size), str(options.repeats), WORKFLOW)
        print(f"| {size:,} | {size * 1001:,} | {statistics.median(m['find']) * 1e3:.1f} ms "
              f"({m['found']} found) | {statistics.median(m['reuse']) * 1e3:.0f} ms | "
              f"{statistics.median(m['plain']) * 1e3:.0f} ms | {m['first'] * 1e3:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
