"""Fixtures for the core suite: database URLs for every metadata-store backend."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "ARTIFLOW_TEST_POSTGRES_URL"


def _pg_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    base = _pg_admin_url()
    if base is None:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(base)
    name = f"artiflow_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def registry(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    import artiflow as af

    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    reg = af.Registry(store=str(tmp_path / "store"), database=db_url)
    yield reg
    reg.close()


@pytest.fixture
def local_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A registry on the embedded default (SQLite + local store) only."""
    import artiflow as af

    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    reg = af.Registry(store=str(tmp_path / "store"), database=f"sqlite:///{tmp_path / 'r.db'}")
    yield reg
    reg.close()


def _make_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.fixture
def make_tree():  # type: ignore[no-untyped-def]
    """``make_tree(root, {"a.txt": "text", "b/c.bin": b"bytes"})`` writes files, returns root."""
    return _make_tree
