"""Rows to records and back: the column lists, mappers and row helpers every query shares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..liveness import run_status
from ..records import RunInfo, VersionRecord
from . import schema as t
from .engine import aware, utcnow

__all__ = ["add_usage", "run_info", "version_query", "version_record"]


def version_query() -> sa.Select[Any]:
    """Every column of a version with its artifact's name and type (map with
    :func:`version_record`)."""
    return sa.select(t.versions, t.artifacts.c.name, t.artifacts.c.type).join(
        t.artifacts, t.artifacts.c.id == t.versions.c.artifact_id
    )


def version_record(row: Mapping[Any, Any]) -> VersionRecord:
    return VersionRecord(
        id=row["id"],
        artifact_id=row["artifact_id"],
        name=row["name"],
        type=row["type"],
        index=row["index"],
        digest=row["digest"],
        manifest_key=row["manifest_key"],
        size=row["size"],
        file_count=row["file_count"],
        description=row["description"],
        metadata=dict(row["metadata"] or {}),
        created_at=aware(row["created_at"]) or utcnow(),
        created_by=row["created_by"],
    )


def run_info(row: Mapping[Any, Any]) -> RunInfo:
    return RunInfo(
        id=row["id"],
        orchestrator=row["orchestrator"],
        pipeline=row["pipeline"],
        pipeline_run=row["pipeline_run"],
        step=row["step"],
        step_run=row["step_run"],
        map_index=row["map_index"],
        attempt=row["attempt"],
        job_type=row["job_type"],
        group=row["group"],
        status=run_status(
            row["status"],
            aware(row.get("lease_expires_at")),
            row["host"],
            row.get("pid_scope"),
            row.get("pid"),
        ),
        host=row["host"],
        started_at=aware(row["started_at"]),
        finished_at=aware(row.get("finished_at")),
        extra=dict(row["extra"] or {}),
        pid=row.get("pid"),
        heartbeat_at=aware(row.get("heartbeat_at")),
    )


def add_usage(conn: Connection, run_id: str, version_id: int, role: str, now: datetime) -> None:
    """Record that ``run_id`` used (``input``) or produced (``output``) a version, once."""
    exists = conn.execute(
        sa.select(t.usage.c.run_id).where(
            t.usage.c.run_id == run_id,
            t.usage.c.version_id == version_id,
            t.usage.c.role == role,
        )
    ).first()
    if exists is None:
        conn.execute(
            sa.insert(t.usage).values(
                run_id=run_id, version_id=version_id, role=role, created_at=now
            )
        )
