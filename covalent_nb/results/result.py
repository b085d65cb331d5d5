"""The result of a dispatch: its status, output, inputs and one record per node.

Node records are kept as columns (one list per field) rather than an object per
node: the dispatcher writes them in its hot loop and the garbage collector
never has to scan 10,000 small dicts.  :meth:`Result.get_node_result` builds
Covalent's per-node dict on demand.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import Any, Callable, Optional

from ..dispatch.executors.local import lending_worker
from ..dispatch.executors.remote import RemoteTree, RemoteValue, is_remote
from ..states import ENDED, NodeKind, Status, widget_state
from ..serialization import IMMUTABLE
from .failures import failed_nodes, failure_text
from .values import StoreError, dumps, loads


__all__ = ["Result", "NodeTable", "LazyOutputs", "Inputs", "us_to_datetime", "short_repr", "held_text"]

log = logging.getLogger(__name__)


def us_to_datetime(us: Optional[int]) -> Optional[_dt.datetime]:
    """Convert integer microseconds since the epoch to an aware UTC datetime."""
    if us is None:
        return None
    return _dt.datetime.fromtimestamp(us / 1e6, tz=_dt.timezone.utc).replace(
        microsecond=us % 1_000_000)


_UNLOADED = object()


class LazyOutputs:
    """A node table's ``output`` column whose values are unpickled on first access.

    Behaves as the list it replaces: indexing, slicing, iteration, ``len`` and
    assignment.  ``load(node)`` returns a node's value (from the store for a
    loaded result, from the bytes its task's output was frozen into for a live
    one) or raises :class:`~covalent_nb.results.values.StoreError`.  ``raw`` is
    the underlying list, for the dispatcher's hot loop, which never reads an
    unloaded entry through it.
    """

    __slots__ = ("raw", "_load")

    def __init__(self, values: list, load: Callable[[int], Any]) -> None:
        self.raw = values  # a value, or _UNLOADED for one not unpickled yet
        self._load = load

    @staticmethod
    def unloaded() -> object:
        return _UNLOADED

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.raw)))]
        value = self.raw[index]
        if value is _UNLOADED:
            value = self._load(index if index >= 0 else index + len(self.raw))
            self.raw[index] = value
        if type(value) is RemoteValue or type(value) is RemoteTree:  # kept outside the kernel: fetched once, here
            return value.fetch()
        return value

    def held(self, index: int) -> Any:
        """A node's output as this table holds it: loaded if need be, but a value kept outside the
        kernel (:class:`RemoteValue`, :class:`RemoteTree`) stays a reference, never fetched."""
        value = self.raw[index]
        if value is _UNLOADED:
            value = self._load(index if index >= 0 else index + len(self.raw))
            self.raw[index] = value
        return value

    def location(self, index: int) -> Optional[dict]:
        """Where a node's output lives when it is not in the kernel (a Dask output kept remote), else None.

        Looks only at what is already loaded: it never reads a value to answer.
        """
        value = self.raw[index]
        return value.describe() if is_remote(value) else None

    def release(self) -> None:
        """Let go of the Dask futures of outputs kept on a cluster (the dispatch is deleted or forgotten).

        A value not durable is freed by the cluster and can no longer be read;
        a durable one stays readable from blob storage.
        """
        for value in self.raw:
            if is_remote(value):
                value.release()

    def fresh(self, index: int) -> Any:
        """A node's value unpickled anew (not the cached object others may have changed)."""
        try:
            return self._load(index)
        except (StoreError, KeyError):  # kept as it is (a small or immutable value): nothing to reload
            value = self.raw[index]
            if value is _UNLOADED:
                raise
            return value

    def defer(self, index: int) -> None:
        """Forget the value at *index*: it is unpickled again when first read."""
        self.raw[index] = _UNLOADED

    def __setitem__(self, index: Any, value: Any) -> None:
        self.raw[index] = value

    def __iter__(self):
        for i in range(len(self.raw)):
            yield self[i]


    def __repr__(self) -> str:
        loaded = sum(1 for v in self.raw if v is not _UNLOADED)
        return f"<LazyOutputs {len(self.raw)} nodes, {loaded} loaded>"


def held_text(value: Any, limit: int = 80) -> str:
    """A short description of a value as a result holds it, never fetching one kept outside the kernel.

    A Dask output kept remote (a :class:`RemoteValue`, or a :class:`RemoteTree`
    of them) is described from its reference: its short repr, its size and
    where it lives (``array([0, 1, ...]) · 3.0 MB in blob storage``); any other
    value is its repr cut to *limit* characters.
    """
    kind = type(value)
    if kind is not RemoteValue and kind is not RemoteTree:
        return short_repr(value, limit)
    references = [value] if kind is RemoteValue else value.references()
    info = value.describe()
    places = []
    if any(r.future is not None for r in references):
        places.append("Dask worker memory")
    if any(r.location is not None for r in references):
        places.append("blob storage")
    where = " and ".join(places) or "nowhere any more"
    summary = info["summary"]
    if len(summary) > limit:
        summary = summary[:limit - 3] + "..."
    durable = "" if info["durable"] else " (not durable)"
    return f"{summary} · {info['size_text']} in {where}{durable}"


def short_repr(value: Any, limit: int) -> str:
    """``repr(value)`` cut to *limit* characters; never raises (an ``int`` of more than
    4,300 digits, a broken ``__repr__``)."""
    try:
        text = repr(value)
    except ValueError:
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        text = f"<{type(value).__name__} (repr failed)>"
    except Exception:  # noqa: BLE001 - printing a result must never fail
        text = f"<{type(value).__name__} (repr failed)>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


class NodeTable:
    """Per-node records of one dispatch, column by column.

    ``status``, ``start``, ``end`` (integer microseconds), ``output`` and ``key``
    have one entry per node; ``error``, ``stdout``, ``stderr``,
    ``sublattice``, ``reused_from``, ``reason``, ``executor``, ``unstorable``
    and ``frozen`` are sparse dicts keyed by node id.  ``frozen`` holds the
    pickled bytes of a mutable output taken the moment its task returned:
    what is stored, reused and handed to each consumer, whatever happens to
    the object in ``output`` afterwards.
    """

    __slots__ = ("size", "status", "start", "end", "output", "key", "error", "stdout",
                 "stderr", "sublattice", "reused_from", "reason", "executor", "names",
                 "unstorable", "frozen")

    def __init__(self, names: list) -> None:
        size = len(names)
        self.size = size
        self.names = names
        self.status: list = [Status.NEW_OBJECT] * size
        self.start: list = [None] * size
        self.end: list = [None] * size
        self.output = LazyOutputs([None] * size, self._thaw)
        self.key: list = [None] * size
        self.error: dict = {}
        self.stdout: dict = {}
        self.stderr: dict = {}
        self.sublattice: dict = {}
        self.reused_from: dict = {}
        self.reason: dict = {}
        self.executor: dict = {}
        self.unstorable: dict = {}
        self.frozen: dict = {}

    def check(self, node_id: int) -> None:
        if not isinstance(node_id, int) or isinstance(node_id, bool) or not 0 <= node_id < self.size:
            raise ValueError(
                f"node {node_id!r} does not exist: node ids of this dispatch run from 0 to {self.size - 1}"
            )

    def _thaw(self, node_id: int) -> Any:
        return loads(self.frozen[node_id])

    def pristine(self, node_id: int) -> tuple:
        """``(value, bytes)`` of a node's output as it was returned: a fresh copy, never the shared object.

        ``bytes`` is None for an immutable value.
        """
        data = self.frozen.get(node_id)
        if data is not None:
            return loads(data), data
        value = self.output.raw[node_id]
        if type(value) in IMMUTABLE:
            return value, None
        value = self.output.fresh(node_id)  # a stored result's output: unpickled anew
        data = None
        if type(value) not in IMMUTABLE:
            try:
                data = dumps(value)
            except Exception:  # noqa: BLE001 - passed on as it is
                data = None
        return value, data

    def node_result(self, node_id: int, fetch: bool = True) -> dict:
        """Covalent's node record for *node_id*, plus covalent_nb's reuse fields.

        With *fetch* False, an output kept outside the kernel is given as its
        reference (:class:`RemoteValue` or :class:`RemoteTree`), not fetched.
        """
        self.check(node_id)
        reused_from = self.reused_from.get(node_id)
        return {
            "node_id": node_id,
            "node_name": self.names[node_id],
            "start_time": us_to_datetime(self.start[node_id]),
            "end_time": us_to_datetime(self.end[node_id]),
            "status": self.status[node_id],
            "output": self.output[node_id] if fetch else self.output.held(node_id),
            "error": self.error.get(node_id),
            "sublattice_result": self.sublattice.get(node_id),
            "stdout": self.stdout.get(node_id, ""),
            "stderr": self.stderr.get(node_id, ""),
            "executor": self.executor.get(node_id, ""),
            "key": self.key[node_id],
            "reused": reused_from is not None,
            "reused_from": reused_from,
            "reason": self.reason.get(node_id, ""),
            # a Dask output kept outside the kernel: where it lives, its size, durable or not (else None)
            "output_location": self.output.location(node_id),
        }


class Inputs(dict):
    """A dispatch's inputs, ``{"args": (...), "kwargs": {...}}``: the tuple passed, as Covalent keeps it.

    Also answers Covalent's ``get_deserialized()``.
    """

    def get_deserialized(self) -> dict:
        """Return the inputs as a plain dict (they are never serialised here)."""
        return {"args": list(self["args"]), "kwargs": dict(self["kwargs"])}


class Result:
    """What a dispatch produced, live while it runs and final once it has ended.

    ``get_result`` returns the same object the dispatcher updates, so reading
    ``status`` or :meth:`get_node_result` while the dispatch runs shows the
    current state.
    """

    NEW_OBJ = Status.NEW_OBJECT
    PENDING_REPLACEMENT = Status.PENDING_REPLACEMENT
    RUNNING = Status.RUNNING
    COMPLETED = Status.COMPLETED
    FAILED = Status.FAILED
    CANCELLED = Status.CANCELLED
    INTERRUPTED = Status.INTERRUPTED

    def __init__(self, dispatch_id: str, lattice: Any, graph: Any, args: tuple, kwargs: dict,
                 *, parent_dispatch_id: Optional[str] = None, root_dispatch_id: Optional[str] = None,
                 replacements: Optional[dict] = None, replaced_nodes: frozenset = frozenset(),
                 reuse_requested: bool = False, reuse_history: bool = False) -> None:
        self.dispatch_id = dispatch_id
        self.parent_dispatch_id = parent_dispatch_id
        self.root_dispatch_id = root_dispatch_id or dispatch_id
        self.graph = graph
        self.lattice = lattice
        self.inputs = Inputs(args=tuple(args), kwargs=dict(kwargs))
        self.replacements: dict = dict(replacements or {})
        self.replaced_nodes = frozenset(replaced_nodes)
        self.reuse_requested = reuse_requested
        #: Whether nodes may be reused from any earlier dispatch in the store (not only the parent).
        self.reuse_history = reuse_history
        self.status: Status = Status.NEW_OBJECT
        self.error: Optional[str] = None
        self._result: Any = None
        self.start_us: Optional[int] = None
        self.end_us: Optional[int] = None
        self.executor_names: set = set()
        self.function_parts: dict = {}  # electron name -> {component: digest}, from the plan
        self.snapshot: Optional[bytes] = None  # pickled (lattice, replacements, args, kwargs), frozen at dispatch
        self.will_run = True  # False for ct.dispatch(..., disable_run=True): it never runs
        self.snapshot_live: Optional[list] = None  # objects the snapshot refers to by reference (unpicklable)
        self._unhashable: dict = {}  # node id -> why its key could not be computed
        self._function_keys: Optional[dict] = None
        self._cancel_requested = False
        self._on_end: list = []  # callbacks(result) run once the dispatch has ended
        self._callbacks_lock = threading.Lock()
        self._callbacks_ran = False
        self.store_error: Optional[str] = None
        self._table = NodeTable(graph.names)
        graph._records = self._table
        self._done = threading.Event()

    # -- Covalent's attributes ----------------------------------------------
    @property
    def result(self) -> Any:
        """The workflow's output (None until the dispatch has COMPLETED).

        A return value made of Dask outputs kept outside the kernel is fetched
        on first access (once), not when the dispatch ends.
        """
        if self.status != Status.COMPLETED:
            return None
        value = self._result
        return value.fetch() if type(value) is RemoteValue or type(value) is RemoteTree else value

    @property
    def held_result(self) -> Any:
        """The workflow's output as this result holds it, never fetched (None until COMPLETED).

        Like :attr:`result`, except that a return value made of Dask outputs
        kept outside the kernel is given as its reference (a
        :class:`~covalent_nb.dispatch.executors.remote.RemoteValue`, or a
        ``RemoteTree`` of them: short repr, size, where it lives), so a
        summary can describe it without bringing it into the kernel.
        """
        if self.status != Status.COMPLETED:
            return None
        return self._result

    @property
    def start_time(self) -> Optional[_dt.datetime]:
        return us_to_datetime(self.start_us)

    @property
    def end_time(self) -> Optional[_dt.datetime]:
        return us_to_datetime(self.end_us)

    @property
    def root_dispatch(self) -> str:
        return self.root_dispatch_id

    @property
    def transport_graph(self):
        return self.graph

    def get_node_result(self, node_id: int, *, fetch: bool = True) -> dict:
        """Return the record of one node.

        Keys: ``node_id, node_name, start_time, end_time, status, output, error,
        sublattice_result, stdout, stderr`` (as Covalent), plus ``executor``,
        ``key``, ``reused`` (bool), ``reused_from`` (``(dispatch_id, node_id)``
        or None), ``reason`` (why the node was reused or recomputed) and
        ``output_location`` (for a Dask output kept outside the kernel: where
        it lives, its size, whether it is durable; else None).  With
        ``fetch=False`` such an output is given as its reference instead of
        being fetched into the kernel.
        """
        return self._table.node_result(node_id, fetch)

    def get_all_node_results(self) -> list:
        """Return every node's record, in node id order."""
        return [self._table.node_result(i) for i in range(self._table.size)]

    def get_all_node_outputs(self) -> dict:
        """Return every node's output keyed ``"name(id)"``."""
        names, outputs = self._table.names, self._table.output
        return {f"{names[i]}({i})": outputs[i] for i in range(self._table.size)}

    # -- covalent_nb's additions -------------------------------------------
    def release_remote_outputs(self) -> None:
        """Let the Dask cluster free the outputs this result keeps there (called when it is deleted).

        A Dask output that is not durable can no longer be read afterwards
        (reading it raises ``LookupError``, saying so); a durable one is read
        from blob storage.
        """
        self._table.output.release()
        value = self._result
        if type(value) is RemoteValue or type(value) is RemoteTree:
            value.release()

    @property
    def ended(self) -> bool:
        """True once the dispatch has ended (its records are final)."""
        return self._done.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the dispatch ends; return False if *timeout* passed first.

        Called from a task (a nested dispatch), the task's worker thread is lent
        while it waits, so the dispatch waited for can run on the same pool.
        """
        if self._done.is_set():
            return True
        with lending_worker():
            return self._done.wait(timeout)

    def node_states(self) -> list:
        """One display state per node (``pending``, ``running``, ``completed``,
        ``reused``, ``failed``, ``cancelled``)."""
        reused = self._table.reused_from
        return [widget_state(s, i in reused) for i, s in enumerate(self._table.status)]

    @property
    def reused_nodes(self) -> list:
        """Ids of the nodes satisfied from a previous dispatch."""
        return sorted(self._table.reused_from)

    @property
    def recomputed_nodes(self) -> list:
        """Ids of the electron-like nodes that ran in this dispatch."""
        table = self._table
        kinds = self.graph.kinds
        return [i for i in range(table.size)
                if kinds[i] != NodeKind.PARAMETER and i not in table.reused_from and table.start[i] is not None]

    def reuse_summary(self) -> dict:
        """Counts of reused and recomputed nodes and of each recompute reason.

        ``from_parent`` and ``from_history`` split ``reused`` by where the outputs came from.
        """
        reasons: dict = {}
        table = self._table
        for i in self.recomputed_nodes:
            reason = table.reason.get(i, "")
            head = reason.split(":", 1)[0] if reason else "no reason recorded"
            reasons[head] = reasons.get(head, 0) + 1
        parent = self.parent_dispatch_id
        from_parent = sum(1 for did, _ in table.reused_from.values() if did == parent)
        return {"reused": len(table.reused_from), "recomputed": len(self.recomputed_nodes),
                "reasons": reasons, "from_parent": from_parent,
                "from_history": len(table.reused_from) - from_parent}

    def failure_lines(self) -> list:
        """For a FAILED dispatch, its headline and one line per failed node with its exception line.

        ``["FAILED: 1 of 3 electron(s) failed", "  check_positive (node 3):
        ValueError: ..."]``; empty for any other status.
        """
        if self.status != Status.FAILED:
            return []
        failures = failed_nodes(self)
        kinds = self.graph.kinds
        tasks = sum(1 for kind in kinds if kind in (NodeKind.ELECTRON, NodeKind.SUBLATTICE))
        if not failures:  # the dispatch itself failed (it could not start, a store error...)
            first = (self.error or "").strip().splitlines()
            return ["FAILED" + (f": {first[0]}" if first else "")]
        return [f"FAILED: {len(failures)} of {tasks} electron(s) failed", *failure_text(failures)]

    def __str__(self) -> str:
        lines = [
            "Lattice Result", "==============",
            f"lattice: {getattr(self.lattice, '__name__', '?')}",
            f"dispatch_id: {self.dispatch_id}",
            f"status: {self.status}",
            *self.failure_lines(),
            f"result: {held_text(self.held_result, 2000)}",
            f"inputs: args={short_repr(self.inputs['args'], 2000)} kwargs={short_repr(self.inputs['kwargs'], 2000)}",
            f"error: {self.error}" if self.error else "error: None",
            f"start_time: {self.start_time}",
            f"end_time: {self.end_time}",
        ]
        if self.parent_dispatch_id:
            lines.append(f"parent_dispatch_id: {self.parent_dispatch_id}")
            summary = self.reuse_summary()
            lines.append(f"reused: {summary['reused']} node(s), recomputed: {summary['recomputed']}")
        lines += ["", "Node Outputs", "------------"]
        names, outputs = self._table.names, self._table.output
        for i in range(self._table.size):  # a Dask output kept remote is described, never fetched
            lines.append(f"{names[i]}({i}): {held_text(outputs.held(i), 80)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        head = f"<Result {self.dispatch_id} {getattr(self.lattice, '__name__', '?')} {self.status}"
        if self.status == Status.FAILED:
            failures = failed_nodes(self)
            if failures:
                more = f" (and {len(failures) - 1} more failed)" if len(failures) > 1 else ""
                first = str(failures[0])
                head += f": {first if len(first) <= 200 else first[:197] + '...'}{more}"
        return head + ">"

    #: How a result shows itself in a notebook: ``view(result)`` returns a widget or a str.
    #: Set by the notebook layer (covalent_nb.notebook.handle), which sits above this one;
    #: without it a result displays as text.
    display_hook: Optional[Callable[["Result"], Any]] = None

    def _ipython_display_(self) -> None:
        """Shown by IPython: the view's own display when it has one (the live graph, then
        its static picture as a second output, which nbconvert's HTML shows: see
        ``covalent_nb.notebook.graph_widget.show_live``); else the bundle below."""
        hook = Result.display_hook
        view = hook(self) if hook is not None else None
        if view is None or isinstance(view, str) or not hasattr(view, "_ipython_display_"):
            from IPython.display import publish_display_data  # only IPython calls this

            data, metadata = self._repr_mimebundle_()
            publish_display_data(data, metadata)
            return
        view._ipython_display_(text="\n".join([*self.failure_lines(), f"<Result {self.dispatch_id}>"]))

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Display as the live graph (with its static SVG), or as text without widgets."""
        hook = Result.display_hook
        if hook is None:
            return {"text/plain": str(self)}, {}
        view = hook(self)
        if isinstance(view, str):
            return {"text/plain": str(self) + "\n" + view}, {}
        bundle = view._repr_mimebundle_(include=include, exclude=exclude)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        failure = self.failure_lines()
        if failure and isinstance(data, dict):  # a FAILED dispatch says so first, wherever text is shown
            data["text/plain"] = "\n".join([*failure, data.get("text/plain", repr(self))])
        return data, metadata

    def add_done_callback(self, callback: Any) -> None:
        """Call *callback(result)* once the dispatch has ended (at once if it has).

        Callbacks run on the dispatcher's thread just before :meth:`wait` (and so
        ``get_result(wait=True)``) returns, so what they do — a display update,
        a summary in a panel — is done by then.  They must not wait on this
        result; an exception they raise is logged.
        """
        with self._callbacks_lock:
            if not (self._callbacks_ran or self._done.is_set()):
                self._on_end.append(callback)
                return
        _call_logged(callback, self)

    def _finish(self) -> None:
        """Run the done callbacks, then mark the dispatch ended (called by the dispatcher,
        after the store)."""
        assert self.status in ENDED
        with self._callbacks_lock:
            callbacks, self._on_end = self._on_end, []
            self._callbacks_ran = True
        for callback in callbacks:
            _call_logged(callback, self)
        self._done.set()


def _call_logged(callback: Any, result: "Result") -> None:
    try:
        callback(result)
    except Exception:
        log.exception("a done callback of dispatch %s failed", result.dispatch_id)
