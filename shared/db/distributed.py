"""Distributed artifacts' rows: one per ``(name, distributed_id)``, a row per part.

``artiflow_distributed.state`` moves ``pending`` → ``closing`` → ``finished``. Parts are
refused once a finish has begun (``closing``), so a finisher is never starved by writers that
keep adding; a finish commits its version and marks the row ``finished`` in one transaction,
after checking that the parts it merged are exactly the parts recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import DistributedError, TypeMismatch
from ..records import VersionRecord
from . import schema as t
from .commits import CommitQueries, VersionSpec, commit_one
from .engine import for_update, insert_ignore, utcnow

__all__ = ["CLOSING", "FINISHED", "PENDING", "DistributedQueries", "Part", "describe"]

log = logging.getLogger(__name__)
PENDING, CLOSING, FINISHED = "pending", "closing", "finished"
_Row = sa.Row[tuple[int, str, str]]


@dataclass(frozen=True)
class Part:
    """One upserted part: its row id, the run that wrote it, and its part manifest."""

    id: int
    run_id: str
    manifest_key: str


def describe(name: str, did: str) -> str:
    return f"distributed artifact {name!r} (distributed_id {did!r})"


def _check(row: _Row, name: str, type_: str, did: str, *, finishing: bool = False) -> int:
    """Refuse a row of another type, a finished one, and (to add parts) a closing one."""
    if row.type != type_:
        raise TypeMismatch(
            f"{describe(name, did)} collects parts of type {row.type!r}, not {type_!r}"
        )
    if row.state == FINISHED:
        raise DistributedError(
            f"{describe(name, did)} is already finished; start a new distributed_id to add parts"
        )
    if row.state == CLOSING and not finishing:
        raise DistributedError(
            f"{describe(name, did)} is already finished (being committed by a finisher); "
            "start a new distributed_id to add parts"
        )
    return int(row.id)


def _row(conn: Connection, name: str, did: str, *, lock: bool) -> _Row | None:
    """The row; with ``lock``, locked until the transaction ends."""
    d = t.distributed
    query = sa.select(d.c.id, d.c.type, d.c.state).where(
        d.c.name == name, d.c.distributed_id == did
    )
    return conn.execute(for_update(conn, query) if lock else query).first()


class DistributedQueries(CommitQueries):
    """Parts of distributed artifacts, and their finish."""

    def check_open(self, name: str, type_: str, did: str) -> None:
        """Refuse early (before anything is uploaded) a distributed artifact that takes no
        more parts."""
        with self.read() as conn:
            row = _row(conn, name, did, lock=False)
        if row is not None:
            _check(row, name, type_, did)

    def add_part(self, name: str, type_: str, did: str, run_id: str, manifest_key: str) -> None:
        """Record a part (creating the distributed artifact's row on the first one)."""

        def txn(conn: Connection) -> None:
            insert_ignore(
                conn,
                t.distributed,
                {
                    "name": name,
                    "type": type_,
                    "distributed_id": did,
                    "state": PENDING,
                    "created_at": utcnow(),
                },
            )
            row = _row(conn, name, did, lock=True)
            if row is None:  # pragma: no cover - created just above
                raise DistributedError(f"{describe(name, did)} vanished")
            conn.execute(
                sa.insert(t.distributed_parts).values(
                    distributed_pk=_check(row, name, type_, did),
                    run_id=run_id,
                    manifest_key=manifest_key,
                    created_at=utcnow(),
                )
            )

        self.write(txn)

    def close_distributed(self, name: str, type_: str, did: str) -> int:
        """Move the row to ``closing`` (no more parts); returns its primary key."""

        def txn(conn: Connection) -> int:
            row = _row(conn, name, did, lock=True)
            if row is None:
                raise DistributedError(
                    f"cannot finish {describe(name, did)}: no parts were upserted"
                )
            pk = _check(row, name, type_, did, finishing=True)
            d = t.distributed
            conn.execute(sa.update(d).where(d.c.id == pk).values(state=CLOSING))
            return pk

        return self.write(txn)

    def reopen_distributed(self, pk: int) -> None:
        """Back to ``pending`` after a failed finish; a failure here is only logged (the
        finish's own error matters more, and finishing again resumes a ``closing`` row)."""
        d = t.distributed
        try:
            self.write(
                lambda conn: conn.execute(
                    sa.update(d).where(d.c.id == pk, d.c.state == CLOSING).values(state=PENDING)
                )
            )
        except Exception as err:
            log.warning("could not reopen distributed artifact row %s: %s", pk, err)

    def distributed_parts(self, pk: int) -> list[Part]:
        p = t.distributed_parts
        query = sa.select(p.c.id, p.c.run_id, p.c.manifest_key).where(p.c.distributed_pk == pk)
        with self.read() as conn:
            rows = conn.execute(query.order_by(p.c.id))
            return [Part(int(r.id), r.run_id, r.manifest_key) for r in rows]

    def finish_distributed(
        self, pk: int, merged: frozenset[int], spec: VersionSpec
    ) -> tuple[VersionRecord, bool]:
        """Commit the merged version and mark the row ``finished``, in one transaction."""

        def txn(conn: Connection) -> tuple[int, bool]:
            version_id, created = commit_one(conn, spec)
            _mark_finished(conn, version_id, pk, merged)
            return version_id, created

        version_id, created = self.write(txn)
        return self.get_version(version_id), created


def _mark_finished(conn: Connection, version_id: int, pk: int, merged: frozenset[int]) -> None:
    """Lock the row, check the merged parts are all of them, mark it finished."""
    d, p = t.distributed, t.distributed_parts
    state = conn.execute(for_update(conn, sa.select(d.c.state).where(d.c.id == pk))).scalar_one()
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
