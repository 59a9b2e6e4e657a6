"""Airflow identity and lineage for artiflow runs.

:class:`TaskRun` wraps an :class:`artiflow` run opened for one task instance. It records which
versions the task used and produced, and once the run has committed it reports them to Airflow:

* as asset events with the extra ``{"version", "digest", "type"}`` for every produced artifact
  whose Asset (``artiflow://<name>``) the task declared as an outlet, or through an artiflow
  AssetAlias the task declared when the name was only known at run time. A log deduplicated to
  an existing version (``artifact.reused``) announces nothing: no new data landed, so DAGs
  scheduled on the asset must not run again;
* to the hook lineage collector (``get_hook_lineage_collector()``), which the OpenLineage
  provider reads for tasks without an extractor of their own.

Operators additionally return the same versions from ``get_openlineage_facets_on_complete``
(:class:`ArtifactLineageMixin`).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import re
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from artiflow.airflow.assets import (
    artifact_asset,
    artifact_uri,
    asset_extra,
    declared_asset,
    openlineage_facets,
)
from artiflow.openlineage import dataset_namespace

if TYPE_CHECKING:
    from airflow.sdk import Context

    from artiflow import Artifact, Run
    from artiflow.airflow.hooks import ArtifactHook

__all__ = [
    "ArtifactLineageMixin",
    "TaskRun",
    "context_distributed_id",
    "default_distributed_id",
    "run_identity",
]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_identity(context: Context) -> dict[str, Any]:
    """The artiflow run identity of the running task instance.

    ``orchestrator="airflow"``, ``pipeline`` = dag_id, ``pipeline_run`` = run_id, ``step`` =
    task_id, ``step_run`` = the task instance id (new on every try), ``map_index`` (-1 when
    unmapped) and ``attempt`` = try_number.
    """
    ti = context["ti"]
    return {
        "orchestrator": "airflow",
        "pipeline": ti.dag_id,
        "pipeline_run": ti.run_id,
        "step": ti.task_id,
        "step_run": str(ti.id),
        "map_index": ti.map_index,
        "attempt": ti.try_number,
    }


def default_distributed_id(dag_id: str, run_id: str, name: str) -> str:
    """The distributed id shared by every task of one DAG run writing parts of ``name``.

    Readable (``<dag_id>.<run_id>.<name>`` with unsafe characters replaced) and unique (a hash of
    the exact values is appended, so two run ids that sanitise alike never collide).
    Deliberately not tied to the DagRun's ``clear_number``: re-running writers of a DAG run
    whose artifact is already finished fails loudly ("already finished"), where a fresh id per
    clear would let clearing only the failed writers commit a version holding only their parts.
    """
    values = [dag_id, run_id, name]
    digest = hashlib.md5("\x00".join(values).encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', f'{dag_id}.{run_id}.{name}')[:100]}-{digest}"


def context_distributed_id(context: Context, name: str) -> str:
    """The default distributed id of ``name`` for the DAG run of a task context."""
    ti = context["ti"]
    return default_distributed_id(ti.dag_id, ti.run_id, name)


class TaskRun:
    """An artiflow run bound to one Airflow task instance; use it like :class:`artiflow.Run`.

    Obtained from :meth:`artiflow.airflow.ArtifactHook.run`::

        @task
        def train():
            with ArtifactHook().run() as run:
                data = run.use_artifact("clean-data:latest", type="dataset")
                model = artiflow.Artifact("model", "model")
                model.add_file(fit(data.download()))
                run.log_artifact(model, aliases=["candidate"])
    """

    def __init__(self, run: Run, context: Context, *, hook: ArtifactHook) -> None:
        self.run = run
        self.context = context
        self.hook = hook
        self.used: list[Artifact] = []
        self.produced: list[Artifact] = []

    @property
    def id(self) -> str:
        """The artiflow run id."""
        return self.run.id

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace of this registry's artifacts."""
        return dataset_namespace(self.hook.get_registry().store_url)

    def use_artifact(self, ref: str, type: str | None = None) -> Artifact:
        """Resolve ``ref`` and record it as an input of this task.

        :param ref: ``name``, ``name:alias`` or ``name:vN``.
        :param type: the expected artifact type; a mismatch raises ``TypeMismatch``.
        """
        artifact = self.run.use_artifact(ref, type=type)
        self.used.append(artifact)
        return artifact

    def log_artifact(self, artifact: Artifact, aliases: list[str] | None = None) -> Artifact:
        """Log ``artifact`` as an output of this task.

        The upload starts now; the version is committed with every other one of this run when
        the ``with`` block exits cleanly (nothing is committed if it raises). Read
        ``artifact.version`` after the block: ``artifact.wait()`` inside it raises
        ``ArtifactStateError``.

        :param artifact: the artifact to log.
        :param aliases: aliases to point at the new version (``latest`` moves by itself).
        """
        self.run.log_artifact(artifact, aliases=aliases)
        self.produced.append(artifact)
        return artifact

    def distributed_id(self, name: str) -> str:
        """The default distributed id for parts of ``name`` written in this DAG run (and this
        clearing of it)."""
        return context_distributed_id(self.context, name)

    def upsert_artifact(self, artifact: Artifact, distributed_id: str | None = None) -> Artifact:
        """Add ``artifact`` as one part of a distributed artifact (no version is created yet).

        The part is stored when called, not deferred to the end of the run's block.

        :param artifact: the part.
        :param distributed_id: the id shared by all writers; defaults to one derived from the
            DAG run and the artifact name, so mapped task instances agree without coordination.
        """
        return self.run.upsert_artifact(
            artifact, distributed_id=distributed_id or self.distributed_id(artifact.name)
        )

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: list[str] | None = None,
    ) -> Artifact:
        """Commit all parts upserted under the distributed id as one version, now (not deferred
        to the end of the run's block).

        :param artifact: an artifact with the same name and type (it may add content).
        :param distributed_id: the id the writers used; defaults as in :meth:`upsert_artifact`.
        :param aliases: aliases to point at the new version.
        """
        result = self.run.finish_artifact(
            artifact,
            distributed_id=distributed_id or self.distributed_id(artifact.name),
            aliases=aliases,
        )
        self.produced.append(result)
        return result

    # -- reporting ---------------------------------------------------------------------------

    def committed(self) -> list[Artifact]:
        """The produced artifacts, once the run's block has exited (their versions are set)."""
        for artifact in self.produced:
            artifact.wait()
        return list(self.produced)

    def report(self) -> None:
        """Report used and produced versions as asset events and to the hook lineage collector.

        Called after the run's block exited cleanly, so every produced version is committed.
        """
        produced = self.committed()
        self._emit_asset_events(produced)
        self._report_hook_lineage(produced)

    def _emit_asset_events(self, produced: list[Artifact]) -> None:
        outlet_events = self.context.get("outlet_events")
        task = self.context.get("task")
        if outlet_events is None or task is None:
            return
        outlets = list(getattr(task, "outlets", None) or [])
        aliases = [
            o for o in outlets if isinstance(o, AssetAlias) and o.name.startswith("artiflow:")
        ]
        fresh: set[str] = set()
        unchanged: set[str] = set()
        for artifact in produced:
            uri = artifact_uri(artifact.name)
            declared = declared_asset(outlets, uri)
            if artifact.reused:
                log.info(
                    "No asset event for %s: same content as the existing version",
                    artifact.qualified_name,
                )
                unchanged.add(uri)
                continue
            fresh.add(uri)
            extra = asset_extra(artifact)
            if declared is not None:
                outlet_events[declared].extra.update(extra)
            elif aliases:
                outlet_events[aliases[0]].add(artifact_asset(artifact.name), extra=extra)
            else:
                log.info(
                    "No asset event for %s: the task declares neither Asset(uri=%r) nor an "
                    "artiflow AssetAlias among its outlets",
                    artifact.qualified_name,
                    uri,
                )
        # Airflow records an event for every Asset outlet of a successful task, touched or not:
        # drop the outlets whose artifact got no new version from this task instance's outlets.
        unchanged -= fresh
        if unchanged:
            task.outlets = [o for o in outlets if not (isinstance(o, Asset) and o.uri in unchanged)]

    def _report_hook_lineage(self, produced: list[Artifact]) -> None:
        collector = _hook_lineage_collector()
        if collector is None:
            return
        namespace = self.namespace
        for artifact in self.used:
            collector.add_input_asset(
                context=self.hook,
                uri=artifact_uri(artifact.name),
                asset_extra={**asset_extra(artifact), "namespace": namespace},
            )
        for artifact in produced:
            collector.add_output_asset(
                context=self.hook,
                uri=artifact_uri(artifact.name),
                asset_extra={**asset_extra(artifact), "namespace": namespace},
            )


def _hook_lineage_collector() -> Any:
    """The process's hook lineage collector (``airflow.sdk.lineage`` since Airflow 3.2)."""
    for module in ("airflow.sdk.lineage", "airflow.providers.common.compat.lineage.hook"):
        try:
            return importlib.import_module(module).get_hook_lineage_collector()
        except (ImportError, AttributeError):
            continue
    return None


class ArtifactLineageMixin:
    """OpenLineage for artiflow operators: the versions the task used and produced.

    The operator sets ``self._artiflow_run`` to the :class:`TaskRun` of its execution; the
    OpenLineage provider calls :meth:`get_openlineage_facets_on_complete` after the task.
    """

    _artiflow_run: TaskRun | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Return the used and produced artifact versions as OpenLineage datasets.

        Each dataset is named after the artifact, in the registry's namespace (as artiflow's
        own OpenLineage events name it), with a ``version`` facet (``v3`` and the digest).
        """
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import InputDataset, OutputDataset

        run = self._artiflow_run
        if run is None:
            return OperatorLineage()
        namespace = run.namespace
        inputs = [
            InputDataset(
                namespace=namespace,
                name=artifact.name,
                facets=openlineage_facets(asset_extra(artifact)),
            )
            for artifact in run.used
        ]
        outputs = [
            OutputDataset(
                namespace=namespace,
                name=artifact.name,
                facets=openlineage_facets(asset_extra(artifact)),
            )
            for artifact in run.produced
            if artifact.version is not None
        ]
        return OperatorLineage(inputs=inputs, outputs=outputs)
