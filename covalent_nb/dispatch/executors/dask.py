"""Run electrons on Dask distributed: ``executor="dask"`` or :class:`DaskExecutor`.

Every node is its own Dask task.  The life of a node:

submit (kernel, dispatcher thread)
    The :class:`~covalent_nb.dispatch.runner.TaskSpec` is cloudpickled here,
    so functions defined in the notebook (``__main__``) travel by value.  An
    input that comes from an earlier Dask node of the same dispatch is
    replaced by a placeholder and that node's ``Future`` goes along as a task
    argument: Dask moves the data worker to worker, never through the kernel.
    Everything the dispatcher hands over at once goes in one ``client.map``
    per wave (one message to the scheduler for a whole fan-out).  The
    executor takes whole chains (``fuses_chains``): the dispatcher hands over
    ``a -> b -> c`` at once, each link is still its own task, and Dask runs
    the links back to back without waiting for the kernel between them.
start (worker)
    :func:`_run_on_worker` logs ``[dispatch_id, node_id, start_us]`` on the
    connection's private topic before calling the function; the kernel
    delivers ``Started``, so RUNNING means executing on a worker, not queued
    (the price, one small message per task, is measured in
    ``benchmarks/dask_overhead.py``).
end (worker, then kernel)
    The task returns :func:`~covalent_nb.dispatch.runner.run_task`'s outcome
    tuple, which stays on the worker; the connection's collector gathers it
    and delivers ``DONE`` or ``FAILED`` (see :mod:`.dask_connection`).  A
    link whose predecessor failed does not run and ends ``SKIPPED``.

The executor keeps node -> Future per dispatch until the dispatcher calls
:meth:`DaskExecutor.dispatch_ended`, then drops them so Dask frees the data.
"""

from __future__ import annotations

import os
import re
import traceback
from functools import partial
from typing import Any, Callable, Iterable, Optional

import distributed
from dask.sizeof import sizeof as dask_sizeof
from distributed import Client, SpecCluster
from distributed.security import Security

from ...config import get_config
from ...serialization import dumps, loads
from ..freeze import Output, dumps_by_value
from ..messages import Failed, Skipped
from ...states import now_us
from ..runner import FromRun, TaskSpec, run_task
from . import dask_connection
from .base import CancelFlag, Executor
from .dask_connection import Connection, close_local_cluster
from .remote import RemoteTree, RemoteValue, _mapped, _unwrap, short_repr, store_blob

__all__ = ["DaskExecutor", "close_local_cluster", "local_cluster"]


# -- on the worker ----------------------------------------------------------------
class _Upstream:
    """Placeholder in a pickled TaskSpec for the *index*-th upstream future's value."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self):
        return (_Upstream, (self.index,))


def _resolve(value: Any, upstream: list) -> Any:
    """An argument on the worker: an upstream node's kept value, or a reference read from blob storage.

    A :class:`~.remote.RemoteTree` (a list, tuple or dict node packed from
    references in the kernel) becomes the structure of values, each read
    here: from the worker that holds it, or from blob storage.
    """
    kind = type(value)
    if kind is _Upstream:
        return upstream[value.index][0][1]
    if kind is RemoteValue:
        return value.fetch()
    if kind is RemoteTree:
        return _resolved_tree(value.value, upstream)
    return value


def _resolved_tree(value: Any, upstream: list) -> Any:
    """*value* (a structure inside a RemoteTree) with every reference replaced by this task's own copy."""
    kind = type(value)
    if kind is _Upstream:
        return _unwrap(upstream[value.index][0][1])
    if kind is RemoteValue:
        return value.fetch()
    if kind is list:
        return [_resolved_tree(v, upstream) for v in value]
    if kind is tuple:
        return tuple(_resolved_tree(v, upstream) for v in value)
    if kind is dict:
        return {k: _resolved_tree(v, upstream) for k, v in value.items()}
    return value


def _run_on_worker(topic: str, dispatch_id: str, node_id: int, payload: bytes, upstream: list,
                   storage: Optional[str], why_not: Optional[str], inline_max: int) -> tuple:
    """The Dask task of one node: announce the start, run the node, keep a large output here.

    *upstream* are the results of the Dask tasks this one takes inputs from
    (Dask resolved their futures): ``(kept, summary)`` pairs whose ``kept``
    outcome holds the value.  Returns ``(kept, summary)``: ``kept`` is
    ``run_task``'s outcome tuple (``(None, ...)`` without running when an
    upstream node of the same run failed), and ``summary`` what the kernel
    gathers: the same tuple for a small output, or one whose value is a
    :class:`~.remote.RemoteValue` for an output of more than *inline_max*
    pickled bytes, written to blob storage *storage* when there is one (else
    *why_not* says why there is none).  Never raises for a failure of the
    node, so Dask only ever reports failures of its own.
    """
    start = now_us()
    if any(pair[0][0] is not True for pair in upstream):
        skipped = (None, None, start, start + 1, "", "")
        return skipped, skipped
    try:
        distributed.get_worker().log_event(topic, [dispatch_id, node_id, start])
    except Exception:  # not on a worker: nobody listens; the outcome still has the times
        pass
    try:
        spec = loads(payload)  # never onto the kernel's live classes, when the worker is in-process
        spec.args = [_resolve(a, upstream) for a in spec.args]
        if spec.kwargs:
            spec.kwargs = {k: _resolve(v, upstream) for k, v in spec.kwargs.items()}
        if upstream:
            spec.shared = True  # outputs of other nodes: run_task gives this task its own copies
    except BaseException as exc:  # noqa: BLE001 - e.g. a module the worker lacks, an unreadable blob
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        failed = (False, f"covalent_nb: the Dask worker could not load node {node_id}:\n{text}",
                  start, max(now_us(), start + 1), "", "")
        return failed, failed
    outcome = run_task(spec)
    return _keep_large(outcome, storage, why_not, inline_max)


def _keep_large(outcome: tuple, storage: Optional[str], why_not: Optional[str], inline_max: int) -> tuple:
    """``(kept, summary)`` for *outcome*: a large value stays here, the kernel gets a reference."""
    ok, value = outcome[0], outcome[1]
    if ok is not True:
        return outcome, outcome
    if type(value) is Output:
        data, shown = value.data, value.value
        if data is None:  # it could not be pickled: it cannot travel or be stored either way
            return outcome, outcome
    elif type(value) in (bytes, str) and len(value) > inline_max:
        data, shown = dumps(value), value
    else:
        return outcome, outcome  # a small immutable value
    if len(data) <= inline_max:
        return outcome, outcome
    try:
        key = str(distributed.get_worker().get_current_task())
    except Exception:  # noqa: BLE001 - run outside a worker
        key = ""
    digest = location = None
    reason = why_not
    if storage is not None:
        try:
            digest, location = store_blob(storage, data)
            reason = None
        except Exception as exc:  # noqa: BLE001 - unreachable, full, refused: say so in the record
            reason = f"the worker could not write to blob storage {storage} ({type(exc).__name__}: {exc})"
    reference = RemoteValue(key, digest, len(data), short_repr(shown), location, reason)
    # the value stays here as its bytes (each consumer unpickles its own copy), not twice
    kept_value = Output(None, data, None) if type(value) is Output else value
    return (True, kept_value) + outcome[2:], (True, reference) + outcome[2:]


@dask_sizeof.register(Output)
def _output_size(output: Output) -> int:
    """What Dask counts for an output kept on a worker: its bytes (and its object, when held).

    Without it Dask would take a task's kept output for a few dozen bytes and
    might run the task that reads it (its summary, its consumer) on another
    worker, moving a gigabyte between workers to save nothing; counted, the
    readers run where the output is.  (Registered wherever this module is
    imported: the kernel and every worker, which import it to run its tasks.)
    """
    size = 64
    if output.data is not None:
        size += len(output.data)
    if output.value is not None:
        size += dask_sizeof(output.value)
    return size


def _summary(pair: tuple) -> tuple:
    """The Dask task the kernel gathers: a node's summary outcome (small)."""
    return pair[1]


# -- in the kernel ------------------------------------------------------------------
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def _task_key(spec: TaskSpec) -> str:
    # The electron's name first: the dashboard groups tasks by the key's prefix.
    name = _KEY_CHARS.sub("_", spec.name).strip("_") or "node"
    return f"{name}-{spec.dispatch_id}-{spec.node_id}"


def _pack(spec: TaskSpec, futures: dict, client: Any = None) -> tuple:
    """Pickle *spec* with inputs from earlier Dask nodes replaced by placeholders.

    An input that is a :class:`~.remote.RemoteValue` (a Dask output of an
    earlier dispatch, reused) goes as its future when *client* still holds it,
    else as the reference, which the worker reads from blob storage: its value
    never passes through the kernel.
    Returns ``(payload, upstream_futures, run_parent)``; *run_parent* is the
    node of the same run this one takes an input from (None if none).
    """
    upstream: list = []
    position: dict = {}
    run_parent = None

    def placeholder(reference: RemoteValue) -> Any:
        """A reference inside a RemoteTree: its future's placeholder while *client* holds it, else itself."""
        future = reference.future
        if future is None or getattr(future, "client", None) is not client:
            return reference  # read from blob storage on the worker
        source = ("remote", reference.key)
        index = position.get(source)
        if index is None:
            index = position[source] = len(upstream)
            upstream.append(future)
        return _Upstream(index)

    def swap(value: Any, source: Any) -> Any:
        nonlocal run_parent
        if type(value) is RemoteTree:  # a packed list/tuple/dict of references: resolved on the worker
            return RemoteTree(_mapped(value.value, placeholder))
        if type(value) is FromRun:
            source = run_parent = value.node_id
        future = futures.get(source) if source is not None else None
        if future is None and type(value) is RemoteValue:
            held = value.future
            if held is None or getattr(held, "client", None) is not client:
                return value  # read from blob storage on the worker
            future, source = held, ("remote", value.key)
        if future is None:
            if type(value) is FromRun:
                raise RuntimeError(f"no Dask future for node {source} of the same run")
            return value
        index = position.get(source)
        if index is None:
            index = position[source] = len(upstream)
            upstream.append(future)
        return _Upstream(index)

    if futures or spec.shared:  # shared: the dispatcher may have passed a RemoteValue
        if spec.arg_sources:
            spec.args = [swap(a, s) for a, s in zip(spec.args, spec.arg_sources)]
        if spec.kwargs:
            kw_sources = dict(spec.kwarg_sources or ())
            spec.kwargs = {k: swap(v, kw_sources.get(k)) for k, v in spec.kwargs.items()}
    return dumps_by_value(spec), upstream, run_parent


def _format_traceback(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _unsendable(spec: TaskSpec, exc: BaseException) -> str:
    return (f"covalent_nb: node {spec.node_id} ({spec.name}) could not be sent to Dask "
            f"(do its function and inputs pickle?):\n{_format_traceback(exc)}")


def _give_up(run: list, position: int, deliver: Callable[[tuple], None],
             exc: Optional[BaseException]) -> None:
    """Stop a run at *position*: SKIPPED (cancelled) or FAILED (*exc*), the rest SKIPPED."""
    spec = run[position]
    if exc is None:
        deliver(Skipped(spec.node_id))
    else:
        deliver(Failed(spec.node_id, _unsendable(spec, exc)))
    for rest in run[position + 1:]:
        deliver(Skipped(rest.node_id))


# -- the executor -------------------------------------------------------------------
def local_cluster() -> SpecCluster:
    """The kernel's own cluster (what ``executor="dask"`` uses), started if needed.

    A ``distributed.SpecCluster`` like ``LocalCluster``: the scheduler in this
    process, worker processes on 127.0.0.1, TLS with credentials of its own
    (see :mod:`covalent_nb.dispatch.executors.dask_cluster`).
    """
    return dask_connection.local_connection().cluster


def _in_memory(security: Security) -> bool:
    """True when *security* holds key material itself (``Security.temporary()``), not file paths."""
    return any(isinstance(getattr(security, field, None), str) and "\n" in getattr(security, field)
               for field in Security.__slots__)


class DaskExecutor(Executor):
    """Run electrons as tasks on a Dask distributed cluster.

    Args:
        address: the scheduler's address, e.g. ``"tcp://127.0.0.1:8786"``.
            Without it (and without *client*), the ``dask_address`` setting is
            used, and when that is None too, the kernel's own cluster
            (worker processes on this machine, TLS with credentials made for
            it), started on first use and closed at exit.
        client: an existing ``distributed.Client`` to submit through; it
            stays the caller's and is never closed here.
        scheduler_address: Covalent's name for *address*.
        security: a ``distributed.security.Security`` the client presents to
            the scheduler at *address* (TLS certificates and keys).  Without
            it, Dask's own settings apply (``distributed.comm.tls.*`` in the
            Dask configuration; plain TCP unless they say otherwise).  It
            travels with the lattice (redispatch snapshots, the store) only
            when it names files: in-memory keys are never written anywhere,
            so a redispatch in another process uses Dask's settings.
        blob_storage: where the workers write outputs larger than
            ``store_inline_max`` (a path they share, or an fsspec URL such as
            ``"s3://bucket/prefix"``; see :mod:`.remote`).  Default: the
            ``dask_blob_storage`` setting; for the kernel's own cluster, the
            store's blob directory.  With none, large outputs stay on the
            cluster only, and their records say they are not durable.

    Example::

        @ct.electron(executor=ct.executor.DaskExecutor(address="tcp://127.0.0.1:8786"))
        def square(x):
            return x * x
    """

    name = "dask"
    # Chains come as one run; each link stays its own Dask task (see the module docstring).
    fuses_chains = True
    # A reference (or a packed list/tuple/dict of them) is read on the worker, never in the kernel.
    resolves_references = True

    def __init__(self, address: Optional[str] = None, *, client: Optional[Client] = None,
                 scheduler_address: Optional[str] = None, security: Optional[Security] = None,
                 blob_storage: Optional[str] = None) -> None:
        if address and scheduler_address and address != scheduler_address:
            raise ValueError("give address or scheduler_address (Covalent's name), not both")
        address = address or scheduler_address or None
        if address is not None and client is not None:
            raise ValueError("give address or client, not both")
        if client is not None and not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, not {type(client).__name__}")
        if security is not None and not isinstance(security, Security):
            raise TypeError(f"security must be a distributed.security.Security, not {type(security).__name__}")
        if security is not None and client is not None:
            raise ValueError("give security with an address; a client brings its own")
        self.address = address
        self.client_given = client
        self.security = security
        self.blob_storage = blob_storage

        # Kept now: a pickled executor points where its client pointed, even once it is closed.
        self._client_address = getattr(client.scheduler, "address", None) if client is not None else None

    # The executor travels inside pickled lattices (redispatch snapshots): keep
    # only where it points, never the live client.
    def __reduce__(self):
        security = self.security if self.security is not None and not _in_memory(self.security) else None
        return (partial(DaskExecutor, security=security, blob_storage=self.blob_storage),
                (self.address or self._client_address,))

    def __repr__(self) -> str:
        if self.client_given is not None:
            return f"<DaskExecutor client {self.client_given.id} ({self.client_given.status})>"
        return f"<DaskExecutor {self.address or 'dask_address setting or the kernel LocalCluster'}>"

    # -- connection -------------------------------------------------------------
    def _kind(self) -> tuple:
        if self.client_given is not None:
            return ("client", self.client_given.id)
        address = self.address or get_config("dask_address")
        return ("address", address) if address else ("local",)

    def connection(self) -> Connection:
        """The connection this executor submits through (connecting on first use)."""
        kind = self._kind()
        if kind[0] == "client":
            client = self.client_given
            if client.status in ("closing", "closed"):
                raise RuntimeError(f"the distributed.Client given to this DaskExecutor ({client.id}) is "
                                   "closed; give it an open client, or an address")
            return dask_connection.connect(kind, lambda: Connection(client, owns_client=False))
        if kind[0] == "address":
            return dask_connection.by_address(kind[1], self.security)
        return dask_connection.local_connection()

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
        """Submit every node of *runs* as its own Dask task, links of a run chained by futures."""
        closed = dask_connection.closed_dispatches()
        if closed:
            runs = self._refuse_closed(runs, closed, deliver)
            if not runs:
                return
        try:
            connection = self.connection()
        except Exception as exc:
            text = f"covalent_nb: could not reach Dask ({self!r}):\n{_format_traceback(exc)}"
            for run in runs:
                for spec in run:
                    deliver(Failed(spec.node_id, text))
            return
        if not runs:
            return
        # Wave k holds the k-th link of every run: one client.map per wave (one
        # message to the scheduler for a whole fan-out), and a link's
        # predecessor already has its future when the link is packed.
        alive = list(runs)
        for position in range(max(len(run) for run in runs)):
            wave: list = []
            still: list = []
            for run in alive:
                if position >= len(run):
                    continue
                spec = run[position]
                state = connection.state(spec.dispatch_id, deliver)
                if cancel.is_cancelled(spec.node_id):
                    _give_up(run, position, deliver, None)
                    continue
                try:
                    payload, upstream, run_parent = _pack(spec, state.futures, connection.client)
                except Exception as exc:
                    _give_up(run, position, deliver, exc)
                    continue
                wave.append((spec, state, payload, upstream, run_parent))
                still.append(run)
            alive = still
            if wave and not self._submit_wave(connection, wave, deliver):
                for run in alive:  # the links after the failed ones never run
                    for rest in run[position + 1:]:
                        deliver(Skipped(rest.node_id))
                return

    def blob_storage_for_workers(self) -> tuple:
        """``(storage, why_not)``: where workers write large outputs (a path or fsspec URL), or why nowhere."""
        given = self.blob_storage or get_config("dask_blob_storage")
        if given:
            return str(given), None
        if self._kind()[0] != "local":
            return None, ("no blob storage the workers can reach was named (give "
                          "DaskExecutor(blob_storage='s3://...' or a shared path), or set dask_blob_storage)")
        if get_config("store") != "sqlite":
            return None, f"the store is {get_config('store')!r}, which keeps nothing on disk"
        return os.path.join(get_config("home"), "blobs"), None

    def _submit_wave(self, connection: Connection, wave: list, deliver: Callable[[tuple], None]) -> bool:
        count = len(wave)
        storage, why_not = self.blob_storage_for_workers()
        inline_max = int(get_config("store_inline_max"))
        keys = [_task_key(w[0]) for w in wave]
        try:
            futures = connection.client.map(
                _run_on_worker, [connection.topic] * count, [w[0].dispatch_id for w in wave],
                [w[0].node_id for w in wave], [w[2] for w in wave], [w[3] for w in wave],
                [storage] * count, [why_not] * count, [inline_max] * count, key=keys, pure=False)
            # what the kernel gathers: the small summary, never a large value
            summaries = connection.client.map(_summary, futures, key=[f"{k}-summary" for k in keys], pure=False)
        except Exception as exc:
            for spec, *_ in wave:
                deliver(Failed(spec.node_id, _unsendable(spec, exc)))
            return False
        for (spec, state, _, _, run_parent), future, summary in zip(wave, futures, summaries):
            node_id = spec.node_id
            if run_parent is not None:
                state.run_parent[node_id] = run_parent
            state.futures[node_id] = future
            state.summaries[node_id] = summary
            summary.add_done_callback(partial(connection.finished, state, node_id))
        return True

    def cancel(self, dispatch_id: str, node_ids: Optional[Iterable[int]] = None) -> None:
        """Cancel the futures of nodes that have not started; they end SKIPPED.

        A node already running on a worker finishes (as on the local executor):
        Dask cannot interrupt a running Python function anyway.  Dask may have
        handed a waiting task to a worker already; if that worker frees a
        thread before the cancel reaches it, the task starts, its result is
        dropped, and the node stays CANCELLED.
        """
        wanted = None if node_ids is None else set(node_ids)
        for connection in dask_connection.connections():
            state = connection.lookup(dispatch_id)
            if state is None:
                continue
            targets = [(node, future) for node, future in list(state.futures.items())
                       if (wanted is None or node in wanted) and node not in state.started
                       and future.status == "pending"]
            if targets:
                state.cancelled.update(node for node, _ in targets)
                summaries = [state.summaries[node] for node, _ in targets if node in state.summaries]
                connection.client.cancel([future for _, future in targets] + summaries)

    def dispatch_ended(self, dispatch_id: str) -> None:
        """Forget the dispatch's futures so Dask can release their data."""
        dask_connection.forget_everywhere(dispatch_id)

    @staticmethod
    def _refuse_closed(runs: list, closed: dict, deliver: Callable[[tuple], None]) -> list:
        """Fail at once the runs of dispatches whose connection was closed under them; the other runs."""
        kept = []
        for run in runs:
            why = closed.get(run[0].dispatch_id)
            if why is None:
                kept.append(run)
                continue
            for spec in run:
                deliver(Failed(spec.node_id, f"covalent_nb: {why} while this dispatch ran; "
                                             "its remaining Dask nodes do not run"))
        return kept

    def shutdown(self) -> None:
        """Close the connection this executor uses; a client passed in stays open.

        Dispatches running through it end within seconds: every node whose
        outcome has not arrived fails, saying the executor was shut down, and
        the nodes of those dispatches not yet submitted fail when they would
        be.  A later dispatch connects again.
        """
        dask_connection.close(self._kind(), f"{self!r} was shut down")
