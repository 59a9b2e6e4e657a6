"""What an artifact task consumes and produces: :class:`Input` and :class:`Output` specs.

The long forms follow Airflow's ``@task.artifact`` (``{"ref", "type", "download"}`` and
``{"type", "name", "aliases", "description", "metadata", "distributed", "distributed_id"}``)
so a step reads the same in both orchestrators.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Input", "InputSpec", "Output", "OutputSpec", "as_input", "as_output"]


@dataclass(frozen=True)
class Input:
    """An artifact the task consumes.

    Args:
        ref: The default reference (``"name"``, ``"name:latest"``, ``"name:v3"``,
            ``"name:alias"``). In the task's signature the parameter defaults to it, so a
            caller can pass another reference, or an upstream artifact task's result.
        type: The expected artifact type; a mismatch fails the task before the function runs.
        download: Pass the downloaded (verified, cached) directory as a ``pathlib.Path``
            instead of the ``Artifact``; implied when the parameter is annotated ``Path``.
    """

    ref: str
    type: str | None = None
    download: bool = False


@dataclass(frozen=True)
class Output:
    """An artifact the task produces: the function receives a fresh ``Artifact`` to fill.

    Args:
        type: The artifact type (``"dataset"``, ``"model"``, ...).
        name: The artifact name; defaults to the parameter name.
        aliases: Aliases set on the committed version (``latest`` moves by itself).
        description: The version's description.
        metadata: The version's metadata (JSON-safe).
        distributed: ``"upsert"`` (or ``True``) adds this task's entries as one part of a
            distributed version, for ``.map()`` writers; ``"finish"`` commits every part
            upserted under the same id as one version (with this task's own entries, if any).
        distributed_id: The id shared by the writers of one distributed version; defaults to
            one derived from the flow run (see :func:`distributed_id_for`).
    """

    type: str
    name: str | None = None
    aliases: tuple[str, ...] = ()
    description: str | None = None
    metadata: Mapping[str, Any] | None = None
    distributed: Literal["upsert", "finish"] | bool | None = None
    distributed_id: str | None = None

    @property
    def mode(self) -> Literal["log", "upsert", "finish"]:
        """How the output is committed: ``log``, ``upsert`` or ``finish``."""
        if self.distributed is True or self.distributed == "upsert":
            return "upsert"
        if self.distributed == "finish":
            return "finish"
        return "log"


InputSpec = str | Input | Mapping[str, Any]
"""An ``inputs`` entry: a reference, an :class:`Input`, or ``{"ref", "type", "download"}``."""

OutputSpec = str | Output | Mapping[str, Any]
"""An ``outputs`` entry: a type, an :class:`Output`, or a dict of :class:`Output` fields."""


def as_input(param: str, spec: InputSpec) -> Input:
    if isinstance(spec, Input):
        return spec
    if isinstance(spec, str):
        return Input(spec)
    if isinstance(spec, Mapping) and isinstance(spec.get("ref"), str):
        return Input(**spec)
    raise TypeError(f"input {param!r} must be a reference, an Input or a dict, got {spec!r}")


def as_output(param: str, spec: OutputSpec) -> Output:
    if isinstance(spec, Output):
        out = spec
    elif isinstance(spec, str):
        out = Output(spec)
    elif isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
        out = Output(**{**spec, "aliases": tuple(spec.get("aliases") or ())})
    else:
        raise TypeError(f"output {param!r} must be a type, an Output or a dict, got {spec!r}")
    if isinstance(out.aliases, str):
        raise TypeError(f"output {param!r}: aliases must be a list of strings, not one string")
    return out
