"""The default executor: a pool of threads inside the kernel.

All ``local_workers`` threads (a setting) start with the executor and take
runs from one queue.  They start up front because starting a thread blocks
the starter until the new thread gets the GIL: grown on demand in the middle
of a 10,000-task dispatch, six threads cost the dispatcher about 0.1 s.  A run that is a chain of tasks executes on one thread without a
hand-off between its tasks, which is what makes long chains of small tasks
cheap.

A task may itself dispatch and wait (``ct.dispatch_sync`` inside an electron):
while it waits, a stand-in thread works in its place (:func:`lending_worker`),
so nested dispatches never deadlock the pool.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Callable, Iterator

from ..messages import Done, Failed, Skipped, Started, message
from ..runner import FromRun, run_task
from .base import CancelFlag, Executor

__all__ = ["LocalExecutor", "lending_worker"]

#: Seconds a stand-in thread stays idle before it checks whether it is still needed.
STAND_IN_IDLE_S = 0.5

_worker = threading.local()  # .executor: the LocalExecutor this thread works for


@contextlib.contextmanager
def lending_worker() -> Iterator[None]:
    """While a task waits for another dispatch, let a stand-in thread take its place in the pool.

    A task that calls ``ct.dispatch_sync`` (or waits on any dispatch) holds one
    of the pool's threads while the dispatch it waits for needs threads of the
    same pool: with more such tasks than threads, nothing could run.  Waiting
    inside this context starts a stand-in for the waiting thread, so the pool
    keeps ``max_workers`` threads working however deep dispatches nest.  Outside
    a local worker thread it does nothing.
    """
    executor = getattr(_worker, "executor", None)
    if executor is None:
        yield
        return
    executor._lend()
    try:
        yield
    finally:
        executor._take_back()


def _resolve(values, outputs: dict):
    return [outputs[v.node_id] if type(v) is FromRun else v for v in values]  # run_task copies Outputs


def execute_run(run: list, deliver: Callable, cancel: CancelFlag) -> None:
    """Run the tasks of *run* in order, delivering each outcome."""
    outputs: dict = {}
    for position, spec in enumerate(run):
        if (cancel.all or (cancel.nodes and spec.node_id in cancel.nodes)
                or cancel.parent is not None and cancel.is_cancelled(spec.node_id)):
            for rest in run[position:]:
                deliver(Skipped(rest.node_id))
            return
        if position:
            spec.args = _resolve(spec.args, outputs)
            if spec.kwargs:
                spec.kwargs = dict(zip(spec.kwargs, _resolve(spec.kwargs.values(), outputs)))
        deliver(message(Started, (spec.node_id, None)))
        ok, value, start, end, out, err = run_task(spec)
        if ok:
            outputs[spec.node_id] = value
            deliver(message(Done, (spec.node_id, value, start, end, out, err)))
        else:
            deliver(Failed(spec.node_id, value, start, end, out, err))
            for rest in run[position + 1:]:
                deliver(Skipped(rest.node_id))
            return


class LocalExecutor(Executor):
    """Run tasks on a pool of *max_workers* daemon threads in this process.

    Owned by: its worker threads (``covalent_nb-local-N``).  Each takes
    ``(run, deliver, cancel)`` items off one queue and owns the run it took (it
    fills in the ``FromRun`` arguments); no worker touches dispatch state.
    Other threads: dispatcher threads call :meth:`submit` and
    :meth:`submit_many`, which only queue; workers answer with typed messages
    through ``deliver`` and read the :class:`CancelFlag` before each task.
    :meth:`shutdown` queues one stop item per worker.
    """

    name = "local"
    fuses_chains = True

    def __init__(self, max_workers: int = 8) -> None:
        if max_workers < 1:
            raise ValueError(f"a local executor needs at least one worker thread, not {max_workers}")
        self.max_workers = max_workers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._lent = 0  # workers waiting for another dispatch (see lending_worker)
        self._stand_ins = 0  # threads working in their place
        self._threads = [threading.Thread(target=self._work, name=f"covalent_nb-local-{i}", daemon=True)
                         for i in range(max_workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, run: list, deliver: Callable, cancel: CancelFlag) -> None:
        self._queue.put((run, deliver, cancel))

    def submit_many(self, runs: list, deliver: Callable, cancel: CancelFlag) -> None:
        """Queue many runs at once."""
        put = self._queue.put
        for run in runs:
            put((run, deliver, cancel))

    def _work(self) -> None:
        _worker.executor = self
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            self._run(item)
            item = None  # an idle worker holds nothing: a task's frozen code and data may be large

    def _run(self, item: tuple) -> None:
        run, deliver, cancel = item
        try:
            execute_run(run, deliver, cancel)
        except BaseException as exc:  # never lose a worker silently
            for spec in run:
                deliver(Failed(spec.node_id, f"covalent_nb local executor error: {exc!r}"))

    # -- tasks that wait for other dispatches --------------------------------------
    def _lend(self) -> None:
        """A worker is about to wait for a dispatch that may need this pool: add a stand-in."""
        with self._lock:
            self._lent += 1
            start = self._stand_ins < self._lent
            if start:
                self._stand_ins += 1
        if start:
            threading.Thread(target=self._stand_in, name="covalent_nb-local-stand-in", daemon=True).start()

    def _take_back(self) -> None:
        with self._lock:
            self._lent -= 1

    def _stand_in(self) -> None:
        """Work in a waiting worker's place; end once no worker waits (idle for a moment)."""
        _worker.executor = self
        while True:
            try:
                item = self._queue.get(timeout=STAND_IN_IDLE_S)
            except queue.Empty:
                item = False
            if item is None:  # shutting down: the stop item is a regular worker's
                self._queue.put(None)
                with self._lock:
                    self._stand_ins -= 1
                return
            if item is not False:
                self._run(item)
                item = None
            with self._lock:
                if self._stand_ins > self._lent:
                    self._stand_ins -= 1
                    return

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the worker threads once they finish what they run (waiting up to *timeout* s each)."""
        threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
