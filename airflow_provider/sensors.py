"""ArtifactSensor: wait for an artifact version to appear or for an alias to move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException

from artiflow.airflow.declarations import check_arguments
from artiflow.airflow.hooks import ArtifactHook
from artiflow.airflow.triggers import ArtifactTrigger, check_moved

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ArtifactSensor"]


class ArtifactSensor(BaseSensorOperator):
    """Wait until an artifact reference resolves, or resolves to a new version.

    Returns the qualified name it found (``"name:v4"``) through XCom.

    .. code-block:: python

        # wait for the first version of "clean-data"
        ArtifactSensor(task_id="wait_data", ref="clean-data")
        # wait for "prod" to move away from the version the last deployment used
        ArtifactSensor(
            task_id="wait_prod",
            ref="cat-model:prod",
            moved_from="{{ ti.xcom_pull(task_ids='deployed') }}",
            deferrable=True,
            poke_interval=300,
        )

    :param ref: ``name`` (any version: its latest), ``name:alias`` or ``name:vN``; checked when
        the sensor is built, or once rendered when templated. (templated)
    :param moved_from: succeed only once ``ref`` points at another version than this one
        (``"v3"`` or ``"name:v3"``). (templated)
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    :param deferrable: wait in the triggerer (:class:`ArtifactTrigger`) instead of a worker
        slot; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("ref", "moved_from")
    ui_color = "#eaf0f8"

    def __init__(
        self,
        *,
        ref: str,
        moved_from: str | None = None,
        artiflow_conn_id: str = ArtifactHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ref = ref
        self.moved_from = moved_from
        self.artiflow_conn_id = artiflow_conn_id
        self.deferrable = deferrable
        check_arguments(f"ArtifactSensor {self.task_id!r}", ref=ref)

    @cached_property
    def hook(self) -> ArtifactHook:
        """The hook of ``artiflow_conn_id``."""
        return ArtifactHook(artiflow_conn_id=self.artiflow_conn_id)

    def poke(self, context: Context) -> PokeReturnValue:
        found = check_moved(self.hook, self.ref, self.moved_from or None)
        if found is None:
            self.log.info("Waiting for %s%s", self.ref, _suffix(self.moved_from))
            return PokeReturnValue(is_done=False)
        self.log.info("Found %s", found)
        return PokeReturnValue(is_done=True, xcom_value=found)

    def execute(self, context: Context) -> Any:
        check_arguments(f"ArtifactSensor {self.task_id!r}", later=None, ref=self.ref)
        if not self.deferrable:
            return super().execute(context)
        found = check_moved(self.hook, self.ref, self.moved_from or None)
        if found is not None:
            self.log.info("Found %s", found)
            return found
        self.log.info("Deferring until %s%s", self.ref, _suffix(self.moved_from))
        self.defer(
            trigger=ArtifactTrigger(
                ref=self.ref,
                moved_from=self.moved_from or None,
                artiflow_conn_id=self.artiflow_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> str:
        """Resume after :class:`ArtifactTrigger` fired: return the version, or fail."""
        if event.get("status") == "success":
            self.log.info("Found %s", event["ref"])
            return str(event["ref"])
        raise AirflowException(f"ArtifactTrigger failed: {event.get('message')}")


def _suffix(moved_from: str | None) -> str:
    return f" to move from {moved_from}" if moved_from else " to appear"
