"""The Prefect run identity of an artiflow run, read from ``prefect.runtime`` at call time.

:func:`open_prefect_step` opens the core's step run (:func:`artiflow.orchestration.open_step`)
under that identity, scoped to the flow run so that the parallel writers of one flow run share
a default distributed id (:func:`distributed_id_for`), as a :class:`PrefectStepRun`: the
step's lines (each input used, each output logged or reused, or that nothing was committed)
go to the task run's log.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from artiflow import Registry, Run
from artiflow.errors import DistributedError
from artiflow.orchestration import StepRun, default_distributed_id, open_step

from .mirror import Producer

__all__ = [
    "PrefectStepRun",
    "distributed_id_for",
    "open_prefect_step",
    "prefect_identity",
    "producer",
    "task_logger",
]

Logger = logging.Logger | logging.LoggerAdapter[Any]

_fallback = logging.getLogger(__name__)


def task_logger() -> Logger:
    """The current task (or flow) run's Prefect logger: what it logs shows in the run's logs
    in the UI. Outside a run, this module's logger.

    Take it in the task's own context (a worker thread has none) and pass it on.
    """
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_run_logger

    if TaskRunContext.get() is None and FlowRunContext.get() is None:
        return _fallback
    return get_run_logger()


class PrefectStepRun(StepRun):
    """A step run whose lines (:meth:`StepRun.say`) go to a Prefect run logger."""

    def __init__(self, run: Run, scope: Sequence[str] = (), *, logger: Logger = _fallback) -> None:
        super().__init__(run, scope)
        self.logger = logger

    def say(self, line: str, level: int = logging.INFO) -> None:
        """Write one line to the task run's log."""
        self.logger.log(level, line)


def prefect_identity() -> dict[str, Any]:
    """Read the current Prefect run identity as artiflow run identity keys.

    Read at call time from ``prefect.runtime``, so it is right in every thread, process and
    retry. Outside a flow run the orchestrator is ``python`` and the Prefect keys are ``None``.

    Returns:
        ``orchestrator``, ``pipeline``, ``pipeline_run``, ``step``, ``step_run``, ``attempt``
        and the extra keys ``flow_run_name`` and ``task_run_name``.
    """
    from prefect.runtime import flow_run, task_run

    flow_run_id = flow_run.id
    task_run_id = task_run.id
    return {
        "orchestrator": "prefect" if flow_run_id or task_run_id else "python",
        "pipeline": flow_run.flow_name if flow_run_id else None,
        "pipeline_run": flow_run_id,
        "step": task_run.task_name if task_run_id else None,
        "step_run": task_run_id,
        "attempt": task_run.run_count if task_run_id else None,
        "flow_run_name": flow_run.name if flow_run_id else None,
        "task_run_name": task_run.name if task_run_id else None,
    }


def open_prefect_step(
    registry: Registry,
    identity: Mapping[str, Any],
    job_type: str | None = None,
    logger: Logger | None = None,
) -> AbstractContextManager[PrefectStepRun]:
    """The atomic step run of one Prefect task call (see :func:`artiflow.orchestration.open_step`).

    Args:
        registry: The registry to run in.
        identity: What :func:`prefect_identity` read when the task started (plus
            ``map_index`` for a mapped run).
        job_type: The artiflow run's job type, if any.
        logger: Where the step's lines go; default :func:`task_logger` (call it in the task's
            own context: a worker thread has no run context).

    Returns:
        A context manager giving the :class:`PrefectStepRun`, scoped to the flow run (when
        there is one) for default distributed ids.
    """
    flow_run_id = identity.get("pipeline_run")
    scope = (flow_run_id,) if flow_run_id else ()
    step = functools.partial(PrefectStepRun, logger=logger or task_logger())
    return open_step(registry, {**identity, "job_type": job_type}, scope, step=step)


def distributed_id_for(name: str, flow_run_id: str | None = None) -> str:
    """Return the distributed id that the writers of ``name`` share within one flow run.

    Args:
        name: The artifact name.
        flow_run_id: The flow run; defaults to the current one.

    Returns:
        :func:`artiflow.orchestration.default_distributed_id` of ``name`` in the flow run: the
        id ``artifact_task`` outputs with ``distributed=...`` use when they give none.

    Raises:
        artiflow.errors.DistributedError: Outside a flow run, without ``flow_run_id``.
    """
    if flow_run_id is None:
        from prefect.runtime import flow_run

        flow_run_id = flow_run.id
    if not flow_run_id:
        raise DistributedError(
            f"distributed output {name!r} needs a flow run (or an explicit distributed_id)"
        )
    return default_distributed_id(name, flow_run_id)


def producer(identity: Mapping[str, Any], run_id: str | None) -> Producer:
    """The producing run as the mirror shows it.

    Args:
        identity: What :func:`prefect_identity` read when the task started.
        run_id: The artiflow run's id, if one was opened.

    Returns:
        The :class:`~artiflow.prefect.mirror.Producer`.
    """
    return Producer(
        run_id=run_id,
        flow_name=identity.get("pipeline"),
        flow_run_id=identity.get("pipeline_run"),
        flow_run_name=identity.get("flow_run_name"),
        task_name=identity.get("step"),
        task_run_id=identity.get("step_run"),
        attempt=identity.get("attempt"),
        ui_url=_flow_run_ui_url() if identity.get("pipeline_run") else None,
    )


def _flow_run_ui_url() -> str | None:
    """The flow run's UI link; ``None`` without a UI (Prefect then renders ``"None/..."``)."""
    from prefect.runtime import flow_run

    url = flow_run.ui_url
    return url if isinstance(url, str) and url.startswith(("http://", "https://")) else None
