"""Hashing local content: walk a tree, MD5 its files in parallel, remember them in a cache.

Three modules, each below the next: :mod:`.walk` lists trees (and keeps the garbage collector
out of bulk work), :mod:`.cache` is the persistent ``(path, inode, size, mtime_ns) → MD5`` cache,
:mod:`.digest` hashes files through it.
"""

from __future__ import annotations

from .cache import HashCache, default_hash_cache
from .digest import HashedFile, file_changed, hash_files, hash_tree, md5_file, stat_key
from .walk import gc_paused, walk_files, walk_stat

__all__ = [
    "HashCache",
    "HashedFile",
    "default_hash_cache",
    "file_changed",
    "gc_paused",
    "hash_files",
    "hash_tree",
    "md5_file",
    "stat_key",
    "walk_files",
    "walk_stat",
]
