"""Per-task stdout and stderr capture that is safe with many threads.

``sys.stdout`` and ``sys.stderr`` are replaced, once, by routers that write to
the calling thread's capture buffer when it has one, and to the stream they
replaced otherwise.  A task's prints therefore land in its own node record;
prints of other threads and of notebook cells pass through untouched.

This is a process-wide side effect, and it happens late: importing does
nothing.  The first :class:`capturing` block installs the routers, when the
first task runs (``run_task``, on a local worker thread or in a Dask worker
process), and a later block installs them again if something has replaced them
since.  The streams are replaced because ``print`` looks up ``sys.stdout`` when
it is called and a thread has no stream of its own: one router per stream in
front of per-thread buffers is the only way to capture one task's output
without catching every other thread's.  :func:`uninstall` puts the replaced
streams back.
"""

from __future__ import annotations

import io
import sys
import threading

__all__ = ["capturing", "install", "uninstall"]

_local = threading.local()
_install_lock = threading.Lock()


class _Router(io.TextIOBase):
    """A text stream that sends each write to the current thread's buffer."""

    def __init__(self, target, slot: str) -> None:
        self._target = target
        self._slot = slot

    def write(self, text: str) -> int:
        buffer = getattr(_local, self._slot, None)
        if buffer is None:
            return self._target.write(text)
        buffer.append(text)
        return len(text)

    def flush(self) -> None:
        if getattr(_local, self._slot, None) is None:
            self._target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._target.fileno()

    def __getattr__(self, name: str):
        return getattr(self._target, name)


def install() -> None:
    """Put the routers in place (again, if something replaced them since)."""
    if type(sys.stdout) is _Router and type(sys.stderr) is _Router:
        return
    with _install_lock:
        if type(sys.stdout) is not _Router:
            sys.stdout = _Router(sys.stdout, "out")
        if type(sys.stderr) is not _Router:
            sys.stderr = _Router(sys.stderr, "err")


def uninstall() -> None:
    """Put back the streams the routers replaced (if nothing replaced the routers since)."""
    with _install_lock:
        if type(sys.stdout) is _Router:
            sys.stdout = sys.stdout._target
        if type(sys.stderr) is _Router:
            sys.stderr = sys.stderr._target


class capturing:
    """Context manager: capture this thread's prints into ``.stdout`` / ``.stderr``."""

    __slots__ = ("_out", "_err", "_outer_out", "_outer_err", "stdout", "stderr")

    def __enter__(self) -> "capturing":
        if type(sys.stdout) is not _Router or type(sys.stderr) is not _Router:
            install()
        self._outer_out = getattr(_local, "out", None)
        self._outer_err = getattr(_local, "err", None)
        self._out = _local.out = []
        self._err = _local.err = []
        return self

    def __exit__(self, *exc) -> None:
        _local.out = self._outer_out
        _local.err = self._outer_err
        self.stdout = "".join(self._out)
        self.stderr = "".join(self._err)
