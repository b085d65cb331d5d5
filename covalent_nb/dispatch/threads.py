"""Threads for dispatchers: kept a while between dispatches instead of started for each.

Starting a thread costs about 130 µs here, a sixth of a small dispatch.  Each
dispatch still gets a thread of its own for its whole life (a dispatcher waits
for its sublattices, so dispatches never share one), but a thread whose
dispatch ended waits :data:`IDLE_S` seconds for the next before it exits.  The
pool grows without bound: a new thread starts whenever none is idle, so
nothing ever waits for a thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Callable

__all__ = ["DispatchThread", "IDLE_S"]

log = logging.getLogger(__name__)

#: Seconds an idle dispatcher thread waits for another dispatch before it exits.
IDLE_S = 30.0

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_lock = threading.Lock()
_idle = 0  # threads waiting on _jobs (each takes at most one job before counting itself idle again)


class DispatchThread:
    """Runs one dispatcher's ``target`` on a pooled thread; quacks like the ``threading.Thread`` it
    replaces for what callers ask of it (:meth:`start`, :meth:`is_alive`, :meth:`join`, ``name``)."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self.name = name
        self._target = target
        self._started = False
        self._done = threading.Event()

    def start(self) -> None:
        global _idle
        if self._started:
            raise RuntimeError("a dispatch thread can be started only once")
        self._started = True
        with _lock:
            spawn = _idle == 0
            if not spawn:
                _idle -= 1  # one idle thread is this job's (it waits on _jobs until it gets one)
        if spawn:
            threading.Thread(target=_work, args=(self,), name=self.name, daemon=True).start()
        else:
            _jobs.put(self)

    def is_alive(self) -> bool:
        return self._started and not self._done.is_set()

    def join(self, timeout: float = None) -> None:
        if self._started:
            self._done.wait(timeout)

    def _run(self) -> None:
        thread = threading.current_thread()
        thread.name = self.name  # a debugger or a traceback shows which dispatch this is
        try:
            self._target()
        finally:
            self._target = None  # an idle thread holds no dispatch
            self._done.set()
            thread.name = "covalent_nb-dispatch-idle"


def _work(first: DispatchThread) -> None:
    """Run *first*, then the jobs promised to an idle thread, until idle for :data:`IDLE_S`.

    Invariant: the jobs queued (or about to be) are never more than the idle
    threads waiting for them, as each was promised one by decrementing
    ``_idle`` under the lock; a thread leaves only while ``_idle`` still counts
    another idle thread beside those promises.
    """
    global _idle
    job = first
    while True:
        try:
            job._run()
        except BaseException:  # noqa: BLE001 - a dispatcher catches its own; never lose the thread
            log.exception("covalent_nb: a dispatcher thread's job failed")
        job = None
        with _lock:
            _idle += 1
        try:
            job = _jobs.get(timeout=IDLE_S)
        except queue.Empty:
            with _lock:
                if _idle > 0 and _jobs.empty():
                    _idle -= 1
                    return
            job = _jobs.get()  # a job was promised to the idle threads just now: take it
