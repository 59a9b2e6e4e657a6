"""The metadata store: artifacts, versions, aliases, runs and usage on SQLAlchemy 2 Core.

SQLite (WAL, busy timeout) by default, PostgreSQL for teams. Version numbers are allocated inside
the commit transaction while holding the artifact's lock: ``BEGIN IMMEDIATE`` on SQLite (one
writer at a time), ``SELECT ... FOR UPDATE`` on the artifact row on PostgreSQL. The unique
constraint on ``(artifact_id, index)`` is the backstop, and a transaction that fails on it or on a
lock/serialisation error is retried from the start. Nothing is visible before the commit, so a
crash at any point leaves no partial version and no lock behind.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from . import schema as t
from .errors import ArtifactNotFound, DatabaseError, InvalidName, TypeMismatch
from .migrate import ensure_schema
from .naming import check_alias, check_name
from .records import RunInfo, VersionRecord

__all__ = ["MetaStore", "VersionSpec", "parse_ref", "utcnow"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_VERSION_RE = re.compile(r"v(\d+)")
_RETRIES = 30


@dataclass(frozen=True)
class VersionSpec:
    """What one commit writes: the version's content identity, description and producers."""

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


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def parse_ref(ref: str) -> tuple[str, str]:
    """Split ``name``, ``name:alias`` or ``name:v3`` into ``(name, alias-or-version)``."""
    if not isinstance(ref, str):
        raise InvalidName(f"artifact reference must be a string, got {ref!r}")
    name, sep, tag = ref.partition(":")
    check_name(name)
    if not sep:
        return name, "latest"
    if not tag:
        raise InvalidName(f"artifact reference {ref!r} has an empty alias or version after ':'")
    if not (_VERSION_RE.fullmatch(tag) or tag == "latest"):
        check_alias(tag)
    return name, tag


def _sqlite_engine(url: sa.URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    engine = sa.create_engine(
        url,
        connect_args={"timeout": 60, "check_same_thread": False},
        # An in-memory database lives in its connection: share that one connection.
        poolclass=sa.pool.StaticPool if in_memory else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's implicit transactions.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A write takes the lock up front: two writers never both read "next index = 5".
        writing = conn.get_execution_options().get("artiflow_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


def create_engine(url: str) -> Engine:
    """An engine for an SQLAlchemy URL, with artiflow's settings for SQLite and PostgreSQL."""
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as err:
        raise DatabaseError(f"invalid database URL {url!r}: {err}") from err
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
            return _sqlite_engine(parsed)
        if backend == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=8)
    except (ImportError, exc.NoSuchModuleError) as err:
        raise DatabaseError(
            f"no driver for database URL {parsed.render_as_string(hide_password=True)}: {err}; "
            "for PostgreSQL run pip install 'artiflow[postgres]'"
        ) from err


def _is_retryable(err: exc.DBAPIError) -> bool:
    if isinstance(err, exc.IntegrityError):  # a racing insert, not a broken reference
        text = str(err.orig).lower()
        return "unique" in text or "duplicate key" in text
    text = str(err.orig).lower()
    return any(
        s in text
        for s in ("database is locked", "deadlock", "could not serialize", "busy", "lock timeout")
    )


class MetaStore:
    """Reads and writes artiflow's tables; every write is one short transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._writer = self.engine.execution_options(artiflow_write=True)
        try:
            ensure_schema(self.engine)
        except exc.SQLAlchemyError as err:
            self.engine.dispose()
            raise DatabaseError(f"cannot open database {self.safe_url}: {err}") from err

    @property
    def safe_url(self) -> str:
        return sa.make_url(self.url).render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except exc.SQLAlchemyError as err:
            raise DatabaseError(f"database {self.safe_url} failed: {err}") from err

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one transaction, retrying it whole on lock and uniqueness conflicts."""
        delay = 0.01
        for attempt in range(_RETRIES):
            try:
                with self._writer.begin() as conn:
                    return fn(conn)
            except exc.DBAPIError as err:
                if attempt + 1 < _RETRIES and _is_retryable(err):
                    log.debug("retrying transaction after %s", err.orig)
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
                    continue
                raise DatabaseError(f"database {self.safe_url} failed: {err.orig}") from err
            except exc.SQLAlchemyError as err:
                raise DatabaseError(f"database {self.safe_url} failed: {err}") from err
        raise DatabaseError(f"database {self.safe_url}: transaction kept conflicting")

    # ------------------------------------------------------------------ runs
    def create_run(self, identity: Mapping[str, Any]) -> RunInfo:
        known = {f for f in RunInfo.__dataclass_fields__} - {"id", "status", "extra", "host"}
        known -= {"started_at", "finished_at"}
        extra = {k: v for k, v in identity.items() if k not in known}
        row = {k: identity.get(k) for k in known}
        row["orchestrator"] = row.get("orchestrator") or "python"
        for key in ("map_index", "attempt"):
            value = row[key]
            if value is not None:
                row[key] = int(value)
        for key in ("pipeline", "pipeline_run", "step", "step_run", "job_type", "group"):
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
        return self._run_from_row(values)

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
        return self._run_from_row(row)

    def runs(self, **filters: Any) -> list[RunInfo]:
        """Runs whose columns equal ``filters`` (``pipeline=``, ``pipeline_run=``, ``status=``
        ...), oldest first."""
        query = sa.select(t.runs).order_by(t.runs.c.started_at, t.runs.c.id)
        for key, value in filters.items():
            if key not in t.runs.c or key == "extra":
                raise InvalidName(f"runs cannot be filtered by {key!r}")
            query = query.where(t.runs.c[key] == value)
        with self.read() as conn:
            return [self._run_from_row(r) for r in conn.execute(query).mappings()]

    @staticmethod
    def _run_from_row(row: Mapping[Any, Any]) -> RunInfo:
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
            status=row["status"],
            host=row["host"],
            started_at=_aware(row["started_at"]),
            finished_at=_aware(row.get("finished_at")),
            extra=dict(row["extra"] or {}),
        )

    # ------------------------------------------------------------------ versions
    _version_cols = (
        t.versions,
        t.artifacts.c.name,
        t.artifacts.c.type,
    )

    def _version_query(self) -> sa.Select[Any]:
        return sa.select(*self._version_cols).join(
            t.artifacts, t.artifacts.c.id == t.versions.c.artifact_id
        )

    @staticmethod
    def _record(row: Mapping[Any, Any]) -> VersionRecord:
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
            created_at=_aware(row["created_at"]) or utcnow(),
            created_by=row["created_by"],
        )

    def find(self, ref: str) -> VersionRecord:
        """The committed version a reference names; :class:`ArtifactNotFound` if none."""
        name, tag = parse_ref(ref)
        query = self._version_query().where(t.artifacts.c.name == name)
        match = _VERSION_RE.fullmatch(tag)
        if match:
            query = query.where(t.versions.c.index == int(match.group(1)))
        else:
            query = query.join(
                t.aliases,
                (t.aliases.c.version_id == t.versions.c.id) & (t.aliases.c.alias == tag),
            )
        with self.read() as conn:
            row = conn.execute(query).mappings().first()
            if row is None:
                exists = conn.execute(
                    sa.select(t.artifacts.c.id).where(t.artifacts.c.name == name)
                ).first()
        if row is None:
            if exists is None:
                raise ArtifactNotFound(f"no artifact named {name!r}")
            raise ArtifactNotFound(f"artifact {name!r} has no version or alias {tag!r}")
        return self._record(row)

    def versions(self, name: str) -> list[VersionRecord]:
        check_name(name)
        query = self._version_query().where(t.artifacts.c.name == name).order_by(t.versions.c.index)
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise ArtifactNotFound(f"no artifact named {name!r}")
        return [self._record(r) for r in rows]

    def artifact_names(self) -> list[tuple[str, str, int]]:
        """``(name, type, version count)`` for every artifact, by name."""
        query = (
            sa.select(t.artifacts.c.name, t.artifacts.c.type, sa.func.count(t.versions.c.id))
            .select_from(t.artifacts.outerjoin(t.versions))
            .group_by(t.artifacts.c.id, t.artifacts.c.name, t.artifacts.c.type)
            .order_by(t.artifacts.c.name)
        )
        with self.read() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query)]

    def aliases_of(self, version_id: int) -> list[str]:
        query = sa.select(t.aliases.c.alias).where(t.aliases.c.version_id == version_id)
        with self.read() as conn:
            found = [r[0] for r in conn.execute(query)]
        return sorted(found, key=lambda a: (a != "latest", a))

    def aliases_for(self, version_ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {v: [] for v in version_ids}
        if not version_ids:
            return out
        query = sa.select(t.aliases.c.version_id, t.aliases.c.alias).where(
            t.aliases.c.version_id.in_(list(version_ids))
        )
        with self.read() as conn:
            for vid, alias in conn.execute(query):
                out[vid].append(alias)
        for names in out.values():
            names.sort(key=lambda a: (a != "latest", a))
        return out

    # ------------------------------------------------------------------ commit
    def _lock_artifact(self, conn: Connection, name: str, type_: str) -> int:
        """Create the artifact row if needed, lock it, and check it has ``type_``."""
        dialect = conn.dialect.name
        values = {"name": name, "type": type_, "created_at": utcnow()}
        if dialect in ("postgresql", "sqlite"):
            insert_fn: Any
            if dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as insert_fn
            else:
                from sqlalchemy.dialects.sqlite import insert as insert_fn
            conn.execute(insert_fn(t.artifacts).values(**values).on_conflict_do_nothing())
        else:  # pragma: no cover - other dialects: plain insert, retried on conflict
            exists = conn.execute(
                sa.select(t.artifacts.c.id).where(t.artifacts.c.name == name)
            ).first()
            if exists is None:
                conn.execute(sa.insert(t.artifacts).values(**values))
        query = sa.select(t.artifacts.c.id, t.artifacts.c.type).where(t.artifacts.c.name == name)
        if dialect != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).one()
        if row.type != type_:
            raise TypeMismatch(
                f"artifact {name!r} has type {row.type!r}; it cannot be logged as {type_!r} "
                "(a name belongs to one type forever)"
            )
        return int(row.id)

    def check_type(self, name: str, type_: str) -> None:
        """Raise :class:`TypeMismatch` early if ``name`` exists with another type."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(t.artifacts.c.type).where(t.artifacts.c.name == name)
            ).first()
        if row is not None and row.type != type_:
            raise TypeMismatch(
                f"artifact {name!r} has type {row.type!r}; it cannot be logged as {type_!r} "
                "(a name belongs to one type forever)"
            )

    def _commit_one(self, conn: Connection, spec: VersionSpec) -> tuple[int, bool]:
        """Inside a transaction: dedupe or allocate, move aliases, record output usage."""
        artifact_id = self._lock_artifact(conn, spec.name, spec.type)
        existing = conn.execute(
            sa.select(t.versions.c.id)
            .where(t.versions.c.artifact_id == artifact_id, t.versions.c.digest == spec.digest)
            .order_by(t.versions.c.index)
            .limit(1)
        ).first()
        now = utcnow()
        if existing is not None:
            version_id, created = int(existing.id), False
        else:
            top = conn.execute(
                sa.select(sa.func.max(t.versions.c.index)).where(
                    t.versions.c.artifact_id == artifact_id
                )
            ).scalar()
            version_id = conn.execute(
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
                    created_at=now,
                    created_by=spec.run_ids[0] if spec.run_ids else None,
                )
                .returning(t.versions.c.id)
            ).scalar_one()
            created = True
        for alias in [*spec.aliases, *(["latest"] if created else [])]:
            conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.artifact_id == artifact_id, t.aliases.c.alias == alias
                )
            )
            conn.execute(
                sa.insert(t.aliases).values(
                    artifact_id=artifact_id, alias=alias, version_id=version_id
                )
            )
        for run_id in spec.run_ids:
            self._add_usage(conn, run_id, version_id, "output", now)
        return version_id, created

    def commit_versions(self, specs: Sequence[VersionSpec]) -> list[tuple[VersionRecord, bool]]:
        """Commit several versions in ONE transaction: all of them become visible, or none.

        Each is deduped or numbered as :meth:`commit_version` does; ``created`` is False for
        one that matched an existing version of its name.
        """
        for spec in specs:
            for alias in spec.aliases:
                check_alias(alias)
        # Lock artifact rows in name order so two atomic runs cannot deadlock each other.
        order = sorted(range(len(specs)), key=lambda i: specs[i].name)

        def txn(conn: Connection) -> dict[int, tuple[int, bool]]:
            return {i: self._commit_one(conn, specs[i]) for i in order}

        done = self.write(txn)
        return [(self.get_version(done[i][0]), done[i][1]) for i in range(len(specs))]

    def commit_version(
        self,
        *,
        name: str,
        type_: str,
        digest: str,
        manifest_key: str,
        size: int,
        file_count: int,
        description: str | None,
        metadata: Mapping[str, Any],
        run_ids: Sequence[str],
        aliases: Iterable[str] = (),
        on_commit: Callable[[Connection, int], None] | None = None,
    ) -> tuple[VersionRecord, bool]:
        """The commit transaction for one version (see :meth:`_commit_one`).

        Returns ``(record, created)``; ``created`` is False when an existing version of the
        same name had the same digest (the requested aliases then move to it). ``on_commit``
        runs inside the same transaction with the version's id.
        """
        spec = VersionSpec(
            name=name,
            type=type_,
            digest=digest,
            manifest_key=manifest_key,
            size=size,
            file_count=file_count,
            description=description,
            metadata=dict(metadata),
            run_ids=tuple(run_ids),
            aliases=tuple(check_alias(a) for a in aliases),
        )

        def txn(conn: Connection) -> tuple[int, bool]:
            version_id, created = self._commit_one(conn, spec)
            if on_commit is not None:
                on_commit(conn, version_id)
            return version_id, created

        version_id, created = self.write(txn)
        return self.get_version(version_id), created

    @staticmethod
    def _add_usage(
        conn: Connection, run_id: str, version_id: int, role: str, now: datetime
    ) -> None:
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

    def record_input(self, run_id: str, version_id: int) -> None:
        self.write(lambda conn: self._add_usage(conn, run_id, version_id, "input", utcnow()))

    def get_version(self, version_id: int) -> VersionRecord:
        with self.read() as conn:
            row = (
                conn.execute(self._version_query().where(t.versions.c.id == version_id))
                .mappings()
                .one()
            )
        return self._record(row)

    def set_alias(self, ref: str, alias: str) -> VersionRecord:
        """Point a custom alias at the version ``ref`` names (moving it atomically)."""
        check_alias(alias)
        record = self.find(ref)

        def txn(conn: Connection) -> None:
            conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.artifact_id == record.artifact_id, t.aliases.c.alias == alias
                )
            )
            conn.execute(
                sa.insert(t.aliases).values(
                    artifact_id=record.artifact_id, alias=alias, version_id=record.id
                )
            )

        self.write(txn)
        return record

    # ------------------------------------------------------------------ lineage neighbours
    def runs_of(self, version_id: int, role: str) -> list[RunInfo]:
        query = (
            sa.select(t.runs)
            .join(t.usage, t.usage.c.run_id == t.runs.c.id)
            .where(t.usage.c.version_id == version_id, t.usage.c.role == role)
            .order_by(t.usage.c.created_at, t.runs.c.id)
        )
        with self.read() as conn:
            return [self._run_from_row(r) for r in conn.execute(query).mappings()]
