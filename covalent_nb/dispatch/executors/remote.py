"""Outputs that stay where they were computed: a Dask node's large output, known in the kernel by reference.

A Dask node whose output pickles to more than ``store_inline_max`` bytes does
not send it to the kernel.  The worker keeps the value for the next Dask tasks
(they take it worker to worker, as Dask does), writes its pickled bytes into
*blob storage* when there is one, and hands the kernel a :class:`RemoteValue`:
the Dask key, the bytes' digest and size, a short repr, where the bytes are
durable (or why they are not).

Blob storage is content-addressed, laid out as the store's own blob directory
(``<root>/<first two hex digits>/<name>``; new blobs are named ``b3-`` and the
BLAKE3 digest of their bytes, older ones by their BLAKE2b-256 digest: see
:mod:`covalent_nb.blob_files`), and named by a path or an fsspec URL:

* the kernel's own cluster writes into the home's ``blobs`` directory, so the
  store names the file as one of its own blobs (``store="sqlite"``);
* a cluster reached by address writes where ``DaskExecutor(blob_storage=...)``
  (or the ``dask_blob_storage`` setting) says: a shared file system, or object
  storage (``s3://bucket/prefix`` with the user's credentials, through fsspec);
* with neither, the value stays in the cluster's memory while the kernel holds
  the reference, and the record says it is not durable, and why.

Reading (:meth:`RemoteValue.fetch`) takes the value from the cluster while the
kernel still holds its future, else from blob storage, checking the digest.
The bytes are a pickle: blob storage must be as private as the home.
"""

from __future__ import annotations

import os
import reprlib
import threading
import uuid
from typing import Any, Optional

from ...blob_files import blob_digest, blob_relpath, digest_matches, write_synced
from ...serialization import dumps, loads
from ..freeze import Output
from ..runtime import RUNTIME

__all__ = ["RemoteValue", "RemoteTree", "is_remote", "store_blob", "write_blob", "read_blob", "remove_blob", "blob_digest",
           "blob_exists", "removal_lock", "human_size"]

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR_MAX = 200


def human_size(size: int) -> str:
    """``1.0 GB``-style size."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def short_repr(value: Any) -> str:
    """A short repr for the kernel's records and the graph's details (never raises)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _REPR_MAX else text[:_REPR_MAX - 3] + "..."


def _is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def _local_path(root: str) -> str:
    return root[len("file://"):] if root.startswith("file://") else root


def _blob_location(root: str, digest: str) -> str:
    return f"{root.rstrip('/')}/{blob_relpath(digest)}"


def write_blob(root: str, data: bytes, digest: str) -> str:
    """Write *data* as blob *digest* under *root* (a path or fsspec URL); return its location.

    The file is written under a temporary name and renamed into place, so a
    reader sees it whole or not at all; a blob already there is not rewritten.
    Local files are private (0600 in 0700 directories) and fsync'd.
    """
    location = _blob_location(root, digest)
    if _is_local(root):
        base = _local_path(root)
        path = _local_path(location)
        if os.path.exists(path):
            return location
        directory, tmp_dir = os.path.dirname(path), os.path.join(base, "tmp")
        for each in (base, directory, tmp_dir):
            os.makedirs(each, mode=0o700, exist_ok=True)
        tmp = os.path.join(tmp_dir, f"{digest}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_synced(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return location
    import fsspec  # optional (the dask extra), and needed only for URLs

    fs, path = fsspec.core.url_to_fs(location)
    if fs.exists(path):
        return location
    tmp = f"{path}.tmp-{uuid.uuid4().hex}"
    fs.pipe_file(tmp, data)
    fs.mv(tmp, path)
    return location


def store_blob(root: str, data: bytes) -> tuple:
    """Write *data* as a blob under *root* (a path or fsspec URL); return ``(digest, location)``.

    What a worker does for a large output, in one pass: the bytes go to a
    temporary file while another thread computes their BLAKE3 digest (it lets
    go of the GIL while it hashes, so the two run on two cores), then the file
    is synced and renamed to its content address.  BLAKE3 hashes 1 GB in about
    0.2 s, well under the 0.7 s the write and fsync take, so storing costs
    what the write costs (``benchmarks/dask_big_data.py``; BLAKE2b, the
    store's earlier naming, took 1.2 s and made the hash the bottleneck).  A
    blob already there is replaced by identical bytes.
    """
    found: list = []
    hasher = threading.Thread(target=lambda: found.append(blob_digest(data)), daemon=True,
                              name="covalent_nb-blob-digest")
    hasher.start()
    try:
        if _is_local(root):
            base = _local_path(root)
            tmp_dir = os.path.join(base, "tmp")
            for each in (base, tmp_dir):
                os.makedirs(each, mode=0o700, exist_ok=True)
            tmp = os.path.join(tmp_dir, uuid.uuid4().hex)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                write_synced(fd, data)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)  # a disk that filled up keeps no half blob
                raise
            os.close(fd)
        else:
            import fsspec  # optional (the dask extra), and needed only for URLs

            fs, tmp = fsspec.core.url_to_fs(f"{root.rstrip('/')}/tmp/{uuid.uuid4().hex}")
            fs.pipe_file(tmp, data)
    finally:
        hasher.join()
    if not found:
        raise RuntimeError("the blob's digest could not be computed")
    digest = found[0]
    location = _blob_location(root, digest)
    if _is_local(root):
        path = _local_path(location)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        os.replace(tmp, path)
    else:
        fs, path = fsspec.core.url_to_fs(location)
        fs.mv(tmp, path)
    return digest, location


#: Seconds a dispatch's end waits for a worker to write a missing blob again (a lost cluster must not
#: keep the dispatch from ending; the file is then reported missing in the log).
_REWRITE_TIMEOUT_S = 600


def read_blob(location: str, digest: Optional[str]) -> bytes:
    """The bytes at *location*, checked against *digest*; OSError if missing or damaged."""
    if _is_local(location):
        with open(_local_path(location), "rb") as handle:
            data = handle.read()
    else:
        import fsspec  # optional (the dask extra), and needed only for URLs

        with fsspec.open(location, "rb") as handle:
            data = handle.read()
    if digest is not None and not digest_matches(data, digest):
        raise OSError(f"the blob at {location} is damaged (its content does not match its digest)")
    return data


def blob_exists(location: str) -> bool:
    """True when the blob file at *location* (a path or fsspec URL) is there."""
    if _is_local(location):
        return os.path.exists(_local_path(location))
    import fsspec  # optional (the dask extra), and needed only for URLs

    fs, path = fsspec.core.url_to_fs(location)
    return bool(fs.exists(path))


def removal_lock() -> threading.Lock:
    """The lock under which this process removes blob files Dask workers wrote and checks they are there.

    A delete (``MemoryStore``) looks for the files no live dispatch names
    and removes them while holding it; a dispatch that ends checks its
    durable outputs' files while holding it (and writes a missing one again
    from the worker: :meth:`RemoteValue.ensure_stored`), so a file another
    dispatch's worker had just written again is never lost between the two.
    """
    return RUNTIME.resource("remote_blob_removal", threading.Lock)


def _write_again(pair: tuple, root: str, digest: str) -> str:
    """On the worker that holds a node's kept value: write its bytes as blob *digest* under *root*."""
    kept = pair[0][1]
    data = kept.data if type(kept) is Output else dumps(kept)
    if not digest_matches(data, digest):
        raise ValueError(f"the value kept on the worker no longer has the digest {digest}")
    return write_blob(root, data, digest)


def remove_blob(location: str) -> bool:
    """Remove the blob file at *location* (a path or fsspec URL); False if it was not there."""
    if _is_local(location):
        try:
            os.unlink(_local_path(location))
        except FileNotFoundError:
            return False
        return True
    import fsspec  # optional (the dask extra), and needed only for URLs

    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        return False
    fs.rm_file(path)
    return True


class RemoteValue:
    """A node's output kept outside the kernel: on a Dask worker, durable in blob storage or not.

    Fields: ``key`` (the Dask key of the task that computed it), ``digest``
    and ``size`` of its pickled bytes, ``summary`` (a short repr), ``location``
    (the blob's path or URL, None when it is not durable) and ``reason`` (why
    it is not durable, or None).  In the kernel that ran the node it also holds
    the Dask future while the value is on the cluster; pickled (into the
    store, or to a worker), it is the reference alone.

    :meth:`fetch` returns the value, reading it once (later calls give the
    same object).  The dispatcher passes the reference, not the value, to the
    next Dask task, and a local task gets the fetched value.
    """

    __slots__ = ("key", "digest", "size", "summary", "location", "reason", "cluster", "_future",
                 "_value", "_lock", "_released")

    def __init__(self, key: str, digest: Optional[str], size: int, summary: str,
                 location: Optional[str], reason: Optional[str], cluster: str = "") -> None:
        self.key = key
        self.digest = digest
        self.size = size
        self.summary = summary
        self.location = location
        self.reason = reason
        self.cluster = cluster
        self._future: Any = None
        self._value: Any = _NOTHING
        self._lock = threading.Lock()
        self._released = False

    @property
    def durable(self) -> bool:
        """True when the bytes are in blob storage (they outlive the cluster)."""
        return self.location is not None

    @property
    def fetched(self) -> bool:
        """True once :meth:`fetch` has brought the value into this process."""
        return self._value is not _NOTHING

    @property
    def future(self) -> Any:
        """The Dask future of the node's task while the kernel holds it, else None."""
        return self._future

    def hold(self, future: Any) -> None:
        """Keep *future* (the value stays on the cluster while this reference lives)."""
        self._future = future

    def release(self) -> None:
        """Let the cluster free the value (it stays readable from blob storage, if durable).

        Dask frees the worker's copy once no ``Future`` of its key is left in
        the kernel: this reference drops its own; another one :meth:`share`
        made keeps the value alive.
        """
        if self._future is not None:
            self._released = True
        self._future = None

    def share(self) -> "RemoteValue":
        """Another reference to the same value (a reused output), holding the same future.

        Releasing one (its dispatch deleted) leaves the other readable: the
        cluster keeps the value while any reference holds the future.
        """
        twin = RemoteValue(self.key, self.digest, self.size, self.summary, self.location, self.reason,
                           self.cluster)
        twin._future = self._future
        twin._value = self._value
        return twin

    def ensure_stored(self) -> bool:
        """Make sure the blob file is there; write it again if it is gone and the value is at hand.

        A content-addressed file can be shared by dispatches: a delete that
        found no other record naming it may remove it just after this
        dispatch's worker wrote the same bytes there, or just after a
        redispatch chose to reuse this output.  While the kernel holds the
        future, the worker that keeps the value writes it again (the kernel
        never reads it); without one, a value this process fetched is pickled
        again and written, if it still has the same bytes (it may have been
        changed since).  Returns True when the file is there afterwards, False
        when it is not durable or could not be written again (neither the
        cluster nor this process holds the value).
        """
        if self.location is None or self.digest is None:
            return False
        if blob_exists(self.location):
            return True
        root = self.location[:-len(f"/{blob_relpath(self.digest)}")]
        future = self._future
        if future is not None:
            future.client.submit(_write_again, future, root, self.digest, pure=False,
                                 key=f"rewrite-{self.key}-{uuid.uuid4().hex[:8]}").result(timeout=_REWRITE_TIMEOUT_S)
        elif self._value is not _NOTHING:
            data = dumps(self._value)
            if not digest_matches(data, self.digest):
                return False
            write_blob(root, data, self.digest)
        return blob_exists(self.location)

    def lives(self) -> str:
        """Where the value is, in words."""
        where = []
        if self._future is not None:
            where.append(f"Dask worker memory ({self.cluster or 'cluster'})")
        if self.location is not None:
            where.append(f"blob storage {self.location}")
        return " and ".join(where) or "nowhere any more"

    def describe(self) -> dict:
        """What the graph's details show: where the value lives, its size, whether it is durable."""
        return {"lives": self.lives(), "size": self.size, "size_text": human_size(self.size),
                "durable": self.durable, "reason": self.reason, "key": self.key, "digest": self.digest,
                "summary": self.summary}

    def fetch(self) -> Any:
        """The value: from the cluster while the kernel holds its future, else from blob storage.

        Raises ``LookupError`` when neither has it any more (a value that was
        not durable, once the cluster or the kernel that held it is gone).
        """
        value = self._value
        if value is not _NOTHING:
            return value
        with self._lock:
            if self._value is _NOTHING:
                self._value = self._read()
            return self._value

    def _read(self) -> Any:
        future = self._future
        failure = None
        if future is not None:
            try:
                kept, _summary = future.result()  # the node task's (kept outcome, summary) pair
                return _unwrap(kept[1])
            except Exception as exc:  # noqa: BLE001 - the cluster is gone: try blob storage
                failure = exc
        if self.location is not None:
            return loads(read_blob(self.location, self.digest))
        gone = ("its dispatch was deleted (or its result forgotten), which let the cluster free it"
                if self._released else "it is no longer there")
        raise LookupError(
            f"the output of Dask task {self.key} ({human_size(self.size)}) was kept only on the Dask "
            f"cluster ({self.reason or 'not durable'}), and {gone}"
            + (f": {type(failure).__name__}: {failure}" if failure is not None else ""))

    def __reduce__(self):
        return (RemoteValue, (self.key, self.digest, self.size, self.summary, self.location, self.reason,
                              self.cluster))

    def __repr__(self) -> str:
        durable = "durable" if self.location is not None else f"not durable: {self.reason}"
        return f"<{self.summary}: {human_size(self.size)} in {self.lives()}; {durable}>"


class RemoteTree:
    """A list, tuple or dict holding :class:`RemoteValue` references: a lattice's return value kept by reference.

    The dispatcher builds the lattice's ``:postprocess:`` node (and the
    collection nodes that feed only it) from references when their inputs are
    Dask outputs kept remote, so the return value never has to enter the
    kernel.  :meth:`fetch` returns the structure with every reference fetched
    (once; later calls give the same object).  Pickled (into the store), it is
    the structure with the references alone.
    """

    __slots__ = ("value", "_fetched", "_lock")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._fetched: Any = _NOTHING
        self._lock = threading.Lock()

    @staticmethod
    def of(value: Any) -> Any:
        """*value* as a reference: a RemoteValue as it is, a structure holding some as a RemoteTree."""
        return value if type(value) is RemoteValue else RemoteTree(value)

    @property
    def fetched(self) -> bool:
        """True once :meth:`fetch` has brought the values into this process."""
        return self._fetched is not _NOTHING

    def references(self) -> list:
        """The :class:`RemoteValue` objects inside, in order."""
        return list(_references(self.value))

    def fetch(self) -> Any:
        """The structure with each reference replaced by its value (read once)."""
        value = self._fetched
        if value is not _NOTHING:
            return value
        with self._lock:
            if self._fetched is _NOTHING:
                self._fetched = _fetched(self.value)
            return self._fetched

    def release(self) -> None:
        """Release every reference inside (see :meth:`RemoteValue.release`)."""
        for reference in _references(self.value):
            reference.release()

    def share(self) -> "RemoteTree":
        """The same structure with shared references (see :meth:`RemoteValue.share`)."""
        return RemoteTree(_mapped(self.value, RemoteValue.share))

    def describe(self) -> dict:
        """Where the values inside live, their total size, whether all are durable (never fetches)."""
        references = list({id(r): r for r in self.references()}.values())  # a value returned twice counts once
        size = sum(r.size for r in references)
        durable = all(r.durable for r in references)
        places = list(dict.fromkeys(r.lives() for r in references))
        reasons = list(dict.fromkeys(r.reason for r in references if r.reason))
        return {"lives": "; ".join(places) or "nowhere any more", "size": size, "size_text": human_size(size),
                "durable": durable, "reason": "; ".join(reasons) or None, "key": None, "digest": None,
                "summary": short_repr(_mapped(self.value, lambda r: _Shown(r.summary))),
                "count": len(references)}

    def __reduce__(self):
        return (RemoteTree, (self.value,))

    def __repr__(self) -> str:
        info = self.describe()
        return f"<{info['summary']}: {info['count']} value(s), {info['size_text']} kept outside the kernel>"


class _Shown:
    """Shows a reference's short repr inside a structure's repr."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _mapped(value: Any, change: Any) -> Any:
    """*value* with each RemoteValue inside replaced by ``change(it)`` (lists, tuples, dicts; others as they are)."""
    kind = type(value)
    if kind is RemoteValue:
        return change(value)
    if kind is RemoteTree:
        return _mapped(value.value, change)
    if kind is list:
        return [_mapped(v, change) for v in value]
    if kind is tuple:
        return tuple(_mapped(v, change) for v in value)
    if kind is dict:
        return {k: _mapped(v, change) for k, v in value.items()}
    return value


def _fetched(value: Any) -> Any:
    return _mapped(value, RemoteValue.fetch)


def _references(value: Any):
    kind = type(value)
    if kind is RemoteValue:
        yield value
    elif kind is RemoteTree:
        yield from _references(value.value)
    elif kind is list or kind is tuple:
        for item in value:
            yield from _references(item)
    elif kind is dict:
        for item in value.values():
            yield from _references(item)


def is_remote(value: Any) -> bool:
    """True for an output kept outside the kernel (a :class:`RemoteValue` or :class:`RemoteTree`)."""
    kind = type(value)
    return kind is RemoteValue or kind is RemoteTree


class _Nothing:
    __slots__ = ()


_NOTHING = _Nothing()


def _unwrap(value: Any) -> Any:
    """A value as a task returned it, out of the executor's wrapping (an Output's bytes)."""
    return value.argument() if type(value) is Output else value
