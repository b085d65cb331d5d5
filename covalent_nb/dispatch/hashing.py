"""Digests of values and code: what decides whether a node's work is unchanged.

A digest is canonical (equal for values no code can tell apart), type-tagged
(``1``, ``1.0`` and ``True`` differ; so do a list and a tuple, an ``ndarray``
and an ``np.matrix``, dicts whose items come in another order) and identical
across processes (nothing depends on ``id``, ``hash`` or set iteration order).

Values are digested by a type-dispatch registry, :data:`value_digesters`, in
the spirit of ``dask.base.normalize_token``: one small function per kind of
value, looked up along the type's MRO, with digesters for numpy, pandas and
scikit-learn registered lazily when those libraries are first met.  A type
without a digester of its own is digested from its ``__reduce_ex__``: its class
and the state it pickles, so instances of notebook classes are keyed by the
class's code and their attributes.  Register your own::

    from covalent_nb.dispatch.hashing import value_digesters, digest

    @value_digesters.register(MyHandle)
    def _(handle, hasher):
        return digest("MyHandle", hasher.value(handle.path))

Code is digested by what it does and what it reaches (:func:`function_parts`):
its bytecode and constants (not its file, line numbers or docstring), its
name (names are data: ``df.agg`` labels, ``type(x).__name__``), defaults,
closure values and function attributes, and every global it *loads*, read off
the bytecode (an attribute such as ``np.random`` is not the global
``random``).  Library code (see :mod:`covalent_nb.provenance`) is keyed by name
and version, plus any notebook functions patched onto library classes; user
code by content, transitively: helpers by code, classes by their members
(properties, cached properties and the metaclass included), local modules by
the attributes read from them (or their whole state).  Imports inside a body
key the imported module's source; ``@name`` in strings (pandas ``query``)
keys that global.  Wrapped callables (``functools.lru_cache``,
``singledispatch`` with its registrations, ``functools.partial``,
``toolz.curry``, decorators without ``functools.wraps``, callable objects,
bound methods of any object) are keyed by what they wrap and what they are
bound to.

Whatever cannot be keyed faithfully raises :class:`Unhashable` with the
reason (a value that cannot be reduced, code that reads its globals
dynamically, a reached electron that opted out of reuse); the node is then
recomputed and says why.  Never guess.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import importlib.util
import os
import sys
import types
import weakref
from typing import Any, Callable, Optional

from .. import provenance
from ..workflow.electron import Electron
from ..workflow.lattice import Lattice

__all__ = ["Unhashable", "Hasher", "TypeRegistry", "value_digesters", "digest", "hash_value", "file_digest",
           "hash_code", "function_parts", "hash_function", "parts_digest", "describe_changes"]

_blake2b = hashlib.blake2b


class Unhashable(Exception):
    """A value or function cannot be digested faithfully, so its node cannot be reused."""


def digest(*parts: str) -> str:
    """Digest several strings into one short hex string."""
    return _blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class TypeRegistry:
    """Functions by type, found along the MRO; some registered lazily by top-level module.

    >>> registry = TypeRegistry()
    >>> @registry.register(int)
    ... def _(value, hasher): return "an int"
    >>> registry.lookup(bool) is registry.lookup(int)
    True
    """

    def __init__(self) -> None:
        self._by_type: dict = {}
        self._lazy: dict = {}
        # weak: every dispatch thaws its own copies of notebook classes; none may be kept alive
        self._cache: "weakref.WeakKeyDictionary[type, Callable]" = weakref.WeakKeyDictionary()

    def register(self, *kinds: type) -> Callable:
        """Decorator: use the function for *kinds* (and their subclasses)."""
        def decorate(function: Callable) -> Callable:
            for kind in kinds:
                self._by_type[kind] = function
            self._cache.clear()
            return function
        return decorate

    def register_lazy(self, toplevel: str) -> Callable:
        """Decorator: call the function (which registers digesters) when *toplevel* is first met."""
        def decorate(function: Callable) -> Callable:
            self._lazy[toplevel] = function
            return function
        return decorate

    def lookup(self, kind: type) -> Optional[Callable]:
        """The function for *kind*, or None."""
        found = self._cache.get(kind)
        if found is not None:
            return found
        top = (getattr(kind, "__module__", "") or "").partition(".")[0]
        loader = self._lazy.pop(top, None)
        if loader is not None:
            loader()
            self._cache.clear()
        for klass in kind.__mro__:
            found = self._by_type.get(klass)
            if found is not None:
                self._cache[kind] = found
                return found
        return None


#: The registry of value digesters: ``function(value, hasher) -> str``.
value_digesters = TypeRegistry()


class Hasher:
    """One hashing pass: digests values and code, memoised by identity for the pass.

    The memo keeps each digested object alive, so identities stay valid until
    the pass ends; one pass serves one dispatch's keys.
    """

    __slots__ = ("_memo", "_active", "_parts", "_active_parts", "_classes", "_active_classes")

    def __init__(self) -> None:
        self._memo: dict = {}
        self._active: set = set()  # values being digested (a cycle comes back to one)
        self._parts: dict = {}
        self._active_parts: set = set()
        self._classes: dict = {}
        self._active_classes: set = set()

    # -- values -------------------------------------------------------------------
    def value(self, value: Any) -> str:
        """Digest of *value* (raises :class:`Unhashable`)."""
        kind = type(value)
        atom = _ATOMS.get(kind)
        if atom is not None:
            return atom(value)
        oid = id(value)
        known = self._memo.get(oid)
        if known is not None:
            return known[0]
        if oid in self._active:
            return digest("cycle", kind.__qualname__)
        self._active.add(oid)
        try:
            digester = value_digesters.lookup(kind) or _reduced
            result = digester(value, self)
        except RecursionError:
            raise Unhashable(f"a {kind.__name__} nested too deeply to key") from None
        finally:
            self._active.discard(oid)
        self._memo[oid] = (result, value)
        return result

    def state(self, state: Any) -> str:
        """Digest of an object's pickled state: attribute order does not matter, values do."""
        if type(state) is dict:
            return digest("state", *sorted(f"{self.value(k)}={self.value(v)}" for k, v in state.items()))
        if type(state) is tuple and len(state) == 2 and (state[0] is None or type(state[0]) is dict):
            return digest("state+slots", self.state(state[0] or {}), self.state(state[1] or {}))
        return self.value(state)

    # -- classes --------------------------------------------------------------------
    def cls(self, cls: type) -> str:
        """Digest of a class: library classes by name and version, user classes by content."""
        oid = id(cls)
        known = self._classes.get(oid)
        if known is not None:
            return known[0]
        if oid in self._active_classes:
            return digest("recursive-class", cls.__qualname__)
        self._active_classes.add(oid)
        try:
            module = cls.__module__
            if module == "builtins":
                result = "builtin:" + cls.__qualname__
            elif provenance.is_library_module(module):
                result = digest("lib-class", _library_ref(cls), *self._patches(cls))
            else:
                result = self._user_class(cls)
        finally:
            self._active_classes.discard(oid)
        self._classes[oid] = (result, cls)
        return result

    def _user_class(self, cls: type) -> str:
        members = []
        for name, member in sorted(vars(cls).items()):
            if name in _SKIPPED_CLASS_MEMBERS:
                continue
            members.append(f"{name}={self.member(member)}")
        bases = [self.cls(base) for base in cls.__bases__ if base is not object]
        meta = type(cls)
        return digest("class", cls.__qualname__, *bases, "meta:" + (self.cls(meta) if meta is not type else ""),
                      *members)

    def member(self, member: Any) -> str:
        """Digest of a class member: descriptors by the functions they call."""
        if isinstance(member, (staticmethod, classmethod)):
            return digest(type(member).__name__, self.value(member.__func__))
        if isinstance(member, property):
            return digest("property", *(self.value(f) if f is not None else "-"
                                        for f in (member.fget, member.fset, member.fdel)))
        if isinstance(member, functools.cached_property):
            return digest("cached_property", self.value(member.func), str(member.attrname))
        return self.value(member)

    def _patches(self, cls: type) -> list:
        """User code set on a library class (a patched method, a registered accessor)."""
        found = []
        for klass in cls.__mro__:
            if klass is object or not provenance.is_library_module(klass.__module__):
                continue
            for name, member in list(vars(klass).items()):
                if _is_user_object(member):
                    found.append(f"{klass.__qualname__}.{name}={self.member(member)}")
        return found

    # -- code -------------------------------------------------------------------------
    def function_parts(self, function: Any) -> dict:
        """The named digests that make up a function's identity (see :func:`function_parts`)."""
        function = _unwrap(function)
        oid = id(function)
        known = self._parts.get(oid)
        if known is not None:
            return known[0]
        if oid in self._active_parts:
            return {"recursive": getattr(function, "__qualname__", "?")}
        self._active_parts.add(oid)
        try:
            parts = self._function_parts(function)
        finally:
            self._active_parts.discard(oid)
        self._parts[oid] = (parts, function)
        return parts

    def _function_parts(self, function: Any) -> dict:
        if isinstance(function, types.MethodType):
            return {"self": self.value(function.__self__), **self.function_parts(function.__func__)}
        if isinstance(function, type):
            return {"class": self.cls(function)}
        if not isinstance(function, types.FunctionType):
            return {"callable": self.value(function)}
        module = function.__module__
        if provenance.is_singledispatch(function):
            return {"singledispatch": self._singledispatch(function)}
        if provenance.is_library_module(module) and sys.modules.get((module or "").partition(".")[0]):
            return {"lib": _library_ref(function)}
        code = function.__code__
        scope = function.__globals__
        why = provenance.dynamic_lookup(code, scope)
        if why:
            raise Unhashable(f"{function.__qualname__} {why}")
        parts = {"code": hash_code(code, function.__doc__, self)}
        if function.__defaults__ or function.__kwdefaults__:
            parts["defaults"] = self._named("defaults", (function.__defaults__, function.__kwdefaults__))
        if function.__closure__:
            for name, cell in zip(code.co_freevars, function.__closure__):
                try:
                    contents = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                parts[f"closure:{name}"] = self._named(f"closure value {name!r}", contents)
        attributes = {k: v for k, v in vars(function).items() if k not in _SKIPPED_FUNCTION_ATTRS}
        if attributes:
            parts["attributes"] = self._named("function attributes", attributes)
        read = provenance.attributes_read(code)
        for name in provenance.global_names(code):
            if name not in scope:
                continue  # a builtin, or a global the function only assigns
            value = scope[name]
            target = _unwrap(value)
            if isinstance(target, types.ModuleType) and not provenance.is_library_module(target.__name__):
                used = read.get(name)
                if used is not None:
                    for attr in used:
                        parts[f"global:{name}.{attr}"] = self._named(
                            f"global {name}.{attr}", getattr(value, attr, _Missing))
                    continue
            label = "helper" if isinstance(target, (types.FunctionType, type)) else "global"
            parts[f"{label}:{name}"] = self._named(f"global {name!r}", value)
        for name in provenance.at_names(code):
            if name in scope:
                parts[f"global:@{name}"] = self._named(f"global {name!r} (read as @{name})", scope[name])
        for module_name in provenance.imported_modules(code):
            parts[f"import:{module_name}"] = _imported_module_digest(module_name)
        return parts

    def _singledispatch(self, function: Any) -> str:
        registry = function.registry
        entries = sorted(f"{self.cls(kind)}={self.value(impl)}" for kind, impl in registry.items()
                         if kind is not object)
        return digest("singledispatch", self.value(function.__wrapped__), *entries)

    def _named(self, what: str, value: Any) -> str:
        try:
            return self.value(value)
        except Unhashable as exc:
            raise Unhashable(f"{what}: {exc}") from None

    def module(self, module: types.ModuleType) -> str:
        """Digest of a module: libraries by version, user modules by their state."""
        name = module.__name__
        if provenance.is_library_module(name):
            return digest("module", name, provenance.library_version(name))
        state = []
        for key, member in sorted(vars(module).items()):
            if key.startswith("__") or isinstance(member, types.ModuleType):
                continue
            state.append(f"{key}={self._named(f'{name}.{key}', member)}")
        return digest("user-module", name, *state)


class _MissingType:
    def __repr__(self) -> str:
        return "<missing>"

    def __reduce__(self):
        return "_Missing"


_Missing = _MissingType()

_SKIPPED_CLASS_MEMBERS = frozenset({"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__",
                                    "__firstlineno__", "__static_attributes__", "_abc_impl",
                                    "__annotate_func__", "__annotations_cache__"})
_SKIPPED_FUNCTION_ATTRS = frozenset({"__wrapped__"})



def _is_user_object(member: Any) -> bool:
    """True for a function, class or instance defined by user code (not a library)."""
    if isinstance(member, (staticmethod, classmethod)):
        member = member.__func__
    elif isinstance(member, property):
        member = member.fget
    if isinstance(member, (types.FunctionType, type)):
        module = getattr(member, "__module__", None)
    else:
        module = getattr(type(member), "__module__", None)
        inner = getattr(member, "__dict__", None)
        if provenance.is_library_module(module) and isinstance(inner, dict):
            # e.g. pandas' CachedAccessor holding a user's accessor class
            return any(isinstance(v, type) and not provenance.is_library_module(v.__module__)
                       for v in inner.values())
    return module is not None and not provenance.is_library_module(module)


def _library_ref(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"lib:{module}:{name}@{provenance.library_version(module)}"


def _unwrap(function: Any) -> Any:
    while True:
        if isinstance(function, Electron):
            function = function.function
        elif isinstance(function, Lattice):
            function = function.workflow_function
        else:
            return function


def _imported_module_digest(module_name: str) -> str:
    """Digest of a module imported inside a body: libraries by version, user modules by source."""
    if provenance.is_library_module(module_name):
        return digest("module", module_name.partition(".")[0],
                      provenance.library_version(module_name))
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if path is None:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            spec = None
        path = getattr(spec, "origin", None)
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            return digest("module-source", module_name, _blake2b(handle.read(), digest_size=16).hexdigest())
    raise Unhashable(f"it imports {module_name!r}, whose source cannot be found")


# -- values ------------------------------------------------------------------------------
def _atom_int(value: int) -> str:
    if -1 << 60 < value < 1 << 60:
        return "int:%d" % value
    # bytes, not str(): Python refuses str() of an int of more than 4,300 digits
    size = (value.bit_length() + 8) // 8
    return digest("int", value.to_bytes(size, "little", signed=True).hex())


def _atom_str(value: str) -> str:
    return "str:" + value if len(value) <= 32 else digest("str", value)


_ATOMS: dict = {
    int: _atom_int,
    bool: lambda v: "bool:" + repr(v),
    float: lambda v: "float:" + repr(v),
    complex: lambda v: "complex:" + repr(v),
    type(None): lambda v: "none",
    str: _atom_str,
    bytes: lambda v: digest("bytes", v.hex()),
    type(Ellipsis): lambda v: "ellipsis",
}


@value_digesters.register(list, tuple)
def _sequence(value: Any, hasher: Hasher) -> str:
    if type(value) not in (list, tuple):
        return _reduced(value, hasher)  # namedtuples and list subclasses: their class counts
    return digest(type(value).__name__, *(hasher.value(v) for v in value))


@value_digesters.register(dict)
def _mapping(value: dict, hasher: Hasher) -> str:
    if type(value) is not dict:
        return _reduced(value, hasher)
    # Insertion order is kept: code that iterates a dict can tell two orders apart.
    return digest("dict", *(f"{hasher.value(k)}={hasher.value(v)}" for k, v in value.items()))


@value_digesters.register(set, frozenset)
def _set(value: Any, hasher: Hasher) -> str:
    if type(value) not in (set, frozenset):
        return _reduced(value, hasher)
    return digest(type(value).__name__, *sorted(hasher.value(v) for v in value))


@value_digesters.register(types.MappingProxyType)
def _mappingproxy(value: types.MappingProxyType, hasher: Hasher) -> str:
    return digest("mappingproxy", hasher.value(dict(value)))


@value_digesters.register(type)
def _class(value: type, hasher: Hasher) -> str:
    return hasher.cls(value)


@value_digesters.register(types.FunctionType)
def _function(value: types.FunctionType, hasher: Hasher) -> str:
    return parts_digest(hasher.function_parts(value))


@value_digesters.register(types.MethodType)
def _method(value: types.MethodType, hasher: Hasher) -> str:
    return digest("method", hasher.value(value.__self__), hasher.value(value.__func__))


@value_digesters.register(types.BuiltinFunctionType)
def _builtin(value: Any, hasher: Hasher) -> str:
    bound = value.__self__
    if bound is None or isinstance(bound, types.ModuleType):
        return digest(_library_ref(value))
    # dict.get, "{:.2f}".format, re.compile(...).sub, W.dot: what they are bound to counts
    return digest("bound", value.__name__, hasher.value(bound))


@value_digesters.register(type(str.upper), type(str.__add__), type("".__add__))
def _descriptor(value: Any, hasher: Hasher) -> str:
    bound = getattr(value, "__self__", None)
    if bound is not None and not isinstance(bound, type):
        return digest("bound", value.__name__, hasher.value(bound))
    return digest("descriptor", getattr(value, "__qualname__", repr(value)),
                  hasher.cls(getattr(value, "__objclass__", type(bound) if bound is not None else object)))


@value_digesters.register(types.ModuleType)
def _module(value: types.ModuleType, hasher: Hasher) -> str:
    return hasher.module(value)


@value_digesters.register(functools.partial)
def _partial(value: functools.partial, hasher: Hasher) -> str:
    return digest("partial", hasher.cls(type(value)), hasher.value(value.func), hasher.value(value.args),
                  hasher.state(dict(value.keywords)), hasher.state(vars(value)))




@value_digesters.register_lazy("toolz")
def _toolz_types() -> None:
    import toolz

    @value_digesters.register(toolz.curry)
    def _curry(value: Any, hasher: Hasher) -> str:
        # toolz pickles a decorated module-level curry by name: key what it wraps instead
        return digest("curry", hasher.cls(type(value)), hasher.value(value.func), hasher.value(value.args),
                      hasher.state(dict(value.keywords or {})))


@value_digesters.register(provenance.LRU_CACHE_WRAPPER)
def _lru_cache(value: Any, hasher: Hasher) -> str:
    return digest("lru_cache", hasher.value(value.__wrapped__), repr(value.cache_parameters()))


def _register_workflow_types() -> None:
    @value_digesters.register(Electron)
    def _electron(value: Electron, hasher: Hasher) -> str:
        metadata = value.metadata or {}
        if not metadata.get("reusable", True):
            raise Unhashable(f"it calls electron {value.__name__!r}, which opted out of reuse "
                             "(reusable=False)")
        return digest("electron", hasher.value(value.function), hooks_digest(metadata, hasher),
                      reuse_key_digest(metadata, hasher))

    @value_digesters.register(Lattice)
    def _lattice(value: Lattice, hasher: Hasher) -> str:
        return digest("lattice", hasher.value(value.workflow_function),
                      hooks_digest(value.metadata, hasher))


_register_workflow_types()


def _reduced(value: Any, hasher: Hasher) -> str:
    """Digest any other object by its class and what it pickles (``__reduce_ex__``)."""
    kind = type(value)
    try:
        reducer = copyreg.dispatch_table.get(kind)
        reduced = reducer(value) if reducer is not None else value.__reduce_ex__(4)
    except Exception as exc:
        raise Unhashable(f"a {kind.__name__} value cannot be keyed ({type(exc).__name__}: {exc})") from None
    if isinstance(reduced, str):  # a global singleton, by name
        return digest("global", hasher.cls(kind), reduced)
    constructor, args, *rest = tuple(reduced) + (None,) * (5 - len(reduced))
    parts = [hasher.cls(kind), hasher.value(constructor) if constructor is not _NEWOBJ else "newobj",
             hasher.value(args)]
    state, listitems, dictitems = rest[0], rest[1], rest[2]
    if state is not None:
        parts.append(hasher.state(state))
    if listitems is not None:
        parts.append(hasher.value(list(listitems)))
    if dictitems is not None:
        parts.append(hasher.value(dict(dictitems)))
    return digest("object", *parts)


_NEWOBJ = copyreg.__newobj__


@value_digesters.register_lazy("numpy")
def _numpy_types() -> None:
    import numpy as np

    @value_digesters.register(np.ndarray)
    def _ndarray(value: Any, hasher: Hasher) -> str:
        kind = type(value)
        tag = "ndarray" if kind is np.ndarray else hasher.cls(kind)  # np.matrix, MaskedArray, ...
        dtype = value.dtype
        if dtype.hasobject:
            body = digest(*(hasher.value(v) for v in value.ravel().tolist()))
        else:
            body = _blake2b(np.ascontiguousarray(value).view(np.uint8).data, digest_size=16).hexdigest() \
                if value.size else "empty"
        extra = []
        if isinstance(value, np.ma.MaskedArray):
            extra = [hasher.value(np.ma.getmaskarray(value).view(np.ndarray)),
                     hasher.value(value.fill_value)]
        return digest(tag, repr(dtype.descr) + dtype.str, repr(value.shape), body, *extra)

    @value_digesters.register(np.generic)
    def _scalar(value: Any, hasher: Hasher) -> str:
        if value.dtype.hasobject:
            return digest("npscalar-object", hasher.value(value.item()))
        return digest("npscalar", repr(value.dtype.descr) + value.dtype.str, value.tobytes().hex())

    @value_digesters.register(np.dtype)
    def _dtype(value: Any, hasher: Hasher) -> str:
        return digest("dtype", repr(value.descr), value.str)

    @value_digesters.register(np.ufunc)
    def _ufunc(value: Any, hasher: Hasher) -> str:
        if getattr(np, value.__name__, None) is value:
            return digest("ufunc", value.__name__, np.__version__)
        raise Unhashable(f"the numpy ufunc {value.__name__!r} (made by np.frompyfunc?) has no code "
                         "to key")


@value_digesters.register_lazy("pandas")
def _pandas_types() -> None:
    import pandas as pd

    def _values(obj: Any, hasher: Hasher) -> str:
        try:
            hashed = pd.util.hash_pandas_object(obj, index=False, categorize=True)
            return _blake2b(hashed.to_numpy().tobytes(), digest_size=16).hexdigest()
        except TypeError:  # unhashable cells (lists, dicts): key them one by one
            return hasher.value(obj.to_numpy().tolist())

    @value_digesters.register(pd.DataFrame)
    def _frame(value: Any, hasher: Hasher) -> str:
        columns = [digest(hasher.value(name), str(dtype), _values(value.iloc[:, i], hasher))
                   for i, (name, dtype) in enumerate(value.dtypes.items())]
        return digest(hasher.cls(type(value)), hasher.value(value.columns), hasher.value(value.index),
                      hasher.value(dict(value.attrs)), *columns)

    @value_digesters.register(pd.Series)
    def _series(value: Any, hasher: Hasher) -> str:
        return digest(hasher.cls(type(value)), hasher.value(value.name), str(value.dtype),
                      hasher.value(value.index), hasher.value(dict(value.attrs)), _values(value, hasher))

    @value_digesters.register(pd.Index)
    def _index(value: Any, hasher: Hasher) -> str:
        names = [hasher.value(n) for n in value.names]
        return digest(hasher.cls(type(value)), str(value.dtype), *names,
                      _values(value.to_series(index=range(len(value))), hasher))


# -- code ----------------------------------------------------------------------------------
def hash_code(code: types.CodeType, docstring: Any = None, hasher: Optional[Hasher] = None) -> str:
    """Digest a code object's behaviour (not its file, line numbers or docstring)."""
    hasher = hasher or Hasher()
    consts = []
    for index, const in enumerate(code.co_consts):
        if isinstance(const, types.CodeType):
            consts.append("code:" + hash_code(const, None, hasher))
        elif index == 0 and docstring is not None and const == docstring:
            consts.append("none")  # a docstring sits where None would
        else:
            consts.append(hasher.value(const))
    return digest(code.co_name, code.co_code.hex(), *consts, repr(code.co_names), repr(code.co_varnames),
                  repr(code.co_freevars), repr(code.co_cellvars),
                  repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                        code.co_flags)))


def hooks_digest(metadata: Optional[dict], hasher: Optional[Hasher] = None) -> str:
    """Digest of an electron's dependencies and call_before/call_after hooks ('' when none)."""
    if not metadata:
        return ""
    hasher = hasher or Hasher()
    hooks = metadata.get("hooks") or {}
    deps = hooks.get("deps") or {}
    parts = []
    for kind in ("bash", "pip"):
        if deps.get(kind) is not None:
            parts.append(repr(deps[kind].to_dict()))
    for phase in ("call_before", "call_after"):
        for hook in hooks.get(phase) or ():
            func = getattr(hook, "func", None)
            parts.append(phase + ":" + (hasher.value(func) if func is not None else "")
                         + hasher.value((tuple(getattr(hook, "args", ())), dict(getattr(hook, "kwargs", {}))))
                         + getattr(hook, "retval_keyword", ""))
    return digest(*parts) if parts else ""


def reuse_key_digest(metadata: Optional[dict], hasher: Optional[Hasher] = None) -> str:
    """Digest of what an electron's ``reuse_key`` returns now ('' when it has none)."""
    make_key = (metadata or {}).get("reuse_key")
    if make_key is None:
        return ""
    try:
        extra = make_key()
    except Exception as exc:
        raise Unhashable(f"its reuse_key raised {type(exc).__name__}: {exc}") from None
    try:
        return (hasher or Hasher()).value(extra)
    except Unhashable as exc:
        raise Unhashable(f"what its reuse_key returned cannot be keyed: {exc}") from None


def function_parts(function: Any, hasher: Optional[Hasher] = None) -> dict:
    """Return the named digests that make up a function's identity.

    Keys are ``code``, ``defaults``, ``closure:<name>``, ``attributes``,
    ``helper:<name>`` / ``global:<name>`` (``global:<module>.<attr>`` for an
    attribute of a local module, ``global:@<name>`` for a name read from a
    string), ``import:<module>`` for user functions; ``lib`` for installed
    ones; ``class``, ``callable`` or ``singledispatch`` for the rest.  Raises
    :class:`Unhashable` naming what cannot be digested.
    """
    return (hasher or Hasher()).function_parts(function)


def file_digest(*paths: "str | os.PathLike") -> str:
    """Digest the contents of files (a missing file digests as missing), for ``reuse_key``.

    >>> @ct.electron(reuse_key=lambda: ct.file_digest("data.csv"))   # doctest: +SKIP
    ... def load(path): ...
    """
    parts = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                hasher = _blake2b(digest_size=16)
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(chunk)
            parts.append(f"{os.fspath(path)}={hasher.hexdigest()}")
        except FileNotFoundError:
            parts.append(f"{os.fspath(path)}=missing")
    return digest("files", *parts)


def hash_value(value: Any) -> str:
    """Digest a value; values no code can tell apart give equal digests."""
    return Hasher().value(value)


def parts_digest(parts: dict) -> str:
    """Digest a :func:`function_parts` dict into one string."""
    return digest(*(f"{k}={v}" for k, v in sorted(parts.items())))


def hash_function(function: Any) -> str:
    """Digest a function (or electron, or lattice) by :func:`function_parts`."""
    return parts_digest(function_parts(function))


def describe_changes(old: dict, new: dict, name: str) -> str:
    """Say in words which parts of a function differ, e.g. ``helper 'scale'``."""
    changes = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) == new.get(key):
            continue
        if key == "code":
            changes.append(f"body of {name}")
        elif key == "defaults":
            changes.append(f"defaults of {name}")
        elif key == "attributes":
            changes.append(f"attributes of {name}")
        elif key.startswith("closure:"):
            changes.append(f"closure value {key[8:]!r}")
        elif key.startswith(("global:", "helper:", "import:")):
            label, _, global_name = key.partition(":")
            label = {"import": "imported module"}.get(label, label)
            changes.append(f"{label} {global_name!r}" + (" (added)" if key not in old else
                                                        " (removed)" if key not in new else ""))
        elif key == "lib":
            changes.append(f"library version ({new.get(key) or old.get(key)})")
        elif key == "hooks":
            changes.append("dependencies or call_before/call_after hooks")
        elif key == "reuse_key":
            changes.append("what its reuse_key returns")
        else:
            changes.append(key)
    return ", ".join(changes) or "definition"
