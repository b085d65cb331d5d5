"""The dispatcher: one thread per dispatch that owns all of its state.

State of a running dispatch (plain lists and a bytearray, indexed by node id):

``state``
    what the dispatcher knows of each node: WAITING (parents unfinished),
    SUBMITTED (handed to an executor, not started), RUNNING, DONE (completed,
    reused, or a parameter), FAILED, CANCELLED, BLOCKED (an ancestor failed: it
    will never run).
``waiting``
    per node, how many in-edges still come from unfinished nodes.  A node is
    ready when this reaches 0.
``pending``
    how many nodes may still change; the dispatch ends when it reaches 0.
``queue``
    messages from executors (and from ``cancel``), the typed tuples of
    :mod:`covalent_nb.dispatch.messages`: the only way anything reaches the
    dispatcher.  It is drained in batches, so a burst of small
    tasks costs one wake-up, not one per task.

The loop, in the spirit of ``graphlib.TopologicalSorter``'s prepare /
get_ready / done: mark parameters and reused nodes done, launch every ready
node, then repeatedly take a batch of messages, update the records, publish
one batch of events and launch what became ready.

A redispatch that reruns its parent's graph unchanged, with every node
reusable from the same node of the parent (the commonest rerun: nothing
edited), skips the node-by-node work: its columns are copied from the
parent's, its reasons are a :class:`~.reuse.SameNodeReasons`, and one
``nodes_reused`` event carries a :class:`~.node_records.ReusedBlock` instead
of a record per node (``_start_whole_reuse``).  Anything else (a parent loaded
from the store, a failed node, an output kept on a Dask cluster) takes the
general path.

Executors never touch this state: they run functions and deliver messages.
To run a chain of small tasks without a thread hand-off per task, the
dispatcher may *plan* a chain (a node, its only child, that child's only
child, ...) as one run when every other parent of each link is already done
and the executor can fuse chains; the executor then runs the links back to
back and still reports each one.
"""

from __future__ import annotations

import logging
import queue
import traceback
from itertools import repeat
from typing import Any, Optional

from ..states import NodeKind, Status, now_us
from .events import Event
from .gcpause import collector_paused
from .executors import CancelFlag, resolve_executor
from ..serialization import IMMUTABLE, is_immutable
from .freeze import CopyOf, Output, freeze_output
from .executors.remote import RemoteTree, RemoteValue, is_remote
from .plan import plan_for
from .reuse import FunctionKeys, SameNodeReasons, decide_reuse, node_keys
from .node_records import DispatchRecord, NodeRecord, PlanRecord, ReusedBlock
from .services import DispatchServices
from .threads import DispatchThread
from .messages import Cancel, ChildEnded, Done, Failed, Skipped, Started
from .runner import FromRun, TaskSpec, argument, has_hooks
from ..workflow.tracing import packs_as_is

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

#: The types of an output kept outside the kernel (see executors.remote.is_remote).
_REMOTE_KINDS = frozenset({RemoteValue, RemoteTree})

WAITING, SUBMITTED, RUNNING, DONE_, FAILED_, CANCELLED_, BLOCKED = range(7)

COMPLETED = Status.COMPLETED
_new = tuple.__new__  # Event(...) without the namedtuple's Python-level __new__: per node, it counts


class Dispatcher:
    """Runs one dispatch on its own thread (see the module docstring).

    Owned by: its dispatcher thread (``covalent_nb-dispatch-<id>``).  From
    :meth:`start` on, that thread is the only writer of this object's state and
    of the result's status, error, times and node table; ``__init__`` runs on the
    caller's thread (it resolves executors, so a bad one fails the call).
    Other threads: they send typed messages to :attr:`queue` (executors through
    ``deliver``, a sublattice's dispatcher ``ChildEnded``); :meth:`cancel`, from
    any thread, sets :attr:`cancel_flag` and queues ``Cancel``.  Event
    subscribers and the result's done callbacks run on this thread.
    """

    def __init__(self, result: Any, lattice_metadata: dict, function_keys: FunctionKeys,
                 services: DispatchServices, parent: Optional[Any] = None, salt: str = "",
                 cancel_parent: Optional[tuple] = None) -> None:
        self.result = result
        self.lattice_metadata = lattice_metadata or {}
        self.function_keys = function_keys
        self.services = services
        self.parent = parent
        self.salt = salt or result.dispatch_id
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.deliver = self.queue.put
        # a sublattice's dispatch also stops when its parent's node is cancelled
        self.cancel_flag = CancelFlag(*cancel_parent) if cancel_parent else CancelFlag()
        self.node_executor: list = []
        self._hooks: dict = {}
        self.private: set = set()
        table = result._table
        self.did = result.dispatch_id
        self.raw, self.frozen = table.output.raw, table.frozen  # the dispatcher thread's to write
        self.names, self.functions = result.graph.names, result.graph.functions
        self.executors: set = set()
        # True once an output kept outside the kernel (a Dask RemoteValue) is among the outputs:
        # only then are the lattice's result nodes looked at for packing references (_packs_references)
        self.remote_seen = False
        self._packers: dict = {}
        self.thread = DispatchThread(self._main, f"covalent_nb-dispatch-{result.dispatch_id[:8]}")
        self._resolve_executors()

    # -- public -------------------------------------------------------------
    def start(self) -> None:
        self.thread.start()

    def cancel(self, node_ids: Optional[list] = None) -> None:
        """Ask the dispatcher to cancel the dispatch (or only *node_ids*).

        The flag that executors read is set here, at once, so a task queued
        behind a running one cannot slip through before the dispatcher thread
        has handled the request; the records change on the dispatcher thread.
        """
        if node_ids is None:
            self.cancel_flag.all = True
        else:
            self.cancel_flag.nodes = self.cancel_flag.nodes | frozenset(node_ids)
        self.queue.put(Cancel(None if node_ids is None else list(node_ids)))

    # -- setup --------------------------------------------------------------
    def _effective(self, metadata: Optional[dict]) -> dict:
        """An electron's metadata with the lattice's defaults filled in."""
        lattice = self.lattice_metadata
        if metadata is None:
            return {"executor": lattice.get("workflow_executor"), "hooks": None}
        executor = metadata.get("executor")
        if executor is None:
            executor = lattice.get("executor")
        hooks = metadata["hooks"]
        lattice_hooks = lattice.get("hooks")
        if lattice_hooks is not None and not has_hooks(metadata) and has_hooks(lattice):
            hooks = lattice_hooks
        return {"executor": executor, "hooks": hooks if has_hooks({"hooks": hooks}) else None}

    def _resolve_executors(self) -> None:
        """Resolve every node's executor now, so a bad one fails the call, not the run.

        Once per group of nodes running the same function with the same
        metadata (``TransportGraph.node_groups``); per node, only C-speed maps.
        """
        graph = self.result.graph
        metadata, kinds = graph.metadata, graph.kinds
        groups = graph.node_groups()
        executor_of: list = []
        hooks_of: dict = {}
        for group, node in enumerate(groups.firsts):
            if kinds[node] == NodeKind.PARAMETER:  # never launched
                executor_of.append(None)
                continue
            effective = self._effective(metadata[node])
            executor = resolve_executor(effective["executor"])
            executor_of.append(executor)
            self.executors.add(executor)
            if effective["hooks"] is not None:
                hooks_of[group] = effective["hooks"]
        self.node_executor = list(map(executor_of.__getitem__, groups.of_node))
        if hooks_of:
            self._hooks = {node: hooks_of[group] for node, group in enumerate(groups.of_node)
                           if group in hooks_of and kinds[node] != NodeKind.PARAMETER}
        self.result.executor_names = sorted({e.name for e in self.executors})

    # -- the thread -----------------------------------------------------------
    def _main(self) -> None:
        result = self.result
        try:
            if self.parent is not None and getattr(self.parent, "will_run", True):
                self.parent.wait()  # a parent registered with disable_run=True never ends: no wait
            with collector_paused():  # building plan, keys and first launch: no garbage cycles
                self._prepare()
                if self.reuse is None:
                    self._start_whole_reuse()
                else:
                    self._start_run()
            if self.pending:
                self._loop()
        except BaseException:  # never leave a dispatch hanging
            result.error = "covalent_nb internal error in the dispatcher:\n" + traceback.format_exc()
            result.status = Status.FAILED
        finally:
            self._finish()

    def _prepare(self) -> None:
        """Compute node keys and decide reuse (before anything runs)."""
        result, parent = self.result, self.parent
        graph = result.graph
        plan = self.plan = plan_for(graph)
        fkeys = self.function_keys
        same_graph = (parent is not None and parent.graph.names is graph.names
                      and getattr(parent, "_function_keys", None) == fkeys.by_marker
                      and not fkeys.problems and not fkeys.opted_out)
        if same_graph:
            keys, unhashable = list(parent._table.key), dict(parent._unhashable)
        else:
            keys, unhashable = node_keys(graph, plan, fkeys, self.salt)
        result._table.key = keys
        result._unhashable = unhashable
        if same_graph and result.reuse_requested and not unhashable and self._parent_serves_all():
            self.reuse = None  # every node from the same node of the parent: see _start_whole_reuse
            return
        history = self._history_hits(keys) if getattr(result, "reuse_history", False) else None
        self.reuse = decide_reuse(graph, plan, keys, unhashable, fkeys.parts, result.replaced_nodes,
                                  result.replacements, parent, result.reuse_requested, history,
                                  self._last_parts if history is not None else None)

    def _parent_serves_all(self) -> bool:
        """True when every node can take the output of the same node of the parent, as it is held.

        The parent's graph is this dispatch's (the same lists), its function keys
        are this dispatch's and no node lacks a key (checked by the caller), so
        every node has its parent twin's key.  What is left to check: every
        node of the parent COMPLETED with a stored output, held in this kernel
        either as an immutable value or as the bytes it was frozen into (a
        parent loaded from the store, or with an output kept on a Dask cluster,
        takes the general path).
        """
        table = self.parent._table
        if table.unstorable or table.status.count(COMPLETED) != table.size:
            return False
        raw, frozen = table.output.raw, table.frozen
        immutable = IMMUTABLE
        kinds_held = set(map(type, raw))
        if kinds_held <= immutable:
            return True
        unloaded = table.output.unloaded()
        if kinds_held - immutable == {type(unloaded)}:  # only outputs held as their frozen bytes?
            return raw.count(unloaded) == sum(1 for n in frozen if raw[n] is unloaded)
        kinds = self.result.graph.kinds
        others = [n for n, value in enumerate(raw) if type(value) not in immutable]
        return all(n in frozen or kinds[n] == NodeKind.PARAMETER for n in others)

    def _start_whole_reuse(self) -> None:
        """Start a dispatch whose every node is reused from the same node of its parent.

        What :meth:`_start_run` and :func:`decide_reuse` would do node by node,
        done column by column, and published as one :class:`ReusedBlock`
        instead of a ``node_reused`` event per node: a full-reuse redispatch of
        a 10,000-task graph costs a few list copies, not 10,000 records.
        """
        result, parent = self.result, self.parent
        table, ptable = result._table, parent._table
        size, pid, did = table.size, parent.dispatch_id, self.did
        nodes = self.plan.tasks
        t0 = now_us()
        result.start_us = t0
        result.status = Status.RUNNING
        table.status[:] = [COMPLETED] * size
        table.start[:] = table.end[:] = [t0] * size
        self.raw[:] = ptable.output.raw  # parameters: the same graph values; frozen nodes: their bytes
        self.frozen.update(ptable.frozen)
        table.reused_from = dict(zip(nodes, zip(repeat(pid), nodes)))
        table.reason = SameNodeReasons(pid, nodes)
        subs = ptable.sublattice
        if subs:
            table.sublattice.update(subs)
        self.state = bytearray(bytes((DONE_,)) * size)
        self.waiting = [0] * size
        self.pending = 0
        self.private = set()
        frozen = self.frozen
        for node in frozen:
            table.output.defer(node)  # its own copy, unpickled from the bytes when read
        raw = self.raw
        outputs = tuple(None if node in frozen else raw[node] for node in nodes) if frozen else \
            tuple(map(raw.__getitem__, nodes))
        block = ReusedBlock(did, pid, t0, nodes, outputs, dict(frozen),
                            {node: sub.dispatch_id for node, sub in subs.items()})
        self.services.publish([Event("dispatch_started", did, None, "RUNNING", t0 / 1e6, self._plan_record()),
                               Event("nodes_reused", did, None, "COMPLETED", t0 / 1e6, block)])

    def _history_hits(self, keys: list) -> dict:
        """``{key: HistoryHit}`` for this dispatch's node keys found in the history (empty if none)."""
        source = self.services.history
        kinds = self.result.graph.kinds
        wanted = {key for key, kind in zip(keys, kinds) if key is not None and kind != NodeKind.PARAMETER}
        if source is None or not wanted:
            return {}
        try:
            return source.find(wanted)
        except Exception as exc:  # noqa: BLE001 - history is an optimisation: run everything instead
            log.warning("covalent_nb: the reuse history could not be read (%s: %s); every node runs",
                        type(exc).__name__, exc)
            return {}

    def _last_parts(self) -> Optional[tuple]:
        """``(dispatch id, function parts)`` of the newest earlier dispatch of this lattice in the
        history, or None (then a node recomputed under reuse from history cannot say what changed)."""
        source = self.services.history
        if source is None:
            return None
        try:
            return source.last_parts(getattr(self.result.lattice, "__name__", ""), self.did)
        except Exception as exc:  # noqa: BLE001 - only a reason's wording depends on it
            log.warning("covalent_nb: the reuse history could not be read (%s: %s)", type(exc).__name__, exc)
            return None

    def _reused_outputs(self, reused: dict) -> Any:
        """For each reused node in order, ``(node, ((dispatch id, node), value, bytes or None,
        sublattice or None))``, or ``(node, exception)`` when its output cannot be read."""
        parent = self.parent
        history = self.services.history
        if parent is not None:
            parent_table = parent._table
            pid = parent.dispatch_id
            parent_raw, parent_frozen = parent_table.output.raw, parent_table.frozen
        immutable = IMMUTABLE
        subs = parent_table.sublattice if parent is not None else None
        for node, source in reused.items():
            try:
                if type(source) is int:
                    value = parent_raw[source]
                    if type(value) in immutable and source not in parent_frozen:
                        data = None  # immutable: the very value, nothing to copy
                    else:  # what the node returned then, untouched by anyone since
                        value, data = parent_table.pristine(source)
                    yield node, ((pid, source), value, data, subs.get(source) if subs else None)
                else:
                    value, data, sub = history.output(source)
                    yield node, ((source.dispatch_id, source.node_id), value, data, sub)
            except Exception as exc:  # noqa: BLE001
                yield node, exc

    def _start_run(self) -> None:
        result = self.result
        graph = result.graph
        plan = self.plan
        table = result._table
        did = result.dispatch_id
        size = len(graph)
        status, start, end, output = table.status, table.start, table.end, table.output
        children = plan.children
        completed = Status.COMPLETED

        t0 = now_us()
        result.start_us = t0
        result.status = Status.RUNNING
        state = self.state = bytearray(size)
        values = graph.values
        frozen = table.frozen
        private = self.private = set()  # mutable inputs: each consumer gets its own copy
        raw = output.raw
        for p in plan.parameters:
            status[p] = completed
            start[p] = end[p] = t0
            value = raw[p] = values[p]
            if type(value) not in IMMUTABLE and not is_immutable(value):
                private.add(p)
            state[p] = DONE_
        reuse = self.reuse
        table.reason = reuse.reasons
        events = [Event("dispatch_started", did, None, "RUNNING", t0 / 1e6, self._plan_record())]
        if reuse.reused:
            t_reuse = now_us()
            t_seconds = t_reuse / 1e6
            reused_from = table.reused_from
            raw = output.raw
            remote_kinds = _REMOTE_KINDS
            for node, source in self._reused_outputs(reuse.reused):
                if type(source) is not tuple:  # a stored output that cannot be read (damaged file): rerun
                    table.reason[node] = f"recomputed: previous output could not be read ({source})"
                    continue
                origin, value, data, sub = source
                if type(value) in remote_kinds:  # reused by reference: its value stays where it is
                    value = value.share()  # its own reference: deleting the parent leaves it readable
                    data = None
                    self.private.add(node)
                    self.remote_seen = True
                status[node] = completed
                start[node] = end[node] = t_reuse
                raw[node] = value
                if data is not None:
                    frozen[node] = data
                reused_from[node] = origin
                state[node] = DONE_
                if sub is not None:
                    table.sublattice[node] = sub
                # The record as _node_record would build it, without its lookups (per node, it counts).
                record = _new(NodeRecord, (did, node, completed, t_reuse, t_reuse, None if data is not None else value,
                                           data, None, "", "", None, origin, None,
                                           sub.dispatch_id if sub is not None else None))
                events.append(_new(Event, ("node_reused", did, node, "COMPLETED", t_seconds, record)))

        waiting = self.waiting = list(plan.in_degree)
        for node in range(size):
            if state[node] == DONE_:
                for child in children[node]:
                    waiting[child] -= 1
        self.pending = state.count(WAITING)
        ready = [n for n in range(size) if state[n] == WAITING and waiting[n] == 0]
        self.services.publish(events)
        self._launch(ready)

    def _loop(self) -> None:
        result = self.result
        table = result._table
        did = result.dispatch_id
        status, start = table.status, table.start
        state = self.state
        running_status = Status.RUNNING
        complete = self._complete
        get, empty = self.queue.get, self.queue.empty
        while self.pending > 0:
            batch = [get()]
            while not empty():
                batch.append(get())
            events: list = []
            ready: list = []
            finished = {m[0] for m in batch if type(m) is Done} if len(batch) > 1 else ()
            for message in batch:
                kind = type(message)
                if kind is Done:
                    node, value, t_start, t_end, out, err = message
                    complete(node, value, t_start, t_end, out, err, events, ready)
                elif kind is Started:
                    node = message[0]
                    # a task that started and ended between two wake-ups was never seen running
                    if state[node] == SUBMITTED and node not in finished:
                        state[node] = RUNNING
                        status[node] = running_status
                        t = message[1] or now_us()
                        start[node] = t
                        # no record: nothing is settled yet (the start time comes with the end)
                        events.append(_new(Event, ("node_running", did, node, "RUNNING", t / 1e6, None)))
                elif kind is Failed:
                    self._fail(*message, events)
                elif kind is Skipped:
                    if state[message.node_id] in (SUBMITTED, RUNNING):
                        self._mark_cancelled(message.node_id, events)
                        # what was waiting on it will never start either
                        for below in self._not_started_below([message.node_id])[0]:
                            self._mark_cancelled(below, events)
                elif kind is ChildEnded:
                    self._child_ended(message.node_id, message.child, events, ready)
                elif kind is Cancel:
                    self._cancel(message.node_ids, events)
            self.services.publish(events)
            if ready:
                self._launch(ready)

    def _complete(self, node: int, value: Any, t_start: int, t_end: int, out: str, err: str,
                  events: list, ready: list) -> None:
        """Record a node's output and queue the children it made ready."""
        table = self.result._table
        state, waiting = self.state, self.waiting
        previous = state[node]
        data = unstorable = None
        if type(value) is Output:
            data = value.data
            if data is not None:
                self.frozen[node] = data
                table.output.defer(node)  # kept as its bytes; unpickled when someone reads it
                value = None
            else:
                if value.unfrozen is not None:
                    unstorable = table.unstorable[node] = f"its output could not be pickled ({value.unfrozen})"
                value = self.raw[node] = value.value
        else:
            self.raw[node] = value
            if type(value) is RemoteValue or type(value) is RemoteTree:  # kept outside: consumers get the reference
                self.private.add(node)
                self.remote_seen = True
        table.start[node] = t_start
        table.end[node] = t_end
        table.status[node] = COMPLETED
        if out:
            table.stdout[node] = out
        if err:
            table.stderr[node] = err
        state[node] = DONE_
        if previous <= RUNNING:
            self.pending -= 1
        did = self.did
        sub = table.sublattice.get(node)
        record = _new(NodeRecord, (did, node, COMPLETED, t_start, t_end, value, data, None, out or "",
                                   err or "", table.executor.get(node), None, unstorable,
                                   sub.dispatch_id if sub is not None else None))
        events.append(_new(Event, ("node_completed", did, node, "COMPLETED", t_end / 1e6, record)))
        for child in self.plan.children[node]:
            left = waiting[child] - 1
            waiting[child] = left
            if left == 0 and state[child] == WAITING:
                ready.append(child)

    # -- records -------------------------------------------------------------
    def _node_record(self, node: int) -> NodeRecord:
        """A node's record as it stands now (off the hot path: failures, reuse, the end)."""
        table = self.result._table
        data = self.frozen.get(node)
        sub = table.sublattice.get(node)
        return NodeRecord(self.did, node, table.status[node], table.start[node], table.end[node],
                          None if data is not None else self.raw[node], data, table.error.get(node),
                          table.stdout.get(node, ""), table.stderr.get(node, ""), table.executor.get(node),
                          table.reused_from.get(node), table.unstorable.get(node),
                          sub.dispatch_id if sub is not None else None)

    def _plan_record(self) -> PlanRecord:
        table = self.result._table
        return PlanRecord(self.result.start_us, tuple(table.key), dict(self.result._unhashable),
                          table.reason.copy())

    def _dispatch_record(self) -> DispatchRecord:
        """How the dispatch ended, with the records of the nodes that never got an event."""
        result = self.result
        table = result._table
        kinds, state = result.graph.kinds, getattr(self, "state", None)
        reused_from, start = table.reused_from, table.start
        parameter = NodeKind.PARAMETER
        if state is None:
            unreported = tuple(self._node_record(n) for n, kind in enumerate(kinds) if kind != parameter)
        else:  # (the bytearray is scanned in C; only the few nodes left waiting or blocked are looked at)
            left = [n for n in range(len(kinds)) if state[n] == WAITING or state[n] == BLOCKED] \
                if WAITING in state or BLOCKED in state else []
            unreported = tuple(self._node_record(n) for n in left if kinds[n] != parameter)
        if getattr(self, "reuse", True) is None:  # _start_whole_reuse: nothing ran
            ran = 0
        else:
            ran = sum(1 for kind, began in zip(kinds, start) if began is not None and kind != parameter) \
                - sum(1 for n in reused_from if start[n] is not None and kinds[n] != parameter)
        try:
            result_node = _postprocess_node(result.graph)
        except ValueError:
            result_node = None
        return DispatchRecord(self.did, result.status, result.error, result.start_us, result.end_us,
                              result_node, tuple(sorted(result.executor_names)), self._plan_record(),
                              unreported, len(reused_from), ran)

    # -- launching -----------------------------------------------------------
    def _spec(self, node: int, members: Optional[set]) -> TaskSpec:
        plan = self.plan
        output, frozen, private = self.raw, self.frozen, self.private
        sources = plan.arg_sources[node]
        kw_sources = plan.kwarg_sources[node]
        if frozen or private or members:  # values some consumer must not share (or FromRun)
            argument = self._argument
            args = [argument(s, members, output, frozen, private) for s in sources]
            kwargs = {k: argument(s, members, output, frozen, private) for k, s in kw_sources}
            shared = bool(members) or any(type(a) in _SHARED for a in args) or \
                any(type(v) in _SHARED for v in kwargs.values())
        else:
            shared = False
            args = [output[s] for s in sources]
            kwargs = {k: output[s] for k, s in kw_sources} if kw_sources else {}
        return TaskSpec(self.did, node, self.names[node], self.functions[node], args, kwargs,
                        self._hooks.get(node), sources, kw_sources, shared)

    @staticmethod
    def _argument(source: int, members: Optional[set], output: list, frozen: dict, private: set) -> Any:
        if members and source in members:
            return FromRun(source)
        kind = type(output[source])
        if kind is RemoteValue or kind is RemoteTree:  # a reference: Dask passes it on, run_task fetches it
            return output[source]
        data = frozen.get(source)
        if data is not None:
            return CopyOf(data)
        if source in private:
            return CopyOf(original=output[source])
        return output[source]

    def _launch(self, ready: list) -> None:
        """Hand every ready node to its executor, fusing chains where allowed."""
        state = self.state
        kinds = self.result.graph.kinds
        node_executor = self.node_executor
        executor_record = self.result._table.executor
        by_executor: dict = {}
        plan = self.plan
        children, waiting = plan.children, self.waiting
        for node in ready:
            if state[node] != WAITING:
                continue
            if kinds[node] == NodeKind.SUBLATTICE:
                self._start_sublattice(node)
                continue
            executor = node_executor[node]
            if self.remote_seen and kinds[node] in _PACKING_KINDS and self._packs_references(node):
                state[node] = SUBMITTED
                executor_record[node] = executor.name
                self._pack_references(node)
                continue
            state[node] = SUBMITTED
            executor_record[node] = executor.name
            run = [self._spec(node, None)]
            if executor.fuses_chains:
                members = None
                link = node
                while True:
                    kids = children[link]
                    if len(kids) != 1 and len(set(kids)) != 1:
                        break
                    child = kids[0]
                    if (state[child] != WAITING or node_executor[child] is not executor
                            or kinds[child] == NodeKind.SUBLATTICE):
                        break
                    if self.remote_seen and kinds[child] in _PACKING_KINDS and self._packs_references(child):
                        break  # packed from references when it is ready (_launch)
                    # every other parent done: its only unfinished in-edges come from this link (an
                    # earlier link feeds only its own child, or the chain would have stopped there)
                    if waiting[child] != len(kids):
                        break
                    if members is None:
                        members = {node}
                    members.add(child)
                    run.append(self._spec(child, members))
                    state[child] = SUBMITTED
                    executor_record[child] = executor.name
                    link = child
            by_executor.setdefault(executor, []).append(run)
        for executor, runs in by_executor.items():
            try:
                submit_many = getattr(executor, "submit_many", None)
                if submit_many is not None:
                    submit_many(runs, self.deliver, self.cancel_flag)
                else:
                    for run in runs:
                        executor.submit(run, self.deliver, self.cancel_flag)
            except Exception as exc:  # e.g. a Dask scheduler that cannot be reached
                text = (f"executor {executor.name!r} could not take the task: "
                        f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
                now = now_us()
                for run in runs:
                    for spec in run:
                        if state[spec.node_id] == SUBMITTED:
                            self.deliver(Failed(spec.node_id, text, now, now + 1))

    # -- the lattice's result, kept by reference -------------------------------------
    def _packs_references(self, node: int) -> bool:
        """True when *node* only packs its inputs and one of them is kept remote.

        Such a node (the ``:postprocess:`` node, or a list/tuple/dict node whose
        consumers are all such nodes or tasks of an executor that resolves
        references where it runs, Dask) is built here from the references: the
        lattice's return value never enters the kernel until someone reads it,
        and a Dask task given ``[a, b]`` reads ``a`` and ``b`` on its worker.
        """
        plan = self.plan
        raw = self.raw
        sources = plan.arg_sources[node]
        if not any(is_remote(raw[s]) for s in sources) and \
                not any(is_remote(raw[s]) for _, s in plan.kwarg_sources[node]):
            return False
        return self._packer(node)

    def _packer(self, node: int) -> bool:
        known = self._packers.get(node)
        if known is None:
            kinds = self.result.graph.kinds
            known = (kinds[node] in _PACKING_KINDS and node not in self._hooks
                     and packs_as_is(self.functions[node])
                     and all(self._packer(child) or self._resolves_references(node, child)
                             for child in self.plan.children[node]))
            self._packers[node] = known
        return known

    def _resolves_references(self, node: int, child: int) -> bool:
        """True when *child* takes collection *node*'s output as references and reads them where it runs."""
        kinds = self.result.graph.kinds
        return (kinds[node] != NodeKind.POSTPROCESS and kinds[child] != NodeKind.SUBLATTICE
                and getattr(self.node_executor[child], "resolves_references", False))

    def _pack_references(self, node: int) -> None:
        """Build *node*'s output from references (never fetching them); deliver it as Done."""
        plan = self.plan
        raw, frozen, private = self.raw, self.frozen, self.private

        def given(source: int) -> Any:
            value = raw[source]
            if type(value) is RemoteValue:
                return value
            if type(value) is RemoteTree:
                return value.value
            return argument(self._argument(source, None, raw, frozen, private))

        t_start = now_us()
        try:
            value = self.functions[node](*[given(s) for s in plan.arg_sources[node]],
                                         **{k: given(s) for k, s in plan.kwarg_sources[node]})
        except Exception:  # noqa: BLE001 - e.g. an output that cannot be read back
            self.deliver(Failed(node, traceback.format_exc(), t_start, now_us()))
            return
        self.deliver(Done(node, RemoteTree.of(value), t_start, max(now_us(), t_start + 1), "", ""))

    # -- outcomes ----------------------------------------------------------------
    def _fail(self, node: int, text: str, t_start: Optional[int], t_end: Optional[int],
              out: str, err: str, events: list) -> None:
        table = self.result._table
        state = self.state
        previous = state[node]
        now = now_us()
        table.status[node] = Status.FAILED
        table.error[node] = text
        table.start[node] = t_start or table.start[node] or now
        table.end[node] = max(t_end or now, table.start[node] + 1)
        if out:
            table.stdout[node] = out
        if err:
            table.stderr[node] = err
        state[node] = FAILED_
        if previous <= RUNNING:
            self.pending -= 1
        events.append(Event("node_failed", self.did, node, "FAILED", now / 1e6, self._node_record(node)))
        children = self.plan.children
        stack = list(children[node])
        reason = table.reason
        name = self.result.graph.names[node]
        while stack:
            child = stack.pop()
            if state[child] in (WAITING, SUBMITTED):
                state[child] = BLOCKED
                self.pending -= 1
                reason[child] = f"not run: upstream node {node} ({name}) failed"
                stack.extend(children[child])

    def _not_started_below(self, roots: list) -> tuple:
        """The nodes that will not start because *roots* are cancelled.

        Returns ``(waiting, submitted)``: the roots and descendants still
        WAITING (cancelled now) and those already handed to an executor but
        not started (the executor skips them).  A root already running
        finishes, as a running task cannot be interrupted, but nothing below
        it starts.
        """
        state, children = self.state, self.plan.children
        waiting, submitted, seen = [], [], set()
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if state[n] == WAITING:
                waiting.append(n)
            elif state[n] == SUBMITTED:
                submitted.append(n)
            elif n not in roots:
                continue  # ended, or running: what is below it was already settled or waits on it
            stack.extend(children[n])
        return waiting, submitted

    def _mark_cancelled(self, node: int, events: list) -> None:
        table = self.result._table
        previous = self.state[node]
        table.status[node] = Status.CANCELLED
        self.state[node] = CANCELLED_
        if previous <= RUNNING:
            self.pending -= 1
        events.append(Event("node_cancelled", self.did, node, "CANCELLED", now_us() / 1e6,
                            self._node_record(node)))

    def _cancel(self, node_ids: Optional[list], events: list) -> None:
        state = self.state
        flag = self.cancel_flag
        if node_ids is None:
            flag.all = True
            self.result._cancel_requested = True
            # Not started, and never will: waiting nodes, and links of a chain handed to an
            # executor whose parent has not finished (the executor skips them: the flag is set).
            waiting = getattr(self, "waiting", None) or [0] * len(state)
            targets = [n for n in range(len(state))
                       if state[n] == WAITING or (state[n] == SUBMITTED and waiting[n] > 0)]
        else:
            size = len(state)
            node_ids = [n for n in node_ids if isinstance(n, int) and 0 <= n < size]
            targets, unstarted = self._not_started_below(node_ids)
            # handed to an executor but not started (a link of a fused chain, say): it skips them
            flag.nodes = flag.nodes | frozenset(node_ids) | frozenset(unstarted)
        for node in targets:
            self._mark_cancelled(node, events)
        for node, child in list(self.result._table.sublattice.items()):
            if (node_ids is None or node in node_ids) and not child.ended:
                running = self.services.running(child.dispatch_id)
                if running is not None:
                    running.cancel()  # the child ends CANCELLED, and so does this node
        for executor in self.executors:
            try:
                executor.cancel(self.result.dispatch_id, node_ids)
            except Exception:
                pass

    # -- sublattices ------------------------------------------------------------------
    def _start_sublattice(self, node: int) -> None:
        result = self.result
        table = result._table
        state = self.state
        state[node] = RUNNING
        now = now_us()
        table.status[node] = Status.RUNNING
        table.start[node] = now
        table.executor[node] = "sublattice"
        spec = self._spec(node, None)
        self.services.publish([Event("node_running", result.dispatch_id, node, "RUNNING", now / 1e6, self._node_record(node))])
        reuse_from = None
        if self.parent is not None and result.reuse_requested:
            twin = next((i for i, (n, k) in enumerate(zip(self.parent.graph.names, self.parent.graph.kinds))
                         if n == result.graph.names[node] and k == NodeKind.SUBLATTICE), None)
            if twin is not None:
                reuse_from = self.parent._table.sublattice.get(twin)
        try:
            def record(child: Any) -> None:
                table.sublattice[node] = child
                if self.cancel_flag.is_cancelled(node):  # cancelled while it was being traced
                    running = self.services.running(child.dispatch_id)
                    if running is not None:
                        running.cancel()

            self.services.start_child(spec.function, [argument(a) for a in spec.args],
                             {k: argument(v) for k, v in spec.kwargs.items()}, reuse_from,
                             lambda child_result: self.deliver(ChildEnded(node, child_result)),
                             record, (self.cancel_flag, node),
                             history=getattr(result, "reuse_history", False))
        except BaseException as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            self.deliver(Failed(node, f"sublattice {result.graph.names[node]} could not start:\n{text}",
                                now, now_us()))

    def _child_ended(self, node: int, child: Any, events: list, ready: list) -> None:
        table = self.result._table
        table.sublattice[node] = child
        now = now_us()
        end = max(now, table.start[node] + 1)
        if child.status == Status.COMPLETED:
            value = child.held_result  # a Dask output kept remote stays a reference: never fetched here
            if is_remote(value):
                value = value.share()  # this node's own holder: deleting the child leaves it readable
            else:
                data, unfrozen = freeze_output(value)
                if data is not None or unfrozen is not None:
                    value = Output(value, data, unfrozen)
            self._complete(node, value, table.start[node], end, "", "", events, ready)
        elif child.status == Status.CANCELLED:
            table.end[node] = end
            self._mark_cancelled(node, events)
        else:
            self._fail(node, f"sublattice dispatch {child.dispatch_id} ended {child.status}:\n{child.error or ''}",
                       table.start[node], now, "", "", events)

    # -- the end -------------------------------------------------------------------
    def _finish(self) -> None:
        result = self.result
        table = result._table
        result.end_us = max(now_us(), (result.start_us or 0) + 1)
        if result.status != Status.FAILED or result.error is None:
            failed = [i for i, s in enumerate(table.status) if s == Status.FAILED] \
                if Status.FAILED in table.status else []
            if result._cancel_requested:
                result.status = Status.CANCELLED
                if failed:
                    result.error = f"cancelled; node(s) {failed[:10]} had failed before"
            elif failed:
                names = result.graph.names
                listed = ", ".join(f"{i} ({names[i]})" for i in failed[:10])
                more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
                first = table.error.get(failed[0], "")
                result.error = f"node(s) {listed}{more} failed; first error:\n{first}"
                result.status = Status.FAILED
            elif Status.CANCELLED in table.status:
                result.status = Status.CANCELLED
            else:
                post = len(table.status) - 1
                # held as it is: a result kept by reference is fetched when result.result is read
                result._result = table.output.held(_postprocess_node(result.graph)) if post >= 0 else None
                result.status = Status.COMPLETED
        try:
            self.services.make_durable(self._dispatch_record())  # durable before reported ended
        except Exception as exc:  # the store says what failed; the dispatch itself has ended
            result.store_error = str(exc) or repr(exc)
        # Every node has settled and its records are committed: executors may let go (after the
        # commit, so that Dask still holds a durable output whose shared blob file a concurrent
        # delete removed, and writes it again: RemoteValue.ensure_stored).
        for executor in self.executors:
            try:
                executor.dispatch_ended(result.dispatch_id)
            except Exception:
                traceback.print_exc()
        self.services.publish([Event("dispatch_ended", result.dispatch_id, None, str(result.status), result.end_us / 1e6)])
        self.services.ended(result.dispatch_id)
        result._finish()  # runs the done callbacks, then wakes the waiters


#: Argument kinds a consumer must not share: run_task gives the task its own copy (or the fetched value).
_SHARED = frozenset({CopyOf, RemoteValue, RemoteTree})

#: Kinds of the nodes that may pack references for the lattice's result (see Dispatcher._packs_references).
_PACKING_KINDS = frozenset({NodeKind.POSTPROCESS, NodeKind.ELECTRON_LIST, NodeKind.ELECTRON_DICT})


def _postprocess_node(graph: Any) -> Optional[int]:
    kinds = graph.kinds
    for node in range(len(kinds) - 1, -1, -1):
        if kinds[node] == NodeKind.POSTPROCESS:
            return node
    raise ValueError("the graph has no postprocess node")
