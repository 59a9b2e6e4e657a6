"""The commit transaction: a version becomes visible, numbered and aliased, or nothing does.

Version numbers are allocated inside the transaction while holding the artifact's lock:
``BEGIN IMMEDIATE`` on SQLite (one writer at a time), ``SELECT ... FOR UPDATE`` on the artifact
row on PostgreSQL. The unique constraint on ``(artifact_id, index)`` is the backstop, and a
transaction that fails on it or on a lock is retried from the start (:meth:`Database.write`).
Nothing is visible before the commit, so a crash at any point leaves no partial version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..naming import check_alias
from ..records import VersionRecord
from . import schema as t
from .engine import for_update, insert_ignore, utcnow
from .rows import add_usage
from .versions import VersionQueries, type_mismatch

__all__ = ["CommitQueries", "VersionSpec", "commit_one"]


@dataclass(frozen=True)
class VersionSpec:
    """What one commit writes: the version's content identity, description and producers.

    The first of ``run_ids`` is the committing run (``created_by``); every one is recorded as
    a producer.
    """

    name: str
    type: str
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: Mapping[str, Any]
    run_ids: tuple[str, ...]
    aliases: tuple[str, ...] = ()


def _lock_artifact(conn: Connection, name: str, type_: str) -> int:
    """Create the artifact row if needed, lock it, and check it has ``type_``."""
    insert_ignore(conn, t.artifacts, {"name": name, "type": type_, "created_at": utcnow()})
    query = sa.select(t.artifacts.c.id, t.artifacts.c.type).where(t.artifacts.c.name == name)
    row = conn.execute(for_update(conn, query)).one()
    if row.type != type_:
        raise type_mismatch(name, row.type, type_)
    return int(row.id)


def _insert_version(conn: Connection, artifact_id: int, spec: VersionSpec) -> int:
    top = conn.execute(
        sa.select(sa.func.max(t.versions.c.index)).where(t.versions.c.artifact_id == artifact_id)
    ).scalar()
    return int(
        conn.execute(
            sa.insert(t.versions)
            .values(
                artifact_id=artifact_id,
                index=0 if top is None else int(top) + 1,
                digest=spec.digest,
                manifest_key=spec.manifest_key,
                size=spec.size,
                file_count=spec.file_count,
                description=spec.description,
                metadata=dict(spec.metadata),
                created_at=utcnow(),
                created_by=spec.run_ids[0] if spec.run_ids else None,
            )
            .returning(t.versions.c.id)
        ).scalar_one()
    )


def _move_alias(conn: Connection, artifact_id: int, alias: str, version_id: int) -> None:
    aliases = t.aliases
    conn.execute(
        sa.delete(aliases).where(aliases.c.artifact_id == artifact_id, aliases.c.alias == alias)
    )
    conn.execute(
        sa.insert(aliases).values(artifact_id=artifact_id, alias=alias, version_id=version_id)
    )


def commit_one(conn: Connection, spec: VersionSpec) -> tuple[int, bool]:
    """Inside a transaction: dedupe or allocate, move aliases, record output usage.

    Returns ``(version id, created)``; ``created`` is False when a version of the name already
    had the same digest (the requested aliases then move to it).
    """
    artifact_id = _lock_artifact(conn, spec.name, spec.type)
    existing = conn.execute(
        sa.select(t.versions.c.id)
        .where(t.versions.c.artifact_id == artifact_id, t.versions.c.digest == spec.digest)
        .order_by(t.versions.c.index)
        .limit(1)
    ).first()
    created = existing is None
    version_id = _insert_version(conn, artifact_id, spec) if existing is None else int(existing.id)
    for alias in [*spec.aliases, *(["latest"] if created else [])]:
        _move_alias(conn, artifact_id, alias, version_id)
    now = utcnow()
    for run_id in spec.run_ids:
        add_usage(conn, run_id, version_id, "output", now)
    return version_id, created


class CommitQueries(VersionQueries):
    """Committing versions."""

    def commit_versions(self, specs: Sequence[VersionSpec]) -> list[tuple[VersionRecord, bool]]:
        """Commit several versions in ONE transaction: all of them become visible, or none.

        Each is deduped or numbered as :func:`commit_one` does; ``created`` is False for one
        that matched an existing version of its name.
        """
        for spec in specs:
            for alias in spec.aliases:
                check_alias(alias)
        # Lock artifact rows in name order so two atomic runs cannot deadlock each other.
        order = sorted(range(len(specs)), key=lambda i: specs[i].name)

        def txn(conn: Connection) -> dict[int, tuple[int, bool]]:
            return {i: commit_one(conn, specs[i]) for i in order}

        done = self.write(txn)
        return [(self.get_version(done[i][0]), done[i][1]) for i in range(len(specs))]
