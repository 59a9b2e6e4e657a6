"""Schema migrations (Alembic, shipped in the package) and the check done when a store opens."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .errors import SchemaOutOfDate

__all__ = ["VERSION_TABLE", "current_revision", "ensure_schema", "head_revision", "upgrade"]

VERSION_TABLE = "artiflow_alembic_version"
_PG_LOCK_KEY = 0x61727469  # "arti": serialises concurrent first opens on PostgreSQL


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "artiflow:migrations")
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("artiflow ships no migrations")
    return head


def current_revision(conn: Connection) -> str | None:
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


@contextmanager
def _init_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding a lock that serialises schema creation across processes."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        lock_path = None
        if database and database != ":memory:":
            lock_path = os.path.abspath(database) + ".init-lock"
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644) if lock_path else None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            with engine.connect() as conn:
                yield conn
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
        try:
            yield conn
        finally:
            if engine.dialect.name == "postgresql":
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()


def _upgrade_on(conn: Connection, revision: str = "head") -> None:
    command.upgrade(_config(conn), revision)
    conn.commit()


def ensure_schema(engine: Engine) -> None:
    """Create a new database at the current head; refuse one that is older or newer."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
        conn.rollback()
    if current == head:
        return
    with _init_lock(engine) as conn:
        current = current_revision(conn)
        conn.rollback()
        if current == head:
            return
        if current is None and not sa.inspect(conn).has_table("artiflow_artifacts"):
            _upgrade_on(conn)
            return
    url = engine.url.render_as_string(hide_password=True)
    raise SchemaOutOfDate(
        f"the artiflow database {url} is at schema revision {current!r}, this artiflow needs "
        f"{head!r}; run `artiflow db upgrade --database '{url}'` (back it up first)"
    )


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the database to ``revision``; returns ``(before, after)``."""
    with _init_lock(engine) as conn:
        before = current_revision(conn)
        conn.rollback()
        _upgrade_on(conn, revision)
        after = current_revision(conn)
        conn.rollback()
    return before, after
