"""Plain records read from the metadata store: a committed version and a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["RunInfo", "VersionRecord", "run_label"]


@dataclass(frozen=True)
class VersionRecord:
    """One committed version of an artifact, as the metadata store holds it."""

    id: int
    artifact_id: int
    name: str
    type: str
    index: int
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    created_at: datetime
    created_by: str | None

    @property
    def version(self) -> str:
        return f"v{self.index}"

    @property
    def qualified_name(self) -> str:
        return f"{self.name}:v{self.index}"


@dataclass(frozen=True)
class RunInfo:
    """A step run that produced or consumed artifact versions.

    ``orchestrator`` is ``airflow``, ``prefect`` or ``python``; ``pipeline`` is the DAG or flow,
    ``pipeline_run`` its run id, ``step`` the task, ``step_run`` the orchestrator's id of this
    task run, ``map_index`` the mapped index (-1 or None when unmapped), ``attempt`` the try
    number. ``status`` is ``running``, ``finished`` or ``failed``.
    """

    id: str
    orchestrator: str
    pipeline: str | None = None
    pipeline_run: str | None = None
    step: str | None = None
    step_run: str | None = None
    map_index: int | None = None
    attempt: int | None = None
    job_type: str | None = None
    group: str | None = None
    status: str = "running"
    host: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short human label: ``pipeline/step[map_index]#attempt`` or the run id."""
        return run_label(self.id, self.pipeline, self.step, self.map_index, self.attempt)


def run_label(
    run_id: str,
    pipeline: str | None,
    step: str | None,
    map_index: int | None,
    attempt: int | None,
) -> str:
    """:attr:`RunInfo.label` from the columns alone (lineage labels thousands of runs)."""
    if pipeline is None and step is None:
        return f"run {run_id[:8]}"
    text = f"{pipeline}/{step}" if pipeline and step else pipeline or step or ""
    if map_index is not None and map_index >= 0:
        text += f"[{map_index}]"
    if attempt is not None and attempt > 1:
        text += f"#{attempt}"
    return text
