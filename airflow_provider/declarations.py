"""What a ``@task.artifact`` task declares when the DAG is parsed: its inputs and outputs.

The operator keeps ``inputs`` and ``outputs`` in their dict form (:class:`InputSpec`,
:class:`OutputSpec`): they are template fields, rendered before execution, and a reference may
still be a template or an XCom. :func:`bind_call` checks them against one call of the task;
:func:`output_names` gives the names the task's outlets are declared from. At run time the
rendered entries become :class:`artiflow.steps.Input` and :class:`~artiflow.steps.Output`
(:func:`artiflow.steps.parse_input`, :func:`task_output`).

Names, types, aliases and references are checked twice, so that a wrong one never costs a run
of the task's body: when the task is declared (values known only once rendered, templates and
XComs, are skipped: :func:`rendered_later`), and once rendered, before the body runs.
:func:`check_arguments` does the same for the classic operators' arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

from artiflow.airflow.assets import is_templated, is_xcom
from artiflow.errors import InvalidArgument, InvalidSpec
from artiflow.naming import check_alias, check_name, check_type, parse_ref
from artiflow.orchestration import (
    Input,
    Output,
    check_distinct,
    check_keys,
    parse_input,
    parse_output,
)
from artiflow.orchestration.specs import Later, check_value

__all__ = [
    "InputSpec",
    "OutputSpec",
    "bind_call",
    "check_arguments",
    "input_entry",
    "output_entry",
    "output_names",
    "rendered_later",
    "task_output",
]


class InputSpec(TypedDict, total=False):
    """The long form of one ``inputs`` entry."""

    ref: str
    type: str
    download: bool


class OutputSpec(TypedDict, total=False):
    """The long form of one ``outputs`` entry."""

    type: str
    name: str
    aliases: list[str]
    description: str
    metadata: dict[str, Any]
    distributed: bool | str
    distributed_id: str


def rendered_later(value: object) -> bool:
    """Whether ``value`` is known only once the task is rendered: a template or an XCom."""
    return is_templated(value) or is_xcom(value)


def check_arguments(
    where: str,
    *,
    later: Later | None = rendered_later,
    name: object = None,
    type: object = None,
    aliases: object = None,
    ref: object = None,
) -> None:
    """Check an operator's artifact arguments (those given; ``None`` is not checked).

    Called from the operator's ``__init__`` (the default ``later`` skips templates and XComs)
    and again at the start of ``execute`` with ``later=None`` (every value is rendered then).

    :param where: what the error names, e.g. ``"LogArtifactOperator 'log'"``.
    :raises artiflow.errors.InvalidName: the name, type, an alias or the reference is invalid.
    :raises artiflow.errors.InvalidArgument: ``aliases`` is one string, not a list.
    """
    check_value(where, check_name, name, later)
    check_value(where, check_type, type, later)
    check_value(where, parse_ref, ref, later)
    if aliases is None or (later is not None and later(aliases)):
        return
    if isinstance(aliases, str) or not isinstance(aliases, (list, tuple)):
        raise InvalidArgument(f"{where}: aliases must be a list of strings, got {aliases!r}")
    for alias in aliases:
        check_value(where, check_alias, alias, later)


def input_entry(key: str, value: Any) -> InputSpec:
    """One ``inputs`` entry in its dict form (templated fields are rendered from dicts).

    A reference string, an :class:`~artiflow.steps.Input` or a dict. The reference may still be
    a template or an XCom reference (resolved before execution), or missing when the caller
    passes it as an argument of the call; :func:`artiflow.steps.parse_input` checks the entry
    now (except what is known only once rendered), and again once it is rendered.
    """
    if is_xcom(value):
        return InputSpec(ref=value)
    if isinstance(value, Mapping) and not isinstance(value.get("ref"), str):
        check_keys(Input, key, value)
        check_value(f"input {key!r}", check_type, value.get("type"), rendered_later)
        return InputSpec(**value)  # type: ignore[typeddict-item]
    spec = parse_input(key, value, later=rendered_later)
    entry = InputSpec(ref=spec.ref)
    if spec.type is not None:
        entry["type"] = spec.type
    if spec.download:
        entry["download"] = True
    return entry


def task_output(key: str, value: Any, *, later: Later | None = None) -> Output:
    """The parsed ``outputs`` entry; a distributed output is finished by another task.

    ``later``: values known only later are not checked yet (:func:`rendered_later` when the
    task is declared; ``None`` once it is rendered).
    """
    output = parse_output(key, value, later=later)
    if output.mode == "finish":
        raise InvalidSpec(
            f"@task.artifact output {key!r}: distributed='finish' is not supported here; "
            "upsert the parts and commit them with FinishArtifactOperator"
        )
    return output


def output_entry(key: str, value: Any) -> OutputSpec:
    """One ``outputs`` entry (a type, an :class:`~artiflow.steps.Output` or a dict), checked
    with :func:`task_output` as declared and turned into its dict form (the fields that are
    set)."""
    spec = task_output(key, value, later=rendered_later)
    fields: dict[str, Any] = {
        "type": spec.type,
        "name": spec.name,
        "aliases": list(spec.aliases) or None,
        "description": spec.description,
        "metadata": None if spec.metadata is None else dict(spec.metadata),
        "distributed": spec.distributed,
        "distributed_id": spec.distributed_id,
    }
    return cast("OutputSpec", {k: v for k, v in fields.items() if v is not None})


def bind_call(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Any],
    call_kwargs: dict[str, Any],
    *,
    partial: bool = False,
) -> tuple[dict[str, InputSpec], dict[str, OutputSpec]]:
    """The checked dict forms of ``inputs`` and ``outputs`` for one call of the task.

    An input passed as an argument of the call (``transform(raw=extract())``) is the reference
    to use, typically the upstream task's XCom ``"name:vN"``: it is taken out of
    ``call_kwargs``. ``partial``: the call's arguments are not all known yet (a mapped task at
    parse time), so an input may still lack its reference.

    :raises artiflow.errors.InvalidSpec: a parameter is both an input and an output, an entry
        is malformed, or an input has no reference.
    :raises artiflow.errors.InvalidName: a name, type, alias or reference that is not a
        template or an XCom is invalid.
    :raises artiflow.errors.InvalidArgument: an output is passed as an argument of the call.
    """
    bound = {key: input_entry(key, value) for key, value in inputs.items()}
    produced = {key: output_entry(key, value) for key, value in outputs.items()}
    check_distinct(bound, produced)
    for key in bound.keys() & call_kwargs.keys():
        ref = call_kwargs.pop(key)
        bound[key]["ref"] = ref
        if isinstance(ref, str):
            check_value(f"input {key!r}", parse_ref, ref, rendered_later)
    passed = sorted(produced.keys() & call_kwargs.keys())
    if passed:
        raise InvalidArgument(
            f"@task.artifact: outputs {passed} are filled at run time and cannot be passed as "
            "arguments"
        )
    missing = [key for key, entry in bound.items() if entry.get("ref") is None]
    if missing and not partial:
        raise InvalidSpec(
            f"@task.artifact: inputs {missing} have no reference; give one in inputs= "
            "or pass it when calling the task"
        )
    return bound, produced


def output_names(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Output key -> artifact name (maybe a template or an XCom reference), for the outputs
    that commit a version: distributed parts are not versions (the finishing task announces the
    version)."""
    names: dict[str, Any] = {}
    for key, value in outputs.items():
        spec = task_output(key, value, later=rendered_later)
        if spec.mode == "log":
            names[key] = key if spec.name is None else spec.name
    return names
