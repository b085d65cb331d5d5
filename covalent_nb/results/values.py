"""Turning values into bytes another process can load, and naming what failed.

:func:`~covalent_nb.serialization.dumps` is the one serialiser of the store
(re-exported here with :func:`loads`, :class:`Thawer` and :func:`reason_of`).

A stored value is referred to by a *value reference*, a few bytes:
``b"=" + pickled bytes`` for a value kept inline in the database, or
``b"@" + digest`` for one kept in a content-addressed blob file
(:mod:`covalent_nb.results.blobs`).
"""

from __future__ import annotations

from typing import Any

from ..serialization import Thawer, dumps, loads, reason_of

__all__ = ["StoreError", "StoreUnavailable", "sql_text", "NotStored", "UnstoredFunction", "dumps", "loads", "Thawer", "INLINE", "BLOB",
           "reason_of"]

INLINE = b"="
BLOB = b"@"



class StoreError(RuntimeError):
    """A stored record or value cannot be read (missing, corrupted or unloadable)."""


class StoreUnavailable(StoreError):
    """The store cannot be written now (disk full, read-only, damaged); the records wait in memory.

    The store's writer keeps what it could not write and tries again, with growing
    pauses, until the cause goes away; nothing of the dispatch in the kernel is lost.
    """


def sql_text(value: Any) -> Any:
    """*value* as SQLite can store it: a ``str`` that is not valid UTF-8 gets its bad characters escaped.

    ``os.fsdecode`` turns a Latin-1 file name into lone surrogates (``'caf\\udce9'``),
    which SQLite's UTF-8 text refuses; they are kept as ``\\udce9`` escapes.
    Anything else is returned as it is.
    """
    if type(value) is str and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class NotStored:
    """Stands in for an output the store could not keep (it could not be pickled).

    The live result in the kernel that ran the dispatch keeps the real value;
    a result loaded from the store has this object instead, and its ``reason``
    says why.  A redispatch with reuse recomputes such a node.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"<not stored: {self.reason}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotStored) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(("NotStored", self.reason))

    def __reduce__(self):
        return (NotStored, (self.reason,))


class UnstoredFunction:
    """Stands in for a task function that could not be pickled when its dispatch was stored.

    The graph still loads (for display and for reading records); running the
    node again raises :class:`StoreError` saying why.
    """

    __slots__ = ("__name__", "reason")

    def __init__(self, name: str, reason: str) -> None:
        self.__name__ = name
        self.reason = reason

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError(f"the function {self.__name__} was not stored ({self.reason}); "
                         "redispatch it with replace_electrons to run this node again")

    def __reduce__(self):
        return (UnstoredFunction, (self.__name__, self.reason))

    def __repr__(self) -> str:
        return f"<function {self.__name__} (not stored: {self.reason})>"
