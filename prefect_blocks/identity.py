"""The Prefect run identity of an artiflow run, read from ``prefect.runtime`` at call time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .mirror import Producer

if TYPE_CHECKING:
    from artiflow.runs import Run

__all__ = ["distributed_id_for", "prefect_identity", "producer", "run_identity"]


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


def run_identity(identity: Mapping[str, Any], job_type: str | None = None) -> dict[str, Any]:
    """The keyword arguments of ``Registry.run``: the identity without empty values."""
    keys = {k: v for k, v in identity.items() if v is not None}
    if job_type:
        keys["job_type"] = job_type
    return keys


def distributed_id_for(name: str, flow_run_id: str | None = None) -> str:
    """Return the distributed id that the writers of ``name`` share within one flow run.

    Args:
        name: The artifact name.
        flow_run_id: The flow run; defaults to the current one.

    Returns:
        ``"prefect-<flow_run_id>-<name>"``.
    """
    if flow_run_id is None:
        from prefect.runtime import flow_run

        flow_run_id = flow_run.id
    if not flow_run_id:
        raise RuntimeError(
            f"distributed output {name!r} needs a flow run (or an explicit distributed_id)"
        )
    return f"prefect-{flow_run_id}-{name}"


def producer(identity: Mapping[str, Any], run: Run | None) -> Producer:
    return Producer(
        run_id=run.id if run is not None else None,
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
