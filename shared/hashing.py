"""Fast MD5 of local files: parallel across cores, small files batched, through the hash cache.

``hashlib`` releases the GIL while it digests more than 2 KiB, so large files are read in 1 MiB
chunks by a pool of ``os.cpu_count()`` threads. Tiny files are the opposite case: their cost is
the Python and syscall overhead of ``open``/``read``/``close``, which threads only slow down
(they fight over the GIL), so the calling thread hashes them in one tight loop while the pool
works on the large ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Literal

from .errors import SourceChanged, SourceNotFound
from .hashcache import HashCache, default_hash_cache

__all__ = [
    "HashCache",
    "HashedFile",
    "HashingReader",
    "default_hash_cache",
    "file_changed",
    "hash_files",
    "md5_file",
    "stat_key",
    "walk_files",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
"""Bytes per ``readinto`` of a large file."""
SMALL_FILE = 64 << 10
"""Files below this size are hashed by the calling thread, one tight loop, no pool."""
BATCH_BYTES = 8 << 20
"""Medium files are grouped into pool tasks of about this many bytes."""
RACY_WINDOW_NS = 1_000_000_000
"""A file modified this recently may change again within one mtime tick: hash it, don't cache it."""

CacheOption = HashCache | None | Literal["default"]
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_buffers = threading.local()


@dataclass(frozen=True, slots=True)
class HashedFile:
    """A local file's MD5 together with the ``stat`` identity it had when it was hashed."""

    path: str
    digest: str
    size: int
    mtime_ns: int
    inode: int

    @property
    def stat_key(self) -> tuple[int, int, int]:
        """``(inode, size, mtime_ns)``, comparable with :func:`stat_key`."""
        return (self.inode, self.size, self.mtime_ns)


def _md5() -> hashlib._Hash:
    return hashlib.md5(usedforsecurity=False)


def _missing(path: str, err: OSError) -> SourceNotFound:
    if isinstance(err, FileNotFoundError | NotADirectoryError):
        return SourceNotFound(f"no such file: {path!r}")
    return SourceNotFound(f"cannot read {path!r}: {err.strerror or err}")


def stat_key(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """``(inode, size, mtime_ns)`` of a file, following symlinks."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise _missing(os.fspath(path), err) from err
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def file_changed(hashed: HashedFile) -> bool:
    """True if the file is gone or its inode, size or mtime differ from when it was hashed."""
    try:
        return stat_key(hashed.path) != hashed.stat_key
    except SourceNotFound:
        return True


# -- reading ----------------------------------------------------------------------------------
def _buffer() -> tuple[bytearray, memoryview]:
    pair: tuple[bytearray, memoryview] | None = getattr(_buffers, "pair", None)
    if pair is None:
        buf = bytearray(CHUNK_SIZE)
        pair = (buf, memoryview(buf))
        _buffers.pair = pair
    return pair


def _md5_large(path: str) -> tuple[str, int]:
    """MD5 and byte count of a file, read in ``CHUNK_SIZE`` pieces into a reused buffer."""
    buf, view = _buffer()
    h = _md5()
    total = 0
    try:
        with open(path, "rb", buffering=0) as fh:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            readinto = fh.readinto
            while n := readinto(buf):
                h.update(view[:n])
                total += n
    except OSError as err:
        raise _missing(path, err) from err
    return h.hexdigest(), total


def _md5_small(items: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """MD5 and byte count of each ``(path, expected size)``: one ``read`` per small file."""
    out: list[tuple[str, int]] = []
    append, md5 = out.append, hashlib.md5
    o_open, o_read, o_close = os.open, os.read, os.close
    for path, size in items:
        try:
            fd = o_open(path, _O_RDONLY)
            try:
                data = o_read(fd, size + 1)
                if len(data) <= size:
                    append((md5(data, usedforsecurity=False).hexdigest(), len(data)))
                    continue
            finally:
                o_close(fd)
        except OSError as err:
            raise _missing(path, err) from err
        append(_md5_large(path))  # grew since stat: hash it whole, the size check reports it
    return out


def md5_file(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of one file's content (no cache)."""
    return _md5_large(os.fspath(path))[0]


class HashingReader:
    """A read-only binary stream that digests what passes through it.

    Wrap the file being uploaded: every ``read``/``readinto`` updates an MD5 and a byte count,
    so the upload itself re-verifies the content against the digest taken at add time.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._md5 = _md5()
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = self._raw.read(-1 if size is None else size)
        self._md5.update(data)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.bytes_read

    def hexdigest(self) -> str:
        """MD5 (hex) of every byte read so far."""
        return self._md5.hexdigest()

    def matches(self, digest: str, size: int | None = None) -> bool:
        """True if the bytes read so far have this digest (and size, when given)."""
        return self.hexdigest() == digest and (size is None or size == self.bytes_read)

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def __enter__(self) -> HashingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- walking ----------------------------------------------------------------------------------
def walk_files(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Every regular file under ``root`` as ``(absolute path, relative POSIX path)``.

    Sorted by relative path. Symlinks to files are followed; symlinked directories are not
    (they could loop) and, like broken links and special files, are skipped with a warning.
    """
    top = os.path.abspath(os.fspath(root))
    if not os.path.isdir(top):
        if os.path.exists(top):
            raise SourceNotFound(f"not a directory: {os.fspath(root)!r}")
        raise SourceNotFound(f"no such directory: {os.fspath(root)!r}")
    out: list[tuple[str, str]] = []
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [(top, "")]
    while stack:
        directory, rel = stack.pop()
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, rel + entry.name + "/"))
                    elif entry.is_file():
                        out.append((entry.path, rel + entry.name))
                    else:
                        skipped.append(entry.path)
        except OSError as err:
            raise SourceNotFound(f"cannot list directory {directory!r}: {err.strerror}") from err
    if skipped:
        log.warning(
            "skipped %d entries under %s that are not regular files or are symlinked "
            "directories, e.g. %s",
            len(skipped),
            top,
            skipped[0],
        )
    out.sort(key=lambda pair: pair[1])
    return out


# -- hashing ----------------------------------------------------------------------------------
def _stat_regular(path: str) -> os.stat_result:
    try:
        st = os.stat(path)
    except OSError as err:
        raise _missing(path, err) from err
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise SourceNotFound(f"{path!r} is {kind}; only regular files can be hashed")
    return st


def _plan(misses: list[int], sizes: list[int]) -> tuple[list[int], list[list[int]]]:
    """Split the files to hash into small ones (calling thread) and pool tasks."""
    small: list[int] = []
    tasks: list[list[int]] = []
    batch: list[int] = []
    batch_bytes = 0
    for i in misses:
        size = sizes[i]
        if size < SMALL_FILE:
            small.append(i)
        elif size >= BATCH_BYTES:
            tasks.append([i])
        else:
            batch.append(i)
            batch_bytes += size
            if batch_bytes >= BATCH_BYTES:
                tasks.append(batch)
                batch, batch_bytes = [], 0
    if batch:
        tasks.append(batch)
    return small, tasks


def _hash_task(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    if len(items) == 1 and items[0][1] >= SMALL_FILE:
        return [_md5_large(items[0][0])]
    return _md5_small(items)


def _hash_misses(paths: list[str], sizes: list[int], misses: list[int]) -> dict[int, str]:
    small, tasks = _plan(misses, sizes)
    results: dict[int, tuple[str, int]] = {}
    futures: list[tuple[list[int], Future[list[tuple[str, int]]]]] = []
    workers = min(os.cpu_count() or 1, len(tasks))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="artiflow-hash") if workers > 1 else None
    try:
        if pool is not None:
            for task in tasks:
                items = [(paths[i], sizes[i]) for i in task]
                futures.append((task, pool.submit(_hash_task, items)))
        else:
            small = small + [i for task in tasks for i in task]
        for i, res in zip(small, _md5_small([(paths[i], sizes[i]) for i in small]), strict=True):
            results[i] = res
        for task, future in futures:
            for i, res in zip(task, future.result(), strict=True):
                results[i] = res
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    digests: dict[int, str] = {}
    for i, (digest, nbytes) in results.items():
        if nbytes != sizes[i]:
            raise SourceChanged(
                f"{paths[i]!r} changed while it was being hashed "
                f"({sizes[i]} bytes at stat, {nbytes} read)"
            )
        digests[i] = digest
    return digests


def hash_files(
    paths: Sequence[str | os.PathLike[str]], *, cache: CacheOption = "default"
) -> list[HashedFile]:
    """Hash local files (in input order), reusing and updating the hash cache.

    ``cache="default"`` uses :func:`default_hash_cache`; ``None`` hashes everything afresh.
    A missing path, a directory or an unreadable file raises
    :class:`~artiflow.errors.SourceNotFound`; a file that changes while it is read raises
    :class:`~artiflow.errors.SourceChanged`.
    """
    hash_cache = default_hash_cache() if cache == "default" else cache
    started_ns = time.time_ns()
    abspath = os.path.abspath
    fspath = os.fspath
    paths_ = [abspath(fspath(p)) for p in paths]
    stats = [_stat_regular(p) for p in paths_]
    inodes = [st.st_ino for st in stats]
    sizes = [st.st_size for st in stats]
    mtimes = [st.st_mtime_ns for st in stats]

    if hash_cache is not None and hash_cache.enabled:
        cached = hash_cache.get_many(list(zip(paths_, inodes, sizes, mtimes, strict=True)))
    else:
        cached = [None] * len(paths_)
    misses = [i for i, d in enumerate(cached) if d is None]
    fresh = _hash_misses(paths_, sizes, misses) if misses else {}

    if hash_cache is not None and fresh:
        settled = started_ns - RACY_WINDOW_NS
        hash_cache.put_many(
            (paths_[i], inodes[i], sizes[i], mtimes[i], d)
            for i, d in fresh.items()
            if mtimes[i] < settled
        )
    if fresh:
        log.debug("hashed %d of %d files, the rest from the cache", len(fresh), len(paths_))
    digests = [fresh[i] if d is None else d for i, d in enumerate(cached)]
    return [
        HashedFile(p, d, s, m, n)
        for p, d, s, m, n in zip(paths_, digests, sizes, mtimes, inodes, strict=True)
    ]
