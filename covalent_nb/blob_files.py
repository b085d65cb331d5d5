"""Blob files: how they are named (the content address of a value's bytes) and how their bytes reach the disk.

A *blob* is a large value's pickled bytes, stored in a file named by a digest
of those bytes (the store's ``<home>/blobs``, and the blob storage Dask
workers write to).  Two formats of name exist:

``b3-`` followed by 64 hex digits
    BLAKE3 (256 bits), through the ``blake3`` package (Rust, SIMD).  Every
    new blob is named this way.  BLAKE3 is a cryptographic hash like
    BLAKE2b, about five times faster on the machines measured (0.21 s per GB
    against 1.06 s on one core), so a Dask worker that writes a 1 GB output
    while a second thread names it waits for the disk, not for the hash
    (``benchmarks/dask_big_data.py``).  It lets go of the GIL while it hashes.
64 hex digits, no prefix
    BLAKE2b-256, what blobs were named before.  Homes and blob storage
    written earlier hold such files, and their records name them: they are
    read, verified, kept and deleted exactly as before, and never renamed.

The prefix, not the length, tells the formats apart, so a name says how to
verify its file.  A blob's file is ``<root>/<first two hex digits of the
hash>/<name>`` in both formats (the prefix is not part of the directory).

Paths are only ever derived from a name that :func:`is_blob_digest` accepts;
:func:`blob_relpath` refuses anything else, so a record can never make the
store read or delete a file outside its root.

:func:`write_synced` writes a blob's bytes and fsyncs them, starting the
disk's work on each 64 MB piece as soon as it is written (*write-behind*)
rather than leaving a gigabyte of dirty pages for the final fsync: 1 GB took
0.33 s instead of 0.45 s here, and far less unevenly on a busy machine.

The base of the layers: this module imports nothing of the package.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from blake3 import blake3

__all__ = ["BLAKE3_PREFIX", "blob_digest", "blake2b_digest", "digest_like", "digest_matches", "is_blob_digest",
           "blob_relpath", "write_synced"]

#: What starts the name of a blob named by its BLAKE3 digest.
BLAKE3_PREFIX = "b3-"

_NAME = re.compile(r"(?:b3-)?[0-9a-f]{64}")


def blob_digest(data: Any) -> str:
    """The name of a new blob holding *data* (bytes or any buffer): ``b3-`` and its BLAKE3 digest."""
    return BLAKE3_PREFIX + blake3(data).hexdigest()


def blake2b_digest(data: Any) -> str:
    """The BLAKE2b-256 name of *data*: how blobs were named before BLAKE3 (read and verified, not written)."""
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def is_blob_digest(name: Any) -> bool:
    """True when *name* is a blob name of either format (and so safe to make a path of)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def digest_like(data: Any, digest: str) -> str:
    """The digest of *data* in the format of the name *digest* (ValueError if it is not a blob name)."""
    if not is_blob_digest(digest):
        raise ValueError(f"not a blob digest: {digest!r}")
    return blob_digest(data) if digest.startswith(BLAKE3_PREFIX) else blake2b_digest(data)


def digest_matches(data: Any, digest: str) -> bool:
    """True when *data* is the content *digest* names (False for anything that is not a blob name)."""
    return is_blob_digest(digest) and digest_like(data, digest) == digest


def blob_relpath(digest: str) -> str:
    """``<first two hex digits>/<digest>``: where blob *digest* lives under a root (ValueError if not a name)."""
    if not is_blob_digest(digest):
        raise ValueError(f"not a blob digest: {digest!r}")
    return f"{digest[-64:-62]}/{digest}"


#: Bytes per write: large writes, each handed to the disk at once (see write_synced).
CHUNK = 64 << 20

_WRITE_BEHIND = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None


def write_synced(fd: int, data: Any) -> None:
    """Write all of *data* (bytes or any buffer) to the open file *fd*, then fsync it.

    After each piece, ``posix_fadvise(DONTNEED)`` asks the kernel to start
    writing that piece out now (and to let go of its pages once they are on
    disk), so the disk works while the next piece is copied and the fsync
    has little left to wait for.  Where there is no ``posix_fadvise``
    (macOS, Windows) it is a plain write and fsync.
    """
    view = memoryview(data).cast("B")
    offset = 0
    while view:
        written = os.write(fd, view[:CHUNK])
        if _WRITE_BEHIND is not None:
            try:
                os.posix_fadvise(fd, offset, written, _WRITE_BEHIND)
            except OSError:  # a file system that takes no advice: written all the same
                pass
        offset += written
        view = view[written:]
    os.fsync(fd)
