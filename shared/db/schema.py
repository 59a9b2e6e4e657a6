"""The metadata store's tables (SQLAlchemy Core). Alembic migrations build the same schema."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "aliases",
    "artifacts",
    "distributed",
    "distributed_parts",
    "metadata",
    "runs",
    "usage",
    "versions",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PKs only
TZDateTime = DateTime(timezone=True)

artifacts = Table(
    "artiflow_artifacts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("type", String(128), nullable=False),
    Column("created_at", TZDateTime, nullable=False),
)

runs = Table(
    "artiflow_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("orchestrator", String(32), nullable=False),
    Column("pipeline", String(250)),
    Column("pipeline_run", String(250)),
    Column("step", String(250)),
    Column("step_run", String(250)),
    Column("map_index", Integer),
    Column("attempt", Integer),
    Column("job_type", String(128)),
    Column("group", String(250)),
    Column("status", String(16), nullable=False),
    Column("host", String(250)),
    Column("extra", JSON, nullable=False),
    Column("started_at", TZDateTime, nullable=False),
    Column("finished_at", TZDateTime),
    # The owner's lease (0002): a heartbeat renews it; an expired one reads as "lost".
    Column("pid", Integer),
    Column("pid_scope", String(100)),
    Column("heartbeat_at", TZDateTime),
    Column("lease_expires_at", TZDateTime),
    Index("ix_artiflow_runs_pipeline", "pipeline", "pipeline_run"),
)

versions = Table(
    "artiflow_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("artifact_id", Id, ForeignKey("artiflow_artifacts.id"), nullable=False),
    Column("index", Integer, nullable=False),
    Column("digest", String(32), nullable=False),
    Column("manifest_key", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("file_count", BigInteger, nullable=False),
    Column("description", Text),
    Column("metadata", JSON, nullable=False),
    Column("created_at", TZDateTime, nullable=False),
    Column("created_by", String(32), ForeignKey("artiflow_runs.id")),
    UniqueConstraint("artifact_id", "index", name="uq_artiflow_versions_artifact_index"),
    Index("ix_artiflow_versions_digest", "artifact_id", "digest"),
)

aliases = Table(
    "artiflow_aliases",
    metadata,
    Column("artifact_id", Id, ForeignKey("artiflow_artifacts.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version_id", Id, ForeignKey("artiflow_versions.id"), nullable=False),
    Index("ix_artiflow_aliases_version", "version_id"),
)

usage = Table(
    "artiflow_usage",
    metadata,
    Column("run_id", String(32), ForeignKey("artiflow_runs.id"), primary_key=True),
    Column("version_id", Id, ForeignKey("artiflow_versions.id"), primary_key=True),
    Column("role", String(8), primary_key=True),  # "input" | "output"
    Column("created_at", TZDateTime, nullable=False),
    Index("ix_artiflow_usage_version", "version_id", "role"),
)

distributed = Table(
    "artiflow_distributed",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("distributed_id", String(250), nullable=False),
    Column("state", String(16), nullable=False),  # "pending" | "closing" | "finished"
    Column("version_id", Id, ForeignKey("artiflow_versions.id")),
    Column("created_at", TZDateTime, nullable=False),
    Column("finished_at", TZDateTime),
    UniqueConstraint("name", "distributed_id", name="uq_artiflow_distributed_name_id"),
)

distributed_parts = Table(
    "artiflow_distributed_parts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("distributed_pk", Id, ForeignKey("artiflow_distributed.id"), nullable=False),
    Column("run_id", String(32), ForeignKey("artiflow_runs.id"), nullable=False),
    Column("manifest_key", String(32), nullable=False),
    Column("created_at", TZDateTime, nullable=False),
    Index("ix_artiflow_distributed_parts_pk", "distributed_pk"),
)
