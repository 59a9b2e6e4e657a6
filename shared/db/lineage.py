"""Lineage in SQL: the closure up- or downstream of a version, one recursive query.

The closure is one recursive common table expression run by the database (SQLite or
PostgreSQL) over ``artiflow_usage``; Python receives only the answer, never the whole graph.
``depth`` counts hops (edges) from the starting version: ``depth=1`` upstream is the runs that
produced it, ``depth=2`` adds the versions those runs consumed, and so on. The rows are
:data:`CLOSURE_COLUMNS`; :mod:`artiflow.lineage` turns them into a graph.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from ..records import RunInfo, VersionRecord
from . import schema as t
from .engine import Database
from .rows import run_info, version_query, version_record

__all__ = ["CLOSURE_COLUMNS", "LineageQueries", "closure", "closure_within"]

#: What each row of :func:`closure` holds.
CLOSURE_COLUMNS = (
    "version_id",
    "run_id",
    "reached_from",
    "name",
    "type",
    "index",
    "pipeline",
    "step",
    "map_index",
    "attempt",
    "status",
    "pipeline_run",
    "lease_expires_at",
    "host",
    "pid_scope",
    "pid",
)
# per direction: (role of the usage from a reached version to the next run, role onwards)
_ROLES = {"upstream": ("output", "input"), "downstream": ("input", "output")}


def _null(type_: Any) -> Any:
    return sa.cast(sa.null(), type_)


def _with_labels(rows: Any, version_id: Any, run_id: Any, reached_from: Any) -> sa.Select[Any]:
    """``(version_id, run_id, reached_from, name, type, index, pipeline, step, map_index,
    attempt, status, pipeline_run, lease_expires_at, host, pid_scope, pid)``: each row with
    its run's and its version's labels, and what tells whether a running run is lost."""
    v, a, r = t.versions, t.artifacts, t.runs
    return sa.select(
        version_id,
        run_id,
        reached_from,
        *(a.c.name, a.c.type, v.c.index),
        *(r.c.pipeline, r.c.step, r.c.map_index, r.c.attempt, r.c.status, r.c.pipeline_run),
        *(r.c.lease_expires_at, r.c.host, r.c.pid_scope, r.c.pid),
    ).select_from(
        rows.join(r, r.c.id == run_id)
        .outerjoin(v, v.c.id == version_id)
        .outerjoin(a, a.c.id == v.c.artifact_id)
    )


def closure(start: int, direction: str) -> sa.Select[Any]:
    """One statement: every edge up- or downstream of version ``start``, with labels.

    ``walk`` is the recursive part. A row ``(version_id, run_id, reached_from)`` says that
    ``run_id`` made (upstream) or used (downstream) the reached version ``reached_from`` and
    used or made ``version_id`` (NULL when the run has nothing further). Every usage between
    two nodes of the answer is in some row, and ``UNION`` ends cycles (a run that re-logs the
    version it used).
    """
    into_role, out_role = _ROLES[direction]
    id_type = t.versions.c.id.type
    u, u2 = t.usage.alias("u"), t.usage.alias("u2")
    walk = sa.select(
        sa.cast(sa.literal(start), id_type).label("version_id"),
        _null(t.usage.c.run_id.type).label("run_id"),
        _null(id_type).label("reached_from"),
    ).cte("walk", recursive=True)
    walk = walk.union(
        sa.select(u2.c.version_id, u.c.run_id, walk.c.version_id).select_from(
            walk.join(u, (u.c.version_id == walk.c.version_id) & (u.c.role == into_role)).outerjoin(
                u2, (u2.c.run_id == u.c.run_id) & (u2.c.role == out_role)
            )
        )
    )
    return _with_labels(walk, walk.c.version_id, walk.c.run_id, walk.c.reached_from)


def closure_within(start: int, direction: str, depth: int) -> sa.Select[Any]:
    """Like :func:`closure`, for the nodes within ``depth`` hops and every usage among them.

    ``walk`` keeps how many version-to-version steps (two hops each) lead to each version;
    a version is in if its fewest steps are within ``depth``, a run if it is one hop past a
    version that is and still within ``depth``.
    """
    into_role, out_role = _ROLES[direction]
    u, u2 = t.usage.alias("u"), t.usage.alias("u2")
    walk = sa.select(
        sa.cast(sa.literal(start), t.versions.c.id.type).label("version_id"),
        sa.cast(sa.literal(0), sa.Integer()).label("step"),
    ).cte("walk", recursive=True)
    walk = walk.union(
        sa.select(u2.c.version_id, walk.c.step + 1)
        .select_from(
            walk.join(u, (u.c.version_id == walk.c.version_id) & (u.c.role == into_role)).join(
                u2, (u2.c.run_id == u.c.run_id) & (u2.c.role == out_role)
            )
        )
        .where(walk.c.step * 2 + 2 <= depth)
    )
    vset = (
        sa.select(walk.c.version_id, sa.func.min(walk.c.step).label("step"))
        .group_by(walk.c.version_id)
        .cte("vset")
    )
    rset = (
        sa.select(u.c.run_id)
        .join(vset, u.c.version_id == vset.c.version_id)
        .where(u.c.role == into_role, vset.c.step * 2 + 1 <= depth)
        .distinct()
        .cte("rset")
    )
    edges = (
        sa.select(u2.c.version_id, u2.c.run_id, u2.c.role)
        .join(vset, vset.c.version_id == u2.c.version_id)
        .join(rset, rset.c.run_id == u2.c.run_id)
        .subquery("edges")
    )
    onward = sa.case((edges.c.role == out_role, edges.c.version_id))
    into = sa.case((edges.c.role == into_role, edges.c.version_id))
    return _with_labels(edges, onward, edges.c.run_id, into)


class LineageQueries(Database):
    """Who made and used which version."""

    def closure_rows(
        self, version_id: int, directions: Sequence[str], depth: int | None
    ) -> Iterator[tuple[str, Iterator[Row[Any]]]]:
        """``(direction, rows)`` per direction: :func:`closure` (or :func:`closure_within`
        for a ``depth``) streamed from one connection, open while the caller reads."""
        with self.read() as conn:
            for way in directions:
                query = (
                    closure(version_id, way)
                    if depth is None
                    else closure_within(version_id, way, depth)
                )
                yield way, iter(conn.execute(query))

    def runs_of(self, version_id: int, role: str) -> list[RunInfo]:
        """The runs that used (``input``) or produced (``output``) a version, in order."""
        query = (
            sa.select(t.runs)
            .join(t.usage, t.usage.c.run_id == t.runs.c.id)
            .where(t.usage.c.version_id == version_id, t.usage.c.role == role)
            .order_by(t.usage.c.created_at, t.runs.c.id)
        )
        with self.read() as conn:
            return [run_info(r) for r in conn.execute(query).mappings()]

    def run_versions(self, run_id: str) -> list[tuple[str, VersionRecord]]:
        """``(role, version)`` for every version a run consumed (``input``) or produced
        (``output``): inputs first, each in the order recorded."""
        query = (
            version_query()
            .add_columns(t.usage.c.role)
            .join(t.usage, t.usage.c.version_id == t.versions.c.id)
            .where(t.usage.c.run_id == run_id)
            .order_by(t.usage.c.role, t.usage.c.created_at, t.versions.c.id)
        )
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        return [(row["role"], version_record(row)) for row in rows]

    def producers(self, version_ids: Sequence[int]) -> dict[int, list[RunInfo]]:
        """The runs that produced each version (one, or several for a distributed version)."""
        out: dict[int, list[RunInfo]] = {v: [] for v in version_ids}
        ids = list(version_ids)
        with self.read() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    sa.select(t.usage.c.version_id, t.runs)
                    .join(t.runs, t.runs.c.id == t.usage.c.run_id)
                    .where(t.usage.c.version_id.in_(ids[start : start + 500]))
                    .where(t.usage.c.role == "output")
                    .order_by(t.usage.c.created_at, t.runs.c.id)
                )
                for row in conn.execute(query).mappings():
                    out[row["version_id"]].append(run_info(row))
        return out
