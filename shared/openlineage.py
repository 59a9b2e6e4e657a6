"""OpenLineage run events for artiflow runs (extra: ``pip install 'artiflow[openlineage]'``).

A run becomes one OpenLineage job run: ``START`` when its row is created (with its first use or
log), then ``COMPLETE`` or ``FAIL`` when it finishes, carrying every version it consumed as an
input dataset and every version it produced as an output dataset. Events are built from the
client's own classes (``openlineage.client.event_v2`` and its facets).

- Dataset: namespace :func:`dataset_namespace` (one per registry, e.g. ``artiflow+s3://bucket/
  prefix``), name = the artifact name, so every version of ``cats`` is one dataset. Facets:
  ``version`` (``datasetVersion`` = ``"v3"``, plus the content ``digest``), ``artiflow_artifact``
  (type, aliases, digest, size, files) and, on an output the run created, ``lifecycleStateChange``
  ``CREATE`` for ``v0`` and ``OVERWRITE`` after.
- Job: namespace ``$OPENLINEAGE_NAMESPACE`` (default ``artiflow``), name ``pipeline.step``.
- Run: the run id as a UUID; a ``parent`` facet names the pipeline run when ``pipeline_run`` is
  known (its id derived from orchestrator, pipeline and pipeline run, so all steps agree).

Opt-in, through the client's own configuration: on when ``OPENLINEAGE_URL``,
``OPENLINEAGE_CONFIG`` or an ``OPENLINEAGE__TRANSPORT__*`` variable is set (or
``ARTIFLOW_OPENLINEAGE=1``), off with ``OPENLINEAGE_DISABLED=true`` or ``ARTIFLOW_OPENLINEAGE=0``;
``Registry(openlineage=...)`` overrides the environment. Events are built and sent on a background
thread; a failure is logged, never blocks or fails the run. The client is imported only when used.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .config import redact_url
from .errors import MissingDependency
from .records import RunInfo, VersionRecord

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

    from .registry import Registry

__all__ = [
    "ARTIFACT_FACET",
    "ARTIFACT_FACET_SCHEMA",
    "PRODUCER",
    "OpenLineageEmitter",
    "artifact_facets",
    "dataset_namespace",
    "enabled_by_env",
    "input_dataset",
    "job_name",
    "openlineage_run_id",
    "output_dataset",
    "parent_run_id",
    "resolve_emitter",
    "run_event",
]

log = logging.getLogger(__name__)

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
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


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

    from . import __version__

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


def _finish_event(
    registry: Registry, run_id: str, job_namespace: str, error: BaseException | None
) -> RunEvent:
    from .lineage import run_versions
    from .metastore import utcnow

    info = registry.meta.get_run(run_id)
    used = run_versions(registry, run_id)
    aliases = registry.meta.aliases_for([record.id for _, record in used])
    namespace = dataset_namespace(registry.store_url)
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


# ---------------------------------------------------------------------------------- emission
def enabled_by_env() -> bool:
    """Whether the environment asks for OpenLineage events (see the module docstring)."""
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    switch = os.environ.get("ARTIFLOW_OPENLINEAGE", "").strip().lower()
    if switch in _FALSE:
        return False
    if switch in _TRUE:
        return True
    if os.environ.get("OPENLINEAGE_URL") or os.environ.get("OPENLINEAGE_CONFIG"):
        return True
    return any(key.startswith("OPENLINEAGE__TRANSPORT") for key in os.environ)


class OpenLineageEmitter:
    """Builds and sends a registry's run events on one background thread, in order.

    :param client: an ``openlineage.client.OpenLineageClient``; by default one is created on
        first use from the client's own configuration (``OPENLINEAGE_CONFIG``, ``openlineage.yml``,
        ``OPENLINEAGE__*`` and ``OPENLINEAGE_URL`` variables).
    :param job_namespace: the jobs' namespace (default ``$OPENLINEAGE_NAMESPACE`` or ``artiflow``).
    """

    def __init__(self, client: Any | None = None, *, job_namespace: str | None = None) -> None:
        try:
            import openlineage.client  # noqa: F401
        except ImportError as err:
            hint = "pip install 'artiflow[openlineage]'"
            raise MissingDependency(f"OpenLineage events need the client: {hint} ({err})") from err
        self._client = client
        self.job_namespace = job_namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or "artiflow"
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="artiflow-openlineage")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []

    @property
    def client(self) -> Any:
        if self._client is None:
            from openlineage.client import OpenLineageClient

            self._client = OpenLineageClient()
        return self._client

    def _submit(self, what: str, job: Callable[[], RunEvent]) -> None:
        def send() -> None:
            try:
                self.client.emit(job())
            except Exception as err:  # lineage must never fail the run: log and carry on
                debug = log.isEnabledFor(logging.DEBUG)
                log.warning("OpenLineage %s event not sent: %s", what, err, exc_info=debug)

        try:
            future = self._pool.submit(send)
        except RuntimeError as err:  # the emitter was closed
            log.warning("OpenLineage %s event not sent: %s", what, err)
            return
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]

    def run_started(self, registry: Registry, info: RunInfo) -> None:
        """Queue the ``START`` event of a run whose row was just created."""
        from .metastore import utcnow

        started = (info.started_at or utcnow()).isoformat()
        namespace = self.job_namespace
        self._submit(
            "START", lambda: run_event("START", info, job_namespace=namespace, event_time=started)
        )

    def run_finished(self, registry: Registry, run_id: str, error: BaseException | None) -> None:
        """Queue the ``COMPLETE`` (or ``FAIL``) event with the run's inputs and outputs."""
        self._submit(
            "FAIL" if error else "COMPLETE",
            lambda: _finish_event(registry, run_id, self.job_namespace, error),
        )

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handled; False if ``timeout`` ran out first."""
        with self._lock:
            pending = list(self._pending)
        _, not_done = wait(pending, timeout)
        return not not_done

    def close(self, timeout: float | None = 30.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then close the client's transport."""
        self.flush(timeout)
        self._pool.shutdown(wait=False)
        if self._client is not None:
            try:
                self._client.close(timeout if timeout is not None else -1)
            except Exception as err:
                log.warning("closing the OpenLineage client failed: %s", err)


def resolve_emitter(setting: Any) -> OpenLineageEmitter | None:
    """``Registry(openlineage=...)``: None follows the environment, False is off, True is on with
    the client's own configuration, an emitter is used as is, and anything else is taken to be an
    ``OpenLineageClient``."""
    if setting is False:
        return None
    if isinstance(setting, OpenLineageEmitter):
        return setting
    if setting is None:
        if not enabled_by_env():
            return None
        try:
            return OpenLineageEmitter()
        except MissingDependency as err:
            log.warning("OpenLineage is configured but not usable: %s", err)
            return None
    return OpenLineageEmitter(None if setting is True else setting)
