"""Listing local trees fast, and keeping the garbage collector out of bulk work.

:func:`walk_files` lists a directory with ``os.scandir`` (the file type comes from the
directory entry, no ``stat``). :func:`walk_stat` also stats every file, relative to an open
directory descriptor where the platform allows (``fstatat``: one path component to resolve
instead of the whole absolute path). ``artiflow.hashing`` re-exports both.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import operator
import os
import threading
from collections.abc import Iterator

from .errors import SourceNotFound

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
            "skipped %d entries under %s that are not regular files or are symlinked "
            "directories, e.g. %s",
            len(skipped),
            top,
            skipped[0],
        )


def walk_files(root: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Every regular file under ``root`` as ``(absolute path, relative POSIX path)``.

    Sorted by relative path. Symlinks to files are followed; symlinked directories are not
    (they could loop) and, like broken links and special files, are skipped with a warning.
    """
    top = _directory(root)
    out: list[tuple[str, str]] = []
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [(top, "")]
    with gc_paused():
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
                raise SourceNotFound(
                    f"cannot list directory {directory!r}: {err.strerror}"
                ) from err
        out.sort(key=operator.itemgetter(1))
    _warn_skipped(top, skipped)
    return out


_FD_SCANDIR = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")


def walk_stat(root: str | os.PathLike[str]) -> list[tuple[str, str, StatKey]]:
    """Like :func:`walk_files`, plus each file's :data:`StatKey`: ``(abs, rel, key)``.

    The caller pauses the collector (:func:`gc_paused`) around this and what it builds.
    """
    top = _directory(root)
    out: list[tuple[str, str, StatKey]] = []
    skipped: list[str] = []
    stack: list[tuple[str, str]] = [(top, "")]
    while stack:
        directory, rel = stack.pop()
        try:
            if _FD_SCANDIR:
                _scan_fd(directory, rel, out, stack, skipped)
            else:
                _scan_path(directory, rel, out, stack, skipped)
        except OSError as err:
            raise SourceNotFound(f"cannot read {directory!r}: {err}") from err
    out.sort(key=operator.itemgetter(1))
    _warn_skipped(top, skipped)
    return out


def _scan_fd(
    directory: str,
    rel: str,
    out: list[tuple[str, str, StatKey]],
    stack: list[tuple[str, str]],
    skipped: list[str],
) -> None:
    """One directory through its descriptor: ``DirEntry.stat`` becomes ``fstatat``."""
    append, base = out.append, directory + "/"
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if entry.is_dir(follow_symlinks=False):
                    stack.append((base + name, rel + name + "/"))
                elif entry.is_file():
                    append((base + name, rel + name, stat_tuple(entry.stat())))
                else:
                    skipped.append(base + name)
    finally:
        os.close(fd)


def _scan_path(
    directory: str,
    rel: str,
    out: list[tuple[str, str, StatKey]],
    stack: list[tuple[str, str]],
    skipped: list[str],
) -> None:
    with os.scandir(directory) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel + entry.name + "/"))
            elif entry.is_file():
                out.append((entry.path, rel + entry.name, stat_tuple(entry.stat())))
            else:
                skipped.append(entry.path)
