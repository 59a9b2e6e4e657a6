"""run lease: the owner's pid and pid scope, its last heartbeat and when its lease expires

A ``running`` run whose lease expired (or whose process is gone, seen from its own host) reads
as ``lost``. The columns are nullable: runs recorded before keep no lease and stay as they were.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
COLUMNS = (
    ("pid", sa.Integer),
    ("pid_scope", sa.String(100)),
    ("heartbeat_at", TZ),
    ("lease_expires_at", TZ),
)


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN on both SQLite and PostgreSQL: no table copy, no lock held long.
    for name, type_ in COLUMNS:
        op.add_column("artiflow_runs", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artiflow_runs") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
