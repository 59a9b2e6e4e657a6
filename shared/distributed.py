"""Distributed artifacts: many writers (processes, machines) add parts; one commits a version.

State lives where every writer can reach it: each part's files and its part manifest go to the
blob store, then a row per part in ``artiflow_distributed_parts`` under one row of
``artiflow_distributed`` (unique per name and ``distributed_id``) whose ``state`` is
``pending`` → ``closing`` → ``finished``.

``finish`` first closes the row (later upserts are refused, so a finisher is never starved by
writers that keep adding parts), merges every part's manifest with the finishing artifact's own
entries, and commits one version through the ordinary commit transaction, recording every
contributing run as a producer. Inside that same transaction it locks the row again, checks
that the parts it merged are exactly the parts recorded, and marks it ``finished``. A finish
that fails reopens the row; one that crashed leaves it ``closing``, and finishing again resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from .artifact import Artifact
from .backend import LogFuture
from .committer import Committer
from .db import MetaStore, Part, VersionSpec
from .db.distributed import describe
from .errors import DistributedError, InvalidName
from .manifest import Manifest, ManifestEntry
from .naming import check_text
from .storage import BlobStore

__all__ = ["finish", "upsert"]

log = logging.getLogger(__name__)
_MAX_ID_LENGTH = 250


def _check_id(distributed_id: object) -> str:
    if (
        not isinstance(distributed_id, str)
        or not 1 <= len(distributed_id) <= _MAX_ID_LENGTH
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in distributed_id)
    ):
        raise InvalidName(
            f"distributed_id must be a string of 1-{_MAX_ID_LENGTH} printable characters, "
            f"got {distributed_id!r}"
        )
    return check_text(distributed_id, "distributed_id")


def upsert(
    committer: Committer, producer: Callable[[], str], artifact: Artifact, distributed_id: str
) -> Artifact:
    """Add ``artifact``'s entries as one part of the pending version ``distributed_id``.

    The part is a snapshot: its files are uploaded and its manifest stored now; the artifact
    itself stays a draft. Refused (:class:`DistributedError`) once a finish has begun.
    ``producer`` gives the writing run's id once the upload succeeded.
    """
    did = _check_id(distributed_id)
    meta = committer.meta
    name, type_ = artifact.name, artifact.type
    meta.check_type(name, type_)
    meta.check_open(name, type_, did)  # fail before uploading anything if it is finished
    manifest = committer.upload(artifact)
    if len(manifest) == 0:
        raise DistributedError(f"nothing to upsert: artifact {name!r} has no entries")
    manifest_key = committer.put_manifest(manifest)
    run_id = producer()
    meta.add_part(name, type_, did, run_id, manifest_key)
    log.info("%s: run %s added a part of %d entries", describe(name, did), run_id, len(manifest))
    return artifact


def _run_text(meta: MetaStore, run_id: str) -> str:
    return f"run {meta.get_run(run_id).label!r} ({run_id})"


def _load_parts(store: BlobStore, parts: Sequence[Part]) -> list[Manifest]:
    with ThreadPoolExecutor(min(16, len(parts))) as pool:
        return list(pool.map(lambda p: Manifest.from_bytes(store.get_bytes(p.manifest_key)), parts))


def _merge(
    committer: Committer, name: str, did: str, parts: Sequence[Part], own: Manifest, finisher: str
) -> Manifest:
    """Every part's entries plus ``own``. The same path with other content is an error, and so
    is a path that is a file in one part and a folder (a prefix of another path) in another."""
    meta = committer.meta
    loaded = _load_parts(committer.store, parts)
    chosen: dict[str, tuple[ManifestEntry, str]] = {}
    sources = [(p.run_id, m) for p, m in zip(parts, loaded, strict=True)] + [(finisher, own)]
    for run_id, manifest in sources:
        for entry in manifest:
            seen = chosen.setdefault(entry.path, (entry, run_id))
            if (seen[0].digest, seen[0].ref) != (entry.digest, entry.ref):
                raise DistributedError(
                    f"{describe(name, did)}: entry {entry.path!r} was written with different "
                    f"content by {_run_text(meta, seen[1])} and {_run_text(meta, run_id)}"
                )
    for path, (_, run_id) in chosen.items():
        segments = path.split("/")
        for folder in ("/".join(segments[:end]) for end in range(1, len(segments))):
            if folder in chosen:
                raise DistributedError(
                    f"{describe(name, did)}: {folder!r} is a file from "
                    f"{_run_text(meta, chosen[folder][1])} but a folder of {path!r} from "
                    f"{_run_text(meta, run_id)}; a version cannot hold both"
                )
    return Manifest(entry for entry, _ in chosen.values())


def finish(
    committer: Committer,
    producer: Callable[[], str],
    artifact: Artifact,
    distributed_id: str,
    aliases: Sequence[str],
) -> Artifact:
    """Commit every part upserted under ``distributed_id`` plus ``artifact``'s own entries as
    one version of ``artifact.name``; ``artifact`` is bound to that version and returned."""
    did = _check_id(distributed_id)
    meta = committer.meta
    name, type_ = artifact.name, artifact.type
    meta.check_type(name, type_)
    future: LogFuture[Artifact] = LogFuture()
    artifact.begin_logging(committer.backend, future)
    pk: int | None = None
    try:
        own = committer.upload(artifact)
        run_id = producer()
        pk = meta.close_distributed(name, type_, did)
        parts = meta.distributed_parts(pk)
        if not parts:
            raise DistributedError(f"cannot finish {describe(name, did)}: no parts were upserted")
        merged = _merge(committer, name, did, parts, own, run_id)
        spec = VersionSpec(
            name=name,
            type=type_,
            digest=merged.digest,
            manifest_key=committer.put_manifest(merged),
            size=merged.size,
            file_count=len(merged),
            description=artifact.description,
            metadata=artifact.metadata,
            run_ids=(run_id, *dict.fromkeys(p.run_id for p in parts if p.run_id != run_id)),
            aliases=tuple(aliases),
        )
        record, created = meta.finish_distributed(pk, frozenset(p.id for p in parts), spec)
    except BaseException as err:
        if pk is not None:
            meta.reopen_distributed(pk)
        artifact.abort_logging()
        future.set_exception(err)
        raise
    committer.bind(artifact, record, created, manifest=merged)
    future.set_result(artifact)
    log.info("%s: %d parts committed as %s", describe(name, did), len(parts), record.qualified_name)
    return artifact
