"""Freezing a dispatch: the work runs from a copy taken when ``ct.dispatch`` is called.

A key describes code and inputs as they are at dispatch.  For a stored output
to deserve its key, the tasks must run exactly that code on exactly those
inputs, whatever the notebook does meanwhile: edit a helper cell, change a
global, mutate the argument array in place, set ``Cfg.scale = 3``.  So at
dispatch the lattice, its replacements and its arguments are pickled together
(:func:`freeze`), and the dispatch traces, keys and runs the unpickled copy
(:func:`thaw`).  The notebook's objects are never touched again.

What is copied by value and what by reference follows
:mod:`covalent_nb.provenance`: user code (notebook cells, local modules,
namespace packages, editable installs) by value, with the globals it reads;
installed libraries by reference; executors (resources, not code) stay the
notebook's own objects.  Beyond cloudpickle's defaults, the freezing
pickler copies by value functions, classes and modules of *local* files,
``functools.lru_cache`` wrappers, ``singledispatch`` functions (with their
registrations) and ``functools.cached_property``; a function that reads its
globals dynamically (``globals()[name]``) gets every picklable global of its
module, so it runs (such a node is never reused: its key cannot be faithful).

Thawing never returns the notebook's live classes: cloudpickle normally maps a
class it pickled back onto the live class and writes the pickled attributes
over the live ones, which silently reverted ``Cfg.scale = 3`` in the user's
namespace.  :class:`Thawer` builds fresh classes instead, so a dispatch's
objects are instances of the dispatch's own copy of a notebook class (compare
their fields, not ``isinstance`` against the notebook's class).

Outputs get the same care (:func:`freeze_output`): what a node returned is
pickled the moment it returns, and every consumer (a downstream task, a reuse
in a later dispatch) gets its own copy, so a task that mutates its input, or a
user who mutates a result in the notebook, changes nothing that is stored or
reused.  Immutable values (numbers, strings, bytes, tuples of them) need no
copy and cost nothing.
"""

from __future__ import annotations

import functools
import io
import marshal
import os
import pickle
import sys
import types
import weakref
from typing import Any, Optional

import cloudpickle
import cloudpickle.cloudpickle as _cp

from .. import provenance
from ..serialization import Thawer, is_immutable, loads
from ..serialization import dumps as dump_value
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice
from .executors.base import Executor

__all__ = ["Frozen", "freeze", "thaw", "dumps_by_value", "freeze_output", "produced", "Output", "CopyOf",
           "private_copy"]

_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def _rebuild_lru_cache(function: Any, maxsize: Optional[int], typed: bool) -> Any:
    return functools.lru_cache(maxsize=maxsize, typed=typed)(function)


def _rebuild_singledispatch(base: Any, registrations: list) -> Any:
    dispatcher = functools.singledispatch(base)
    for kind, implementation in registrations:
        dispatcher.register(kind, implementation)
    return dispatcher


def _is_curry(obj: Any) -> bool:
    toolz = sys.modules.get("toolz")
    return toolz is not None and isinstance(obj, toolz.curry)


def _rebuild_curry(kind: type, function: Any, args: tuple, keywords: Optional[dict]) -> Any:
    return kind(function, *args, **(keywords or {}))


def _rebuild_cached_property(function: Any, attrname: Optional[str]) -> Any:
    prop = functools.cached_property(function)
    prop.attrname = attrname
    return prop


# token -> a live object that frozen copies refer to (executors, reuse_key functions); weakly
# held, so a dropped object is not kept alive by old snapshots (they then load its copy)
_LIVE_RESOURCES: "weakref.WeakValueDictionary[str, Any]" = weakref.WeakValueDictionary()
_LIVE_STRONG: dict = {}  # the few objects that cannot be weakly referenced


def _kept_live(resource: Any) -> tuple:
    """Reduce an object to a reference to the live one (in this process) or, elsewhere, a copy."""
    token = f"{os.getpid()}:{id(resource)}"
    try:
        _LIVE_RESOURCES[token] = resource
    except TypeError:
        _LIVE_STRONG[token] = resource
    try:
        copy = cloudpickle.dumps(resource)
    except Exception:  # noqa: BLE001 - a resource that exists only here (a thread pool, say)
        copy = None
    return _live_or_copy, (token, copy, type(resource).__name__)


class _Live:
    """Pickles as a reference to the live object (in this process) or a copy (elsewhere)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __reduce__(self):
        return _kept_live(self.obj)


def _live_or_copy(token: str, copy: Optional[bytes], kind: str = "object") -> Any:
    live = None
    if token.startswith(f"{os.getpid()}:"):
        live = _LIVE_RESOURCES.get(token) or _LIVE_STRONG.get(token)
    if live is not None:
        return live
    if copy is None:
        raise pickle.UnpicklingError(f"the {kind} this dispatch used exists only in the process that "
                                     "dispatched it (it cannot be pickled); redispatch from there")
    return loads(copy)


def _user_module(name: Optional[str]) -> bool:
    return bool(name) and name not in ("__main__", "builtins") and not provenance.is_library_module(name)


class _FreezingPickler(cloudpickle.Pickler):
    """cloudpickle, with user code of local files by value and a few wrappers made picklable."""

    complete_globals = True  # False while only testing whether something pickles

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is types.FunctionType:
            if provenance.is_singledispatch(obj):
                return (_rebuild_singledispatch,
                        (obj.__wrapped__, [(k, f) for k, f in obj.registry.items() if k is not object]))
            if _user_module(obj.__module__):
                return self._frozen_function_reduce(obj)
            if obj.__module__ in ("__main__", "__mp_main__") or obj.__module__ is None:
                return self._frozen_function_reduce(obj)
        elif issubclass(kind, type):
            if _user_module(getattr(obj, "__module__", None)):
                return _cp._dynamic_class_reduce(obj)
        elif kind is types.ModuleType:
            if _user_module(obj.__name__):
                state = {k: v for k, v in vars(obj).items() if k != "__builtins__" and _picklable(v)}
                return _cp.dynamic_subimport, (obj.__name__, state)
        elif kind is provenance.LRU_CACHE_WRAPPER:
            wrapped = obj.__wrapped__
            if not provenance.is_library_module(getattr(wrapped, "__module__", None)):
                params = obj.cache_parameters()
                return _rebuild_lru_cache, (wrapped, params["maxsize"], params["typed"])
        elif kind is functools.cached_property:
            return _rebuild_cached_property, (obj.func, obj.attrname)
        elif _is_curry(obj):
            # toolz pickles a module-level curry by name (the live one): copy what it wraps
            return _rebuild_curry, (kind, obj.func, obj.args, obj.keywords)
        elif isinstance(obj, Executor):
            return _kept_live(obj)
        elif kind is Electron and obj.metadata.get("reuse_key") is not None:
            # reuse_key observes the world now (files, environment, notebook state): never a copy
            metadata = dict(obj.metadata, reuse_key=_Live(obj.metadata["reuse_key"]))
            return Electron, (obj.function, metadata)
        elif kind is types.CodeType:
            # marshal keeps the file name and line table (cloudpickle writes "<dynamic-code>"),
            # so a frozen task's traceback still shows its cell's lines
            return marshal.loads, (marshal.dumps(obj),)
        return super().reducer_override(obj)

    def _frozen_function_reduce(self, function: types.FunctionType) -> tuple:
        reduced = self._dynamic_function_reduce(function)
        scope = function.__globals__
        at_names = provenance.at_names(function.__code__)
        if at_names:  # pandas query("x > @T") reads T from the caller's globals by name
            captured = reduced[2][1]["__globals__"]
            captured.update((name, scope[name]) for name in at_names if name in scope)
        if self.complete_globals and provenance.dynamic_lookup(function.__code__, scope):
            # globals()[name], eval, exec: the names it reads are unknown, so it gets them all
            captured = reduced[2][1]["__globals__"]
            for name, value in list(function.__globals__.items()):
                if name in captured or name.startswith("_") or name in _IPYTHON_NAMES:
                    continue
                if isinstance(value, (types.FunctionType, type, types.ModuleType)) or _picklable(value):
                    captured[name] = value  # code is pickled by this pickler, memo and all
        return reduced



def _picklable(value: Any) -> bool:
    if isinstance(value, types.ModuleType):
        return True
    pickler = _FreezingPickler(io.BytesIO(), protocol=5)
    pickler.complete_globals = False
    try:
        pickler.dump(value)
    except Exception:
        return False
    return True


class _LiveKeepingPickler(_FreezingPickler):
    """The freezing pickler, keeping objects that cannot be pickled as references to the live ones.

    A lock, an event, a database connection reached by a task stays the
    notebook's own object (as the user expects of such things); the nodes that
    reach it cannot be keyed anyway, so they are never reused and say why.
    """

    def __init__(self, file: Any, live: list) -> None:
        super().__init__(file, protocol=5)
        self._live = live
        self._verdicts: dict = {}

    def persistent_id(self, obj: Any) -> Optional[int]:
        kind = type(obj)
        if kind in _NEVER_LIVE or issubclass(kind, type) or isinstance(obj, _STRUCTURE):
            return None  # code and containers are copied; only what they hold may stay live
        verdict = self._verdicts.get(id(obj))
        if verdict is None:
            verdict = -1 if _picklable(obj) else len(self._live)
            if verdict >= 0:
                self._live.append(obj)
            self._verdicts[id(obj)] = verdict  # obj stays alive in the structure being pickled
        return None if verdict < 0 else verdict


_NEVER_LIVE = frozenset({int, float, bool, complex, str, bytes, type(None), tuple, list, dict, set,
                         frozenset, types.FunctionType, types.ModuleType, types.CodeType,
                         types.CellType})


_STRUCTURE = (Electron, Lattice, types.MethodType, functools.partial)


class _LiveThawer(Thawer):
    def __init__(self, file: Any, live: list) -> None:
        super().__init__(file)
        self._live = live

    def persistent_load(self, pid: Any) -> Any:
        return self._live[pid]


class Frozen:
    """A dispatch's work as pickled at dispatch.

    ``data`` is the pickle; ``live`` the objects kept by reference because
    they cannot be pickled (None when there are none: ``data`` then loads in
    any process); ``error`` says why nothing could be pickled at all.
    """

    __slots__ = ("data", "live", "error")

    def __init__(self, data: Optional[bytes], error: Optional[str], live: Optional[list] = None) -> None:
        self.data = data
        self.error = error
        self.live = live

    @property
    def portable(self) -> bool:
        """True when ``data`` loads in another process (nothing was kept live)."""
        return self.data is not None and not self.live


def freeze(lattice: Any, replacements: dict, args: tuple, kwargs: dict) -> Frozen:
    """Pickle a dispatch's lattice, replacements and arguments together, by value where it counts."""
    work = (lattice, dict(replacements), tuple(args), dict(kwargs))
    buffer = io.BytesIO()
    try:
        _FreezingPickler(buffer, protocol=5).dump(work)
        return Frozen(buffer.getvalue(), None)
    except Exception:  # noqa: BLE001 - something cannot be pickled: keep just that live
        pass
    live: list = []
    buffer = io.BytesIO()
    try:
        _LiveKeepingPickler(buffer, live).dump(work)
    except Exception as exc:  # noqa: BLE001 - the dispatch still runs, unfrozen and not reusable
        text = str(exc).strip().splitlines()
        return Frozen(None, f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))
    return Frozen(buffer.getvalue(), None, live)


def dumps_by_value(obj: Any) -> bytes:
    """Pickle *obj* for another process: user code (local modules included) by value.

    What a Dask worker receives: it runs the task even where the notebook's
    local modules cannot be imported, and nothing process-wide (such as
    ``cloudpickle.register_pickle_by_value``) is changed for it.
    """
    buffer = io.BytesIO()
    _FreezingPickler(buffer, protocol=5).dump(obj)
    return buffer.getvalue()


def thaw(data: bytes, live: Optional[list] = None) -> tuple:
    """Unpickle what :func:`freeze` made: ``(lattice, replacements, args, kwargs)``.

    *live* is :attr:`Frozen.live` of the same freeze.  Snapshots stored before
    arguments were frozen with the code hold only ``(lattice, replacements)``;
    those come back with empty arguments.
    """
    loader = _LiveThawer(io.BytesIO(data), live) if live else Thawer(io.BytesIO(data))
    loaded = loader.load()
    if len(loaded) == 2:
        return loaded[0], loaded[1], (), {}
    return loaded


# -- outputs -----------------------------------------------------------------------------


class Output:
    """What a task returned, with its bytes taken the moment it returned.

    ``value`` is the object itself, ``data`` its pickled bytes (None for an
    immutable value) and ``unfrozen`` why it could not be pickled (or None).
    Crossing a process boundary it travels as its bytes alone.
    """

    __slots__ = ("value", "data", "unfrozen")

    def __init__(self, value: Any, data: Optional[bytes], unfrozen: Optional[str]) -> None:
        self.value = value
        self.data = data
        self.unfrozen = unfrozen

    def argument(self) -> Any:
        """The value for one consumer: its own copy when there are bytes."""
        return self.value if self.data is None else loads(self.data)

    def __reduce__(self):
        if self.data is not None:
            return (_output_from_data, (self.data,))
        return (Output, (self.value, None, self.unfrozen))


def _output_from_data(data: bytes) -> Output:
    return Output(loads(data), data, None)


def produced(value: Any) -> Any:
    """Wrap a task's return value in an :class:`Output` when it needs copies; else return it."""
    data, unfrozen = freeze_output(value)
    if data is None and unfrozen is None:
        return value
    return Output(value, data, unfrozen)


class CopyOf:
    """Stands in a task's arguments for a value that each consumer gets its own copy of.

    It holds either the value's pickled ``data`` (an output, frozen when its task
    returned) or the ``original`` object that no task may change (an input of
    the dispatch), copied by :func:`private_copy` on the consumer's thread.
    """

    __slots__ = ("data", "original")

    def __init__(self, data: Optional[bytes] = None, original: Any = None) -> None:
        self.data = data
        self.original = original

    def value(self) -> Any:
        return loads(self.data) if self.data is not None else private_copy(self.original)


def private_copy(value: Any) -> Any:
    """A deep copy of *value*: numpy and pandas copy their buffers, anything else round-trips pickle.

    A value that cannot be pickled is returned as it is (shared, like the
    objects freezing keeps live).
    """
    module = type(value).__module__ or ""
    if module.startswith("numpy") and hasattr(value, "copy") and getattr(value, "dtype", None) is not None \
            and not value.dtype.hasobject:
        return value.copy()  # ndarray, matrix, masked array: their own class, mask and all
    if module.startswith("pandas") and hasattr(value, "copy") and hasattr(value, "dtypes") \
            and not any(str(d) == "object" for d in getattr(value.dtypes, "tolist", lambda: [value.dtypes])()):
        return value.copy(deep=True)
    try:
        data = dump_value(value)
    except Exception:  # noqa: BLE001 - a lock, a connection: a resource, shared as freezing shares it
        return value
    return loads(data)


def freeze_output(value: Any) -> tuple:
    """Return ``(data, error)``: the value pickled now, or ``(None, None)`` for immutable values.

    ``error`` says why a value could not be pickled (it is then passed on as
    it is, and never reused).
    """
    if is_immutable(value):
        return None, None
    try:
        return dump_value(value), None
    except Exception as exc:  # noqa: BLE001 - a generator, a lock, an open file...
        text = str(exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
