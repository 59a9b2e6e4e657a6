"""Fast MD5 of local files: parallel across cores, small files batched, through the hash cache.

``hashlib`` releases the GIL while it digests more than 2 KiB, so large files are hashed by a
pool of ``os.cpu_count()`` threads, and medium files go to the pool in batches of about 8 MiB.
Tiny files are the opposite case: their cost is the Python and syscall overhead of
``open``/``read``/``close``, which threads only slow down (they fight over the GIL), so the
calling thread hashes them in one tight loop while the pool works on the rest. Whichever thread
hashes a file, a file of ``CHUNK_SIZE`` or more is read in ``CHUNK_SIZE`` pieces into a reused
buffer, so memory stays flat however large the files are.

Every file is first looked up in the :class:`HashCache` by ``(path, inode, size, mtime_ns)``;
re-adding an unchanged tree costs a ``stat`` per file and one bulk lookup. :func:`hash_tree`
does the walk and the hashing in one pass (``walk_files`` + ``hash_files``, cheaper stats).
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
import stat
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, cast

from ..errors import InvalidPath, SourceChanged, SourceNotFound
from .cache import HashCache, default_hash_cache
from .walk import StatKey, gc_paused, stat_tuple, walk_stat

__all__ = ["HashedFile", "file_changed", "hash_files", "hash_tree", "md5_file", "stat_key"]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
"""Bytes per ``readinto`` of a file this size or larger; smaller files take one ``read``."""
SMALL_FILE = 16 << 10
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


def _md5_files(items: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """MD5 and byte count of each ``(path, size at stat)``.

    A file under ``CHUNK_SIZE`` takes one ``read``; a larger one is streamed by
    :func:`_md5_large`, so no read ever holds more than ``CHUNK_SIZE`` bytes of a file.
    """
    out: list[tuple[str, int]] = []
    append, md5 = out.append, hashlib.md5
    o_open, o_read, o_close = os.open, os.read, os.close
    for path, size in items:
        if size >= CHUNK_SIZE:
            append(_md5_large(path))
            continue
        try:
            fd = o_open(path, _O_RDONLY)
            try:
                data = o_read(fd, size + 1)  # one byte more than stat said proves EOF
            finally:
                o_close(fd)
        except OSError as err:
            raise _missing(path, err) from err
        if len(data) == size:
            append((md5(data, usedforsecurity=False).hexdigest(), size))
        else:  # a short read, or the file changed since stat: stream it, the caller checks
            append(_md5_large(path))
    return out


def md5_file(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of one file's content (no cache)."""
    return _md5_large(os.fspath(path))[0]


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
                futures.append((task, pool.submit(_md5_files, items)))
        else:  # one task, or one core: this thread hashes everything (large files still stream)
            small = small + [i for task in tasks for i in task]
        for i, res in zip(small, _md5_files([(paths[i], sizes[i]) for i in small]), strict=True):
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


def _absolute(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Absolute, normalised paths (``normpath`` alone for paths that are absolute already)."""
    normpath, abspath = os.path.normpath, os.path.abspath
    texts = [p if type(p) is str else os.fspath(p) for p in paths]
    return [normpath(p) if p[:1] == "/" else abspath(p) for p in texts]


def _stat_all(paths: list[str]) -> list[StatKey]:
    """The :data:`StatKey` of each path, which must be a regular file.

    Streams ``os.stat`` results straight into small tuples, so thousands of ``stat_result``
    objects never live at once.
    """
    try:
        keys = list(map(stat_tuple, map(os.stat, paths)))
    except OSError:
        for path in paths:
            _stat_regular(path)  # raises for the first bad path
        keys = list(map(stat_tuple, map(os.stat, paths)))
    _check_regular(paths, keys)
    return keys


def _check_regular(paths: list[str], keys: list[StatKey]) -> None:
    if not all(map(stat.S_ISREG, map(_MODE, keys))):
        for path in paths:
            _stat_regular(path)


_MODE = operator.itemgetter(3)


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
    with gc_paused():
        paths_ = _absolute(paths)
        return _hash_files(paths_, _stat_all(paths_), hash_cache, started_ns)


def hash_tree(
    root: str | os.PathLike[str], *, cache: CacheOption = "default"
) -> list[tuple[str, HashedFile]]:
    """``(relative POSIX path, HashedFile)`` for every regular file under ``root``, sorted.

    :func:`walk_files` plus :func:`hash_files` in one pass: each file is stat-ed while its
    directory is listed (relative to the directory's descriptor), so an unchanged tree costs
    one ``fstatat`` per file and a bulk cache lookup.
    """
    hash_cache = default_hash_cache() if cache == "default" else cache
    started_ns = time.time_ns()
    with gc_paused():
        rows = walk_stat(root)
        _check_text_names(rows)
        paths = [row[0] for row in rows]
        keys = [row[2] for row in rows]
        _check_regular(paths, keys)
        hashed = _hash_files(paths, keys, hash_cache, started_ns)
        return [(row[1], h) for row, h in zip(rows, hashed, strict=True)]


def _check_text_names(rows: Sequence[tuple[str, str, StatKey]]) -> None:
    """Refuse a tree holding a file name that is not UTF-8 before hashing anything: its
    relative path is to become an entry path, which is text."""
    try:
        "\0".join([row[1] for row in rows]).encode()
    except UnicodeEncodeError:
        for path, rel, _key in rows:
            try:
                rel.encode()
            except UnicodeEncodeError:
                raise InvalidPath(
                    f"cannot add {os.fsencode(path)!r}: its name is not valid UTF-8 and entry "
                    "paths are text; rename it, or add it alone with add_file(path, name=...)"
                ) from None


def _hash_files(
    paths_: list[str], keys: list[StatKey], hash_cache: HashCache | None, started_ns: int
) -> list[HashedFile]:
    """Digests for files already stat-ed (at or after ``started_ns``), cache first."""
    if hash_cache is not None and hash_cache.enabled:
        digests = hash_cache.get_many(paths_, keys)
    else:
        digests = [None] * len(paths_)
    misses = [i for i, d in enumerate(digests) if d is None]
    if misses:
        fresh = _hash_misses(paths_, [k[1] for k in keys], misses)
        for i, digest in fresh.items():
            digests[i] = digest
        if hash_cache is not None:
            settled = started_ns - RACY_WINDOW_NS
            hash_cache.put_many(
                (paths_[i], keys[i][0], keys[i][1], keys[i][2], d)
                for i, d in fresh.items()
                if keys[i][2] < settled
            )
        log.debug("hashed %d of %d files, the rest from the cache", len(fresh), len(paths_))
    if not keys:
        return []
    inodes, sizes, mtimes, _modes = zip(*keys, strict=True)
    return list(map(HashedFile, paths_, cast("list[str]", digests), sizes, mtimes, inodes))
