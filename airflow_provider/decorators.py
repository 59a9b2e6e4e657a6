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
  which is passed through; the task log's ``Done. Returned value was: ...`` shows that XCom.
  The log also has one line per input used and per output logged (``Logged model:v3 (12
  files, 48.0 MiB, new version)`` or ``... reused v2``), or ``Nothing committed: ...``.
* Names, types, aliases and references are checked when the DAG is parsed, and the templated
  ones once rendered, before the function runs (:mod:`artiflow.airflow.declarations`).
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
from typing import TYPE_CHECKING, Any, cast

import attr
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk.bases.decorator import DecoratedOperator, _TaskDecorator

from artiflow.airflow.assets import declare_assets, static_name
from artiflow.airflow.declarations import (
    InputSpec,
    OutputSpec,
    bind_call,
    output_names,
    task_output,
)
from artiflow.airflow.hooks import ArtifactHook
from artiflow.airflow.lineage import ArtifactLineageMixin
from artiflow.orchestration import Input, Output, StepCall, parse_input, wants_path

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.bases.decorator import TaskDecorator

__all__ = ["InputSpec", "OutputSpec", "artifact_task"]


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
        call_kwargs = dict(op_kwargs or {})
        specs, produced = bind_call(
            inputs or {},
            outputs or {},
            call_kwargs,
            partial=bool(kwargs.get("_airflow_mapped_validation_only")),
        )
        parameters = inspect.signature(python_callable).parameters
        injected = {n for n in (*specs, *produced) if n in parameters}
        visible = _hide(python_callable, injected)
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
        self.outputs = produced
        self.artiflow_conn_id = artiflow_conn_id
        self.job_type = job_type
        self._injected_names = injected
        self._accepts_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
        self._wants_path = {name for name in injected if wants_path(python_callable, name)}
        self._artiflow_step: tuple[Context, dict[str, Input], dict[str, Output]] | None = None
        _declare(self, specs, produced)

    def static_output_names(self) -> dict[str, str]:
        """Output key -> artifact name, for the non-distributed outputs named at parse time."""
        return {
            key: known
            for key, name in output_names(self.outputs).items()
            if (known := static_name(name)) is not None
        }

    @cached_property
    def hook(self) -> ArtifactHook:
        """The hook of ``artiflow_conn_id``."""
        return ArtifactHook(artiflow_conn_id=self.artiflow_conn_id)

    def execute(self, context: Context) -> Any:
        # The specs as rendered, checked before anything runs or is written.
        inputs: dict[str, Input] = {k: parse_input(k, v) for k, v in self.inputs.items()}
        outputs: dict[str, Output] = {k: task_output(k, v) for k, v in self.outputs.items()}
        self._artiflow_step = (context, inputs, outputs)
        try:
            return super().execute(context)
        finally:
            self._artiflow_step = None

    def execute_callable(self) -> Any:
        """Call the function as one artiflow step and return the task's XCom value.

        PythonOperator logs what this returns (``Done. Returned value was: model:v3``), so the
        whole step runs here: inputs used, the function called with the inputs and fresh
        outputs, then its outputs logged and committed when the run's block exits.
        """
        if self._artiflow_step is None:  # called outside execute(): a plain call
            return super().execute_callable()
        context, inputs, outputs = self._artiflow_step
        downloads = {k for k, spec in inputs.items() if spec.download or k in self._wants_path}
        with self.hook.run(context, job_type=self.job_type) as run:
            self._artiflow_run = run
            call = StepCall(run, inputs, outputs)
            injected = call.use_inputs({}, downloads) | call.drafts
            passed = self.op_kwargs
            self.op_kwargs = {
                **passed,
                **{
                    k: v
                    for k, v in injected.items()
                    if k in self._injected_names or self._accepts_any
                },
            }
            try:
                returned = super().execute_callable()
            finally:
                self.op_kwargs = passed
            call.commit(returned)  # the body succeeded: only now are the outputs logged
        return call.result(returned)


def _input_name(ref: Any) -> str | None:
    """The artifact name a reference will resolve to, when it is known at parse time.

    A literal ``"name:alias"`` gives ``name``; the XCom of an upstream ``@task.artifact`` task
    gives the name of the output it returns.
    """
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if not isinstance(ref, PlainXComArg):
        return static_name(ref)
    upstream = ref.operator
    if not isinstance(upstream, _ArtifactDecoratedOperator):
        return None
    names = upstream.static_output_names()
    key = str(ref.key)
    if key in names:
        return names[key]
    if key == "return_value" and len(upstream.outputs) == 1 and len(names) == 1:
        return next(iter(names.values()))
    return None


def _declare(task: Any, inputs: Mapping[str, InputSpec], outputs: Mapping[str, Any]) -> None:
    """Declare a task's inlets and outlets from its bound inputs and its outputs."""
    refs = [_input_name(spec.get("ref")) for spec in inputs.values()]
    declare_assets(task, refs, output_names(outputs).values())


# Kept as a subclass of Airflow's private _TaskDecorator (checked against apache-airflow 3.3.2):
# ``expand()`` builds the DecoratedMappedOperator itself and never runs the operator's
# __init__ at parse time, and ``task_decorator_factory`` offers no hook in between, so without
# this the inlets and outlets of mapped tasks would not reach the serialised DAG (and the
# scheduler would drop their asset events). Only the public expand methods are overridden.
@attr.define(slots=False)
class _ArtifactTaskDecorator(_TaskDecorator):  # type: ignore[misc]
    """``@task.artifact``'s decorator: also declares the assets of mapped tasks at parse time."""

    def expand(self, **map_kwargs: Any) -> Any:
        return self._declared(super().expand(**map_kwargs))

    def expand_kwargs(self, kwargs: Any, *, strict: bool = True) -> Any:
        return self._declared(super().expand_kwargs(kwargs, strict=strict))

    def _declared(self, result: Any) -> Any:
        inputs, outputs = bind_call(
            self.kwargs.get("inputs") or {},
            self.kwargs.get("outputs") or {},
            dict(self.kwargs.get("op_kwargs") or {}),
            partial=True,
        )
        _declare(result.operator, inputs, outputs)
        return result


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
