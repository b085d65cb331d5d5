"""The executor interface: where a node's function runs.

An executor only runs functions and hands back outcomes; it never touches a
dispatch's state.  The dispatcher calls :meth:`Executor.submit` with a *run*
(a list of :class:`~covalent_nb.dispatch.runner.TaskSpec`, usually one; a
chain of several when the executor sets ``fuses_chains``) and a *deliver*
callback.  The executor calls ``deliver(message)`` from any thread with one of
the typed messages of :mod:`covalent_nb.dispatch.messages`:

``Started(node_id, start_us)``
    the function has started;
``Done(node_id, value, start_us, end_us, stdout, stderr)``
    it returned *value*;
``Failed(node_id, error, start_us, end_us, stdout, stderr)``
    it raised (or its worker died); *error* is the traceback as text;
``Skipped(node_id)``
    it never started because the dispatch was cancelled, or an earlier task of
    the same run failed.

When a dispatch has ended (every node settled), the dispatcher calls
:meth:`Executor.dispatch_ended` once on each executor it used, so an executor
that keeps something per dispatch (Dask futures) can let it go.

In a fused run every task after the first may take the output of an earlier
task of the run: such arguments are :class:`~covalent_nb.dispatch.runner.FromRun`
placeholders that the executor replaces with the output before calling.
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

__all__ = ["Executor", "CancelFlag"]


class CancelFlag:
    """Set when a dispatch (or some of its nodes) is cancelled, by the thread that cancels.

    Executors read it before starting a task: a cancelled task never starts.
    The flag of a sublattice's dispatch also answers for its *parent* flag and
    node, so cancelling the outer dispatch stops the inner one's tasks at once,
    before the message reaches the inner dispatcher's thread.  Written by any
    thread (each write replaces a whole value), read by executors.
    """

    __slots__ = ("all", "nodes", "parent", "parent_node")

    def __init__(self, parent: Optional["CancelFlag"] = None, parent_node: Optional[int] = None) -> None:
        self.all = False
        self.nodes: frozenset = frozenset()
        self.parent = parent
        self.parent_node = parent_node

    def is_cancelled(self, node_id: int) -> bool:
        if self.all or node_id in self.nodes:
            return True
        parent = self.parent
        return parent is not None and parent.is_cancelled(self.parent_node)


class Executor:
    """Base class of executors (see the module docstring for the protocol)."""

    #: Short name shown in node records ("local", "dask").
    name = "executor"
    #: True when the executor can run a chain of tasks in one go.
    fuses_chains = False
    #: True when the executor's tasks take outputs kept outside the kernel (a
    #: :class:`~covalent_nb.dispatch.executors.remote.RemoteValue`, or a
    #: :class:`~covalent_nb.dispatch.executors.remote.RemoteTree` of them) as
    #: references and read the values where they run, never through the kernel.
    resolves_references = False

    def submit(self, run: list, deliver: Callable[[tuple], None], cancel: CancelFlag) -> None:
        """Start running *run*; report every task's outcome through *deliver*."""
        raise NotImplementedError

    def cancel(self, dispatch_id: str, node_ids: Optional[Iterable[int]] = None) -> None:
        """Best effort: stop tasks of *dispatch_id* that are queued or running."""

    def dispatch_ended(self, dispatch_id: str) -> None:
        """*dispatch_id* has ended: drop anything kept for it (nothing by default)."""

    def shutdown(self) -> None:
        """Release the executor's resources."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
