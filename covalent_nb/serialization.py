"""Turning values into bytes another process can load, and back, without side effects.

:func:`dumps` tries the standard library's :mod:`pickle` first, because
cloudpickle costs about 5 µs per call even for an ``int`` (10,000 outputs:
50 ms), and falls back to cloudpickle when plain pickling fails or when the
bytes name ``__main__``: plain pickle stores a notebook's functions and classes
*by reference* to ``__main__``, which another process cannot resolve, while
cloudpickle stores them by value.  Everything else (importable modules)
pickles by reference in both, so the fast path never changes what loads.

:func:`loads` (through :class:`Thawer`) never maps a class pickled by value
back onto the notebook's live class, as cloudpickle's own loading does.

Buffers (numpy arrays, anything pickled through ``PickleBuffer``) are never
searched for ``__main__``: raw data cannot name a module, and searching a
1 GB array's pickle took 0.35 s, a third of pickling it.  A first pass pickles
with the buffers out of band (copying none of them) and searches what is
left; a value that has buffers is then pickled by a ``Pickler`` that hands
each large buffer over as it is, so the buffers are copied once, into the
result, and not again as ``pickle.dumps`` grows its output.  The bytes are
the same as ``pickle.dumps`` gives.

The base of every layer: it imports nothing of the package.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Optional

import cloudpickle
import cloudpickle.cloudpickle as _cp

__all__ = ["dumps", "loads", "Thawer", "reason_of", "by_value_registry_in_use", "IMMUTABLE", "is_immutable"]

_MAIN = b"__main__"


def by_value_registry_in_use() -> bool:
    # Modules registered with cloudpickle.register_pickle_by_value must be
    # pickled by value, which plain pickle would not do.
    listing = getattr(cloudpickle, "list_registry_pickle_by_value", None)
    return bool(listing()) if listing is not None else False


def dumps(value: Any, *, by_value_registry: Optional[bool] = None) -> bytes:
    """Pickle *value* so that any process with the same libraries can load it.

    Raises whatever cloudpickle raises when the value cannot be pickled.
    *by_value_registry* lets a caller that pickles many values check
    cloudpickle's by-value registry once instead of per value.
    """
    if by_value_registry is None:
        by_value_registry = by_value_registry_in_use()
    if not by_value_registry:
        try:
            data = _plain_pickle(value)
        except Exception:  # lambdas, local classes, ...: cloudpickle knows how
            data = None
        if data is not None:
            return data
    return cloudpickle.dumps(value, protocol=5)


def _plain_pickle(value: Any) -> Optional[bytes]:
    """*value* pickled by the standard library, or None when the bytes would name ``__main__``."""
    buffers: list = []
    # Buffers out of band: this pass copies none of them, and what it writes is the rest.
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    if _MAIN in head:
        return None
    if not buffers:
        return head  # no buffers: the very bytes of an in-band pickle
    parts = _Parts()
    pickle.Pickler(parts, protocol=5).dump(value)
    # The large buffers arrive as themselves (not bytes): data, never a module name.
    if _MAIN in b"".join(part for part in parts if type(part) is bytes):
        return None
    return b"".join(parts)


class _Parts(list):
    """What a ``Pickler`` writes: bytes for the opcodes, each buffer of 64 KiB or more as its own object."""

    __slots__ = ()
    write = list.append


def _fresh_skeleton_class(type_constructor, name, bases, type_kwargs, class_tracker_id, extra):
    return _cp._make_skeleton_class(type_constructor, name, bases, type_kwargs, None, extra)


def _fresh_skeleton_enum(bases, name, qualname, members, module, class_tracker_id, extra):
    return _cp._make_skeleton_enum(bases, name, qualname, members, module, None, extra)


class Thawer(pickle.Unpickler):
    """An unpickler that builds fresh copies of classes pickled by value.

    cloudpickle's own loading maps a class it pickled in this process back
    onto the live class and writes the pickled attributes over the live ones:
    loading an old dispatch would silently revert ``Cfg.scale = 3`` in the
    user's namespace.  Here such a class is always built anew.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == "cloudpickle.cloudpickle":
            if name == "_make_skeleton_class":
                return _fresh_skeleton_class
            if name == "_make_skeleton_enum":
                return _fresh_skeleton_enum
        return super().find_class(module, name)


def loads(data: bytes) -> Any:
    """Unpickle bytes written by :func:`dumps` (never touching the notebook's classes)."""
    if b"cloudpickle" not in data:
        return pickle.loads(data)  # the fast path: no class pickled by value inside
    return Thawer(io.BytesIO(data)).load()


def reason_of(exc: BaseException) -> str:
    """A one-line reason from an exception, for records and messages."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


#: Types whose values no code can change: shared as they are, never copied.
IMMUTABLE = frozenset({int, float, bool, complex, str, bytes, type(None), range, type(Ellipsis)})


def is_immutable(value: Any) -> bool:
    """True for values no code can change: numbers, strings, bytes, and tuples or frozensets of them."""
    kind = type(value)
    if kind in IMMUTABLE:
        return True
    if kind is tuple or kind is frozenset:
        return all(is_immutable(v) for v in value)
    return False
