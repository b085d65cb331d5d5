"""Pooled dispatcher threads: every dispatch runs at once on a thread of its own, and ended ones are reused."""

from __future__ import annotations

import threading

import covalent_nb as ct
from covalent_nb.dispatch.threads import DispatchThread


def test_jobs_never_wait_for_a_thread_and_run_on_threads_of_their_own():
    release = threading.Event()
    running: list = []
    lock = threading.Lock()

    def job():
        with lock:
            running.append(threading.current_thread())
        release.wait(10)

    jobs = [DispatchThread(job, f"covalent_nb-dispatch-test{i}") for i in range(6)]
    for each in jobs:
        each.start()
    try:
        deadline = threading.Event()
        for _ in range(200):  # all six run together, though none has ended
            with lock:
                if len(running) == 6:
                    break
            deadline.wait(0.01)
        assert len(running) == 6 and len(set(map(id, running))) == 6
        assert all(each.is_alive() for each in jobs)
    finally:
        release.set()
    for each in jobs:
        each.join(10)
        assert not each.is_alive()


def test_an_ended_dispatch_leaves_its_thread_for_the_next():
    seen: list = []

    def job():
        seen.append((threading.get_ident(), threading.current_thread().name))

    first = DispatchThread(job, "covalent_nb-dispatch-a")
    first.start()
    first.join(10)
    threads_before = {thread.ident for thread in threading.enumerate()}
    second = DispatchThread(job, "covalent_nb-dispatch-b")
    second.start()
    second.join(10)
    assert [name for _, name in seen] == ["covalent_nb-dispatch-a", "covalent_nb-dispatch-b"]
    assert seen[1][0] in threads_before  # an idle thread of the pool took it: none was started


def test_a_failing_job_still_ends_and_frees_its_thread():
    def broken():
        raise RuntimeError("never escapes the pool")

    job = DispatchThread(broken, "covalent_nb-dispatch-broken")
    job.start()
    job.join(10)
    assert not job.is_alive()
    after = DispatchThread(lambda: None, "covalent_nb-dispatch-after")
    after.start()
    after.join(10)
    assert not after.is_alive()


def test_nested_dispatches_each_get_a_thread():
    @ct.electron
    def leaf(x):
        return x + 1

    @ct.lattice
    def inner(x):
        return leaf(x)

    @ct.lattice
    def outer(n):
        return [ct.electron(inner)(i) for i in range(n)]

    assert ct.dispatch_sync(outer)(12).result == list(range(1, 13))
