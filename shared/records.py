"""Plain records read from the metadata store: a committed version and a run, and the
read-only view of a committed version's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from .errors import ArtifactStateError

__all__ = ["FrozenDict", "FrozenList", "RunInfo", "VersionRecord", "frozen_metadata", "run_label"]


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
    number. ``status`` is ``running``, ``finished``, ``failed``, or ``lost``: still
    ``running`` in the database, but its process is gone (its lease, renewed every
    ``$ARTIFLOW_HEARTBEAT_SECONDS`` by ``pid`` on ``host``, expired three intervals after
    ``heartbeat_at``, or the pid is dead, seen from the same host).
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
    pid: int | None = None
    heartbeat_at: datetime | None = None

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


def _read_only(*_args: object, **_kwargs: object) -> NoReturn:
    raise ArtifactStateError(
        "the metadata of a logged (or logging) artifact cannot change; copy it "
        "(dict(artifact.metadata)) into a new Artifact to log a new version"
    )


class FrozenDict(dict[str, Any]):
    """A dict whose every change raises :class:`ArtifactStateError`; copying it (``dict()``,
    ``copy.deepcopy``, pickling) gives a plain dict."""

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce_ex__(self, protocol: Any) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self),)


class FrozenList(list[Any]):
    """A list whose every change raises :class:`ArtifactStateError`; copies are plain lists."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce_ex__(self, protocol: Any) -> tuple[type[list[Any]], tuple[list[Any]]]:
        return list, (list(self),)


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({str(k): _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(_frozen(v) for v in value)
    return value


def frozen_metadata(metadata: Mapping[str, Any]) -> FrozenDict:
    """A read-only deep copy of ``metadata``: changing it (at any depth) raises
    :class:`ArtifactStateError` instead of being silently lost."""
    frozen: FrozenDict = _frozen(metadata)
    return frozen
