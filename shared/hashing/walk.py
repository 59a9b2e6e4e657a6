"""Listing local trees fast, and keeping the garbage collector out of bulk work.

:func:`walk_files` lists a directory with ``os.scandir`` (the file type comes from the
directory entry, no ``stat``). :func:`walk_stat` also stats every file, relative to an open
directory descriptor where the platform allows (``fstatat``: one path component to resolve
instead of the whole absolute path). Both are one scanner; ``artiflow.hashing`` re-exports
both.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import operator
import os
import threading
from collections.abc import Iterator
from typing import Any, cast

from ..errors import SourceNotFound

__all__ = ["StatKey", "gc_paused", "stat_tuple", "walk_files", "walk_stat"]

log = logging.getLogger(__name__)

#: ``(inode, size, mtime_ns, st_mode)`` of a file
StatKey = tuple[int, int, int, int]
stat_tuple: operator.attrgetter[tuple[int, int, int, int]] = operator.attrgetter(
    "st_ino", "st_size", "st_mtime_ns", "st_mode"
)
"""``os.stat_result`` → :data:`StatKey`."""

_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects without cycles.

    Tens of thousands of stat tuples, paths and hashed-file records would otherwise trigger
    dozens of collections, each walking every object the process holds (a process that
    imported SQLAlchemy holds hundreds of thousands): on a 10,000-file tree that is a large
    share of a warm re-add. Nested and concurrent pauses are counted; the collector's previous
    state comes back when the last one ends.
    """
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def _directory(root: str | os.PathLike[str]) -> str:
    top = os.path.abspath(os.fspath(root))
    if not os.path.isdir(top):
        if os.path.exists(top):
            raise SourceNotFound(f"not a directory: {os.fspath(root)!r}")
        raise SourceNotFound(f"no such directory: {os.fspath(root)!r}")
    return top


def _warn_skipped(top: str, skipped: list[str]) -> None:
    if skipped:
        log.warning(
            "skipped %d entries under %s that are not regular files, are symlinked "
            "directories, or are broken or looping symlinks, e.g. %s",
            len(skipped),
            top,
            skipped[0],
        )


def walk_files(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Every regular file under ``root`` as ``(absolute path, relative POSIX path)``.

    Sorted by relative path. Symlinks to files are followed; symlinked directories are not
    (they could loop) and, like broken or looping links and special files, are skipped with a
    warning.
    """
    return cast("list[tuple[str, str]]", _walk(root, with_stat=False))


def walk_stat(root: str | os.PathLike[str]) -> list[tuple[str, str, StatKey]]:
    """Like :func:`walk_files`, plus each file's :data:`StatKey`: ``(abs, rel, key)``."""
    return cast("list[tuple[str, str, StatKey]]", _walk(root, with_stat=True))


_FD_SCANDIR = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
_O_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _walk(root: str | os.PathLike[str], *, with_stat: bool) -> list[tuple[Any, ...]]:
    """The one scanner behind :func:`walk_files` and :func:`walk_stat`."""
    top = _directory(root)
    out: list[tuple[Any, ...]] = []
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [(top, "")]
    with gc_paused():
        while stack:
            directory, rel = stack.pop()
            try:
                _scan(directory, rel, stack, out, skipped, with_stat)
            except OSError as err:
                raise SourceNotFound(
                    f"cannot list directory {directory!r}: {err.strerror or err}"
                ) from err
        out.sort(key=operator.itemgetter(1))
    _warn_skipped(top, skipped)
    return out


def _scan(
    directory: str,
    rel: str,
    stack: list[tuple[str, str]],
    out: list[tuple[Any, ...]],
    skipped: list[str],
    with_stat: bool,
) -> None:
    """List one directory: sub-directories onto ``stack``, files into ``out``.

    Where the platform allows, the directory is listed through an open descriptor, so the
    ``stat`` behind ``DirEntry.is_file`` (for symlinks) and ``DirEntry.stat`` is an ``fstatat``
    of one path component instead of a lookup of the whole absolute path. A symlink that cannot
    be followed (a loop: ``ELOOP``) is skipped like a dangling one.
    """
    base = directory if directory.endswith(os.sep) else directory + os.sep
    append = out.append
    fd = os.open(directory, _O_DIRECTORY) if _FD_SCANDIR else None
    try:
        with os.scandir(directory if fd is None else fd) as it:
            for entry in it:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((base + name, rel + name + "/"))
                    continue
                try:
                    regular = entry.is_file()
                except OSError:  # a symlink loop, or a link whose target cannot be reached
                    regular = False
                if not regular:
                    skipped.append(base + name)
                elif with_stat:
                    append((base + name, rel + name, stat_tuple(entry.stat())))
                else:
                    append((base + name, rel + name))
    finally:
        if fd is not None:
            os.close(fd)
