"""Schema migrations (Alembic, shipped in the package) and the check done when a store opens."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "AUTOMATIC_FROM",
    "HEAD",
    "VERSION_TABLE",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "upgrade",
]

VERSION_TABLE = "artiflow_alembic_version"
#: The newest migration this artiflow ships; a test checks it against the scripts. Opening an
#: up-to-date database compares with it and never imports Alembic (it costs a third of startup).
HEAD = "0002"
#: Older revisions that opening a database upgrades on its own, under the same lock as a first
#: open: every step from them to :data:`HEAD` only adds nullable columns, which old rows (and an
#: older artiflow still writing) leave empty. Any other older revision needs ``artiflow db
#: upgrade``.
AUTOMATIC_FROM = frozenset({"0001"})
log = logging.getLogger(__name__)
_PG_LOCK_KEY = 0x61727469  # "arti": serialises concurrent first opens on PostgreSQL


def _config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "artiflow.db:migrations")
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The head of the shipped migration scripts (what :data:`HEAD` must equal)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("artiflow ships no migrations")
    return head


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision, or None for a database artiflow never touched."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    return str(rows[0][0]) if rows else None


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
    from alembic import command

    command.upgrade(_config(conn), revision)
    conn.commit()


def ensure_schema(engine: Engine) -> None:
    """Create a new database at the current head, upgrade one at a revision in
    :data:`AUTOMATIC_FROM`; refuse one that is older than that, or newer."""
    head = HEAD
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
        if current in AUTOMATIC_FROM:
            log.info("upgrading the artiflow database from schema %s to %s", current, head)
            _upgrade_on(conn)
            return
    url = engine.url.render_as_string(hide_password=True)
    if current is not None and current > head:
        raise SchemaOutOfDate(
            f"the artiflow database {url} is at schema revision {current!r}, newer than this "
            f"artiflow ({head!r}); upgrade artiflow (pip install -U artiflow)"
        )
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
