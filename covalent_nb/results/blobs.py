"""Content-addressed blob files: large values, stored once however often they recur.

A blob's name is a digest of its bytes, so the same value reused by a hundred
redispatches (or the same graph rerun) is one file.  New blobs are named by
their BLAKE3 digest (``b3-`` and 64 hex digits); blobs written before are
named by their BLAKE2b-256 digest (64 hex digits) and are read, verified and
deleted as before (:mod:`covalent_nb.blob_files` says why and how).  Files
live under ``<home>/blobs/<first two hex digits>/<name>``.

Paths are only ever derived from a name that is checked to be a digest of
one of the two formats and joined to this store's own directory: a record in
the database can never make the store read a file outside the configured
home.  Reading checks the digest again, with the algorithm its name says, so
a corrupted file is reported, never unpickled.

Writes go to a temporary file that is fsync'd and renamed into place, so a
blob file is either absent or complete, even if the process is killed.
"""

from __future__ import annotations

import os
import time
import uuid

from ..blob_files import blob_digest, blob_relpath, digest_matches, is_blob_digest, write_synced

__all__ = ["BlobStore", "BlobError", "blob_digest"]


class BlobError(Exception):
    """A blob file is missing or its content does not match its name."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class BlobStore:
    """Blob files under one directory (the ``blobs`` directory of a store's home)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.tmp = os.path.join(root, "tmp")
        for directory in (root, self.tmp):  # one by one: makedirs gives parents the default mode
            os.makedirs(directory, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        """The file of blob *digest* (a ValueError for anything but a digest of either format)."""
        return os.path.join(self.root, *blob_relpath(digest).split("/"))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store *data* (if not already there) and return its digest.

        *digest*, when given, must be *data*'s (the caller computed it); it
        is not checked again here.  See :meth:`restore` for bytes that may
        not match a name.
        """
        digest = digest or blob_digest(data)
        path = self.path(digest)
        if os.path.exists(path):
            return digest
        directory = os.path.dirname(path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.tmp, f"{digest}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_synced(fd, data)  # the record naming this blob is committed right after
        finally:
            os.close(fd)
        os.replace(tmp, path)  # atomic: a reader sees no file or a whole one
        _fsync_directory(directory)
        return digest

    def restore(self, digest: str, data: bytes) -> bool:
        """Write *data* as blob *digest* if that is its content; False (nothing written) if it is not.

        For a blob removed while a record naming it was being written: the
        bytes at hand (pickled again, perhaps) go back under the old name only
        when they are the same bytes, checked with the name's own algorithm.
        """
        if not digest_matches(data, digest):
            return False
        self.put(data, digest)
        return True

    def get(self, digest: str) -> bytes:
        """Return the bytes of blob *digest*; BlobError if missing or corrupted."""
        path = self.path(digest)
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            raise BlobError(f"blob file {path} is missing", path) from None
        except OSError as exc:
            raise BlobError(f"blob file {path} cannot be read ({exc.strerror})", path) from None
        if not digest_matches(data, digest):
            raise BlobError(f"blob file {path} is corrupted (its content does not match its "
                            f"digest; {len(data)} bytes)", path)
        return data

    def size(self, digest: str) -> int:
        try:
            return os.path.getsize(self.path(digest))
        except OSError:
            return 0

    def remove(self, digest: str) -> int:
        """Delete blob *digest*; return the bytes freed (0 if it was absent)."""
        path = self.path(digest)
        try:
            size = os.path.getsize(path)
            os.unlink(path)
        except FileNotFoundError:
            return 0
        return size

    def files(self) -> list:
        """``(digest, mtime)`` of every blob file, of either format (files with other names are left out)."""
        found = []
        try:
            shards = [e for e in os.scandir(self.root) if len(e.name) == 2 and e.is_dir()]
        except OSError:
            return found
        for shard in shards:
            try:
                for entry in os.scandir(shard.path):
                    name = entry.name
                    if is_blob_digest(name) and name[-64:-62] == shard.name:
                        try:
                            found.append((name, entry.stat().st_mtime))
                        except OSError:
                            pass
            except OSError:
                continue
        return found

    def clean_tmp(self, older_than_s: float = 3600.0) -> None:
        """Remove temporary files left by killed processes."""
        limit = time.time() - older_than_s
        try:
            entries = list(os.scandir(self.tmp))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
            except OSError:
                pass


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
