"""Airflow's run identity, and the reporting of artiflow steps to Airflow.

A task instance is one step (:func:`artiflow.orchestration.open_step`): :func:`run_identity` is
its artiflow run identity, :func:`run_scope` names its DAG run (the scope of the default
distributed id). :class:`TaskRun` is the :class:`~artiflow.orchestration.StepRun` of one task
instance; once the step has committed it reports the versions to Airflow:

* as asset events with the extra ``{"version", "digest", "type"}`` for every produced artifact:
  on its Asset (``artiflow://<name>``) when the task declared it as an outlet, else through the
  task's artiflow AssetAlias (``artiflow:<dag_id>.<task_id>``), declared at parse time when a
  name is only known at run time, or added to the running task's outlets when the task
  declared nothing for it (a plain ``@task`` using :meth:`ArtifactHook.run`). Airflow takes the
  outlets of a finished task from the task object that ran, so a run-time alias is honoured
  and creates the Asset if no DAG declares it. A log deduplicated to an existing version
  (``artifact.reused``) announces nothing: no new data landed, so DAGs scheduled on the asset
  must not run again;
* to the hook lineage collector (``get_hook_lineage_collector()``), which the OpenLineage
  provider reads for tasks without an extractor of their own;
* in the task log, one line per input used and per output committed, or that nothing was
  committed (:meth:`TaskRun.say`, lines from :mod:`artiflow.orchestration.report`).

Operators additionally return the same versions from ``get_openlineage_facets_on_complete``
(:class:`ArtifactLineageMixin`).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from artiflow.airflow.assets import artifact_alias, artifact_asset, declared_asset
from artiflow.naming import artifact_uri
from artiflow.openlineage import input_dataset, output_dataset
from artiflow.orchestration import StepRun, event_extra
from artiflow.orchestration import default_distributed_id as step_distributed_id

if TYPE_CHECKING:
    from airflow.sdk import BaseHook, Context

    from artiflow import Artifact, Run

__all__ = [
    "ArtifactLineageMixin",
    "TaskRun",
    "context_distributed_id",
    "default_distributed_id",
    "run_identity",
    "run_scope",
]

log = logging.getLogger(__name__)


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


def run_scope(context: Context) -> tuple[str, str]:
    """``(dag_id, run_id)``: the DAG run a task instance belongs to."""
    ti = context["ti"]
    return ti.dag_id, ti.run_id


def default_distributed_id(dag_id: str, run_id: str, name: str) -> str:
    """The distributed id shared by every task of one DAG run writing parts of ``name``:
    ``<dag_id>.<run_id>.<name>-<hash>`` (:func:`artiflow.orchestration.default_distributed_id`).

    Deliberately not tied to the DagRun's ``clear_number``: re-running writers of a DAG run
    whose artifact is already finished fails loudly ("already finished"), where a fresh id per
    clear would let clearing only the failed writers commit a version holding only their parts.
    """
    return step_distributed_id(name, dag_id, run_id)


def context_distributed_id(context: Context, name: str) -> str:
    """The default distributed id of ``name`` for the DAG run of a task context."""
    return default_distributed_id(*run_scope(context), name)


class TaskRun(StepRun):
    """The artiflow step of one Airflow task instance; use it like :class:`artiflow.Run`.

    Obtained from :meth:`artiflow.airflow.ArtifactHook.run`::

        @task
        def train():
            with ArtifactHook().run() as run:
                data = run.use_artifact("clean-data:latest", type="dataset")
                model = artiflow.Artifact("model", "model")
                model.add_file(fit(data.download()))
                run.log_artifact(model, aliases=["candidate"])

    Versions logged through it commit together when the block exits cleanly (read
    ``artifact.version`` after it). Distributed parts default to the id of the DAG run
    (:func:`default_distributed_id`), so mapped task instances agree without coordination.

    :param run: the atomic run opened for the task instance.
    :param context: the task context.
    :param hook: the :class:`~artiflow.airflow.hooks.ArtifactHook` that opened the run (it
        reports the versions to the hook lineage collector).
    :param scope: what names the DAG run for distributed ids; default ``(dag_id, run_id)``.
    """

    def __init__(
        self,
        run: Run,
        context: Context,
        *,
        hook: BaseHook,
        scope: Sequence[str] | None = None,
    ) -> None:
        super().__init__(run, run_scope(context) if scope is None else scope)
        self.context = context
        self.hook = hook

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace of this registry's artifacts."""
        return self.run.registry.lineage_namespace

    def say(self, line: str, level: int = logging.INFO) -> None:
        """Write one of the step's lines (inputs used, outputs logged, nothing committed) to
        the task log."""
        log.log(level, "%s", line)

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
        fresh = []
        for artifact in produced:
            if artifact.reused:
                log.info(
                    "No asset event for %s: same content as the existing version",
                    artifact.qualified_name,
                )
            else:
                fresh.append(artifact)
        alias = _artiflow_alias(outlets)
        if alias is None and any(_undeclared(outlets, a) for a in fresh):
            # Nothing declared for it at parse time (a plain @task using the hook): the task's
            # alias, added to the running task's outlets, which Airflow reads when it succeeds.
            alias = artifact_alias(task.dag_id, task.task_id)
            outlets.append(alias)
        for artifact in fresh:
            _announce(outlet_events, outlets, alias, artifact)
        # Airflow records an event for every Asset outlet of a successful task, touched or not:
        # drop the outlets whose artifact got no new version from this task instance's outlets.
        # (A new list: the running task is a shallow copy of the DAG's task.)
        unchanged = _unchanged_uris(produced)
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
                asset_extra={**event_extra(artifact), "namespace": namespace},
            )
        for artifact in produced:
            collector.add_output_asset(
                context=self.hook,
                uri=artifact_uri(artifact.name),
                asset_extra={**event_extra(artifact), "namespace": namespace},
            )


def _artiflow_alias(outlets: Sequence[object]) -> AssetAlias | None:
    """The artiflow AssetAlias among a task's outlets, if it declares one."""
    return next(
        (o for o in outlets if isinstance(o, AssetAlias) and o.name.startswith("artiflow:")), None
    )


def _undeclared(outlets: Sequence[object], artifact: Artifact) -> bool:
    """Whether the task declares no Asset for ``artifact``."""
    return declared_asset(outlets, artifact_uri(artifact.name)) is None


def _announce(
    outlet_events: Any, outlets: Sequence[object], alias: AssetAlias | None, artifact: Artifact
) -> None:
    """The asset event of a new version: on the outlet the task declared for it, else through
    the task's artiflow alias."""
    extra = event_extra(artifact)
    declared = declared_asset(outlets, artifact_uri(artifact.name))
    if declared is not None:
        outlet_events[declared].extra.update(extra)
    elif alias is not None:
        outlet_events[alias].add(artifact_asset(artifact.name), extra=extra)


def _unchanged_uris(produced: Sequence[Artifact]) -> set[str]:
    """The URIs of the produced artifacts that got no new version (every log deduplicated)."""
    fresh = {artifact_uri(a.name) for a in produced if not a.reused}
    return {artifact_uri(a.name) for a in produced if a.reused} - fresh


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

        The datasets artiflow's own OpenLineage events carry (:mod:`artiflow.openlineage`):
        named after the artifact, in the registry's namespace, with the ``version`` facet
        (``v3`` and the digest) and the ``artiflow_artifact`` facet (type, aliases, size...);
        an output this task created also carries its ``lifecycleStateChange``.
        """
        from airflow.providers.openlineage.extractors import OperatorLineage

        run = self._artiflow_run
        if run is None:
            return OperatorLineage()
        namespace = run.namespace
        inputs = [
            input_dataset(namespace, artifact.record, artifact.aliases)
            for artifact in run.used
            if artifact.record is not None
        ]
        outputs = [
            output_dataset(
                namespace, artifact.record, artifact.aliases, created=not artifact.reused
            )
            for artifact in run.produced
            if artifact.record is not None
        ]
        return OperatorLineage(inputs=inputs, outputs=outputs)
