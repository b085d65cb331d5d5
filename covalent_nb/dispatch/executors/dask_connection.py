"""The kernel's connections to Dask schedulers, and how outcomes come back.

A :class:`Connection` is one ``distributed.Client`` plus what covalent_nb
needs around it:

``topic``
    a private event topic: workers log ``[dispatch_id, node_id, start_us]`` on
    it when a task starts, and the client's handler delivers ``Started``
    (kernels sharing a scheduler never see each other's starts);
``dispatches``
    dispatch id -> :class:`DispatchState` (futures, started nodes, run
    order), from a dispatch's first Dask task until it ends;
a collector thread
    done callbacks only queue finished futures (Dask runs every callback on
    one thread, which must never block); the collector gathers what has
    finished in one round trip per burst and delivers ``Done`` / ``Failed``
    / ``Skipped``.

Connections are shared: one per scheduler address, one per client a user
passed in, and one kernel-wide cluster (:mod:`.dask_cluster`, started on first
use from the ``dask_*`` settings, closed at exit).

Closing a connection (``DaskExecutor.shutdown()``, ``ct.shutdown()``, exit)
ends what still runs through it: every node whose outcome has not arrived is
delivered ``Failed`` with the reason, so its dispatch ends FAILED at once
instead of waiting for outcomes that the closed client can no longer receive.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import traceback
import uuid
from typing import Any, Callable, Optional

from distributed import Client, SpecCluster
from distributed.scheduler import KilledWorker
from distributed.security import Security

from ...config import get_config
from ..messages import Done, Failed, Skipped, Started
from ..runtime import RUNTIME
from .dask_cluster import start_cluster
from .remote import RemoteValue, removal_lock

log = logging.getLogger(__name__)

__all__ = ["Connection", "DispatchState", "connect", "by_address", "local_connection",
           "close_local_cluster", "close", "connections", "closed_dispatches", "forget_everywhere"]


class DispatchState:
    """What a connection keeps for one dispatch while it runs.

    ``run_parent`` maps a node submitted in the same run as its predecessor
    (a chain the dispatcher handed over at once) to that predecessor: its
    outcome is delivered only after the predecessor's, and it is SKIPPED when
    the predecessor did not complete, as the executor protocol says.

    Owned by: no single thread, but each field has one writing thread:
    ``futures``, ``summaries``, ``run_parent`` and ``cancelled`` the dispatch's
    dispatcher thread (submit, cancel); ``started`` the client's event-loop
    thread (:meth:`Connection._on_started`); ``ended``, ``deferred`` and
    ``remote`` the connection's collector thread.  There is no lock: each write is one dict or
    set operation, atomic under the GIL.
    Other threads: outcomes leave only as messages through ``deliver``.
    """

    __slots__ = ("dispatch_id", "deliver", "futures", "summaries", "started", "cancelled", "run_parent",
                 "ended", "deferred", "remote")

    def __init__(self, dispatch_id: str, deliver: Callable[[tuple], None]) -> None:
        self.dispatch_id = dispatch_id
        self.deliver = deliver
        self.futures: dict = {}      # node id -> distributed.Future of the node's task (its value stays there)
        self.summaries: dict = {}    # node id -> Future of its summary (what the kernel gathers)
        self.remote: dict = {}       # node id -> RemoteValue delivered for it (collector thread)
        self.started: set = set()    # nodes a worker announced
        self.cancelled: set = set()  # nodes whose futures covalent_nb cancelled
        self.run_parent: dict = {}   # node -> its predecessor in the same run
        self.ended: dict = {}        # node -> type of the message delivered (Done, Failed, Skipped)
        self.deferred: dict = {}     # predecessor -> [(node, future, outcome)] waiting for it


def _format(exc: BaseException, tb: Any = None) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb if tb is not None else exc.__traceback__))


class Connection:
    """A ``distributed.Client`` with this kernel's start events and result collector.

    Owned by: the collector thread (``covalent_nb-dask-collector-<address>``)
    alone drains ``_done`` and settles outcomes.  ``dispatches`` is shared:
    every dispatcher thread submitting through this connection adds its own
    entry (:meth:`state`) and removes it at its end (:meth:`forget`), and the
    client's event-loop thread looks entries up (:meth:`_on_started`); all of
    them go through :meth:`lookup`, :meth:`state` and :meth:`forget`, under
    ``_dispatches_lock``.
    Other threads: Dask's callback thread only queues finished futures
    (:meth:`finished`); outcomes reach dispatchers as messages through each
    :class:`DispatchState`'s ``deliver``.  :meth:`close` (any thread) settles
    the outcomes that will never arrive, holding ``_settle_lock`` as the
    collector does for each batch, so a node gets exactly one outcome.
    """

    def __init__(self, client: Client, owns_client: bool, cluster: Optional[SpecCluster] = None,
                 security: Optional[Security] = None) -> None:
        self.client = client
        self.owns_client = owns_client
        self.cluster = cluster
        #: The credentials of the kernel's own cluster (None for a cluster reached by address).
        self.security = security
        self._settle_lock = threading.Lock()
        self.address: str = client.scheduler.address
        self.topic = f"covalent_nb-started-{uuid.uuid4().hex}"
        self.dispatches: dict = {}  # dispatch id -> DispatchState, under _dispatches_lock
        self._dispatches_lock = threading.Lock()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        # The subscription travels down the same ordered stream as every later
        # submit, so the scheduler knows the subscriber before a task can start.
        client.subscribe_topic(self.topic, self._on_started)
        self._collector = threading.Thread(target=self._collect, daemon=True,
                                           name=f"covalent_nb-dask-collector-{self.address}")
        self._collector.start()

    def usable(self) -> bool:
        """False once the client is closed (a client passed in can be closed by its owner)."""
        return self.client.status not in ("closing", "closed")

    def state(self, dispatch_id: str, deliver: Callable[[tuple], None]) -> DispatchState:
        """The dispatch's state, created on its first Dask task."""
        with self._dispatches_lock:
            state = self.dispatches.get(dispatch_id)
            if state is None:
                state = self.dispatches[dispatch_id] = DispatchState(dispatch_id, deliver)
        return state

    def lookup(self, dispatch_id: str) -> Optional[DispatchState]:
        """The dispatch's state, or None (it has no Dask task here, or it ended)."""
        with self._dispatches_lock:
            return self.dispatches.get(dispatch_id)

    def dispatch_ids(self) -> list:
        """The dispatches with Dask tasks here now."""
        with self._dispatches_lock:
            return list(self.dispatches)

    def forget(self, dispatch_id: str) -> None:
        """Drop the dispatch's state (its futures, so Dask can release their data).

        A large output that is durable is released too (it is read from blob
        storage from now on); one that is not stays on the cluster for as long
        as the kernel holds its :class:`~.remote.RemoteValue`.
        """
        with self._dispatches_lock:
            state = self.dispatches.pop(dispatch_id, None)
        if state is None:
            return
        durable = [value for value in state.remote.values() if value.durable]
        if not durable:
            return
        # Before the futures go: a file removed by a delete after this dispatch's worker wrote it
        # (another dispatch named the same bytes) is written again from the worker (see
        # remote.removal_lock); the dispatch's records are committed by now, so they keep it from here.
        with removal_lock():
            for value in durable:
                try:
                    if not value.ensure_stored():
                        log.warning("covalent_nb: the blob %s of Dask task %s is missing and could not "
                                    "be written again", value.location, value.key)
                except Exception as exc:  # noqa: BLE001 - the cluster is gone: say so, never fail the end
                    log.warning("covalent_nb: the blob %s of Dask task %s is missing and could not be "
                                "written again (%s: %s)", value.location, value.key, type(exc).__name__, exc)
        for value in durable:
            value.release()

    # -- the client's event loop ---------------------------------------------------
    def _on_started(self, event: tuple) -> None:
        dispatch_id, node_id, start = event[1]
        state = self.lookup(dispatch_id)
        if state is not None:
            state.started.add(node_id)
            state.deliver(Started(node_id, start))

    # -- Dask's callback thread: only queue ------------------------------------------------
    def finished(self, state: DispatchState, node_id: int, future: Any) -> None:
        """Done callback of a node's future."""
        self._done.put((state, node_id, future))

    # -- the collector thread --------------------------------------------------------------
    def _collect(self) -> None:
        get, empty = self._done.get, self._done.empty
        while True:
            batch = [get()]
            while not empty():
                batch.append(get())
            stop = any(item is None for item in batch)
            batch = [item for item in batch if item is not None]
            with self._settle_lock:
                try:
                    self._settle(batch)
                except BaseException:  # never leave a node without an outcome
                    text = "covalent_nb dask executor error:\n" + traceback.format_exc()
                    for state, node_id, _ in batch:
                        if node_id not in state.ended:
                            state.ended[node_id] = Failed
                            state.deliver(Failed(node_id, text))
            if stop:
                return
            del batch  # hold no future while waiting: Dask frees data only when none is left

    def _settle(self, batch: list) -> None:
        finished = [future for _, _, future in batch if future.status == "finished"]
        outcomes: dict = {}
        if finished:
            try:  # one round trip for the whole burst
                values = self.client.gather(finished)
            except Exception:  # one bad apple: gather one by one to find it
                values = [self._gather_one(future) for future in finished]
            outcomes = {future.key: value for future, value in zip(finished, values)}
        # a node settled by close() already has its outcome
        work = [(state, node_id, future, outcomes.get(future.key)) for state, node_id, future in batch
                if node_id not in state.ended]
        while work:
            released: list = []
            for state, node_id, future, outcome in work:
                parent = state.run_parent.get(node_id)
                if parent is not None and parent not in state.ended:
                    state.deferred.setdefault(parent, []).append((state, node_id, future, outcome))
                    continue
                if parent is not None and state.ended[parent] is not Done:
                    message: tuple = Skipped(node_id)  # an earlier task of its run did not complete
                elif outcome is not None:
                    message = self._outcome_message(node_id, outcome)
                    value = outcome[1]
                    if type(value) is RemoteValue:  # stays on the cluster while the kernel holds it
                        value.hold(state.futures.get(node_id))
                        value.cluster = self.address
                        state.remote[node_id] = value
                else:
                    message = self._failure(state, node_id, future)
                state.ended[node_id] = type(message)
                state.deliver(message)
                released.extend(state.deferred.pop(node_id, ()))
            work = released

    def _gather_one(self, future: Any) -> tuple:
        try:
            return self.client.gather(future)
        except Exception as exc:
            return (False, "covalent_nb: the node ran on Dask but its result could not be brought "
                           f"to the kernel:\n{_format(exc)}", None, None, "", "")

    @staticmethod
    def _outcome_message(node_id: int, outcome: tuple) -> tuple:
        ok, value, start, end, out, err = outcome
        if ok is None:  # the worker did not run it: an input of its run had failed
            return Skipped(node_id)
        return Done(node_id, value, start, end, out, err) if ok else Failed(node_id, value, start, end, out, err)

    def _failure(self, state: DispatchState, node_id: int, future: Any) -> tuple:
        """The message for a future that Dask itself failed, cancelled or lost."""
        status = future.status
        if status == "cancelled" and node_id in state.cancelled:
            return Skipped(node_id)
        if status == "error":
            exc = future.exception()
            if isinstance(exc, KilledWorker):
                when = ("while running it" if node_id in state.started else
                        "before it started (the node was assigned to it)")
                worker = getattr(getattr(exc, "last_worker", None), "address", "")
                text = f"covalent_nb: the Dask worker {worker} died {when}. {type(exc).__name__}: {exc}"
            else:
                text = "covalent_nb: Dask failed the task:\n" + _format(exc, future.traceback())
        elif not self.usable():
            text = (f"covalent_nb: the Dask client was closed before the task's outcome arrived "
                    f"(scheduler {self.address})")
        else:
            # e.g. the client lost its scheduler: Dask cancels every future, with a reason
            why = getattr(getattr(future, "_state", None), "exception", None)
            text = (f"covalent_nb: Dask reports the task {status} without covalent_nb asking "
                    f"(scheduler {self.address}){f': {why}' if why else ''}")
        return Failed(node_id, text)

    def close(self, why: str = "the Dask connection was closed") -> None:
        """End what runs here, stop the collector; close the client and cluster if this connection made them.

        Every node submitted through this connection whose outcome has not
        been delivered is delivered ``Failed`` now, saying *why* (or
        ``Skipped`` if covalent_nb had cancelled it), so no dispatch waits for
        an outcome that will never come.
        """
        self._done.put(None)
        # The collector settles its current batch first (real outcomes win);
        # a collector stuck in a gather does not hold the close up for long.
        locked = self._settle_lock.acquire(timeout=5)
        try:
            self._settle_outstanding(why)
        finally:
            if locked:
                self._settle_lock.release()
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


    def _settle_outstanding(self, why: str) -> None:
        with self._dispatches_lock:
            states = list(self.dispatches.values())
        for state in states:
            for node_id in list(state.futures):
                if node_id in state.ended:
                    continue
                if node_id in state.cancelled:
                    message: tuple = Skipped(node_id)
                else:
                    where = "running" if node_id in state.started else "waiting to run"
                    message = Failed(node_id, f"covalent_nb: {why} while the node was {where} "
                                              f"(scheduler {self.address}); its outcome will never arrive")
                state.ended[node_id] = type(message)
                state.deliver(message)


# -- the registry of connections (kept in the runtime) -------------------------------------
class Connections:
    """The open Dask connections of this kernel, by kind (in ``RUNTIME``, closed by its shutdown).

    Keys: ``("local",)`` for the kernel's own cluster, ``("address", address)``,
    ``("client", client id)``.  Any thread may ask; one lock makes sure two
    dispatches starting at once start one cluster.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_kind: dict = {}
        #: dispatch id -> why: dispatches that had tasks on a connection when it was closed;
        #: their nodes not yet submitted fail instead of connecting again (until the dispatch ends)
        self.closed_under: dict = {}
        atexit.register(self.close)  # exiting: close what is still open

    def all(self) -> list:
        return list(self._by_kind.values())

    def connect(self, kind: tuple, make: Callable[[], Connection]) -> Connection:
        connection = self._by_kind.get(kind)
        if connection is not None and connection.usable():
            return connection
        with self._lock:
            connection = self._by_kind.get(kind)
            if connection is not None and not connection.usable():
                connection.close("the Dask client was closed")
                connection = None
            if connection is None:
                connection = self._by_kind[kind] = make()
        return connection

    def close_one(self, kind: tuple, why: str) -> None:
        with self._lock:
            connection = self._by_kind.pop(kind, None)
            if connection is not None:
                self.closed_under.update(dict.fromkeys(connection.dispatch_ids(), why))
        if connection is not None:
            connection.close(why)

    def close(self) -> None:
        """Close every connection (and the clusters this kernel started)."""
        with self._lock:
            every = list(self._by_kind.values())
            self._by_kind.clear()
        for connection in every:
            connection.close("covalent_nb shut down (ct.shutdown() or the end of the process)")


def _registry() -> Connections:
    return RUNTIME.resource("dask_connections", Connections)


def connections() -> list:
    """Every open connection."""
    return _registry().all()


def connect(kind: tuple, make: Callable[[], Connection]) -> Connection:
    """The connection registered as *kind*, made with *make* if there is none (or it was closed)."""
    return _registry().connect(kind, make)


def by_address(address: str, security: Optional[Security] = None) -> Connection:
    """A connection to the scheduler at *address* (reusing any that already reaches it).

    *security* (a ``distributed.security.Security``) is what the client
    presents; None means Dask's own settings (``distributed.comm.tls.*`` in
    the Dask configuration), which is plain TCP unless they say otherwise.
    """
    for connection in connections():
        if connection.address == address and connection.usable():
            return connection
    return connect(("address", address),
                   lambda: Connection(Client(address, security=security, set_as_default=False),
                                      owns_client=True))


def _dashboard_address() -> Optional[str]:
    setting = get_config("dask_dashboard")
    if setting is True:
        return "127.0.0.1:8787"
    return setting or None


def _start_local_cluster() -> Connection:
    cluster, security = start_cluster(get_config("dask_workers"), get_config("dask_threads_per_worker"),
                                      _dashboard_address(), get_config("dask_allowed_failures"))
    try:
        client = Client(cluster, security=security, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return Connection(client, owns_client=True, cluster=cluster, security=security)


def local_connection() -> Connection:
    """The connection to the kernel's own cluster (:mod:`.dask_cluster`), started on first use."""
    return connect(("local",), _start_local_cluster)


def closed_dispatches() -> dict:
    """Dispatch id -> why, for running dispatches whose connection was closed under them."""
    registry = RUNTIME.peek("dask_connections")
    return registry.closed_under if registry is not None else {}


def forget_everywhere(dispatch_id: str) -> None:
    """The dispatch has ended: drop what every connection (and the registry) keeps for it."""
    registry = RUNTIME.peek("dask_connections")
    if registry is not None:
        registry.closed_under.pop(dispatch_id, None)
        for connection in registry.all():
            connection.forget(dispatch_id)


def close(kind: tuple, why: str = "the Dask connection was closed") -> None:
    """Close the connection registered as *kind*, if any (its unfinished nodes fail, saying *why*)."""
    _registry().close_one(kind, why)


def close_local_cluster() -> None:
    """Close the kernel's shared cluster (the next Dask task starts a new one)."""
    close(("local",), "the kernel's Dask cluster was closed (close_local_cluster())")


def close_all() -> None:
    """Close every connection."""
    registry = RUNTIME.peek("dask_connections")
    if registry is not None:
        registry.close()
