"""Push: upload an artifact's local files that the blob store lacks, then its manifest.

Narrow on purpose (a store, a manifest, the local sources): the registry's commit protocol and
distributed parts both push through here. Each file is re-hashed while it streams; one that
changed since it was added fails the push before the store holds a wrong blob under its digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from .errors import ArtiflowError, SourceChanged
from .hashing import HashedFile, file_changed
from .manifest import Manifest
from .storage import BlobStore

__all__ = ["Pushed", "push_blobs", "push_manifest"]


@dataclass(frozen=True)
class Pushed:
    """What one push uploaded: bytes and blobs (blobs already held count for nothing)."""

    bytes: int = 0
    blobs: int = 0


def _check_unchanged(name: str, sources: Mapping[str, HashedFile]) -> None:
    for path, source in sources.items():
        if file_changed(source):
            raise SourceChanged(
                f"{source.path} (entry {path!r}) changed after it was added to "
                f"{name!r}; add it again to log its new content"
            )


def push_blobs(
    name: str,
    manifest: Manifest,
    sources: Mapping[str, HashedFile],
    store: BlobStore,
    pool: Executor,
) -> Pushed:
    """Upload every stored entry's content the store lacks, from ``sources`` (entry path →
    the local file it was added from), on ``pool``.

    Raises :class:`SourceChanged` when a file changed since it was added; ``name`` names the
    artifact in that message.
    """
    _check_unchanged(name, sources)
    by_digest: dict[str, HashedFile] = {}
    for entry in manifest:
        if entry.ref is None:
            local = sources.get(entry.path)
            if local is None:
                raise ArtiflowError(f"entry {entry.path!r} has no local content to upload")
            by_digest.setdefault(entry.digest, local)
    todo = [by_digest[d] for d in sorted(store.missing(by_digest))]
    # Batches keep per-file overhead low; a local store gains nothing from many threads.
    batch = max(1, len(todo) // 2) if store.local else 4
    chunks = [todo[k : k + batch] for k in range(0, len(todo), batch)]
    put = store.put_file
    sizes = [n for part in pool.map(lambda c: [put(f) for f in c], chunks) for n in part]
    return Pushed(bytes=sum(sizes), blobs=sum(1 for s in sizes if s))


def push_manifest(store: BlobStore, manifest: Manifest) -> str:
    """Store the manifest itself (content-addressed like any blob); returns its key."""
    return store.put_bytes(manifest.to_bytes())
