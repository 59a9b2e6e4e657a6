"""Artifact steps, whatever the orchestrator: what a function consumes and produces.

Airflow's ``@task.artifact`` and Prefect's ``artifact_task`` describe a step the same way::

    inputs={"raw": "raw-data:latest"}        # or {"ref": ..., "type": ..., "download": ...}
    outputs={"clean": "dataset"}             # or {"type": ..., "name": ..., "aliases": [...]}

This module holds that shared part: the :class:`Input` and :class:`Output` specs and their
parsing and validation (:func:`check_input`, :func:`check_output`: names, types, aliases and
references are checked when the step is declared, not after its function ran), whether a
parameter wants a downloaded directory (:func:`wants_path`), the fresh output
artifacts (:func:`draft_outputs`), filling them from the function's return value
(:func:`absorb_return`, :func:`add_source`) and the check that none is left empty
(:func:`require_filled`). Running the step, passing references between tasks and reporting to
the orchestrator stay in each integration.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeAlias

from ..artifact import Artifact
from ..errors import EmptyOutput, InvalidName, InvalidSpec
from ..naming import check_alias, check_name, check_type, parse_ref

__all__ = [
    "EmptyOutput",
    "Input",
    "InputSpec",
    "InvalidSpec",
    "Later",
    "Output",
    "OutputSpec",
    "absorb_return",
    "add_source",
    "check_distinct",
    "check_input",
    "check_keys",
    "check_output",
    "check_value",
    "draft_outputs",
    "parse_input",
    "parse_output",
    "require_filled",
    "wants_path",
]


@dataclass(frozen=True)
class Input:
    """An artifact the step consumes.

    Args:
        ref: The reference to use (``"name"``, ``"name:latest"``, ``"name:v3"``,
            ``"name:alias"``); a caller of the task may pass another one, or an upstream
            artifact task's result.
        type: The expected artifact type; a mismatch fails the step before the function runs.
        download: Pass the downloaded (verified, cached) directory as a ``pathlib.Path``
            instead of the ``Artifact``; implied when the parameter is annotated ``Path``.
    """

    ref: str
    type: str | None = None
    download: bool = False


@dataclass(frozen=True)
class Output:
    """An artifact the step produces: the function receives a fresh ``Artifact`` to fill.

    Args:
        type: The artifact type (``"dataset"``, ``"model"``, ...).
        name: The artifact name; defaults to the parameter name.
        aliases: Aliases set on the committed version (``latest`` moves by itself).
        description: The version's description.
        metadata: The version's metadata (JSON-safe).
        distributed: ``"upsert"`` (or ``True``) adds this task's entries as one part of a
            distributed version, for mapped writers; ``"finish"`` commits every part upserted
            under the same id as one version (with this task's own entries, if any).
        distributed_id: The id shared by the writers of one distributed version; defaults to
            one the orchestrator derives from the pipeline run.
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


InputSpec: TypeAlias = str | Input | Mapping[str, Any]
"""An ``inputs`` entry: a reference, an :class:`Input`, or ``{"ref", "type", "download"}``."""

OutputSpec: TypeAlias = str | Output | Mapping[str, Any]
"""An ``outputs`` entry: a type, an :class:`Output`, or a dict of :class:`Output` fields."""

Later: TypeAlias = Callable[[object], bool]
"""Whether a spec value is only known later (an Airflow template or XCom, rendered before the
step runs): such values are checked once they are known, when the spec is parsed again."""

_DISTRIBUTED = ("upsert", "finish")


def check_value(
    where: str, check: Callable[[Any], object], value: object, later: Later | None = None
) -> None:
    """Run one naming check (:func:`artiflow.naming.check_name`, ``check_type``,
    ``check_alias``, ``parse_ref``) on ``value``, unless it is ``None`` or known only later.

    Raises:
        InvalidName: ``value`` is refused; the message starts with ``where`` (``"output
            'model'"``), so the user sees which declaration is wrong.
    """
    if value is None or (later is not None and later(value)):
        return
    try:
        check(value)
    except InvalidName as err:
        raise InvalidName(f"{where}: {err}") from err


def check_input(param: str, spec: Input, *, later: Later | None = None) -> Input:
    """Return ``spec`` once its reference and type are valid.

    Args:
        param: The parameter the input is declared for (named in the error).
        spec: The input.
        later: Values it says are known only later are skipped (checked when rendered).

    Raises:
        InvalidName: The reference is not ``name``, ``name:alias`` or ``name:vN``, or the
            type is not a valid artifact type.
    """
    where = f"input {param!r}"
    check_value(where, parse_ref, spec.ref, later)
    check_value(where, check_type, spec.type, later)
    return spec


def check_output(param: str, spec: Output, *, later: Later | None = None) -> Output:
    """Return ``spec`` once its artifact name (the parameter's when it has none), its type and
    its aliases are valid.

    Args:
        param: The parameter the output is declared for (its default name).
        spec: The output.
        later: Values it says are known only later are skipped (checked when rendered).

    Raises:
        InvalidName: The name, the type or an alias is invalid (``latest`` and ``v<N>`` are
            reserved aliases).
    """
    where = f"output {param!r}"
    check_value(where, check_name, param if spec.name is None else spec.name, later)
    check_value(where, check_type, spec.type, later)
    for alias in spec.aliases:
        check_value(where, check_alias, alias, later)
    return spec


def check_keys(spec_type: type[Input] | type[Output], param: str, spec: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidSpec` if the dict form of a spec has keys ``spec_type`` lacks."""
    known = {f.name for f in fields(spec_type)}
    unknown = set(spec) - known
    if unknown:
        kind = "input" if spec_type is Input else "output"
        raise InvalidSpec(
            f"{kind} {param!r}: unknown keys {sorted(unknown, key=str)}; "
            f"expected some of {sorted(known)}"
        )


def check_distinct(inputs: Collection[str], outputs: Collection[str], *others: str | None) -> None:
    """Raise :class:`InvalidSpec` if a parameter is declared both as an input and as an output
    (or as one of ``others``, such as the parameter that receives the run)."""
    overlap = set(inputs) & ({*outputs} | {o for o in others if o})
    if overlap:
        raise InvalidSpec(
            f"parameters {sorted(overlap)} are declared twice (as an input and as an output)"
        )


def parse_input(param: str, spec: InputSpec, *, later: Later | None = None) -> Input:
    """The :class:`Input` of one ``inputs`` entry, checked (:func:`check_input`).

    Args:
        param: The parameter the entry is declared for.
        spec: The entry.
        later: Values it says are known only later are not checked yet (Airflow templates).

    Raises:
        InvalidSpec: ``spec`` is not a reference, an :class:`Input` or a dict of its fields
            with a string ``ref``.
        InvalidName: Its reference or type is invalid.
    """
    if isinstance(spec, Input):
        return check_input(param, spec, later=later)
    if isinstance(spec, str):
        return check_input(param, Input(spec), later=later)
    if isinstance(spec, Mapping):
        check_keys(Input, param, spec)
        ref = spec.get("ref")
        if not isinstance(ref, str):
            raise InvalidSpec(
                f"input {param!r}: the reference must be a string like 'name:v3', got {ref!r}"
            )
        return check_input(param, Input(**spec), later=later)
    raise InvalidSpec(
        f"input {param!r} must be a reference string, an Input or "
        f'{{"ref": ..., "type": ..., "download": ...}}, got {spec!r}'
    )


def parse_output(param: str, spec: OutputSpec, *, later: Later | None = None) -> Output:
    """The :class:`Output` of one ``outputs`` entry, checked (:func:`check_output`).

    Args:
        param: The parameter the entry is declared for (the default artifact name).
        spec: The entry.
        later: Values it says are known only later are not checked yet (Airflow templates).

    Raises:
        InvalidSpec: ``spec`` is not a type, an :class:`Output` or a dict of its fields with
            a string ``type``; or its ``aliases`` is one string, or ``distributed`` is not
            ``True``, ``False``, ``None``, ``"upsert"`` or ``"finish"``.
        InvalidName: Its name, type or an alias is invalid.
    """
    if isinstance(spec, Output):
        out = spec
    elif isinstance(spec, str):
        out = Output(spec)
    elif isinstance(spec, Mapping) and isinstance(spec.get("type"), str):
        check_keys(Output, param, spec)
        aliases = spec.get("aliases") or ()
        out = Output(**{**spec, "aliases": aliases if isinstance(aliases, str) else tuple(aliases)})
    else:
        raise InvalidSpec(
            f"output {param!r} must be a type string, an Output or "
            f'{{"type": ..., "name": ..., "aliases": [...]}}, got {spec!r}'
        )
    if isinstance(out.aliases, str):
        raise InvalidSpec(f"output {param!r}: aliases must be a list of strings, not a string")
    distributed = out.distributed
    if not (distributed is None or isinstance(distributed, bool) or distributed in _DISTRIBUTED):
        raise InvalidSpec(
            f"output {param!r}: distributed must be True, False, 'upsert' or 'finish', "
            f"got {out.distributed!r}"
        )
    return check_output(param, out, later=later)


def wants_path(fn: Callable[..., Any], param: str) -> bool:
    """Whether ``fn``'s parameter ``param`` is annotated ``Path`` (it wants the download).

    String annotations are resolved; one that cannot be is judged by its text.
    """
    parameter = inspect.signature(fn).parameters.get(param)
    if parameter is None:
        return False
    annotation = parameter.annotation
    if isinstance(annotation, str):
        try:
            annotation = typing.get_type_hints(fn).get(param, annotation)
        except (AttributeError, NameError, TypeError):
            return annotation in ("Path", "pathlib.Path")
    return annotation is Path


def draft_outputs(outputs: Mapping[str, Output]) -> dict[str, Artifact]:
    """A fresh, empty :class:`~artiflow.Artifact` for each output, by parameter."""
    return {
        param: Artifact(
            param if out.name is None else out.name,
            out.type,
            description=out.description,
            metadata=out.metadata,
        )
        for param, out in outputs.items()
    }


def add_source(artifact: Artifact, source: str | os.PathLike[str]) -> None:
    """Add a URI (``"s3://..."``) as a reference, a local directory or a local file."""
    text = os.fspath(source)
    if "://" in text:
        artifact.add_reference(text)
    elif Path(text).is_dir():
        artifact.add_dir(text)
    else:
        artifact.add_file(text)


def _is_source(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def absorb_return(returned: Any, drafts: Mapping[str, Artifact]) -> bool:
    """Fill outputs from the function's return value; whether the value was used up.

    ``None``: nothing to fill. A path or URI: the single output that is still empty.
    ``{output: path}``: those outputs. Anything else is left alone (``False``): the caller
    passes it on as the step's result.
    """
    if returned is None:
        return True
    empty = [param for param, artifact in drafts.items() if not len(artifact.manifest)]
    if _is_source(returned) and len(empty) == 1:
        add_source(drafts[empty[0]], returned)
        return True
    if (
        isinstance(returned, Mapping)
        and returned
        and set(returned) <= set(drafts)
        and all(_is_source(v) for v in returned.values())
    ):
        for param, source in returned.items():
            add_source(drafts[param], source)
        return True
    return False


def require_filled(drafts: Mapping[str, Artifact], outputs: Mapping[str, Output]) -> None:
    """Raise :class:`EmptyOutput` for the first output left empty.

    A ``"finish"`` output may be empty: its entries are the parts upserted before.
    """
    for param, out in outputs.items():
        artifact = drafts[param]
        if out.mode != "finish" and not len(artifact.manifest):
            raise EmptyOutput(
                f"output {param!r} ({artifact.name}) is empty: add files to it in the function, "
                "or return a path"
            )
