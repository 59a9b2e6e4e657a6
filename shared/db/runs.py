"""Run rows: a step run's identity and status, and the versions it used."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..errors import ArtifactNotFound, InvalidName
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
}
_TEXT = ("pipeline", "pipeline_run", "step", "step_run", "job_type", "group")


class RunQueries(Database):
    """Create, finish and find runs."""

    def create_run(self, identity: Mapping[str, Any]) -> RunInfo:
        """Insert a ``running`` run; identity keys that are not columns go to ``extra``."""
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
        values = {
            **row,
            "id": uuid.uuid4().hex,
            "status": "running",
            "host": socket.gethostname(),
            "extra": extra,
            "started_at": utcnow(),
        }
        self.write(lambda conn: conn.execute(sa.insert(t.runs).values(**values)))
        return run_info(values)

    def finish_run(self, run_id: str, status: str) -> None:
        self.write(
            lambda conn: conn.execute(
                sa.update(t.runs)
                .where(t.runs.c.id == run_id)
                .values(status=status, finished_at=utcnow())
            )
        )

    def get_run(self, run_id: str) -> RunInfo:
        with self.read() as conn:
            row = conn.execute(sa.select(t.runs).where(t.runs.c.id == run_id)).mappings().first()
        if row is None:
            raise ArtifactNotFound(f"no run {run_id!r}")
        return run_info(row)

    def runs(self, **filters: Any) -> list[RunInfo]:
        """Runs whose columns equal ``filters`` (``pipeline=``, ``pipeline_run=``, ``status=``
        ...), oldest first."""
        query = sa.select(t.runs).order_by(t.runs.c.started_at, t.runs.c.id)
        for key, value in filters.items():
            if key not in t.runs.c or key == "extra":
                raise InvalidName(f"runs cannot be filtered by {key!r}")
            query = query.where(t.runs.c[key] == value)
        with self.read() as conn:
            return [run_info(r) for r in conn.execute(query).mappings()]

    def record_input(self, run_id: str, version_id: int) -> None:
        """Record that the run used the version (once, however often it is used)."""
        self.write(lambda conn: add_usage(conn, run_id, version_id, "input", utcnow()))
