"""Where a task's source text comes from, even for copies of the function.

Every dispatch runs functions unpickled from its frozen snapshot.  Those keep
their file name and lines (covalent_nb freezes code with marshal), so
``inspect.getsource`` usually finds them; copies made by plain cloudpickle
(file name ``<dynamic-code>``) or whose cell is gone from ``linecache`` do not.
Every electron and lattice therefore remembers its original function here (a
weak reference, no I/O: never keeping a dispatch's copy and its data alive),
keyed by what a copy keeps: the code's name, first line and bytecode.
:func:`source_of` asks ``inspect`` first and falls back to the original.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from typing import Any, Optional

__all__ = ["remember", "source_of"]

_lock = threading.Lock()
_originals: dict = {}


def _key(function: Any) -> Optional[tuple]:
    code = getattr(inspect.unwrap(function), "__code__", None)
    if code is None:
        return None
    return code.co_name, code.co_firstlineno, code.co_code


def remember(function: Any) -> None:
    """Note *function* as the original of any later copy of it."""
    key = _key(function)
    if key is not None and getattr(function.__code__, "co_filename", "") != "<dynamic-code>":
        try:
            reference = weakref.ref(function)  # never keep a dispatch's frozen copy (and its data) alive
        except TypeError:
            return
        with _lock:
            _originals[key] = reference


def source_of(function: Any) -> Optional[str]:
    """The source text of *function* (or of its remembered original), or None."""
    target = inspect.unwrap(function)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        pass
    key = _key(target)
    reference = _originals.get(key) if key is not None else None
    original = reference() if reference is not None else None
    if original is None or original is target:
        return None
    try:
        return inspect.getsource(original)
    except (OSError, TypeError):
        return None
