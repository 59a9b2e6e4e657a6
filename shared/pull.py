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
import logging
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from . import checkout
from .backend import Progress
from .config import options_by_protocol, options_for
from .errors import CorruptedBlob, InvalidArgument, InvalidPath, SourceNotFound
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
log = logging.getLogger(__name__)
_WORKERS = 8
_ATTEMPTS = 3  # tries to place a file whose cache copy another process evicts meanwhile

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
    """fsspec options for fetching a reference: the ones its registry adds references of that
    protocol with (:attr:`BlobStore.reference_options`), else the store's own when the reference
    lives on the store's filesystem (same credentials, same endpoint), else ``None``: fsspec's
    defaults from its config and the environment (:func:`artiflow.config.options_by_protocol`)."""
    if entry.ref is None:
        return None
    by_protocol = store.reference_options or options_by_protocol(store.url, store.options, {})
    return options_for(entry.ref, by_protocol)


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
    tmp = checkout.temp_for(dest)
    try:
        fetch_reference(entry, tmp, storage_options=reference_options(store, entry))
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.unlink(tmp)


def _expected_md5(entries: Sequence[ManifestEntry], cache: BlobCache) -> list[str | None]:
    """Content MD5 per entry where known without network (refs: from the cache index)."""
    refs = [cache_key(e) for e in entries if e.ref is not None]
    known = cache.lookup_many(refs) if refs else {}
    out: list[str | None] = []
    for entry in entries:
        hit = known.get(cache_key(entry)) if entry.ref is not None else None
        out.append(entry.digest if entry.ref is None else hit[1] if hit else None)
    return out


def _regular(path: Path) -> bool:
    """A regular file, not a link to one (a download never follows links inside its root)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


def _already_there(entries: list[ManifestEntry], dests: list[Path], cache: BlobCache) -> set[int]:
    """Entries whose file under the root already has the right content (a ``stat`` each,
    through the hash cache). Unverified references count once they exist."""
    expected = _expected_md5(entries, cache)
    ok = {i for i, e in enumerate(entries) if _unverified(e) and dests[i].exists()}
    present = [i for i, d in enumerate(dests) if i not in ok and _regular(d)]
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
    mode: str = checkout.COPY,
) -> Path:
    """Materialise every entry of ``manifest`` under ``root``, verified, through ``cache``.

    ``mode``: :data:`~artiflow.checkout.COPY` (each file the caller's own: a reflink or a
    copy) or :data:`~artiflow.checkout.LINK` (hard links into the cache). Safe to call from
    any number of threads and processes at once for one ``root`` (see :mod:`artiflow.checkout`).
    """
    if mode not in (checkout.COPY, checkout.LINK):
        raise InvalidArgument(f"mode must be {checkout.COPY!r} or {checkout.LINK!r}, not {mode!r}")
    base = Path(root)
    entries = list(manifest)
    dests = [safe_join(base, e.path) for e in entries]
    paths = [e.path for e in entries]
    with checkout.folder_lock(cache.lock_dir, base) as interrupted:
        checkout.check_targets(base, paths, {e.path for e in entries if _unverified(e)})
        if interrupted and base.is_dir():
            swept = checkout.sweep(base, keep=set(paths))
            log.info("removed %d temporary files an interrupted download left in %s", swept, base)
        _Download(entries, dests, store, cache, mode).run(progress)
    return base


class _Download:
    """One download's work under the folder lock: fetch what the cache lacks, then place."""

    def __init__(
        self,
        entries: list[ManifestEntry],
        dests: list[Path],
        store: BlobStore,
        cache: BlobCache,
        mode: str,
    ) -> None:
        self.entries, self.dests, self.store, self.cache = entries, dests, store, cache
        self.mode = mode
        self.cached: dict[str, tuple[str, str]] = {}
        self.ticker = _Ticker(None, 0, 0)

    def run(self, progress: Progress | None) -> None:
        entries, cache = self.entries, self.cache
        ok = _already_there(entries, self.dests, cache)
        todo = [i for i in range(len(entries)) if i not in ok]
        self.ticker = _Ticker(progress, len(entries), len(ok))
        if not todo:
            return
        keys = [cache_key(entries[i]) for i in todo]
        self.cached = cache.lookup_many(keys)  # one query, not one per file
        fetch = [
            i
            for i, key in zip(todo, keys, strict=True)
            if key not in self.cached and not _unverified(entries[i])
        ]
        # Local stores are CPU-bound: few threads, big batches. Remote ones wait on the network.
        workers, batch = (2, 256) if self.store.local else (_WORKERS, 8)
        with ThreadPoolExecutor(workers) as pool:
            # Fetch what the cache lacks (verified on the way in), index it in one transaction ...
            self._remember(_batched(pool, self._fetch, fetch, batch))
            # ... then put every file in place from the cache.
            rows = [row for row in _batched(pool, self._place, todo, 256) if row is not None]
        default_hash_cache().put_many(rows)  # the next download of this root is stat-only
        cache.prune(keep=[cache_key(e) for e in entries])

    def _fetch(self, i: int) -> CacheRow:
        return _fetch(self.entries[i], self.store, self.cache)

    def _remember(self, placed: list[CacheRow]) -> None:
        self.cache.record(placed)
        self.cached.update({row[0]: (self.cache.path_for(row[0]), row[4]) for row in placed})

    def _place(self, i: int) -> _Landed | None:
        entry, dest = self.entries[i], self.dests[i]
        if _unverified(entry):
            _fetch_unverified(entry, self.store, dest)
            self.ticker.tick()
            return None
        key = cache_key(entry)
        for attempt in range(_ATTEMPTS):
            path, md5 = self.cached[key]
            try:
                checkout.place(path, dest, self.mode)
                break
            except FileNotFoundError:  # evicted or replaced by another process meanwhile
                if attempt == _ATTEMPTS - 1:
                    raise
                self._remember([self._fetch(i)])
        st = os.stat(dest)
        self.ticker.tick()
        return (str(dest), st.st_ino, st.st_size, st.st_mtime_ns, md5)


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
    with checkout.folder_lock(cache.lock_dir, base, exclusive=False):
        problems = _problems(list(manifest), base, cache)
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
        )
        raise CorruptedBlob(f"{base} does not match {label}: {shown}")


def _problems(entries: list[ManifestEntry], base: Path, cache: BlobCache) -> list[str]:
    """Every difference between ``base`` and the manifest's ``entries``."""
    dests = [safe_join(base, e.path) for e in entries]
    loose = {i for i, e in enumerate(entries) if _unverified(e)}  # nothing to compare them with
    present = [i for i, d in enumerate(dests) if i not in loose and _regular(d)]
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
    return problems
