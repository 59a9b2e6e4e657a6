"""Local sources: the manifest entries a draft gets from files and folders on this machine.

Files are hashed in place (through the hash cache), never copied; each entry comes with the
:class:`~artiflow.hashing.HashedFile` the upload later re-verifies.
"""

from __future__ import annotations

import os

from .errors import SourceNotFound
from .hashing import HashedFile, gc_paused, hash_files, hash_tree
from .manifest import ManifestEntry
from .naming import entry_path

__all__ = ["dir_entries", "file_entry"]


def file_entry(
    local_path: str | os.PathLike[str], name: str | None
) -> tuple[ManifestEntry, HashedFile]:
    """The entry for one local file, as ``name`` (default: the file's base name)."""
    path = os.fspath(local_path)
    if not os.path.isfile(path):
        raise SourceNotFound(f"no such file: {path!r}")
    target = entry_path(name if name is not None else os.path.basename(path))
    (hashed,) = hash_files([path])
    return ManifestEntry(target, hashed.digest, hashed.size), hashed


def dir_entries(
    local_path: str | os.PathLike[str], name: str | None
) -> tuple[list[ManifestEntry], dict[str, HashedFile]]:
    """The entries for every file under a local folder, below ``name/`` if given, and their
    sources by entry path."""
    root = os.fspath(local_path)
    if not os.path.isdir(root):
        raise SourceNotFound(f"no such directory: {root!r}")
    prefix = entry_path(name) + "/" if name else ""
    with gc_paused():  # tens of thousands of small objects: skip needless GC passes
        pairs = hash_tree(root)
        targets = [entry_path(prefix + rel) for rel, _ in pairs]
        entries = [
            ManifestEntry(t, h.digest, h.size) for t, (_, h) in zip(targets, pairs, strict=True)
        ]
        return entries, {t: h for t, (_, h) in zip(targets, pairs, strict=True)}
