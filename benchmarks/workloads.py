"""What the dispatch benchmarks share: the trivial workloads and the fresh-process runner.

Each benchmark runs its measurements in fresh Python processes (``python -c``)
so that one side's garbage, caches or threads never slow the other.
:data:`LATTICES` is the source those processes start from; it defines, after
``import covalent_nb as ct``:

* ``inc`` / ``total`` and ``fanout(n)``: n independent ``inc(i)`` and a final ``total``;
* ``chain(n)``: ``inc(inc(...inc(0)))`` n deep;
* ``seed(a, b)``: the how-to's three tasks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

__all__ = ["LATTICES", "run_fresh"]

LATTICES = textwrap.dedent("""
    @ct.electron
    def inc(x):
        return x + 1

    @ct.electron
    def total(xs):
        return sum(xs)

    @ct.lattice
    def fanout(n):
        return total([inc(i) for i in range(n)])

    @ct.lattice
    def chain(n):
        x = 0
        for _ in range(n):
            x = inc(x)
        return x

    @ct.electron
    def task_0(a):
        return a

    @ct.electron
    def task_1(a, b):
        return a + b

    @ct.electron
    def task_2(a, b):
        return a / b

    @ct.lattice
    def seed(a, b):
        return task_2(task_1(task_0(a), b), b)
""")


def run_fresh(code: str, *argv: str):
    """Run *code* in a fresh Python process; return the JSON its last line prints."""
    completed = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                               check=False)
    if completed.returncode != 0:
        raise SystemExit(f"benchmark process failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
