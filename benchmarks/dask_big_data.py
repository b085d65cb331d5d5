"""A large intermediate between Dask tasks: what the kernel's memory sees, what durability costs.

On the kernel's own cluster (``executor="dask"``, 2 worker processes), one
lattice ``total(make(n))`` passes an ``n``-byte numpy array from one Dask task
to the next.  Measured, each in a run of its own:

* the kernel's peak RSS growth while the dispatch runs (sampled every 5 ms by a
  thread, from just before ``ct.dispatch`` to the end of ``get_result``), and
  whether the kernel fetched the value (it must not);
* wall time with the SQLite store (the worker writes the output into the
  home's blob directory: durable) and with the memory store (the output stays
  on the cluster: not durable);
* on a worker, what durable storage is made of, each step timed alone with
  the functions the worker runs (medians): pickling the value
  (``freeze_output``, paid by every mutable output, durable or not; next to
  it, the way it was pickled before: ``pickle.dumps`` and a search of all the
  bytes for ``__main__``), its BLAKE3 digest (how new blobs are named),
  writing the bytes to a file as ``store_blob`` does (``write_synced``:
  write-behind, fsync) and renaming it, and ``store_blob`` (what the worker
  does: that write with the digest computed in a second thread meanwhile),
  next to a plain write of the array's memory to a file with an fsync (the
  floor the issue names: what writing it to disk costs) and the same with
  write-behind (the fastest write found); and, for comparison, the digests
  the store does not name new blobs with: BLAKE2b-256 (the earlier naming,
  still read) and SHA-256.

Usage::

    python benchmarks/dask_big_data.py            # 1 GB (1e9 bytes), 2 runs each, 8 rounds on a worker
    python benchmarks/dask_big_data.py --mb 200 --repeats 3 --splits 12
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

import hashlib
import pickle
import uuid

import numpy as np
import psutil

import covalent_nb as ct
from covalent_nb.dispatch.executors.dask import DaskExecutor, close_local_cluster
from covalent_nb.blob_files import blake2b_digest, blob_digest, write_synced
from covalent_nb.dispatch.executors.remote import RemoteValue, store_blob
from covalent_nb.dispatch.freeze import freeze_output


@ct.electron(executor="dask")
def make(n):
    return np.ones(n, dtype=np.uint8)


@ct.electron(executor="dask")
def total(a):
    return int(a.sum(dtype=np.int64))


@ct.lattice
def intermediate(n):
    return total(make(n))


class PeakRSS:
    """The process's peak resident memory between start() and stop(), sampled by a thread."""

    def __init__(self, every_s: float = 0.005) -> None:
        self.process = psutil.Process()
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every_s)

    def __enter__(self) -> "PeakRSS":
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 1e6


def one_run(n: int) -> dict:
    with PeakRSS() as rss:
        start = time.perf_counter()
        result = ct.dispatch_sync(intermediate)(n)
        seconds = time.perf_counter() - start
    assert result.status == ct.Status.COMPLETED, result.error
    assert result.result == n
    made = result.graph.names.index("make")
    reference = result._table.output.raw[made]
    assert type(reference) is RemoteValue, type(reference)
    return {"seconds": seconds, "growth_mb": rss.growth_mb, "fetched": reference.fetched,
            "durable": reference.durable, "reason": reference.reason}


def _write_plain(path: str, data) -> None:
    """A plain write in 64 MB pieces, then an fsync: what writing to disk costs without help."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data).cast("B")
        while view:
            view = view[os.write(fd, view[:64 << 20]):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_behind(path: str, data) -> None:
    """The write store_blob makes (write_synced: each piece handed to the disk at once), then an fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        write_synced(fd, data)
    finally:
        os.close(fd)


def split_on_worker(n: int, directory: str, turn: int) -> dict:
    """On a worker, each step of durable storage of an n-byte array timed alone (seconds).

    The disk writes take turns going first (*turn*), so that none is always
    the one that follows another's page cache.
    """
    def steps(n=n, directory=directory, turn=turn):
        value = np.ones(n, dtype=np.uint8)
        took = {}
        t = time.perf_counter()
        data, _ = freeze_output(value)
        took["pickle"] = time.perf_counter() - t
        t = time.perf_counter()
        before = pickle.dumps(value, protocol=5)
        named_main = b"__main__" in before
        took["pickle_before"] = time.perf_counter() - t
        assert not named_main and before == data  # the same bytes either way
        del before
        t = time.perf_counter()
        blob_digest(data)
        took["blake3"] = time.perf_counter() - t
        t = time.perf_counter()
        blake2b_digest(data)
        took["blake2b"] = time.perf_counter() - t
        t = time.perf_counter()
        hashlib.sha256(data).hexdigest()
        took["sha256"] = time.perf_counter() - t
        probe = os.path.join(directory, f"probe-{uuid.uuid4().hex}")

        def write():
            _write_behind(probe + ".tmp", data)
            os.replace(probe + ".tmp", probe)
            os.unlink(probe)

        def durable():
            os.unlink(store_blob(os.path.join(directory, "bench-blobs"), data)[1])

        def plain():
            _write_plain(probe, value)
            os.unlink(probe)

        def plain_behind():
            _write_behind(probe, value)
            os.unlink(probe)

        disk = [("write", write), ("store_blob", durable), ("plain", plain), ("plain_behind", plain_behind)]
        for step, run in disk[turn % 4:] + disk[:turn % 4]:
            os.sync()  # each write starts with nothing dirty
            t = time.perf_counter()
            run()
            took[step] = time.perf_counter() - t
        return took

    return DaskExecutor().client.submit(steps, pure=False).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=1000, help="size of the intermediate, in MB (1e6 bytes)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--splits", type=int, default=8,
                        help="rounds of the on-worker steps (the disk writes take turns going first)")
    options = parser.parse_args()
    n = int(options.mb * 1e6)
    with tempfile.TemporaryDirectory() as home:
        ct.set_config(home=home, dask_address=None, dask_workers=2, dask_threads_per_worker=1,
                      dask_dashboard=False)
        try:
            DaskExecutor().client.wait_for_workers(2)
            ct.set_config(store="memory")
            one_run(1_000_000)  # warm-up: imports on the workers and in the kernel
            rows = []
            for store in ("sqlite", "memory"):
                ct.set_config(store=store)
                runs = [one_run(n) for _ in range(options.repeats)]
                rows.append((store, runs))
            splits = [split_on_worker(n, home, turn) for turn in range(options.splits)]
        finally:
            close_local_cluster()
            ct.shutdown()
    print(f"Machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}.")
    print(f"Intermediate of {n / 1e6:.0f} MB between two Dask tasks (total(make(n))), "
          f"{options.repeats} runs each, medians:\n")
    print("| store | where the value stays | kernel peak RSS growth | fetched by the kernel | wall |")
    print("| --- | --- | ---: | --- | ---: |")
    for store, runs in rows:
        where = "worker + home blobs (durable)" if runs[0]["durable"] else "worker only (not durable)"
        growth = statistics.median(r["growth_mb"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        fetched = "yes" if any(r["fetched"] for r in runs) else "no"
        print(f"| {store} | {where} | {growth:.1f} MB (max {max(r['growth_mb'] for r in runs):.1f}) | "
              f"{fetched} | {seconds:.2f} s |")
    def median(step: str) -> float:
        return statistics.median(s[step] for s in splits)

    plain = median("plain")
    print(f"\nOn a worker, {n / 1e6:.0f} MB, each step alone, median of {len(splits)}:\n")
    print("| step | seconds | vs plain write |")
    print("| --- | ---: | ---: |")
    for step, label in (("plain", "plain write of the array's memory + fsync (the floor)"),
                        ("plain_behind", "the same with write-behind (write_synced), the fastest write found"),
                        ("pickle", "pickling the output (every mutable output pays it, durable or not)"),
                        ("pickle_before", "pickling as before: pickle.dumps, then a search for __main__"),
                        ("blake3", "BLAKE3 digest (how new blobs are named)"),
                        ("write", "writing the pickled bytes (write_synced) + rename"),
                        ("store_blob", "what the worker does: write, BLAKE3 digest in a second thread"),
                        ("blake2b", "BLAKE2b-256 digest, for comparison (the earlier naming, still read)"),
                        ("sha256", "SHA-256 digest, for comparison (not the store's format)")):
        print(f"| {label} | {median(step):.2f} | {median(step) / plain:.2f}x |")
    extra = median("store_blob")
    print(f"\nDurable storage on top of pickling: {extra:.2f} s = {extra / plain:.2f}x the plain write "
          f"(digest then write, one after the other: {median('blake3') + median('write'):.2f} s).")


if __name__ == "__main__":
    main()
