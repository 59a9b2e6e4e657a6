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

import functools
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import schema as t
from .errors import DistributedError, InvalidName, TypeMismatch
from .manifest import Manifest, ManifestEntry
from .metastore import MetaStore, utcnow

if TYPE_CHECKING:
    from .artifact import Artifact
    from .runs import Run

__all__ = ["finish", "upsert"]

log = logging.getLogger(__name__)
_MAX_ID_LENGTH = 250
PENDING, CLOSING, FINISHED = "pending", "closing", "finished"
_Row = sa.Row[tuple[int, str, str]]


@dataclass(frozen=True)
class _Part:
    id: int
    run_id: str
    manifest_key: str


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
    return distributed_id


def _describe(name: str, did: str) -> str:
    return f"distributed artifact {name!r} (distributed_id {did!r})"


def _check_row(row: _Row, name: str, type_: str, did: str, *, finishing: bool = False) -> int:
    """Refuse a row of another type, a finished one, and (to add parts) a closing one."""
    if row.type != type_:
        raise TypeMismatch(
            f"{_describe(name, did)} collects parts of type {row.type!r}, not {type_!r}"
        )
    if row.state == FINISHED:
        raise DistributedError(
            f"{_describe(name, did)} is already finished; start a new distributed_id to add parts"
        )
    if row.state == CLOSING and not finishing:
        raise DistributedError(
            f"{_describe(name, did)} is already finished (being committed by a finisher); "
            "start a new distributed_id to add parts"
        )
    return int(row.id)


def _row_query(name: str, did: str, lock: bool) -> sa.Select[tuple[int, str, str]]:
    d = t.distributed
    query = sa.select(d.c.id, d.c.type, d.c.state).where(
        d.c.name == name, d.c.distributed_id == did
    )
    return query.with_for_update() if lock else query


def _locked_row(conn: Connection, name: str, did: str) -> _Row | None:
    """The row, locked until the transaction ends (``FOR UPDATE``; SQLite writes are serial)."""
    return conn.execute(_row_query(name, did, conn.dialect.name != "sqlite")).first()


def _create_row(conn: Connection, name: str, type_: str, did: str) -> None:
    values = {
        "name": name,
        "type": type_,
        "distributed_id": did,
        "state": PENDING,
        "created_at": utcnow(),
    }
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(t.distributed).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(t.distributed).values(**values).on_conflict_do_nothing())
    elif _locked_row(conn, name, did) is None:  # pragma: no cover - other databases
        conn.execute(sa.insert(t.distributed).values(**values))


def upsert(run: Run, artifact: Artifact, distributed_id: str) -> Artifact:
    """Add ``artifact``'s entries as one part of the pending version ``distributed_id``.

    The part is a snapshot: its files are uploaded and its manifest stored now; the artifact
    itself stays a draft. Refused (:class:`DistributedError`) once a finish has begun.
    """
    did = _check_id(distributed_id)
    registry, meta = run.registry, run.registry.meta
    name, type_ = artifact.name, artifact.type
    meta.check_type(name, type_)
    with meta.read() as conn:  # fail before uploading anything if it is already finished
        row = conn.execute(_row_query(name, did, lock=False)).first()
    if row is not None:
        _check_row(row, name, type_, did)
    manifest = registry.upload_sources(artifact)
    if len(manifest) == 0:
        raise DistributedError(f"nothing to upsert: artifact {name!r} has no entries")
    manifest_key = registry.put_manifest(manifest)
    run_id = run.id

    def txn(conn: Connection) -> None:
        _create_row(conn, name, type_, did)
        locked = _locked_row(conn, name, did)
        if locked is None:  # pragma: no cover - created just above
            raise DistributedError(f"{_describe(name, did)} vanished")
        pk = _check_row(locked, name, type_, did)
        conn.execute(
            sa.insert(t.distributed_parts).values(
                distributed_pk=pk, run_id=run_id, manifest_key=manifest_key, created_at=utcnow()
            )
        )

    meta.write(txn)
    log.info("%s: run %s added a part of %d entries", _describe(name, did), run_id, len(manifest))
    return artifact


def _close(meta: MetaStore, name: str, type_: str, did: str) -> int:
    """Move the row to ``closing`` (no more parts); returns its primary key."""

    def txn(conn: Connection) -> int:
        row = _locked_row(conn, name, did)
        if row is None:
            raise DistributedError(f"cannot finish {_describe(name, did)}: no parts were upserted")
        pk = _check_row(row, name, type_, did, finishing=True)
        conn.execute(sa.update(t.distributed).where(t.distributed.c.id == pk).values(state=CLOSING))
        return pk

    return meta.write(txn)


def _reopen(meta: MetaStore, pk: int) -> None:
    d = t.distributed
    try:
        meta.write(
            lambda conn: conn.execute(
                sa.update(d).where(d.c.id == pk, d.c.state == CLOSING).values(state=PENDING)
            )
        )
    except Exception as err:  # the original error matters more; finishing again resumes
        log.warning("could not reopen distributed artifact row %s: %s", pk, err)


def _read_parts(meta: MetaStore, pk: int) -> list[_Part]:
    p = t.distributed_parts
    query = sa.select(p.c.id, p.c.run_id, p.c.manifest_key).where(p.c.distributed_pk == pk)
    with meta.read() as conn:
        return [
            _Part(int(r.id), r.run_id, r.manifest_key) for r in conn.execute(query.order_by(p.c.id))
        ]


def _run_text(meta: MetaStore, run_id: str) -> str:
    return f"run {meta.get_run(run_id).label!r} ({run_id})"


def _merge(
    run: Run, name: str, did: str, parts: Sequence[_Part], own: Manifest, finisher: str
) -> Manifest:
    """Every part's entries plus ``own``. The same path with other content is an error, and so
    is a path that is a file in one part and a folder (a prefix of another path) in another."""
    store, meta = run.registry.store, run.registry.meta
    with ThreadPoolExecutor(min(16, len(parts))) as pool:
        loaded = list(
            pool.map(lambda p: Manifest.from_bytes(store.get_bytes(p.manifest_key)), parts)
        )
    chosen: dict[str, tuple[ManifestEntry, str]] = {}
    sources = [(p.run_id, m) for p, m in zip(parts, loaded, strict=True)] + [(finisher, own)]
    for run_id, manifest in sources:
        for entry in manifest:
            seen = chosen.setdefault(entry.path, (entry, run_id))
            if (seen[0].digest, seen[0].ref) != (entry.digest, entry.ref):
                raise DistributedError(
                    f"{_describe(name, did)}: entry {entry.path!r} was written with different "
                    f"content by {_run_text(meta, seen[1])} and {_run_text(meta, run_id)}"
                )
    for path, (_, run_id) in chosen.items():
        segments = path.split("/")
        for end in range(1, len(segments)):
            folder = "/".join(segments[:end])
            if folder in chosen:
                raise DistributedError(
                    f"{_describe(name, did)}: {folder!r} is a file from "
                    f"{_run_text(meta, chosen[folder][1])} but a folder of {path!r} from "
                    f"{_run_text(meta, run_id)}; a version cannot hold both"
                )
    return Manifest(entry for entry, _ in chosen.values())


def _mark_finished(conn: Connection, version_id: int, pk: int, merged: frozenset[int]) -> None:
    """In the commit transaction: lock the row, check the merged parts are all, mark finished."""
    d, p = t.distributed, t.distributed_parts
    query = sa.select(d.c.state).where(d.c.id == pk)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    state = conn.execute(query).scalar_one()
    if state == FINISHED:
        raise DistributedError("another writer finished this distributed artifact first")
    if state != CLOSING:
        raise DistributedError("another finisher failed and reopened it; finish again")
    current = frozenset(
        int(r.id) for r in conn.execute(sa.select(p.c.id).where(p.c.distributed_pk == pk))
    )
    if current != merged:  # pragma: no cover - parts cannot be added once closing
        raise DistributedError("parts were added while the distributed artifact was closing")
    conn.execute(
        sa.update(d)
        .where(d.c.id == pk)
        .values(state=FINISHED, version_id=version_id, finished_at=utcnow())
    )


def finish(run: Run, artifact: Artifact, distributed_id: str, aliases: Sequence[str]) -> Artifact:
    """Commit every part upserted under ``distributed_id`` plus ``artifact``'s own entries as
    one version of ``artifact.name``; ``artifact`` is bound to that version and returned."""
    did = _check_id(distributed_id)
    registry, meta = run.registry, run.registry.meta
    name, type_ = artifact.name, artifact.type
    meta.check_type(name, type_)
    future: Future[Artifact] = Future()
    artifact._begin_logging(registry, future)
    pk: int | None = None
    try:
        own = registry.upload_sources(artifact)
        finisher = run.id
        pk = _close(meta, name, type_, did)
        parts = _read_parts(meta, pk)
        if not parts:
            raise DistributedError(f"cannot finish {_describe(name, did)}: no parts were upserted")
        merged = _merge(run, name, did, parts, own, finisher)
        record, created = meta.commit_version(
            name=name,
            type_=type_,
            digest=merged.digest,
            manifest_key=registry.put_manifest(merged),
            size=merged.size,
            file_count=len(merged),
            description=artifact.description,
            metadata=artifact.metadata,
            run_ids=[finisher, *dict.fromkeys(p.run_id for p in parts if p.run_id != finisher)],
            aliases=aliases,
            on_commit=functools.partial(
                _mark_finished, pk=pk, merged=frozenset(p.id for p in parts)
            ),
        )
    except BaseException as err:
        if pk is not None:
            _reopen(meta, pk)
        artifact._abort_logging()
        future.set_exception(err)
        raise
    artifact._bind(registry, record, manifest=merged, reused=not created)
    future.set_result(artifact)
    log.info(
        "%s: %d parts committed as %s%s",
        _describe(name, did),
        len(parts),
        record.qualified_name,
        "" if created else " (same content as an existing version)",
    )
    return artifact
