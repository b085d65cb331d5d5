"""Run electrons on Dask distributed: ``executor="dask"`` or :class:`DaskExecutor`.

One node is one Dask task (chains are not fused: Dask's scheduler already
pipelines work, and one task per node lets every node's data stay where it was
computed).  The life of a node:

submit (kernel, dispatcher thread)
    The :class:`~covalent_nb.dispatch.runner.TaskSpec` is cloudpickled here,
    so functions defined in the notebook (``__main__``) travel by value.  An
    argument that came from an earlier Dask node of the same dispatch is
    replaced by a placeholder and that node's ``Future`` is passed to
    ``client.submit``: Dask moves the data worker to worker and the kernel
    never sends it back.
start (worker)
    :func:`_run_on_worker` first logs ``[dispatch_id, node_id, start_us]`` on
    a topic private to this kernel's connection (``Worker.log_event``); the
    client receives it through ``Client.subscribe_topic`` on its event loop
    and delivers ``STARTED``.  RUNNING therefore means executing on a worker,
    not queued; the price is one small message worker -> scheduler -> client
    per task (``benchmarks/dask_overhead.py`` measures it).
end (worker, then kernel)
    The task returns :func:`~covalent_nb.dispatch.runner.run_task`'s outcome
    tuple, which stays on the worker.  A done callback queues the future; one
    collector thread per connection gathers finished futures in batches (one
    round trip for a burst of completions) and delivers ``DONE`` or
    ``FAILED``.  A failure of Dask itself (the worker died: ``KilledWorker``;
    the scheduler went away) fails the node with a message saying so; a
    future this executor cancelled delivers ``SKIPPED``.

Per dispatch the executor keeps node -> Future until the dispatcher calls
:meth:`DaskExecutor.dispatch_ended`; dropping them lets Dask free the data.

Connections (:class:`_Connection`): one ``distributed.Client`` per scheduler,
shared by every executor object that names it.  Without an address (setting
``dask_address``), one ``LocalCluster`` per kernel is started on first use
(worker processes on 127.0.0.1, settings ``dask_*``) and closed at exit.
"""

from __future__ import annotations

import atexit
import logging
import queue
import re
import threading
import traceback
import uuid
from functools import partial
from typing import Any, Callable, Iterable, Optional

import cloudpickle
import dask
import distributed
from distributed import Client, LocalCluster
from distributed.scheduler import KilledWorker

from ...config import get_config
from ..runner import DONE, FAILED, SKIPPED, STARTED, FromRun, TaskSpec, now_us, run_task
from .base import CancelFlag, Executor

__all__ = ["DaskExecutor", "close_local_cluster", "local_cluster"]

log = logging.getLogger(__name__)


# -- on the worker ----------------------------------------------------------------
class _Upstream:
    """Placeholder in a pickled TaskSpec for the *index*-th upstream future's value."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self):
        return (_Upstream, (self.index,))


def _run_on_worker(topic: str, dispatch_id: str, node_id: int, payload: bytes, *upstream: tuple) -> tuple:
    """The Dask task of one node: announce the start, then run the node.

    *upstream* are the outcome tuples of the Dask nodes this one takes
    arguments from (Dask resolved the futures); their values replace the
    placeholders.  Returns ``run_task``'s outcome tuple and never raises for a
    failure of the node, so Dask only ever reports its own failures.
    """
    start = now_us()
    try:
        distributed.get_worker().log_event(topic, [dispatch_id, node_id, start])
    except Exception:  # outside a worker (nothing listens); the outcome still has the times
        pass
    try:
        spec = cloudpickle.loads(payload)
        if upstream:
            spec.args = [upstream[a.index][1] if type(a) is _Upstream else a for a in spec.args]
            if spec.kwargs:
                spec.kwargs = {k: upstream[v.index][1] if type(v) is _Upstream else v
                               for k, v in spec.kwargs.items()}
    except BaseException as exc:  # noqa: BLE001 - e.g. a module the worker lacks
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return (False, f"covalent_nb: the Dask worker could not load node {node_id}:\n{text}",
                start, max(now_us(), start + 1), "", "")
    return run_task(spec)


# -- in the kernel: one dispatch's Dask state ---------------------------------------
class _Dispatch:
    """What a connection keeps for one dispatch while it runs."""

    __slots__ = ("dispatch_id", "deliver", "futures", "started", "cancelled")

    def __init__(self, dispatch_id: str, deliver: Callable[[tuple], None]) -> None:
        self.dispatch_id = dispatch_id
        self.deliver = deliver
        self.futures: dict = {}      # node id -> distributed.Future
        self.started: set = set()    # node ids a worker announced
        self.cancelled: set = set()  # node ids whose futures we cancelled


_KEY_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def _task_key(spec: TaskSpec) -> str:
    # The electron's name first: the dashboard groups tasks by the key's prefix.
    name = _KEY_CHARS.sub("_", spec.name).strip("_") or "node"
    return f"{name}-{spec.dispatch_id}-{spec.node_id}"


def _pack(spec: TaskSpec, futures: dict) -> tuple:
    """Pickle *spec* with arguments from earlier Dask nodes replaced by placeholders.

    Returns ``(payload, upstream_futures)``.
    """
    upstream: list = []
    position: dict = {}

    def swap(value: Any, source: Any) -> Any:
        if type(value) is FromRun:
            source = value.node_id
        future = futures.get(source) if source is not None else None
        if future is None:
            if type(value) is FromRun:
                raise RuntimeError(f"no Dask future for node {source} of the same run")
            return value
        index = position.get(source)
        if index is None:
            index = position[source] = len(upstream)
            upstream.append(future)
        return _Upstream(index)

    sources = spec.arg_sources
    if futures and sources:
        spec.args = [swap(a, s) for a, s in zip(spec.args, sources)]
    if futures and spec.kwargs:
        kw_sources = dict(spec.kwarg_sources or ())
        spec.kwargs = {k: swap(v, kw_sources.get(k)) for k, v in spec.kwargs.items()}
    return cloudpickle.dumps(spec), upstream


def _format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


# -- connections ---------------------------------------------------------------
class _Connection:
    """A ``distributed.Client`` with this kernel's start events and result collector."""

    def __init__(self, client: Client, owns_client: bool, cluster: Optional[LocalCluster] = None) -> None:
        self.client = client
        self.owns_client = owns_client
        self.cluster = cluster
        self.address: str = client.scheduler.address
        # Private topic: kernels sharing a scheduler never see each other's starts.
        self.topic = f"covalent_nb-started-{uuid.uuid4().hex}"
        self.dispatches: dict = {}
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        # Subscribing goes down the same ordered stream as every later submit,
        # so the scheduler knows the subscriber before any task can start.
        client.subscribe_topic(self.topic, self._on_started)
        self._collector = threading.Thread(target=self._collect, daemon=True,
                                           name=f"covalent_nb-dask-collector-{self.address}")
        self._collector.start()

    # event loop thread
    def _on_started(self, event: tuple) -> None:
        dispatch_id, node_id, start = event[1]
        state = self.dispatches.get(dispatch_id)
        if state is not None:
            state.started.add(node_id)
            state.deliver((STARTED, node_id, start))

    # Dask's callback thread: only queue, never block it
    def finished(self, state: _Dispatch, node_id: int, future: Any) -> None:
        self._done.put((state, node_id, future))

    # collector thread
    def _collect(self) -> None:
        get, empty = self._done.get, self._done.empty
        while True:
            batch = [get()]
            while not empty():
                batch.append(get())
            stop = any(item is None for item in batch)
            batch = [item for item in batch if item is not None]
            try:
                self._settle(batch)
            except BaseException:  # never leave a node without an outcome
                text = "covalent_nb dask executor error:\n" + traceback.format_exc()
                for state, node_id, _ in batch:
                    state.deliver((FAILED, node_id, text, None, None, "", ""))
            if stop:
                return
            del batch  # hold no future while waiting: Dask frees data only when none is left

    def _settle(self, batch: list) -> None:
        finished = [item for item in batch if item[2].status == "finished"]
        if finished:
            try:
                outcomes = self.client.gather([item[2] for item in finished])
            except Exception:  # one bad apple: gather one by one to find it
                outcomes = [self._gather_one(item[2]) for item in finished]
            for (state, node_id, _), outcome in zip(finished, outcomes):
                ok, value, start, end, out, err = outcome
                state.deliver((DONE if ok else FAILED, node_id, value, start, end, out, err))
        for state, node_id, future in batch:
            if future.status != "finished":
                state.deliver(self._failure(state, node_id, future))

    def _gather_one(self, future: Any) -> tuple:
        try:
            return self.client.gather(future)
        except Exception as exc:
            return (False, "covalent_nb: the node ran on Dask but its result could not be "
                           f"brought to the kernel:\n{_format_traceback(exc)}", None, None, "", "")

    def _failure(self, state: _Dispatch, node_id: int, future: Any) -> tuple:
        """The message for a future that Dask itself failed, cancelled or lost."""
        status = future.status
        if status == "cancelled" and node_id in state.cancelled:
            return (SKIPPED, node_id)
        if status == "error":
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                when = ("while running it" if node_id in state.started else
                        "before it started (the node was assigned to it)")
                worker = getattr(getattr(exc, "last_worker", None), "address", "")
                text = (f"covalent_nb: the Dask worker {worker} died {when}. "
                        f"{type(exc).__name__}: {exc}")
            else:
                text = "covalent_nb: Dask failed the task:\n" + "".join(
                    traceback.format_exception(type(exc), exc, future.traceback()))
        else:
            # e.g. the client lost its scheduler: Dask cancels every future, with a reason
            why = getattr(getattr(future, "_state", None), "exception", None)
            text = (f"covalent_nb: Dask reports the task {status} without covalent_nb asking "
                    f"(scheduler {self.address}){f': {why}' if why else ''}")
        return (FAILED, node_id, text, None, None, "", "")

    def usable(self) -> bool:
        """False once the client is closed (a given client can be closed by its owner)."""
        return self.client.status not in ("closing", "closed")

    def close(self) -> None:
        self._done.put(None)
        if self.owns_client:
            try:
                self.client.close(timeout=5)
            except Exception:
                pass
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=10)
            except Exception:
                pass


_lock = threading.Lock()
_connections: dict = {}   # ("local",) | ("address", address) | ("client", client id) -> _Connection
_atexit_registered = False


def _dashboard_address() -> Optional[str]:
    setting = get_config("dask_dashboard")
    if setting is True:
        return "127.0.0.1:8787"
    return setting or None


def _start_local_cluster() -> _Connection:
    # allowed-failures applies to the scheduler this call creates: a task whose
    # worker dies fails at once (KilledWorker) instead of being retried on the
    # next worker, which a task that kills its worker would take down too.
    with dask.config.set({"distributed.scheduler.allowed-failures": get_config("dask_allowed_failures")}):
        dashboard = _dashboard_address()
        cluster = LocalCluster(n_workers=get_config("dask_workers"),
                               threads_per_worker=get_config("dask_threads_per_worker"),
                               processes=True, host="127.0.0.1", dashboard_address=dashboard,
                               # Without a dashboard the scheduler still serves health
                               # checks over HTTP: on a free loopback port, not 8787.
                               scheduler_kwargs=None if dashboard else {"dashboard_address": "127.0.0.1:0"},
                               silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return _Connection(client, owns_client=True, cluster=cluster)


def _connect(kind: tuple, make: Callable[[], _Connection]) -> _Connection:
    global _atexit_registered
    connection = _connections.get(kind)
    if connection is not None and connection.usable():
        return connection
    with _lock:  # one cluster even when several dispatches start at once
        connection = _connections.get(kind)
        if connection is not None and not connection.usable():
            connection.close()  # e.g. its client was closed: start afresh
            connection = None
        if connection is None:
            connection = _connections[kind] = make()
            if not _atexit_registered:
                atexit.register(_close_all)
                _atexit_registered = True
    return connection


def _by_address(address: str) -> _Connection:
    # A connection that already reaches this scheduler (e.g. a user's client) is reused.
    for connection in list(_connections.values()):
        if connection.address == address:
            return connection
    return _connect(("address", address),
                    lambda: _Connection(Client(address, set_as_default=False), owns_client=True))


def local_cluster() -> LocalCluster:
    """The kernel's shared ``LocalCluster``, started now if it is not running."""
    return _connect(("local",), _start_local_cluster).cluster


def close_local_cluster() -> None:
    """Close the kernel's shared ``LocalCluster`` (the next Dask task starts a new one)."""
    with _lock:
        connection = _connections.pop(("local",), None)
    if connection is not None:
        connection.close()


def _close_all() -> None:
    with _lock:
        connections = list(_connections.values())
        _connections.clear()
    for connection in connections:
        connection.close()


# -- the executor -------------------------------------------------------------------
class DaskExecutor(Executor):
    """Run electrons as tasks on a Dask distributed cluster.

    Args:
        address: the scheduler's address, e.g. ``"tcp://127.0.0.1:8786"``.
            Without it (and without *client*), the ``dask_address`` setting is
            used, and when that is None too, the kernel's shared
            ``LocalCluster``, started on first use.
        client: an existing ``distributed.Client`` to submit through; it
            stays the caller's and is never closed here.
        scheduler_address: Covalent's name for *address*.

    >>> import covalent_nb as ct
    >>> @ct.electron(executor=ct.executor.DaskExecutor(address="tcp://127.0.0.1:8786"))
    ... def square(x):
    ...     return x * x
    """

    name = "dask"
    fuses_chains = False

    def __init__(self, address: Optional[str] = None, *, client: Optional[Client] = None,
                 scheduler_address: Optional[str] = None) -> None:
        if address and scheduler_address and address != scheduler_address:
            raise ValueError("give address or scheduler_address (Covalent's name), not both")
        address = address or scheduler_address or None
        if address is not None and client is not None:
            raise ValueError("give address or client, not both")
        if client is not None and not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, not {type(client).__name__}")
        self.address = address
        self.client_given = client

    # The executor travels inside pickled lattices (redispatch snapshots): keep
    # only where it points, never the live client.
    def __reduce__(self):
        address = self.address
        if self.client_given is not None:
            address = self.client_given.scheduler.address
        return (DaskExecutor, (address,))

    def __repr__(self) -> str:
        where = (self.address or (f"client {self.client_given.scheduler.address}" if self.client_given
                                  else "the kernel's LocalCluster or dask_address"))
        return f"<DaskExecutor {where}>"

    # -- connection -------------------------------------------------------------
    def connection(self) -> _Connection:
        """The connection this executor submits through (connecting on first use)."""
        if self.client_given is not None:
            client = self.client_given
            return _connect(("client", client.id), lambda: _Connection(client, owns_client=False))
        address = self.address or get_config("dask_address")
        if address:
            return _by_address(address)
        return _connect(("local",), _start_local_cluster)

    @property
    def client(self) -> Client:
        """The ``distributed.Client`` in use (connecting, or starting the LocalCluster, if needed)."""
        return self.connection().client

    @property
    def dashboard_link(self) -> Optional[str]:
        """The dashboard's URL, or None when the scheduler has no dashboard."""
        try:
            return self.connection().client.dashboard_link
        except Exception:
            return None

    # -- the executor protocol ------------------------------------------------------
    def submit(self, run: list, deliver: Callable[[tuple], None], cancel: CancelFlag) -> None:
        self.submit_many([run], deliver, cancel)

    def submit_many(self, runs: list, deliver: Callable[[tuple], None], cancel: CancelFlag) -> None:
        """Submit every node of *runs* as its own Dask task."""
        try:
            connection = self.connection()
        except Exception as exc:
            text = f"covalent_nb: could not reach Dask ({self!r}):\n{_format_traceback(exc)}"
            for run in runs:
                for spec in run:
                    deliver((FAILED, spec.node_id, text, None, None, "", ""))
            return
        client = connection.client
        dispatches = connection.dispatches
        state = None
        for run in runs:
            for position, spec in enumerate(run):
                node_id = spec.node_id
                if state is None or state.dispatch_id != spec.dispatch_id:
                    state = dispatches.get(spec.dispatch_id)
                    if state is None:
                        state = dispatches[spec.dispatch_id] = _Dispatch(spec.dispatch_id, deliver)
                if cancel.is_cancelled(node_id):
                    for rest in run[position:]:
                        deliver((SKIPPED, rest.node_id))
                    break
                try:
                    payload, upstream = _pack(spec, state.futures)
                except Exception as exc:
                    problem = "cannot be sent to Dask: its function or inputs do not pickle"
                    failed = exc
                else:
                    try:
                        future = client.submit(_run_on_worker, connection.topic, spec.dispatch_id, node_id,
                                               payload, *upstream, key=_task_key(spec), pure=False)
                    except Exception as exc:
                        problem = "could not be submitted to Dask"
                        failed = exc
                    else:
                        state.futures[node_id] = future
                        future.add_done_callback(partial(connection.finished, state, node_id))
                        continue
                deliver((FAILED, node_id, f"covalent_nb: node {node_id} ({spec.name}) {problem}:\n"
                                          f"{_format_traceback(failed)}", None, None, "", ""))
                for rest in run[position + 1:]:
                    deliver((SKIPPED, rest.node_id))
                break

    def cancel(self, dispatch_id: str, node_ids: Optional[Iterable[int]] = None) -> None:
        """Cancel the futures of nodes that have not started; they end SKIPPED.

        A node already running on a worker finishes (as on the local executor):
        Dask cannot interrupt a running Python function anyway.
        """
        wanted = None if node_ids is None else set(node_ids)
        for connection in list(_connections.values()):
            state = connection.dispatches.get(dispatch_id)
            if state is None:
                continue
            targets = [(node, future) for node, future in list(state.futures.items())
                       if (wanted is None or node in wanted) and node not in state.started
                       and future.status == "pending"]
            if targets:
                state.cancelled.update(node for node, _ in targets)
                connection.client.cancel([future for _, future in targets])

    def dispatch_ended(self, dispatch_id: str) -> None:
        """Forget the dispatch's futures so Dask can release their data."""
        for connection in list(_connections.values()):
            connection.dispatches.pop(dispatch_id, None)

    def shutdown(self) -> None:
        """Close the connection this executor opened (never a client it was given)."""
        if self.client_given is not None:
            with _lock:
                connection = _connections.pop(("client", self.client_given.id), None)
            if connection is not None:
                connection.close()
            return
        address = self.address or get_config("dask_address")
        if not address:
            close_local_cluster()
            return
        with _lock:
            connection = _connections.pop(("address", address), None)
        if connection is not None:
            connection.close()
