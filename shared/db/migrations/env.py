"""Alembic environment for artiflow's metadata store (runs on the caller's connection)."""

from __future__ import annotations

from alembic import context

from artiflow.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - artiflow always hands a connection over
    raise RuntimeError("artiflow migrations run through artiflow.db, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="artiflow_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
