"""ArtifactHook: the ``artiflow`` connection type and the registry it describes.

The hook is the only place that reads the connection. Operators, the sensor, the trigger and
``@task.artifact`` reach the registry through :meth:`ArtifactHook.get_registry` and open runs
through :meth:`ArtifactHook.run`.

A connection of type ``artiflow`` holds, in its extra: ``store`` (fsspec URL of the blob store),
``database`` (SQLAlchemy URL of the metadata database), ``storage_options`` (a JSON object
for fsspec, e.g. ``endpoint_url``, ``key``, ``secret``) and ``reference_options`` (fsspec
options by protocol, ``{"s3": {...}, "gs": {...}}``, for the references artifacts add and
download; the store's protocol defaults to ``storage_options``). Login and password, when set,
are the database credentials and are merged into the database URL. For example::

    AIRFLOW_CONN_ARTIFLOW_DEFAULT='{"conn_type": "artiflow", "login": "artiflow",
        "password": "...", "extra": {"store": "s3://bucket/artiflow",
        "database": "postgresql+psycopg://db.internal/artiflow",
        "storage_options": {"endpoint_url": "https://s3.internal"}}}'

When the default connection (``artiflow_default``) is not defined, the hook falls back to the
registry configured by the environment (``$ARTIFLOW_HOME``, ``$ARTIFLOW_STORE``,
``$ARTIFLOW_DATABASE``), so a DAG works with no setup at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from artiflow.airflow.lineage import TaskRun, run_identity, run_scope
from artiflow.errors import ArtifactNotFound, ArtiflowError
from artiflow.orchestration import (
    RegistrySettings,
    describe,
    make_settings,
    open_step,
    shared_registry,
)

if TYPE_CHECKING:
    from airflow.sdk import Connection, Context

    from artiflow import Artifact, Registry, Run

__all__ = ["ArtifactHook", "RegistrySettings"]

log = logging.getLogger(__name__)


class ArtifactHook(BaseHook):
    """Interact with an artiflow registry described by an Airflow connection.

    :param artiflow_conn_id: the connection of type ``artiflow`` to use. When it is the default
        (``artiflow_default``) and no such connection exists, the registry configured by the
        environment is used instead.
    """

    conn_name_attr = "artiflow_conn_id"
    default_conn_name = "artiflow_default"
    conn_type = "artiflow"
    hook_name = "artiflow registry"

    def __init__(self, artiflow_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artiflow_conn_id = artiflow_conn_id
        self._registry: Registry | None = None

    # -- connection ---------------------------------------------------------------------------

    def _connection_or_none(self) -> Connection | None:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return self.get_connection(self.artiflow_conn_id)
        except AirflowNotFoundException:
            if self.artiflow_conn_id != self.default_conn_name:
                raise
            return None

    async def _aconnection_or_none(self) -> Connection | None:
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            return await self.aget_connection(self.artiflow_conn_id)
        except AirflowNotFoundException:
            if self.artiflow_conn_id != self.default_conn_name:
                raise
            return None

    @staticmethod
    def settings_from_connection(conn: Connection | None) -> RegistrySettings:
        """Translate a connection into :class:`artiflow.Registry` keyword arguments.

        Login and password fill in the database URL's credentials; ``storage_options`` and
        ``reference_options`` (fsspec options by protocol) may be JSON objects or their text.

        :param conn: the connection, or ``None`` for the environment's default registry.
        :raises artiflow.errors.InvalidArgument: ``storage_options`` is not a JSON object, or
            ``reference_options`` not an object of objects.
        """
        if conn is None:
            return make_settings()
        extra = conn.extra_dejson
        return make_settings(
            extra.get("store"),
            extra.get("database"),
            extra.get("storage_options"),
            login=conn.login,
            password=conn.password,
            reference_options=extra.get("reference_options"),
            where=f"connection {conn.conn_id!r}",
        )

    def get_settings(self) -> RegistrySettings:
        """The registry settings of this hook's connection (the defaults when it is absent)."""
        return self.settings_from_connection(self._connection_or_none())

    # -- registry -----------------------------------------------------------------------------

    def _open(self, settings: RegistrySettings) -> Registry:
        source = (
            f"connection {self.artiflow_conn_id!r}"
            if any(settings.values())
            else "the environment's defaults"
        )
        log.info("Using artiflow registry from %s: %s", source, describe(settings))
        # Inside Airflow, lineage reaches OpenLineage through Airflow's own provider (one job per
        # task, Airflow's run ids); artiflow's emitter would report every task a second time.
        return shared_registry(settings, openlineage=False)

    def get_registry(self) -> Registry:
        """Return the :class:`artiflow.Registry` of this hook's connection.

        A registry is thread-safe and shared per process (:meth:`artiflow.Registry.shared`): the
        tasks of one worker, ``dag.test()`` and the triggerer share one per distinct
        configuration (the connection's settings and the ``ARTIFLOW_*`` environment).
        """
        if self._registry is None:
            self._registry = self._open(self.get_settings())
        return self._registry

    def get_conn(self) -> Registry:
        """Return the registry; the standard hook entry point, same as :meth:`get_registry`."""
        return self.get_registry()

    async def aget_registry(self) -> Registry:
        """Return the registry from async code (triggers): the connection is read asynchronously
        and the registry is opened in a worker thread."""
        if self._registry is None:
            settings = self.settings_from_connection(await self._aconnection_or_none())
            self._registry = await asyncio.to_thread(self._open, settings)
        return self._registry

    def test_connection(self) -> tuple[bool, str]:
        """Open the registry and check its database and store answer (the UI's Test button)."""
        try:
            self.get_registry().check()
        except (ArtiflowError, ValueError, OSError) as err:
            return False, f"{type(err).__name__}: {err}"
        return True, "Connected to the artiflow registry"

    # -- runs and lookups ---------------------------------------------------------------------

    @contextmanager
    def run(
        self,
        context: Context | None = None,
        *,
        job_type: str | None = None,
        group: str | None = None,
    ) -> Iterator[TaskRun]:
        """Open a registry run identified by the running task instance.

        The run identity is ``(dag_id, run_id, task_id, map_index, try_number)`` with
        orchestrator ``airflow``. The run is atomic: uploads start at ``log_artifact``, but every
        version logged through it is committed together, in one transaction, when the ``with``
        block exits cleanly; a block that raises, or a failed upload, commits none of them and
        marks the run failed. So a failed try commits nothing. Inside the block
        ``artifact.wait()`` raises ``ArtifactStateError``: read ``artifact.version`` after it.
        The committed versions are then reported as Airflow asset events
        (``artiflow://<name>``: on the Asset the task declares as an outlet, else through the
        task's artiflow AssetAlias, added at run time when the task declares none, so a plain
        ``@task`` needs no outlets; a version deduplicated to an existing one announces
        nothing) and to the hook lineage collector (OpenLineage). The task log gets one line
        per input used (``Used features:v2 (...)``) and per output (``Logged model:v3 (12
        files, 48.0 MiB, new version)`` or ``... reused v2``), or ``Nothing committed: ...``
        when the block fails. Upserted parts and finished distributed artifacts are committed
        when called, not at the end of the block.

        :param context: the task context; defaults to ``get_current_context()``.
        :param job_type: an optional job type recorded on the run, e.g. ``"train"``.
        :param group: an optional group recorded on the run.
        """
        if context is None:
            from airflow.sdk import get_current_context

            context = get_current_context()
        identity = {**run_identity(context), "job_type": job_type, "group": group}
        task_context = context

        def task_run(run: Run, scope: Sequence[str]) -> TaskRun:
            return TaskRun(run, task_context, hook=self, scope=scope)

        with open_step(self.get_registry(), identity, run_scope(context), step=task_run) as step:
            yield step
        step.report()

    def resolve(self, ref: str) -> Artifact | None:
        """Return the version ``ref`` points to, or ``None`` while it does not exist.

        :param ref: ``name``, ``name:alias`` or ``name:vN``.
        """
        try:
            return self.get_registry().artifact(ref)
        except ArtifactNotFound:
            return None
