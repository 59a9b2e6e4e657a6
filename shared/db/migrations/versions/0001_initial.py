"""initial schema: artifacts, versions, aliases, runs, usage, distributed parts

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "artiflow_artifacts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artiflow_artifacts"),
        sa.UniqueConstraint("name", name="uq_artiflow_artifacts_name"),
    )
    op.create_table(
        "artiflow_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("orchestrator", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(250)),
        sa.Column("pipeline_run", sa.String(250)),
        sa.Column("step", sa.String(250)),
        sa.Column("step_run", sa.String(250)),
        sa.Column("map_index", sa.Integer),
        sa.Column("attempt", sa.Integer),
        sa.Column("job_type", sa.String(128)),
        sa.Column("group", sa.String(250)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("host", sa.String(250)),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_artiflow_runs"),
    )
    op.create_index("ix_artiflow_runs_pipeline", "artiflow_runs", ["pipeline", "pipeline_run"])
    op.create_table(
        "artiflow_versions",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("manifest_key", sa.String(32), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("file_count", sa.BigInteger, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_artiflow_versions"),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artiflow_artifacts.id"],
            name="fk_artiflow_versions_artifact_id",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["artiflow_runs.id"], name="fk_artiflow_versions_created_by"
        ),
        sa.UniqueConstraint("artifact_id", "index", name="uq_artiflow_versions_artifact_index"),
    )
    op.create_index("ix_artiflow_versions_digest", "artiflow_versions", ["artifact_id", "digest"])
    op.create_table(
        "artiflow_aliases",
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("alias", sa.String(128), nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.PrimaryKeyConstraint("artifact_id", "alias", name="pk_artiflow_aliases"),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["artiflow_artifacts.id"],
            name="fk_artiflow_aliases_artifact_id",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["artiflow_versions.id"],
            name="fk_artiflow_aliases_version_id",
        ),
    )
    op.create_index("ix_artiflow_aliases_version", "artiflow_aliases", ["version_id"])
    op.create_table(
        "artiflow_usage",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("version_id", Id, nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "version_id", "role", name="pk_artiflow_usage"),
        sa.ForeignKeyConstraint(["run_id"], ["artiflow_runs.id"], name="fk_artiflow_usage_run_id"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["artiflow_versions.id"],
            name="fk_artiflow_usage_version_id",
        ),
    )
    op.create_index("ix_artiflow_usage_version", "artiflow_usage", ["version_id", "role"])
    op.create_table(
        "artiflow_distributed",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("distributed_id", sa.String(250), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version_id", Id),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.PrimaryKeyConstraint("id", name="pk_artiflow_distributed"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["artiflow_versions.id"],
            name="fk_artiflow_distributed_version_id",
        ),
        sa.UniqueConstraint("name", "distributed_id", name="uq_artiflow_distributed_name_id"),
    )
    op.create_table(
        "artiflow_distributed_parts",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("distributed_pk", Id, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("manifest_key", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artiflow_distributed_parts"),
        sa.ForeignKeyConstraint(
            ["distributed_pk"],
            ["artiflow_distributed.id"],
            name="fk_artiflow_distributed_parts_distributed_pk",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["artiflow_runs.id"], name="fk_artiflow_distributed_parts_run_id"
        ),
    )
    op.create_index(
        "ix_artiflow_distributed_parts_pk", "artiflow_distributed_parts", ["distributed_pk"]
    )


def downgrade() -> None:
    for table in (
        "artiflow_distributed_parts",
        "artiflow_distributed",
        "artiflow_usage",
        "artiflow_aliases",
        "artiflow_versions",
        "artiflow_runs",
        "artiflow_artifacts",
    ):
        op.drop_table(table)
