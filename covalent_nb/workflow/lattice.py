"""Lattices: workflows composed of electrons (``@ct.lattice``)."""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Optional

from .electron import Electron, make_metadata
from .graph import TransportGraph
from .source import remember
from .tracing import Build, add_postprocess, check_arguments, signature_of

__all__ = ["Lattice", "lattice", "Trace"]


class Trace:
    """The outcome of tracing a lattice: its graph and what the trace learned."""

    __slots__ = ("graph", "replaced", "electron_names")

    def __init__(self, graph: TransportGraph, replaced: frozenset, electron_names: frozenset) -> None:
        self.graph = graph
        self.replaced = replaced
        self.electron_names = electron_names


class Lattice:
    """A workflow: a function whose electron calls form a graph of tasks.

    Calling a lattice runs its function as plain Python.  :meth:`build_graph`
    traces it into :attr:`transport_graph`; ``ct.dispatch(lattice)(...)`` runs
    the graph on the kernel's dispatcher.
    """

    #: What an electron checks to know it wraps a lattice (a sublattice).
    is_lattice = True

    def __init__(self, workflow_function: Callable, metadata: Optional[dict] = None) -> None:
        if isinstance(workflow_function, Electron):
            workflow_function = workflow_function.function
        if not callable(workflow_function):
            raise TypeError(f"a lattice wraps a function, not {type(workflow_function).__name__}")
        self.workflow_function = workflow_function
        if hasattr(workflow_function, "__code__"):
            remember(workflow_function)
        self.metadata = metadata if metadata is not None else make_metadata(None, None, None, None, None)
        self.transport_graph = TransportGraph()
        self.args: tuple = ()
        self.kwargs: dict = {}
        self.__name__ = getattr(workflow_function, "__name__", "lattice")
        self.__doc__ = workflow_function.__doc__
        self.__module__ = getattr(workflow_function, "__module__", None)
        self.__qualname__ = getattr(workflow_function, "__qualname__", self.__name__)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.workflow_function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<lattice {self.__name__}>"

    def check_arguments(self, args: tuple, kwargs: dict) -> None:
        """Raise ``TypeError`` naming the lattice and its signature if *args* do not fit."""
        check_arguments(signature_of(self.workflow_function), args, kwargs, f"lattice {self.__name__}()")

    def trace(self, args: tuple, kwargs: dict, replacements: Optional[dict] = None) -> Trace:
        """Trace the workflow with *args* and return the :class:`Trace`.

        *replacements* maps electron names to the electrons that take their place.
        """
        self.check_arguments(args, kwargs)
        with Build(replacements) as build:
            retval = self.workflow_function(*args, **kwargs)
            # Postprocessing runs on the lattice's workflow_executor (local by default), not on
            # the executor its electrons default to, as Covalent does; no hooks.
            add_postprocess(build, retval, None)
        return Trace(build.graph, frozenset(build.replaced), frozenset(build.electron_names))

    def build_graph(self, *args: Any, **kwargs: Any) -> TransportGraph:
        """Trace the workflow with these inputs into :attr:`transport_graph` and return it."""
        self.transport_graph = self.trace(args, kwargs).graph
        self.args, self.kwargs = args, kwargs
        return self.transport_graph

    def copy_for_dispatch(self, graph: TransportGraph, args: tuple, kwargs: dict) -> "Lattice":
        """A shallow copy that carries one dispatch's graph and inputs."""
        clone = copy.copy(self)
        clone.transport_graph = graph
        clone.args, clone.kwargs = args, kwargs
        return clone

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["transport_graph"] = TransportGraph()  # a snapshot is the definition, not a run
        return state


def lattice(_func: Optional[Callable] = None, *, backend: Any = None, executor: Any = None,
            workflow_executor: Any = None, deps_bash: Any = None, deps_pip: Any = None,
            call_before: Any = None, call_after: Any = None, triggers: Any = None) -> Any:
    """Turn a function into a workflow whose electron calls form a graph.

    *executor* is the default executor of the lattice's electrons (those that
    name none of their own); *deps_bash*, *deps_pip*, *call_before* and
    *call_after* become the default hooks of those electrons.
    *workflow_executor* runs the postprocessing node (``"local"``).
    """
    if triggers is not None:
        raise NotImplementedError("lattice(triggers=...) is not supported by covalent_nb")
    if executor is None and backend is not None:
        executor = backend
    metadata = make_metadata(executor, deps_bash, deps_pip, call_before, call_after)
    metadata["workflow_executor"] = workflow_executor or "local"

    def decorate(function: Callable) -> Lattice:
        return functools.update_wrapper(Lattice(function, metadata), function, updated=())

    if _func is None:
        return decorate
    return decorate(_func)
