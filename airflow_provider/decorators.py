"""``@task.artifact``: a TaskFlow task that uses and produces artifact versions.

One decorator line turns a normal TaskFlow function into a task with lineage::

    @task.artifact(inputs={"raw": "raw-data:latest"}, outputs={"clean": "dataset"})
    def transform(raw: artiflow.Artifact, clean: artiflow.Artifact) -> None:
        frame = load(raw.download())
        with clean.new_file("clean.csv") as f:
            f.write(frame.to_csv())

* ``inputs`` maps a parameter name to an artifact reference (``"name:alias"``, ``"name:v3"``),
  an :class:`artiflow.steps.Input` or ``{"ref": ..., "type": ..., "download": True}``.
  Passing the parameter when calling the task overrides the reference:
  ``transform(raw=extract())`` uses exactly the version the upstream task logged (its XCom
  ``"name:vN"``), and makes it upstream. The parameter receives
  the :class:`artiflow.Artifact`, or the local directory (:class:`pathlib.Path`) of its
  verified download when ``download`` is true or the parameter is annotated ``Path``.
* ``outputs`` maps a parameter name to a type (``"dataset"``), an
  :class:`artiflow.steps.Output` or ``{"type": ..., "name": ..., "aliases": [...],
  "description": ..., "metadata": {...}, "distributed": False}``; the artifact name defaults to
  the parameter name. The parameter receives a fresh, empty
  :class:`artiflow.Artifact` to fill. Instead of filling it, the function may return a path
  (a file, a directory or a URI) for its single output, or a dict ``{output: path}``.
* Outputs are logged only after the function returned, and every version of the task's run
  (the outputs and anything logged through ``run``) is committed in one transaction when it
  ends: a failing try commits nothing, and a retry that produces the same content gets the
  same version back (content dedupe).
* The task returns ``"name:vN"`` through XCom (a dict ``{output: "name:vN"}`` for several
  outputs, each also pushed under its own key), unless the function returned another value,
  which is passed through.
* Produced artifacts are outlets (``Asset(uri="artiflow://<name>")``, or an AssetAlias when the
  name is only known at run time) with the event extra ``{"version", "digest", "type"}``;
  inputs are inlets. An Asset with that URI the task already declares is used as is. A
  version deduplicated to an existing one emits no event; distributed parts emit none (the
  finishing task does).
* ``{"distributed": True}`` outputs are upserted as parts of one artifact shared by every
  (mapped) task instance of the DAG run; a downstream
  :class:`~artiflow.airflow.operators.FinishArtifactOperator` commits them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypedDict, cast

import attr
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.bases.decorator import DecoratedOperator, _TaskDecorator

import artiflow
from artiflow.airflow.assets import (
    add_assets,
    artifact_alias,
    artifact_asset,
    is_templated,
    static_name,
)
from artiflow.airflow.hooks import ArtifactHook
from artiflow.airflow.lineage import ArtifactLineageMixin
from artiflow.steps import (
    Input,
    InvalidSpec,
    Output,
    absorb_return,
    check_keys,
    draft_outputs,
    parse_input,
    parse_output,
    require_filled,
    wants_path,
)

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.decorator import TaskDecorator

    from artiflow.airflow.lineage import TaskRun

__all__ = ["InputSpec", "OutputSpec", "artifact_task"]


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


def _input_entry(key: str, value: Any) -> InputSpec:
    """One ``inputs`` entry in its dict form (templated fields are rendered from dicts).

    A reference string, an :class:`~artiflow.steps.Input` or a dict. The reference may still be
    a template or an XCom reference (resolved before execution), or missing when the caller
    passes it as an argument of the call; :func:`artiflow.steps.parse_input` checks the entry
    now when the reference is a string, and again once it is rendered.
    """
    if _is_xcom(value):
        return InputSpec(ref=value)
    if isinstance(value, Mapping) and not isinstance(value.get("ref"), str):
        check_keys(Input, key, value)
        return InputSpec(**value)  # type: ignore[typeddict-item]
    spec = parse_input(key, value)
    entry = InputSpec(ref=spec.ref)
    if spec.type is not None:
        entry["type"] = spec.type
    if spec.download:
        entry["download"] = True
    return entry


def _output_entry(key: str, value: Any) -> OutputSpec:
    """One ``outputs`` entry (a type, an :class:`~artiflow.steps.Output` or a dict), checked
    with :func:`artiflow.steps.parse_output` and turned into its dict form."""
    spec = _output(key, value)
    entry = OutputSpec(type=spec.type)
    if spec.name is not None:
        entry["name"] = spec.name
    if spec.aliases:
        entry["aliases"] = list(spec.aliases)
    if spec.description is not None:
        entry["description"] = spec.description
    if spec.metadata is not None:
        entry["metadata"] = dict(spec.metadata)
    if spec.distributed is not None:
        entry["distributed"] = spec.distributed
    if spec.distributed_id is not None:
        entry["distributed_id"] = spec.distributed_id
    return entry


def _is_xcom(value: Any) -> bool:
    from airflow.sdk.definitions._internal.mixins import ResolveMixin

    return isinstance(value, ResolveMixin)


def _hide(func: Callable[..., Any], names: set[str]) -> Callable[..., Any]:
    """``func`` with the injected parameters removed from its visible signature.

    Airflow binds the call arguments against the signature when the DAG is parsed; artifact
    parameters are filled in at run time, so the signature Airflow sees must not require them.
    """
    signature = inspect.signature(func)

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for p in signature.parameters.values() if p.name not in names]
    )
    return call


class _ArtifactDecoratedOperator(ArtifactLineageMixin, DecoratedOperator, PythonOperator):
    """The operator behind ``@task.artifact``.

    :param python_callable: the decorated function.
    :param op_args: positional arguments of the call. (templated)
    :param op_kwargs: keyword arguments of the call. (templated)
    :param inputs: parameter name -> reference or :class:`InputSpec`. (templated)
    :param outputs: parameter name -> type or :class:`OutputSpec`. (templated)
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    :param job_type: a job type recorded on the artiflow run, e.g. ``"train"``.
    """

    custom_operator_name = "@task.artifact"
    template_fields: Sequence[str] = ("templates_dict", "op_args", "op_kwargs", "inputs", "outputs")
    template_fields_renderers = {
        "templates_dict": "json",
        "op_args": "py",
        "op_kwargs": "py",
        "inputs": "json",
        "outputs": "json",
    }
    shallow_copy_attrs: Sequence[str] = ("python_callable", "_artifact_callable")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        artiflow_conn_id: str = ArtifactHook.default_conn_name,
        job_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        specs = {key: _input_entry(key, value) for key, value in (inputs or {}).items()}
        outputs = {key: _output_entry(key, value) for key, value in (outputs or {}).items()}
        overlap = set(specs) & set(outputs)
        if overlap:
            raise ValueError(f"@task.artifact: {sorted(overlap)} are both inputs and outputs")
        call_kwargs = dict(op_kwargs or {})
        # An input passed as an argument of the call (``transform(raw=extract())``) is the
        # reference to use: typically the upstream task's XCom "name:vN".
        for key in specs.keys() & call_kwargs.keys():
            specs[key]["ref"] = call_kwargs.pop(key)
        if set(outputs) & call_kwargs.keys():
            raise ValueError(
                f"@task.artifact: outputs {sorted(set(outputs) & call_kwargs.keys())} are "
                "filled at run time and cannot be passed as arguments"
            )
        missing = [key for key, spec in specs.items() if spec.get("ref") is None]
        if missing and not kwargs.get("_airflow_mapped_validation_only"):
            raise TypeError(
                f"@task.artifact: inputs {missing} have no reference; give one in inputs= "
                "or pass it when calling the task"
            )
        parameters = inspect.signature(python_callable).parameters
        self._artifact_callable = python_callable
        self._injected_names = {n for n in (*specs, *outputs) if n in parameters}
        self._accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        visible = _hide(python_callable, self._injected_names)
        super().__init__(
            kwargs_to_upstream={
                "python_callable": visible,
                "op_args": op_args,
                "op_kwargs": call_kwargs,
            },
            python_callable=visible,
            op_args=op_args,
            op_kwargs=call_kwargs,
            **kwargs,
        )
        self.inputs = specs
        self.outputs = outputs
        self.artiflow_conn_id = artiflow_conn_id
        self.job_type = job_type
        self._injected: dict[str, Any] = {}
        self._declare_assets()

    def static_output_names(self) -> dict[str, str]:
        """Output key -> artifact name, for the non-distributed outputs named at parse time."""
        return _static_output_names(self.outputs)

    def _declare_assets(self) -> None:
        inlets, outlets = _parse_time_assets(self.inputs, self.outputs, self.dag_id, self.task_id)
        self.inlets = add_assets(self.inlets, inlets)
        self.outlets = add_assets(self.outlets, outlets)

    @cached_property
    def hook(self) -> ArtifactHook:
        """The hook of ``artiflow_conn_id``."""
        return ArtifactHook(artiflow_conn_id=self.artiflow_conn_id)

    def determine_kwargs(self, context: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**super().determine_kwargs(context), **self._injected}

    def execute(self, context: Context) -> Any:
        inputs = {key: parse_input(key, value) for key, value in self.inputs.items()}
        outputs = {key: _output(key, value) for key, value in self.outputs.items()}
        with self.hook.run(context, job_type=self.job_type) as run:
            self._artiflow_run = run
            injected = self._resolve_inputs(run, inputs)
            drafts = draft_outputs(outputs)
            injected.update(drafts)
            self._injected = {
                k: v for k, v in injected.items() if k in self._injected_names or self._accepts_any
            }
            try:
                returned = super().execute(context)
            finally:
                self._injected = {}
            # the body succeeded: only now are the outputs logged
            absorbed = absorb_return(returned, drafts)
            _commit(run, drafts, outputs)
        if not absorbed:
            return returned
        return _xcom_refs(run, drafts, outputs)

    def _resolve_inputs(self, run: TaskRun, inputs: dict[str, Input]) -> dict[str, Any]:
        """Use every input (recording the lineage edge); the Artifact, or its download."""
        resolved: dict[str, Any] = {}
        for key, spec in inputs.items():
            artifact = run.use_artifact(spec.ref, type=spec.type)
            download = spec.download or (
                key in self._injected_names and wants_path(self._artifact_callable, key)
            )
            resolved[key] = artifact.download() if download else artifact
        return resolved


def _output(key: str, value: Any) -> Output:
    """The parsed ``outputs`` entry; a distributed output is finished by another task."""
    output = parse_output(key, value)
    if output.mode == "finish":
        raise InvalidSpec(
            f"@task.artifact output {key!r}: distributed='finish' is not supported here; "
            "upsert the parts and commit them with FinishArtifactOperator"
        )
    return output


def _commit(run: TaskRun, drafts: dict[str, artiflow.Artifact], outputs: dict[str, Output]) -> None:
    """Log every output; they commit together when the run's block exits.

    Versions go first: each is checked (its type against the registry's) when logged, and a
    refusal fails the block before any part is upserted, since parts are stored at once.
    """
    require_filled(drafts, outputs)
    for key, artifact in drafts.items():
        if outputs[key].mode == "log":
            run.log_artifact(artifact, aliases=list(outputs[key].aliases) or None)
    for key, artifact in drafts.items():
        if outputs[key].mode == "upsert":
            run.upsert_artifact(artifact, distributed_id=outputs[key].distributed_id)


def _output_names(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Output key -> artifact name (maybe a template or an XCom reference), for the outputs
    that commit a version: distributed parts are not versions (the finishing task announces the
    version)."""
    names: dict[str, Any] = {}
    for key, value in outputs.items():
        spec = _output(key, value)
        if spec.mode == "log":
            names[key] = key if spec.name is None else spec.name
    return names


def _static_output_names(outputs: Mapping[str, Any]) -> dict[str, str]:
    return {
        key: known
        for key, name in _output_names(outputs).items()
        if (known := static_name(name)) is not None
    }


def _parse_time_assets(
    inputs: Mapping[str, InputSpec], outputs: Mapping[str, Any], dag_id: str | None, task_id: str
) -> tuple[list[Asset], list[Asset | AssetAlias]]:
    """The inlets and outlets a task declares: an Asset per artifact named at parse time, and
    the task's artiflow AssetAlias when an output's name is only known at run time (a template
    or an XCom reference)."""
    inlets = [
        artifact_asset(name)
        for spec in inputs.values()
        if (name := _ref_name(spec.get("ref"))) is not None
    ]
    names = _output_names(outputs)
    outlets: list[Asset | AssetAlias] = [
        artifact_asset(name) for name in _static_output_names(outputs).values()
    ]
    if any(is_templated(name) or _is_xcom(name) for name in names.values()):
        outlets.append(artifact_alias(dag_id, task_id))
    return inlets, outlets


@attr.define(slots=False)
class _ArtifactTaskDecorator(_TaskDecorator):  # type: ignore[misc]
    """``@task.artifact``'s decorator: also declares the assets of mapped tasks at parse time.

    A mapped task's operator is only built when it runs; its inlets and outlets must already be
    on the mapped operator Airflow serialises, or the scheduler drops the asset events.
    """

    def _expand(self, expand_input: Any, *, strict: bool) -> Any:
        result = super()._expand(expand_input, strict=strict)
        mapped = result.operator
        partial_args = dict(self.kwargs.get("op_kwargs") or {})
        inputs = {}
        for key, value in (self.kwargs.get("inputs") or {}).items():
            spec = _input_entry(key, value)
            if key in partial_args:
                spec["ref"] = partial_args[key]
            inputs[key] = spec
        inlets, outlets = _parse_time_assets(
            inputs, self.kwargs.get("outputs") or {}, mapped.dag_id, mapped.task_id
        )
        mapped.inlets = add_assets(mapped.inlets, inlets)
        mapped.outlets = add_assets(mapped.outlets, outlets)
        return result


def _ref_name(ref: Any) -> str | None:
    """The artifact name a reference will resolve to, when it is known at parse time.

    A literal ``"name:alias"`` gives ``name``; the XCom of an upstream ``@task.artifact`` task
    gives the name of the output it returns.
    """
    if isinstance(ref, str):
        return static_name(ref)
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if isinstance(ref, PlainXComArg) and isinstance(ref.operator, _ArtifactDecoratedOperator):
        names = ref.operator.static_output_names()
        key = str(ref.key)
        if key in names:
            return names[key]
        if key == "return_value" and len(ref.operator.outputs) == 1 and len(names) == 1:
            return next(iter(names.values()))
    return None


def _xcom_refs(
    run: TaskRun, drafts: dict[str, artiflow.Artifact], outputs: dict[str, Output]
) -> Any:
    refs: dict[str, str | None] = {}
    for key, artifact in drafts.items():
        if outputs[key].mode == "upsert":
            refs[key] = outputs[key].distributed_id or run.distributed_id(artifact.name)
        else:
            refs[key] = artifact.qualified_name
    if len(refs) == 1:
        return next(iter(refs.values()))
    return refs or None


def artifact_task(
    python_callable: Callable[..., Any] | None = None,
    *,
    inputs: Mapping[str, str | Input | InputSpec] | None = None,
    outputs: Mapping[str, str | Output | OutputSpec] | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Wrap a function into a task that uses and produces artifact versions (``@task.artifact``).

    :param python_callable: the function (when used as ``@task.artifact`` without arguments).
    :param inputs: parameter name -> artifact reference, :class:`artiflow.steps.Input`, or
        ``{"ref", "type", "download"}``. (templated)
    :param outputs: parameter name -> artifact type, :class:`artiflow.steps.Output`, or
        ``{"type", "name", "aliases", "description", "metadata", "distributed",
        "distributed_id"}``. (templated)
    :param multiple_outputs: push each key of a returned dict as its own XCom; defaults to true
        when there are several outputs, so ``task_result["clean"]`` gives ``"clean:v3"``.
    :param kwargs: any other operator argument (``task_id``, ``retries``,
        ``artiflow_conn_id``, ``job_type``, ...).
    """
    if multiple_outputs is None and outputs is not None and len(outputs) > 1:
        multiple_outputs = True
    options = {"inputs": inputs, "outputs": outputs, **kwargs}

    def decorate(function: Callable[..., Any]) -> Any:
        return _ArtifactTaskDecorator(
            function=function,
            operator_class=_ArtifactDecoratedOperator,
            multiple_outputs=attr.NOTHING if multiple_outputs is None else multiple_outputs,
            kwargs=options,
            decorator_name="task.artifact",
        )

    if python_callable is not None:
        return cast("TaskDecorator", decorate(python_callable))
    return cast("TaskDecorator", decorate)
