"""Pull: download an artifact version through the local cache, and verify a materialised root.

Narrow on purpose: every verb takes a blob store, the download cache and a manifest (references
are fetched with the store's own options when they live on the same filesystem). Every byte
handed to the user was checked against its digest on its way into the cache; files are
materialised from the cache by hard link (or copy across devices) and never downloaded again
while the cache holds them. A root that is already complete costs a ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .backend import Progress
from .errors import CorruptedBlob, InvalidPath, SourceNotFound
from .hashing import default_hash_cache, hash_files, md5_file, walk_files
from .manifest import Manifest, ManifestEntry
from .resolvers import fetch_reference
from .storage import BlobCache, BlobStore, CacheRow

__all__ = [
    "cache_key",
    "cached_file",
    "download",
    "load_manifest",
    "read_entry",
    "reference_options",
    "safe_join",
    "verify",
]

T = TypeVar("T")
_WORKERS = 8

#: ``(path, inode, size, mtime_ns, md5)`` of a materialised file, for the hash cache
_Landed = tuple[str, int, int, int, str]


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


def reference_options(store: BlobStore, entry: ManifestEntry) -> dict[str, Any] | None:
    """fsspec options for fetching a reference: the store's own when the reference lives on
    the same filesystem as the store (same credentials, same endpoint), else fsspec's defaults
    from its config and the environment."""
    if entry.ref is None or not store.options:
        return None
    scheme = entry.ref.split("://", 1)[0] if "://" in entry.ref else "file"
    store_scheme = store.url.split("://", 1)[0] if "://" in store.url else "file"
    return dict(store.options) if scheme == store_scheme else None


def _fetch(entry: ManifestEntry, store: BlobStore, cache: BlobCache) -> CacheRow:
    """Fetch one entry, verify it and place it in the cache (not yet indexed)."""
    tmp = cache.temp_path()
    try:
        if entry.ref is None:
            store.get_file(entry.digest, tmp)
            md5 = entry.digest
        else:
            options = reference_options(store, entry)
            md5 = fetch_reference(entry, tmp, storage_options=options) or md5_file(tmp)
        return cache.place(cache_key(entry), tmp, md5)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        elif os.path.exists(tmp):
            os.unlink(tmp)


def cached_file(entry: ManifestEntry, store: BlobStore, cache: BlobCache) -> tuple[str, str]:
    """The cached, verified file for ``entry`` as ``(path, content md5)``; fetched if absent."""
    key = cache_key(entry)
    hit = cache.lookup(key)
    if hit is not None:
        return hit
    row = _fetch(entry, store, cache)
    cache.record([row])
    return cache.path_for(key), row[4]


def read_entry(entry: ManifestEntry, store: BlobStore, cache: BlobCache) -> bytes:
    """One entry's bytes, verified, through the cache."""
    path, _ = cached_file(entry, store, cache)
    return Path(path).read_bytes()


def load_manifest(key: str, store: BlobStore, cache: BlobCache) -> Manifest:
    """The manifest stored under ``key`` (an MD5), through the cache."""
    return Manifest.from_bytes(read_entry(ManifestEntry("manifest", key, None), store, cache))


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


def _fetch_unverified(entry: ManifestEntry, store: BlobStore, dest: Path) -> None:
    """Copy a ``checksum=False`` reference (a file or a whole prefix) straight to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.artiflow-tmp-{os.getpid()}")
    fetch_reference(entry, tmp, storage_options=reference_options(store, entry))
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


def _expected_md5(entries: Sequence[ManifestEntry], cache: BlobCache) -> list[str | None]:
    """Content MD5 per entry where known without network (refs: from the cache index)."""
    refs = [cache_key(e) for e in entries if e.ref is not None]
    known = cache.lookup_many(refs) if refs else {}
    out: list[str | None] = []
    for entry in entries:
        hit = known.get(cache_key(entry)) if entry.ref is not None else None
        out.append(entry.digest if entry.ref is None else hit[1] if hit else None)
    return out


def _already_there(entries: list[ManifestEntry], dests: list[Path], cache: BlobCache) -> set[int]:
    """Entries whose file under the root already has the right content (a ``stat`` each,
    through the hash cache). Unverified references count once they exist."""
    expected = _expected_md5(entries, cache)
    ok = {i for i, e in enumerate(entries) if _unverified(e) and dests[i].exists()}
    present = [i for i, d in enumerate(dests) if i not in ok and d.is_file()]
    if present:
        hashed = hash_files([dests[i] for i in present])
        ok |= {i for i, h in zip(present, hashed, strict=True) if h.digest == expected[i]}
    return ok


class _Ticker:
    """Counts landed files for a ``progress`` callback, from any thread."""

    def __init__(self, progress: Progress | None, total: int, done: int) -> None:
        self.progress, self.total, self.done = progress, total, done
        self._lock = threading.Lock()
        if progress is not None:
            progress(done, total)

    def tick(self) -> None:
        if self.progress is not None:
            with self._lock:
                self.done += 1
                self.progress(self.done, self.total)


def download(
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    store: BlobStore,
    cache: BlobCache,
    progress: Progress | None = None,
) -> Path:
    """Materialise every entry of ``manifest`` under ``root``, verified, through ``cache``."""
    base = Path(root)
    entries = list(manifest)
    dests = [safe_join(base, e.path) for e in entries]
    ok = _already_there(entries, dests, cache)
    todo = [i for i in range(len(entries)) if i not in ok]
    ticker = _Ticker(progress, len(entries), len(ok))
    if not todo:
        return base

    keys = [cache_key(entries[i]) for i in todo]
    cached = cache.lookup_many(keys)  # one query, not one per file
    fetch = [
        i
        for i, key in zip(todo, keys, strict=True)
        if key not in cached and not _unverified(entries[i])
    ]

    def place(i: int) -> _Landed | None:
        if _unverified(entries[i]):
            _fetch_unverified(entries[i], store, dests[i])
            ticker.tick()
            return None
        path, md5 = cached[cache_key(entries[i])]
        _materialise(path, dests[i])
        st = os.stat(dests[i])
        ticker.tick()
        return (str(dests[i]), st.st_ino, st.st_size, st.st_mtime_ns, md5)

    # Local stores are CPU-bound: few threads, big batches. Remote ones wait on the network.
    workers, batch = (2, 256) if store.local else (_WORKERS, 8)
    with ThreadPoolExecutor(workers) as pool:
        # Fetch what the cache lacks (verified on the way in), index it in one transaction ...
        placed = _batched(pool, lambda i: _fetch(entries[i], store, cache), fetch, batch)
        cache.record(placed)
        cached.update({row[0]: (cache.path_for(row[0]), row[4]) for row in placed})
        # ... then materialise every file from the cache by hard link (or copy).
        rows = [row for row in _batched(pool, place, todo, 256) if row is not None]
    default_hash_cache().put_many(rows)  # the next download of this root is stat-only
    cache.prune(keep=[cache_key(e) for e in entries])
    return base


def _content_problems(
    entries: list[ManifestEntry], dests: list[Path], present: list[int], expected: list[str | None]
) -> Iterable[str]:
    hashed = hash_files([dests[i] for i in present], cache=None)
    for i, h in zip(present, hashed, strict=True):
        entry = entries[i]
        want = expected[i] or entry.extra.get("md5")
        if want is not None and h.digest != want:
            yield f"changed: {entry.path} (md5 {h.digest}, expected {want})"
        elif entry.size is not None and h.size != entry.size:
            yield f"changed: {entry.path} ({h.size} bytes, expected {entry.size})"


def verify(
    manifest: Manifest, root: str | os.PathLike[str], *, cache: BlobCache, label: str
) -> None:
    """Re-hash every file under ``root`` and compare with the manifest; raise
    :class:`CorruptedBlob` naming ``label`` on any difference.

    Reference entries are compared with the content MD5 recorded in the local cache when the
    reference was downloaded (or with ``extra["md5"]``), else by size.
    """
    base = Path(root)
    if not base.is_dir():
        raise SourceNotFound(f"{base} does not exist; download the artifact first")
    entries = list(manifest)
    dests = [safe_join(base, e.path) for e in entries]
    loose = {i for i, e in enumerate(entries) if _unverified(e)}  # nothing to compare them with
    present = [i for i, d in enumerate(dests) if i not in loose and d.is_file()]
    found = {i for i in loose if dests[i].exists()} | set(present)
    problems = [f"missing: {entries[i].path}" for i in range(len(entries)) if i not in found]
    problems += _content_problems(entries, dests, present, _expected_md5(entries, cache))
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
        raise CorruptedBlob(f"{base} does not match {label}: {shown}")
