"""Pause the cyclic garbage collector while large graphs are built.

Tracing and planning a 10,000-task lattice allocate tens of thousands of small
containers and free none of them; every few hundred allocations the collector
would scan them all again, which once doubled the cost of a dispatch.  Nothing
built here forms garbage cycles, so the pause loses nothing; it is short (the
build, never a task's run) and nests safely across threads.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["collector_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """Disable ``gc`` inside the block; re-enable it when the last block exits."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
