"""What freezing a dispatch costs: a 100 MB numpy argument and a 10,000-node graph.

``ct.dispatch`` pickles the lattice, the code it reaches and the arguments
(:mod:`covalent_nb.dispatch.freeze`), unpickles that copy, and keys it.  This
script measures those steps on their own and the whole dispatch around them,
each scenario in a fresh process, and quotes medians:

* ``array``: ``ct.dispatch(identity)(a)`` for a 100 MB float64 array, compared
  with one plain ``a.copy()`` (the memory-bandwidth floor of any copy);
* ``fanout``: the 10,000-task fan-out of ``benchmarks/workloads.py``, where the
  frozen work is the lattice's code and one integer: the share of the dispatch
  that freezing takes.

Both run on the in-memory store and on the default durable SQLite store; each
timed dispatch is deleted after it is timed, so none pays for the memory of
the ones before.

Usage::

    python benchmarks/freeze_cost.py              # 5 repeats
    python benchmarks/freeze_cost.py --repeats 3 --mb 100
"""

from __future__ import annotations

import argparse
import textwrap

from workloads import LATTICES, run_fresh

SCENARIO = textwrap.dedent("""
    import gc, json, sys, tempfile, time
    import numpy as np
    import covalent_nb as ct
    from covalent_nb.dispatch.freeze import freeze, thaw
    from covalent_nb.dispatch.hashing import hash_value

    SHAPE, STORE, MB, REPEATS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    ct.set_config(store=STORE, home=tempfile.mkdtemp())
    exec(sys.argv[5])  # the shared workloads (benchmarks/workloads.py)

    @ct.electron
    def identity(a):
        return a

    @ct.lattice
    def passes(a):
        return identity(a)

    if SHAPE == "array":
        lattice, args = passes, (np.random.default_rng(0).random(MB * 2**20 // 8),)
    else:
        lattice, args = fanout, (10_000,)
    ct.get_result(ct.dispatch(seed)(1, 2), wait=True)  # warm up imports and threads

    def median_of(step):
        times = []
        for _ in range(REPEATS):
            gc.collect()
            t0 = time.perf_counter()
            done = step()
            times.append(time.perf_counter() - t0)
            if isinstance(done, ct.Result):  # each run alone: the kernel keeps no earlier ones
                ct.delete_dispatch(done.dispatch_id)
        return sorted(times)[len(times) // 2]

    work = freeze(lattice, {}, args, {})
    out = {
        "freeze": median_of(lambda: freeze(lattice, {}, args, {})),
        "thaw": median_of(lambda: thaw(work.data, work.live)),
        "key_args": median_of(lambda: [hash_value(a) for a in args]),
        "dispatch": median_of(lambda: ct.get_result(ct.dispatch(lattice)(*args), wait=True)),
        "copy": median_of(lambda: [a.copy() for a in args]) if SHAPE == "array" else None,
        "frozen_bytes": len(work.data),
    }
    print(json.dumps(out))
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--mb", type=int, default=100)
    options = parser.parse_args()
    print(f"freezing cost, medians of {options.repeats} runs (seconds)\n")
    print("| workload | store | freeze | thaw | key the args | whole dispatch | freeze+thaw share "
          "| reference |")
    print("|---|---|---|---|---|---|---|---|")
    for shape in ("array", "fanout"):
        for store in ("memory", "sqlite"):
            got = run_fresh(SCENARIO, shape, store, str(options.mb), str(options.repeats), LATTICES)
            share = (got["freeze"] + got["thaw"]) / got["dispatch"]
            name = f"{options.mb} MB array" if shape == "array" else "fan-out, 10,000 tasks"
            reference = (f"a.copy(): {got['copy']:.3f} s (freeze+thaw = "
                         f"{(got['freeze'] + got['thaw']) / got['copy']:.1f} copies)"
                         if got["copy"] else f"{got['frozen_bytes']:,} bytes frozen")
            print(f"| {name} | {store} | {got['freeze']:.3f} | {got['thaw']:.3f} | {got['key_args']:.3f} "
                  f"| {got['dispatch']:.3f} | {share:.0%} | {reference} |")


if __name__ == "__main__":
    main()
