"""ArtifactTrigger: the deferrable half of :class:`~artiflow.airflow.sensors.ArtifactSensor`.

Runs in the triggerer: polls the registry (in a worker thread, so the event loop never blocks)
until the reference resolves, or resolves to another version than ``moved_from``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from artiflow.airflow.hooks import ArtifactHook
from artiflow.errors import ArtiflowError

__all__ = ["ArtifactTrigger", "check_moved"]

log = logging.getLogger(__name__)


def check_moved(hook: ArtifactHook, ref: str, moved_from: str | None) -> str | None:
    """Return the qualified name ``ref`` resolves to once the wait is over, else ``None``.

    Without ``moved_from`` the wait is over as soon as ``ref`` exists; with it (``"v3"`` or
    ``"name:v3"``), once ``ref`` points at any other version.

    :param hook: the hook of the registry to ask.
    :param ref: ``name``, ``name:alias`` or ``name:vN``.
    :param moved_from: the version ``ref`` pointed at when the wait began, if any.
    """
    artifact = hook.resolve(ref)
    if artifact is None:
        return None
    baseline = moved_from.rsplit(":", 1)[-1] if moved_from else None
    if baseline is not None and artifact.version == baseline:
        return None
    return str(artifact.qualified_name)


class ArtifactTrigger(BaseTrigger):
    """Fire when an artifact reference appears, or moves away from a given version.

    Yields one event: ``{"status": "success", "ref": "name:v4"}``, or ``{"status": "error",
    "message": ...}`` when the registry cannot be reached or refuses the reference.

    :param ref: ``name``, ``name:alias`` or ``name:vN``.
    :param moved_from: wait until ``ref`` points at another version than this one.
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    :param poll_interval: seconds between two looks at the registry.
    """

    def __init__(
        self,
        ref: str,
        moved_from: str | None = None,
        artiflow_conn_id: str = ArtifactHook.default_conn_name,
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        self.ref = ref
        self.moved_from = moved_from
        self.artiflow_conn_id = artiflow_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ref": self.ref,
                "moved_from": self.moved_from,
                "artiflow_conn_id": self.artiflow_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = ArtifactHook(artiflow_conn_id=self.artiflow_conn_id)
        try:
            await hook.aget_registry()
            while True:
                found = await asyncio.to_thread(check_moved, hook, self.ref, self.moved_from)
                if found is not None:
                    yield TriggerEvent({"status": "success", "ref": found})
                    return
                log.debug("%s has not moved from %s yet", self.ref, self.moved_from)
                await asyncio.sleep(self.poll_interval)
        except (ArtiflowError, OSError, ValueError) as err:
            yield TriggerEvent({"status": "error", "message": f"{type(err).__name__}: {err}"})
