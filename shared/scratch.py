"""A private scratch folder for files an artifact writes itself (``new_file``, tables).

Created on first use and removed when its owner is garbage-collected; the files in it are
hashed in place like any other added file, so they must live as long as the artifact.

Every process keeps its scratch folders in one folder of its own in the temporary directory,
``artiflow-new-<pid>-<random>``, holding ``.lock`` locked (``flock``) for the process's life and
removed when it exits. A process killed before it could clean up leaves that folder behind with
its lock free: the next process that needs scratch space removes every such folder whose lock it
can take (:func:`reclaim`), so a live owner is never robbed and leftovers never pile up.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from .errors import InvalidArgument

__all__ = ["PREFIX", "Scratch", "reclaim"]

log = logging.getLogger(__name__)

PREFIX = "artiflow-new-"
"""The name every process's scratch folder starts with (in the temporary directory)."""
LOCK_NAME = ".lock"

_lock = threading.Lock()
_roots: dict[int, str] = {}  # pid -> this process's scratch folder (a forked child makes its own)


def _take(lock_path: str) -> int | None:
    """An open descriptor holding ``lock_path``'s exclusive lock, or None if another holds it
    (or it is gone)."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def reclaim(tmpdir: str | None = None) -> int:
    """Remove the scratch folders in ``tmpdir`` (default: the temporary directory) whose owner
    process is gone; returns how many. A folder whose lock is held, or that has no lock (an older
    artiflow's, or one being set up), is left alone."""
    base = tmpdir or tempfile.gettempdir()
    removed = 0
    try:
        entries = [
            e
            for e in os.scandir(base)
            if e.name.startswith(PREFIX) and e.is_dir(follow_symlinks=False)
        ]
    except OSError:
        return 0
    mine = _roots.get(os.getpid())
    for entry in entries:
        if entry.path == mine:
            continue
        fd = _take(os.path.join(entry.path, LOCK_NAME))
        if fd is None:
            continue
        try:  # ours now: its owner died without cleaning up
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d scratch folders left by dead processes in %s", removed, base)
    return removed


def _remove(path: str, fd: int, pid: int) -> None:
    if os.getpid() != pid:  # a forked child exiting: the folder is its parent's
        return
    shutil.rmtree(path, ignore_errors=True)
    with suppress(OSError):
        os.close(fd)


def _process_root() -> str:
    """This process's scratch folder, made (after reclaiming dead ones) on first use.

    It is set up under a name :func:`reclaim` ignores and renamed once its lock is held, so no
    other process can take the lock of a folder whose owner is alive.
    """
    pid = os.getpid()
    with _lock:
        root = _roots.get(pid)
        if root is not None:
            return root
        reclaim()
        staging = tempfile.mkdtemp(prefix=f".{PREFIX}{pid}-")
        fd = os.open(os.path.join(staging, LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        root = os.path.join(os.path.dirname(staging), os.path.basename(staging)[1:])
        os.rename(staging, root)
        _roots[pid] = root
        atexit.register(_remove, root, fd, pid)
        return root


class Scratch:
    """Temporary files for one owner object."""

    def __init__(self, owner: object) -> None:
        self._owner = weakref.ref(owner)
        self._folder: str | None = None

    def _path(self) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(dir=_process_root())
            owner = self._owner()
            if owner is not None:
                weakref.finalize(owner, shutil.rmtree, self._folder, True)
        fd, path = tempfile.mkstemp(dir=self._folder)
        os.close(fd)
        return path

    def write(self, data: bytes) -> str:
        """A new file holding ``data``; returns its path."""
        path = self._path()
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    @contextmanager
    def open(self, mode: str, encoding: str | None = None) -> Iterator[tuple[IO[Any], str]]:
        """A new file open for writing (``w`` or ``wb``), and its path."""
        if mode not in ("w", "wb", "x", "xb"):
            raise InvalidArgument(f"new_file mode must be 'w' or 'wb', got {mode!r}")
        path = self._path()
        binary = "b" in mode
        with open(path, "wb" if binary else "w", encoding=None if binary else encoding) as fh:
            yield fh, path
