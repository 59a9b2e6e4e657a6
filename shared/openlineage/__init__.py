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

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from ..db import MetaStore, utcnow
from ..errors import MissingDependency
from ..records import RunInfo
from .events import (
    ARTIFACT_FACET,
    ARTIFACT_FACET_SCHEMA,
    PRODUCER,
    artifact_facets,
    dataset_namespace,
    finish_event,
    input_dataset,
    job_name,
    openlineage_run_id,
    output_dataset,
    parent_run_id,
    run_event,
)

if TYPE_CHECKING:
    from openlineage.client.event_v2 import RunEvent

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
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


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

    def run_started(self, info: RunInfo) -> None:
        """Queue the ``START`` event of a run whose row was just created."""
        started = (info.started_at or utcnow()).isoformat()
        namespace = self.job_namespace
        self._submit(
            "START", lambda: run_event("START", info, job_namespace=namespace, event_time=started)
        )

    def run_finished(
        self, meta: MetaStore, namespace: str, run_id: str, error: BaseException | None
    ) -> None:
        """Queue the ``COMPLETE`` (or ``FAIL``) event with the run's inputs and outputs, read
        from ``meta``; their datasets are in ``namespace`` (see :func:`dataset_namespace`)."""
        self._submit(
            "FAIL" if error else "COMPLETE",
            lambda: finish_event(meta, namespace, run_id, self.job_namespace, error),
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
