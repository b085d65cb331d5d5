"""Digests of values and code: what decides whether a node's work is unchanged.

Every kind of thing has its own small function:

* :func:`hash_value` for argument values (scalars, containers, numpy arrays,
  functions, anything cloudpickle can serialise);
* :func:`hash_code` for a code object, normalised: its bytecode, constants and
  names, but not its file name, line numbers, function name or docstring, so an
  edited comment or a re-run of the same cell changes nothing;
* :func:`function_parts` for a function: its code, defaults, closure values and
  every global it reaches, transitively (notebook helpers by their code,
  constants by value, installed libraries by name and version).

A value that cannot be hashed raises :class:`Unhashable` with the reason; the
caller makes the node not reusable instead of guessing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
import sysconfig
import types
from typing import Any, Optional

import cloudpickle

_blake2b = hashlib.blake2b

__all__ = ["Unhashable", "digest", "hash_value", "hash_code", "function_parts",
           "hash_function", "parts_digest", "describe_changes"]


class Unhashable(Exception):
    """A value or function cannot be digested, so its node cannot be reused."""


def digest(*parts: str) -> str:
    """Digest several strings into one short hex string."""
    return _blake2b("\x00".join(parts).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# -- where code comes from ------------------------------------------------------
_LIBRARY_DIRS = tuple(os.path.realpath(p) for p in {
    sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")} if p)
_module_kind_cache: dict = {}


def _module_is_library(module_name: Optional[str]) -> bool:
    """True when a module is installed (stdlib or site-packages), not the user's own code."""
    if not module_name or module_name == "__main__":
        return False
    top = module_name.split(".")[0]
    known = _module_kind_cache.get(top)
    if known is not None:
        return known
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if module is None:
        result = True
    elif path is None:
        result = top in sys.builtin_module_names or top != "__main__"
    else:
        result = os.path.realpath(path).startswith(_LIBRARY_DIRS)
    _module_kind_cache[top] = result
    return result


_version_cache: dict = {}


def _version_of(module_name: str) -> str:
    top = module_name.split(".")[0]
    version = _version_cache.get(top)
    if version is None:
        module = sys.modules.get(top)
        version = getattr(module, "__version__", None)
        if not isinstance(version, str):
            try:
                version = importlib.metadata.version(top)
            except Exception:
                version = f"python-{sys.version_info[0]}.{sys.version_info[1]}"
        _version_cache[top] = version
    return version


def _library_ref(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"lib:{module}:{name}@{_version_of(module)}"


# -- values -----------------------------------------------------------------------
_SCALARS = (type(None), bool, int, float, complex)


def hash_value(value: Any, _seen: Optional[set] = None) -> str:
    """Digest a value; equal values give equal digests."""
    kind = type(value)
    if kind is int:
        return _blake2b(b"int\x00%d" % value, digest_size=16).hexdigest()
    if kind in _SCALARS:
        return digest(kind.__name__, repr(value))
    if kind is str:
        return digest("str", value)
    if kind is bytes:
        return digest("bytes", value.hex())
    if kind in (list, tuple):
        return digest(kind.__name__, *(hash_value(v, _seen) for v in value))
    if kind in (set, frozenset):
        return digest(kind.__name__, *sorted(hash_value(v, _seen) for v in value))
    if kind is dict:
        return digest("dict", *sorted(hash_value(k, _seen) + hash_value(v, _seen)
                                      for k, v in value.items()))
    module = getattr(kind, "__module__", "") or ""
    if module.startswith("numpy"):
        return _hash_numpy(value)
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)) or _is_workflow_object(value):
        return hash_function(value)
    if isinstance(value, types.ModuleType):
        return _hash_module(value)
    try:
        return digest("pickle", module, kind.__qualname__, cloudpickle.dumps(value).hex())
    except Exception as exc:
        raise Unhashable(f"a {kind.__name__} value cannot be pickled ({type(exc).__name__}: {exc})") from None


def _hash_numpy(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return digest("ndarray-object", repr(value.shape),
                          *(hash_value(v) for v in value.ravel().tolist()))
        return digest("ndarray", value.dtype.str, repr(value.shape),
                      hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16).hexdigest())
    if isinstance(value, np.generic):
        return digest("npscalar", value.dtype.str, repr(value.item()))
    return digest("pickle", cloudpickle.dumps(value).hex())


def _hash_module(module: types.ModuleType) -> str:
    name = module.__name__
    if _module_is_library(name):
        return digest("module", name, _version_of(name))
    path = getattr(module, "__file__", None)
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            return digest("user-module", name, hashlib.blake2b(handle.read(), digest_size=16).hexdigest())
    return digest("module", name)


def _is_workflow_object(value: Any) -> bool:
    from ..workflow.electron import Electron
    from ..workflow.lattice import Lattice

    return isinstance(value, (Electron, Lattice))


# -- code ---------------------------------------------------------------------------
def hash_code(code: types.CodeType, docstring: Any = None) -> str:
    """Digest a code object's behaviour (not its location, name or docstring)."""
    consts = []
    for index, const in enumerate(code.co_consts):
        if isinstance(const, types.CodeType):
            consts.append("code:" + hash_code(const))
        elif index == 0 and docstring is not None and const == docstring:
            consts.append("NoneType:None")  # a docstring sits where None would
        else:
            consts.append(f"{type(const).__name__}:{const!r}")
    return digest(code.co_code.hex(), *consts, repr(code.co_names), repr(code.co_varnames),
                  repr(code.co_freevars), repr(code.co_cellvars),
                  repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                        code.co_flags)))


def _global_names(code: types.CodeType, names: Optional[list] = None) -> list:
    names = [] if names is None else names
    names.extend(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _global_names(const, names)
    return names


def _unwrap(function: Any) -> Any:
    from ..workflow.electron import Electron
    from ..workflow.lattice import Lattice

    while True:
        if isinstance(function, Electron):
            function = function.function
        elif isinstance(function, Lattice):
            function = function.workflow_function
        else:
            return function


def function_parts(function: Any, _stack: Optional[set] = None) -> dict:
    """Return the named digests that make up a function's identity.

    Keys are ``code``, ``defaults``, ``closure:<name>`` and ``global:<name>``
    for notebook (user) functions; ``lib`` for installed ones.  Raises
    :class:`Unhashable` naming the global or closure value that cannot be
    digested.
    """
    function = _unwrap(function)
    if isinstance(function, types.MethodType):
        return {"self": hash_value(function.__self__), **function_parts(function.__func__, _stack)}
    if not isinstance(function, types.FunctionType):
        if isinstance(function, type):
            return {"class": _hash_class(function, _stack)}
        if callable(function) and _module_is_library(getattr(type(function), "__module__", None)) \
                and hasattr(function, "__qualname__"):
            return {"lib": _library_ref(function)}
        if isinstance(function, types.BuiltinFunctionType):
            return {"lib": _library_ref(function)}
        return {"callable": hash_value(function)}
    # A function whose module is not imported here came by value (cloudpickle,
    # e.g. from a stored dispatch): it is user code, digest it as such.
    if (sys.modules.get((function.__module__ or "").split(".")[0]) is not None
            and _module_is_library(function.__module__)):
        return {"lib": _library_ref(function)}
    stack = set() if _stack is None else _stack
    stack.add(id(function))
    try:
        parts = {"code": hash_code(function.__code__, function.__doc__)}
        if function.__defaults__ or function.__kwdefaults__:
            parts["defaults"] = _hash_named("default", (function.__defaults__, function.__kwdefaults__))
        if function.__closure__:
            for name, cell in zip(function.__code__.co_freevars, function.__closure__):
                try:
                    contents = cell.cell_contents
                except ValueError:  # an empty cell
                    continue
                parts[f"closure:{name}"] = _hash_reached(contents, f"closure value {name!r}", stack)
        scope = function.__globals__
        for name in dict.fromkeys(_global_names(function.__code__)):
            if name in scope:
                value = scope[name]
                label = "helper" if isinstance(_unwrap(value), types.FunctionType) else "global"
                parts[f"{label}:{name}"] = _hash_reached(value, f"global {name!r}", stack)
        return parts
    finally:
        stack.discard(id(function))


def _hash_named(what: str, value: Any) -> str:
    try:
        return hash_value(value)
    except Unhashable as exc:
        raise Unhashable(f"{what} cannot be hashed: {exc}") from None


def _hash_reached(value: Any, what: str, stack: set) -> str:
    """Digest something a function reaches: functions by code, the rest by value."""
    target = _unwrap(value)
    if isinstance(target, types.FunctionType):
        if id(target) in stack:
            return digest("recursive", target.__qualname__)
        return parts_digest(function_parts(target, stack))
    if isinstance(target, types.ModuleType):
        return _hash_module(target)
    if isinstance(target, type):
        return _hash_class(target, stack)
    if isinstance(target, types.BuiltinFunctionType):
        return digest(_library_ref(target))
    try:
        return hash_value(value)
    except Unhashable as exc:
        raise Unhashable(f"{what} cannot be hashed: {exc}") from None


def _hash_class(cls: type, stack: Optional[set]) -> str:
    if _module_is_library(cls.__module__):
        return digest(_library_ref(cls))
    stack = set() if stack is None else stack
    if id(cls) in stack:
        return digest("recursive-class", cls.__qualname__)
    stack.add(id(cls))
    try:
        members = []
        for name, member in sorted(vars(cls).items()):
            if name in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
                continue
            inner = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
            if isinstance(inner, property):
                inner = inner.fget
            if isinstance(inner, types.FunctionType):
                members.append(name + "=" + parts_digest(function_parts(inner, stack)))
            else:
                try:
                    members.append(name + "=" + hash_value(inner))
                except Unhashable:
                    members.append(name + "=?" + type(inner).__name__)
        bases = [_hash_class(b, stack) for b in cls.__bases__ if b is not object]
        return digest("class", *bases, *members)
    finally:
        stack.discard(id(cls))


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
        elif key.startswith("closure:"):
            changes.append(f"closure value {key[8:]!r}")
        elif key.startswith(("global:", "helper:")):
            label, _, global_name = key.partition(":")
            changes.append(f"{label} {global_name!r}" + (" (added)" if key not in old else
                                                        " (removed)" if key not in new else ""))
        elif key == "lib":
            changes.append(f"library version ({new.get(key) or old.get(key)})")
        elif key == "hooks":
            changes.append("dependencies or call_before/call_after hooks")
        else:
            changes.append(key)
    return ", ".join(changes) or "definition"
