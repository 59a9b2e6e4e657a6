"""Checkout: place verified files into a download folder, safely under concurrency.

Rules every download follows (see the README, "Downloads"):

- **Isolation.** A downloaded file is the consumer's own: a reflink of the cached file where the
  file system offers one, else a copy. Editing it never changes the cache or another consumer's
  copy. Hard links (:data:`LINK`) only when the caller asks for them.
- **One writer per folder.** Downloads into one folder hold an exclusive lock on it (a lock
  file in the download cache, keyed by the folder's absolute path), so any number of threads and
  processes downloading one version into one folder all succeed: the first writes, the rest find
  it complete. A download that dies half-way leaves a mark in its lock file; the next one sweeps
  the temporary files it left.
- **Whole files only.** Each file is written under a short unique temporary name next to its
  destination (:func:`temp_for`; short, so any name that fits the file system downloads) and
  renamed into place.
- **Never outside the folder.** A symbolic link to a folder inside the root, a file where the
  manifest has a folder or a folder where it has a file is refused (:class:`TargetConflict`)
  before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

from .errors import StoreError, TargetConflict

__all__ = [
    "COPY",
    "LINK",
    "TEMP_MARK",
    "check_targets",
    "folder_lock",
    "is_temp",
    "place",
    "temp_for",
]

#: Materialise by reflink or copy: each consumer gets its own file (the default).
COPY = "copy"
#: Materialise by hard link into the cache: fastest, but every consumer shares the bytes.
LINK = "link"
#: Every temporary name a download writes starts with this.
TEMP_MARK = ".artiflow-tmp-"

_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
#: destination folder → reflinks work there, learnt from its first file (no ``stat`` per file)
_reflinks: dict[str, bool] = {}


def temp_for(dest: Path) -> Path:
    """A unique, short temporary name beside ``dest`` (the owner's pid and 48 random bits)."""
    return dest.with_name(f"{TEMP_MARK}{os.getpid()}-{secrets.token_hex(6)}")


def is_temp(name: str) -> bool:
    """A temporary name of a download (also the ``.NAME.artiflow-tmp-PID`` of older ones)."""
    return name.startswith(TEMP_MARK) or (name.startswith(".") and ".artiflow-tmp-" in name)


@contextlib.contextmanager
def folder_lock(lock_dir: str, root: Path, *, exclusive: bool = True) -> Iterator[bool]:
    """Hold the lock of download folder ``root``; yields True when a download into it died
    half-way since the last one that finished (its temporary files may still be there).

    Exclusive for writers, shared for readers (:func:`artiflow.pull.verify`). The mark is
    cleared only when the block ends without an exception.
    """
    os.makedirs(lock_dir, exist_ok=True)
    key = hashlib.md5(os.path.abspath(root).encode(), usedforsecurity=False).hexdigest()
    fd = os.open(os.path.join(lock_dir, f"{key}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        interrupted = os.fstat(fd).st_size > 0
        if exclusive:
            os.pwrite(fd, b"download in progress\n", 0)
        yield interrupted
        if exclusive:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def sweep(root: Path, keep: Collection[str]) -> int:
    """Remove temporary files a killed download left anywhere under ``root`` (never a path in
    ``keep``, the manifest's); returns how many went. Call it only under :func:`folder_lock`."""
    removed = 0
    for top, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            full = os.path.join(top, name)
            if not is_temp(name) or os.path.relpath(full, root) in keep:
                continue
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
                dirs.remove(name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(full)
            removed += 1
    return removed


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a folder" if stat.S_ISDIR(mode) else "a file"


def check_targets(root: Path, paths: Iterable[str], folders_ok: Collection[str] = ()) -> None:
    """Refuse, before anything is written, a download whose targets conflict with ``root``.

    ``root`` must be a folder or absent (a link to a folder is the caller's choice and allowed).
    Every folder a path needs must be absent or a real folder: never a symbolic link (a download
    does not follow links inside its root) nor a file. Every file's place must not hold a
    folder (``folders_ok``: entries that may be a folder, an unverified prefix reference).
    """
    if os.path.lexists(root) and not os.path.isdir(root):
        raise TargetConflict(f"cannot download into {root}: it is a file, not a folder")
    seen: dict[str, bool] = {}  # folder (relative) → exists
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            _check_folder(root, "/".join(parts[:depth]), seen)
        try:
            mode = os.lstat(os.path.join(root, path)).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(mode) and path not in folders_ok:
            raise TargetConflict(
                f"cannot download {path!r} into {root}: {root / path} is a folder; "
                "remove it or download into another folder"
            )


def _check_folder(root: Path, folder: str, seen: dict[str, bool]) -> None:
    if folder in seen:
        return
    parent = folder.rpartition("/")[0]
    if parent and not seen.get(parent, True):  # under an absent folder: absent too
        seen[folder] = False
        return
    try:
        mode = os.lstat(os.path.join(root, folder)).st_mode
    except FileNotFoundError:
        seen[folder] = False
        return
    if not stat.S_ISDIR(mode):
        raise TargetConflict(
            f"cannot download into {root}: {root / folder} is {_kind(mode)} where the artifact "
            "has a folder (a download never follows links inside its root); remove it or "
            "download into another folder"
        )
    seen[folder] = True


def _reflink_or_copy(src: str, dst: Path) -> None:
    folder = str(dst.parent)
    if _reflinks.get(folder, True):
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            try:
                fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
                _reflinks[folder] = True
                return
            except OSError as err:
                if err.errno not in _NO_REFLINK:
                    raise
                _reflinks[folder] = False
    shutil.copyfile(src, dst)


def place(src: str, dest: Path, mode: str = COPY) -> None:
    """Put the verified file ``src`` at ``dest``, whole or not at all.

    ``mode``: :data:`COPY` (a reflink or a copy: the default) or :data:`LINK` (a hard link,
    a copy where links are impossible). A full or read-only disk is a :class:`StoreError` that
    names ``dest``; a vanished ``src`` raises :class:`FileNotFoundError` for the caller to
    fetch it again.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_for(dest)
    try:
        if mode == LINK:
            try:
                os.link(src, tmp)
            except OSError as err:  # another device, or links not allowed: copy instead
                if err.errno == errno.ENOENT:
                    raise
                shutil.copyfile(src, tmp)
        else:
            _reflink_or_copy(src, tmp)
        os.replace(tmp, dest)
        if mode == LINK and os.path.lexists(tmp):  # dest was already that inode: a no-op rename
            os.unlink(tmp)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.errno in _DISK_FULL:
            raise StoreError(f"cannot write {dest}: {err.strerror}") from err
        raise
