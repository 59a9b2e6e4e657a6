"""OpenLineage run events for artiflow runs, built from the client's own classes.

Identities (dataset namespace, job name, run ids), the ``artiflow_artifact`` dataset facet and
its JSON Schema, and the ``START``/``COMPLETE``/``FAIL`` events. :mod:`artiflow.openlineage`
sends them.
"""

from __future__ import annotations

import functools
import os
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..config import redact_url
from ..db import MetaStore, utcnow
from ..records import RunInfo, VersionRecord
from ..version import __version__

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

__all__ = [
    "ARTIFACT_FACET",
    "ARTIFACT_FACET_SCHEMA",
    "PRODUCER",
    "artifact_facets",
    "dataset_namespace",
    "finish_event",
    "input_dataset",
    "job_name",
    "openlineage_run_id",
    "output_dataset",
    "parent_run_id",
    "run_event",
]

PRODUCER = "https://github.com/artiflow/artiflow"
ARTIFACT_FACET = "artiflow_artifact"
_FACET_SCHEMA_URL = (
    "https://github.com/artiflow/artiflow/blob/main/spec/ArtiflowArtifactDatasetFacet.json"
    "#/$defs/ArtiflowArtifactDatasetFacet"
)
#: The JSON Schema of the ``artiflow_artifact`` dataset facet (published at its ``_schemaURL``).
ARTIFACT_FACET_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": _FACET_SCHEMA_URL.split("#", 1)[0],
    "$defs": {
        "ArtiflowArtifactDatasetFacet": {
            "description": "The artiflow artifact version a dataset stands for.",
            "type": "object",
            "properties": {
                "_producer": {"type": "string", "format": "uri"},
                "_schemaURL": {"type": "string", "format": "uri"},
                "type": {"type": "string"},
                "version": {"type": "string", "pattern": "^v[0-9]+$"},
                "qualifiedName": {"type": "string"},
                "digest": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "aliases": {"type": "array", "items": {"type": "string"}},
                "size": {"type": "integer", "minimum": 0},
                "fileCount": {"type": "integer", "minimum": 0},
            },
            "required": ["_producer", "_schemaURL", "type", "version", "qualifiedName", "digest"],
        }
    },
    "type": "object",
    "properties": {ARTIFACT_FACET: {"$ref": "#/$defs/ArtiflowArtifactDatasetFacet"}},
}


# ---------------------------------------------------------------------------------- identities
def dataset_namespace(store_url: str) -> str:
    """The OpenLineage namespace of a registry's artifacts, from its store URL."""
    if "://" in store_url:
        scheme, rest = redact_url(store_url).split("://", 1)
        return f"artiflow+{scheme}://{rest.rstrip('/')}"
    return "artiflow+file://" + os.path.abspath(store_url)


def job_name(info: RunInfo) -> str:
    """``pipeline.step`` (the OpenLineage Airflow convention ``dag_id.task_id``)."""
    parts = [p for p in (info.pipeline, info.step) if p]
    return ".".join(parts) if parts else "artiflow.run"


def openlineage_run_id(run_id: str) -> str:
    """The run id as a UUID string (artiflow run ids are UUID hex; others are hashed)."""
    try:
        return str(uuid.UUID(run_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"artiflow:run:{run_id}"))


def parent_run_id(info: RunInfo) -> str | None:
    """A stable UUID for the pipeline run ``info`` belongs to, or None if it is not known."""
    if not info.pipeline or not info.pipeline_run:
        return None
    key = f"artiflow:{info.orchestrator}:{info.pipeline}:{info.pipeline_run}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


# ---------------------------------------------------------------------------------- facets
@functools.cache
def _artifact_facet_class() -> Callable[..., DatasetFacet]:
    import attr
    from openlineage.client.facet_v2 import DatasetFacet

    @attr.define
    class ArtiflowArtifactDatasetFacet(DatasetFacet):
        """The artiflow version behind a dataset: type, aliases and content identity."""

        type: str
        version: str
        qualifiedName: str  # OpenLineage facet fields are camelCase
        digest: str
        aliases: list[str] = attr.field(factory=list)
        size: int = 0
        fileCount: int = 0

        @staticmethod
        def _get_schema() -> str:
            return _FACET_SCHEMA_URL

    return ArtiflowArtifactDatasetFacet


def artifact_facets(record: VersionRecord, aliases: Sequence[str]) -> dict[str, DatasetFacet]:
    """``version`` (version and digest) and ``artiflow_artifact`` (type, aliases, ...) facets."""
    from openlineage.client.facet_v2 import dataset_version_dataset

    version = dataset_version_dataset.DatasetVersionDatasetFacet(
        datasetVersion=record.version, producer=PRODUCER
    ).with_additional_properties(digest=record.digest)  # the facet keeps extra fields
    if not isinstance(version, dataset_version_dataset.DatasetVersionDatasetFacet):
        raise TypeError(f"unexpected facet {version!r}")  # pragma: no cover - client contract
    artifact = _artifact_facet_class()(
        type=record.type,
        version=record.version,
        qualifiedName=record.qualified_name,
        digest=record.digest,
        aliases=list(aliases),
        size=record.size,
        fileCount=record.file_count,
        producer=PRODUCER,
    )
    return {"version": version, ARTIFACT_FACET: artifact}


def input_dataset(namespace: str, record: VersionRecord, aliases: Sequence[str]) -> InputDataset:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace, record.name, facets=artifact_facets(record, aliases))


def output_dataset(
    namespace: str, record: VersionRecord, aliases: Sequence[str], *, created: bool = True
) -> OutputDataset:
    """An output; ``created`` (this run made the version, not a dedupe) adds the lifecycle
    change: ``CREATE`` for ``v0``, ``OVERWRITE`` for later versions."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import lifecycle_state_change_dataset as lsc

    facets = artifact_facets(record, aliases)
    if created:
        change = (
            lsc.LifecycleStateChange.OVERWRITE if record.index else lsc.LifecycleStateChange.CREATE
        )
        facets["lifecycleStateChange"] = lsc.LifecycleStateChangeDatasetFacet(
            lifecycleStateChange=change, producer=PRODUCER
        )
    return OutputDataset(namespace, record.name, facets=facets)


def _job(info: RunInfo, namespace: str) -> Job:
    from openlineage.client.event_v2 import Job
    from openlineage.client.facet_v2 import job_type_job

    facet = job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="ARTIFLOW", jobType="TASK", producer=PRODUCER
    )
    return Job(namespace=namespace, name=job_name(info), facets={"jobType": facet})


def _run_facets(info: RunInfo, namespace: str, error: BaseException | None) -> dict[str, RunFacet]:
    from openlineage.client import __version__ as client_version
    from openlineage.client.facet_v2 import error_message_run as error_facet
    from openlineage.client.facet_v2 import parent_run, processing_engine_run

    engine = processing_engine_run.ProcessingEngineRunFacet(
        version=__version__,
        name="artiflow",
        openlineageAdapterVersion=client_version,
        producer=PRODUCER,
    )
    facets: dict[str, RunFacet] = {"processing_engine": engine}
    parent_id = parent_run_id(info)
    if parent_id is not None and info.pipeline:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_id),
            job=parent_run.Job(namespace=namespace, name=info.pipeline),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=parent_id),
                job=parent_run.RootJob(namespace=namespace, name=info.pipeline),
            ),
            producer=PRODUCER,
        )
    if error is not None:
        facets["errorMessage"] = error_facet.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}",
            programmingLanguage="python",
            stackTrace="".join(traceback.format_exception(error)),
            producer=PRODUCER,
        )
    return facets


def run_event(
    event_type: str,
    info: RunInfo,
    *,
    job_namespace: str,
    event_time: str,
    inputs: Sequence[InputDataset] = (),
    outputs: Sequence[OutputDataset] = (),
    error: BaseException | None = None,
) -> RunEvent:
    """A ``START``, ``COMPLETE`` or ``FAIL`` event for a run."""
    from openlineage.client.event_v2 import Run, RunEvent, RunState

    return RunEvent(
        eventType=RunState(event_type),
        eventTime=event_time,
        run=Run(runId=openlineage_run_id(info.id), facets=_run_facets(info, job_namespace, error)),
        job=_job(info, job_namespace),
        producer=PRODUCER,
        inputs=list(inputs),
        outputs=list(outputs),
    )


def finish_event(
    meta: MetaStore, namespace: str, run_id: str, job_namespace: str, error: BaseException | None
) -> RunEvent:
    """The ``COMPLETE`` (or ``FAIL``) event of a finished run, with every version it consumed
    and produced as datasets in ``namespace``."""
    info = meta.get_run(run_id)
    used = meta.run_versions(run_id)
    aliases = meta.aliases_for([record.id for _, record in used])
    inputs = [input_dataset(namespace, r, aliases[r.id]) for role, r in used if role == "input"]
    outputs = [
        output_dataset(namespace, r, aliases[r.id], created=r.created_by == run_id)
        for role, r in used
        if role == "output"
    ]
    failed = error is not None or info.status == "failed"
    return run_event(
        "FAIL" if failed else "COMPLETE",
        info,
        job_namespace=job_namespace,
        event_time=(info.finished_at or utcnow()).isoformat(),
        inputs=inputs,
        outputs=outputs,
        error=error,
    )
