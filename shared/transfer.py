"""Pull: download an artifact version through the local cache, and verify a materialised root.

Every byte handed to the user was checked against its digest on its way into the cache; files
are materialised from the cache by hard link (or copy across devices) and never downloaded again
while the cache holds them. A root that is already complete costs a ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .cache import CacheRow
from .config import artifact_dir
from .errors import CorruptedBlob, InvalidPath, SourceNotFound
from .hashcache import default_hash_cache
from .hashing import hash_files, md5_file, walk_files
from .manifest import ManifestEntry
from .resolve import fetch_reference

if TYPE_CHECKING:
    from .artifact import Artifact
    from .registry import Registry

__all__ = ["cache_key", "default_root", "download", "fetch_to_cache", "safe_join", "verify"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_WORKERS = 8


def default_root(artifact: Artifact) -> Path:
    """``<artifact dir>/<name>/<version>``; see :func:`artiflow.config.artifact_dir`."""
    return artifact_dir() / artifact.name / (artifact.version or "draft")


def safe_join(root: Path, path: str) -> Path:
    """``root/path``, refusing any entry path that would land outside ``root``."""
    base = os.path.abspath(root)
    full = os.path.abspath(os.path.join(base, path))
    if os.path.commonpath([base, full]) != base or full == base:
        raise InvalidPath(f"entry path {path!r} would be written outside {root}")
    return Path(full)


def cache_key(entry: ManifestEntry) -> str:
    """Stored content is cached by its MD5; a reference by what identifies its source object."""
    if entry.ref is None:
        return f"md5/{entry.digest}"
    ident = json.dumps([entry.ref, entry.digest, dict(entry.extra)], sort_keys=True)
    return "ref/" + hashlib.md5(ident.encode(), usedforsecurity=False).hexdigest()


def _fetch(registry: Registry, entry: ManifestEntry) -> CacheRow:
    """Fetch one entry, verify it and place it in the cache (not yet indexed)."""
    tmp = registry.cache.temp_path()
    try:
        if entry.ref is None:
            registry.store.get_file(entry.digest, tmp)
            md5 = entry.digest
        else:
            fetched = fetch_reference(entry, tmp, storage_options=registry.reference_options(entry))
            md5 = fetched or md5_file(tmp)
        return registry.cache.place(cache_key(entry), tmp, md5)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.unlink(tmp)


def fetch_to_cache(registry: Registry, entry: ManifestEntry) -> tuple[str, str]:
    """The cached, verified file for ``entry`` as ``(path, content md5)``; fetched if absent."""
    key = cache_key(entry)
    hit = registry.cache.lookup(key)
    if hit is not None:
        return hit
    row = _fetch(registry, entry)
    registry.cache.record([row])
    return registry.cache.path_for(key), row[4]


def _batched(
    pool: ThreadPoolExecutor, fn: Callable[[int], T], items: list[int], size: int
) -> list[T]:
    """``[fn(i) for i in items]`` on the pool, ``size`` items per task (tiny files would
    otherwise cost more in futures and GIL hand-offs than in I/O)."""
    chunks = [items[k : k + size] for k in range(0, len(items), size)]
    return [r for part in pool.map(lambda chunk: [fn(i) for i in chunk], chunks) for r in part]


def _unverified(entry: ManifestEntry) -> bool:
    """A reference added with ``checksum=False``: nothing to check it against."""
    return entry.ref is not None and entry.extra.get("checksum") is False


def _fetch_unverified(registry: Registry, entry: ManifestEntry, dest: Path) -> None:
    """Copy a ``checksum=False`` reference (a file or a whole prefix) straight to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.artiflow-tmp-{os.getpid()}")
    fetch_reference(entry, tmp, storage_options=registry.reference_options(entry))
    if dest.is_dir():
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def _materialise(cached: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.artiflow-tmp-{os.getpid()}")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        os.link(cached, tmp)
    except OSError:  # another device, or links not allowed: copy instead
        shutil.copyfile(cached, tmp)
    os.replace(tmp, dest)


def _expected_md5(entries: Sequence[ManifestEntry], registry: Registry) -> list[str | None]:
    """Content MD5 per entry where known without network (refs: from the cache index)."""
    refs = [cache_key(e) for e in entries if e.ref is not None]
    known = registry.cache.lookup_many(refs) if refs else {}
    out: list[str | None] = []
    for entry in entries:
        if entry.ref is None:
            out.append(entry.digest)
        else:
            hit = known.get(cache_key(entry))
            out.append(hit[1] if hit else None)
    return out


#: ``progress(files_done, files_total)``, called from worker threads as files land.
Progress = Callable[[int, int], None]


def download(
    registry: Registry,
    artifact: Artifact,
    root: str | os.PathLike[str] | None,
    progress: Progress | None = None,
) -> Path:
    base = Path(root) if root is not None else default_root(artifact)
    entries = list(artifact.manifest)
    dests = [safe_join(base, e.path) for e in entries]
    expected = _expected_md5(entries, registry)

    # Unverified references count as present once they exist: there is nothing to compare.
    ok = {i for i, e in enumerate(entries) if _unverified(e) and dests[i].exists()}
    present = [i for i, d in enumerate(dests) if i not in ok and d.is_file()]
    if present:
        hashed = hash_files([dests[i] for i in present])
        ok |= {i for i, h in zip(present, hashed, strict=True) if h.digest == expected[i]}
    todo = [i for i in range(len(entries)) if i not in ok]
    total, done, lock = len(entries), len(ok), threading.Lock()

    def tick() -> None:
        nonlocal done
        if progress is not None:
            with lock:
                done += 1
                progress(done, total)

    if progress is not None:
        progress(done, total)
    if not todo:
        return base

    keys = [cache_key(entries[i]) for i in todo]
    cached = registry.cache.lookup_many(keys)  # one query, not one per file
    fetch = [
        i
        for i, key in zip(todo, keys, strict=True)
        if key not in cached and not _unverified(entries[i])
    ]

    # Local stores are CPU-bound: few threads, big batches. Remote ones wait on the network.
    workers, batch = (2, 256) if registry.store.local else (_WORKERS, 8)
    with ThreadPoolExecutor(workers) as pool:
        # Fetch what the cache lacks (verified on the way in), index it in one transaction ...
        placed = _batched(pool, lambda i: _fetch(registry, entries[i]), fetch, batch)
        registry.cache.record(placed)
        cached.update({row[0]: (registry.cache.path_for(row[0]), row[4]) for row in placed})

        # ... then materialise every file from the cache by hard link (or copy).
        def place(i: int) -> tuple[str, int, int, int, str] | None:
            if _unverified(entries[i]):
                _fetch_unverified(registry, entries[i], dests[i])
                tick()
                return None
            path, md5 = cached[cache_key(entries[i])]
            _materialise(path, dests[i])
            st = os.stat(dests[i])
            tick()
            return (str(dests[i]), st.st_ino, st.st_size, st.st_mtime_ns, md5)

        rows = [row for row in _batched(pool, place, todo, 256) if row is not None]
    default_hash_cache().put_many(rows)  # the next download of this root is stat-only
    registry.cache.prune(keep=[cache_key(e) for e in entries])
    return base


def verify(artifact: Artifact, root: str | os.PathLike[str] | None) -> None:
    """Re-hash every file under ``root`` and compare with the manifest; raise on any difference.

    Reference entries are compared with the content MD5 recorded in the local cache when the
    reference was downloaded (or with ``extra["md5"]``), else by size.
    """
    base = Path(root) if root is not None else default_root(artifact)
    if not base.is_dir():
        raise SourceNotFound(f"{base} does not exist; download the artifact first")
    entries = list(artifact.manifest)
    dests = [safe_join(base, e.path) for e in entries]
    registry = artifact._registry
    expected = (
        _expected_md5(entries, registry)
        if registry is not None
        else [e.digest if e.ref is None else None for e in entries]
    )
    problems: list[str] = []
    loose = {i for i, e in enumerate(entries) if _unverified(e)}  # nothing to compare them with
    problems += [f"missing: {entries[i].path}" for i in sorted(loose) if not dests[i].exists()]
    present = [i for i, d in enumerate(dests) if i not in loose and d.is_file()]
    found = loose | set(present)
    problems += [f"missing: {entries[i].path}" for i in range(len(entries)) if i not in found]
    hashed = hash_files([dests[i] for i in present], cache=None)
    for i, h in zip(present, hashed, strict=True):
        entry = entries[i]
        want = expected[i] or entry.extra.get("md5")
        if want is not None and h.digest != want:
            problems.append(f"changed: {entry.path} (md5 {h.digest}, expected {want})")
        elif entry.size is not None and h.size != entry.size:
            problems.append(f"changed: {entry.path} ({h.size} bytes, expected {entry.size})")
    known = {e.path for e in entries}
    folders = tuple(entries[i].path + "/" for i in loose)  # an unverified prefix's files
    problems += [
        f"unexpected: {rel}"
        for _, rel in walk_files(base)
        if rel not in known and not rel.startswith(folders)
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise CorruptedBlob(f"{base} does not match {artifact.qualified_name}: {shown}")
