"""Run rows: a step run's identity, status and lease, and the versions it used."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ..errors import ArtifactNotFound, InvalidName
from ..liveness import LOST, RUNNING, this_process
from ..records import RunInfo
from . import schema as t
from .engine import Database, utcnow
from .rows import add_usage, run_info

__all__ = ["RunQueries"]

_COLUMNS = frozenset(RunInfo.__dataclass_fields__) - {
    "id",
    "status",
    "extra",
    "host",
    "started_at",
    "finished_at",
    "pid",
    "heartbeat_at",
}
_TEXT = ("pipeline", "pipeline_run", "step", "step_run", "job_type", "group")


def _expiry(now: datetime, lease_seconds: float | None) -> datetime | None:
    return None if lease_seconds is None else now + timedelta(seconds=lease_seconds)


class RunQueries(Database):
    """Create, finish and find runs."""

    @property
    def leases(self) -> bool:
        """Whether runs here should hold a lease: not in an in-memory SQLite database, which
        only this process sees (and whose one shared connection a heartbeat must not use)."""
        url = self.engine.url
        return not (url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"))

    def create_run(
        self, identity: Mapping[str, Any], lease_seconds: float | None = None
    ) -> RunInfo:
        """Insert a ``running`` run owned by this process; identity keys that are not columns
        go to ``extra``. With ``lease_seconds`` the run holds a lease that
        :meth:`renew_lease` must renew before it expires, or readers see the run ``lost``."""
        extra = {k: v for k, v in identity.items() if k not in _COLUMNS}
        row = {k: identity.get(k) for k in _COLUMNS}
        row["orchestrator"] = row.get("orchestrator") or "python"
        for key in ("map_index", "attempt"):
            value = row[key]
            if value is not None:
                row[key] = int(value)
        for key in _TEXT:
            if row[key] is not None:
                row[key] = str(row[key])
        owner, now = this_process(), utcnow()
        values = {
            **row,
            "id": uuid.uuid4().hex,
            "status": RUNNING,
            "host": owner.host,
            "pid": owner.pid,
            "pid_scope": owner.scope,
            "extra": extra,
            "started_at": now,
            "heartbeat_at": now,
            "lease_expires_at": _expiry(now, lease_seconds),
        }
        self.write(lambda conn: conn.execute(sa.insert(t.runs).values(**values)))
        return run_info(values)

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark the run ``finished`` or ``failed``; its lease ends (``heartbeat_at`` stays)."""
        self.write(
            lambda conn: conn.execute(
                sa.update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status, finished_at=utcnow(), lease_expires_at=None)
            )
        )

    def renew_lease(self, run_id: str, lease_seconds: float) -> bool:
        """Extend a running run's lease to ``lease_seconds`` from now; False if the run is no
        longer ``running`` in the database (finished or failed meanwhile)."""
        now = utcnow()
        query = (
            sa.update(t.runs)
            .where(t.runs.c.id == run_id, t.runs.c.status == RUNNING)
            .values(heartbeat_at=now, lease_expires_at=_expiry(now, lease_seconds))
        )
        return bool(self.write(lambda conn: conn.execute(query).rowcount))

    def get_run(self, run_id: str) -> RunInfo:
        with self.read() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise ArtifactNotFound(f"no run {run_id!r}")
        return run_info(row)

    def runs(self, **filters: Any) -> list[RunInfo]:
        """Runs whose columns equal ``filters`` (``pipeline=``, ``pipeline_run=``, ``status=``
        ...), oldest first. ``status`` is the one readers see: ``lost`` finds the runs still
        ``running`` in the database whose owner is gone, ``running`` only the live ones."""
        query = sa.select(t.runs).order_by(t.runs.c.started_at, t.runs.c.id)
        status = filters.get("status")
        for key, value in filters.items():
            if key not in t.runs.c or key in ("extra", "pid_scope", "lease_expires_at"):
                raise InvalidName(f"runs cannot be filtered by {key!r}")
            stored = RUNNING if key == "status" and value == LOST else value
            query = query.where(t.runs.c[key] == stored)
        with self.read() as conn:
            found = [run_info(r) for r in conn.execute(query).mappings()]
        return found if status is None else [r for r in found if r.status == status]

    def record_input(self, run_id: str, version_id: int) -> None:
        """Record that the run used the version (once, however often it is used)."""
        self.write(lambda conn: add_usage(conn, run_id, version_id, "input", utcnow()))
