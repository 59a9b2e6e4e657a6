"""Connections to the metadata database, its transactions, and its one error boundary.

SQLite (WAL, busy timeout) by default, PostgreSQL for teams. Every SQLAlchemy or driver error
becomes a :class:`~artiflow.errors.DatabaseError` here and nowhere else; a write transaction
that fails on a lock, a serialisation conflict or a racing unique insert is retried whole.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import Connection, Engine

from ..errors import DatabaseError
from .migrate import ensure_schema, upgrade

__all__ = [
    "Database",
    "aware",
    "create_engine",
    "for_update",
    "insert_ignore",
    "upgrade_database",
    "utcnow",
    "with_credentials",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_RETRIES = 30


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A timestamp read back from SQLite (naive) as the UTC time it was written."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


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


def with_credentials(url: str, login: str | None = None, password: str | None = None) -> str:
    """``url`` with ``login`` and ``password`` filled in where the URL has none."""
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as err:
        raise DatabaseError(f"invalid database URL: {err}") from err
    if login and not parsed.username:
        parsed = parsed.set(username=login)
    if password and not parsed.password:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def upgrade_database(url: str) -> tuple[str, str | None, str | None]:
    """Migrate the database at ``url`` to this artiflow's schema: ``(redacted url, revision
    before, revision after)``."""
    engine = create_engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        before, after = upgrade(engine)
    except exc.SQLAlchemyError as err:
        raise DatabaseError(f"upgrade of {where} failed: {err}") from err
    finally:
        engine.dispose()
    return where, before, after


def _is_retryable(err: exc.DBAPIError) -> bool:
    if isinstance(err, exc.IntegrityError):  # a racing insert, not a broken reference
        text = str(err.orig).lower()
        return "unique" in text or "duplicate key" in text
    text = str(err.orig).lower()
    return any(
        s in text
        for s in ("database is locked", "deadlock", "could not serialize", "busy", "lock timeout")
    )


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING``: a row another writer may be inserting too."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())
    else:  # pragma: no cover - other databases: a plain insert, retried on conflict
        conn.execute(sa.insert(table).values(**values))


def for_update(conn: Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    """``query`` locking its rows until the transaction ends (SQLite writes are serial)."""
    return query if conn.dialect.name == "sqlite" else query.with_for_update()


class Database:
    """An engine on the registry's database, at the schema this artiflow needs.

    :meth:`read` gives a connection; :meth:`write` runs a function in one transaction.
    """

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
