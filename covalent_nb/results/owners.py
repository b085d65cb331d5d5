"""Which process runs a dispatch, and whether that process is still alive.

Every process that opens a store takes an *owner token* and holds a POSIX
record lock (``fcntl.lockf``) on ``<home>/owners/<token>`` for as long as it
lives.  The operating system drops the lock when the process ends, however it
ends (SIGKILL included), so another process can tell a dead owner from a live
one by trying the lock.  PID checks cannot: PIDs are reused, and a container
may show the same PID for different processes.

Record locks rather than ``flock``: a ``fork`` (multiprocessing, some Dask
setups) does not hand record locks to the child, so a forked worker that
outlives the kernel never makes the kernel look alive.  The one trap of record
locks (closing *any* descriptor of the file drops the process's lock) does
not apply: only the owner opens its own file.
"""

from __future__ import annotations

import os
import socket
import uuid
from typing import Optional

try:
    import fcntl
except ImportError:  # Windows: liveness cannot be probed, see OwnerLock.alive
    fcntl = None  # type: ignore[assignment]

__all__ = ["OwnerLock"]

# Tokens held by this process (token -> pid).  A process never probes its own
# tokens: record locks never conflict within one process, and closing the
# probe's descriptor would drop the process's own lock.
_mine: dict = {}


class OwnerLock:
    """This process's owner token and the lock that proves it is alive."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.path = os.path.join(directory, self.token)
        # Locked under a temporary name, then renamed (the lock stays with the
        # file): no other process ever sees this token's file unlocked.
        fresh = self.path + ".new"
        self._fd: Optional[int] = os.open(fresh, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(self._fd, f"{self.host} {self.pid}\n".encode())
        os.replace(fresh, self.path)
        _mine[self.token] = self.pid

    def alive(self, token: str) -> Optional[bool]:
        """Is the owner *token* alive?  None when it cannot be told (no ``fcntl``)."""
        if token == self.token or _mine.get(token) == os.getpid():
            return True
        if not token or "/" in token or "." in token:
            return False
        path = os.path.join(self.directory, token)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False  # owners remove their file only once nothing of theirs runs
        except OSError:
            return None
        try:
            if fcntl is None:
                return None
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True  # someone holds it: the owner is alive
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def forget(self, token: str) -> None:
        """Remove the file of a dead owner."""
        if token and _mine.get(token) != os.getpid() and "/" not in token:
            try:
                os.unlink(os.path.join(self.directory, token))
            except OSError:
                pass

    def sweep(self) -> None:
        """Remove the files of owners that have ended (killed processes leave theirs)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in names:
            if "." not in name and self.alive(name) is False:
                self.forget(name)

    def release(self) -> None:
        """Give up the token (the process no longer runs anything from this store)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        _mine.pop(self.token, None)
