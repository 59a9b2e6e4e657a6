"""One call of an artifact task: resolve inputs, run the function, commit outputs, mirror.

Split in phases that the sync and async wrappers share: :func:`_prepare` (open the artiflow
run, use the inputs, create the outputs), the user's function, :func:`_commit` (log the outputs,
close the run). The run is atomic: every version logged in it, the outputs and anything the
function logged through ``run_param``, is committed in one transaction when it closes after
the function succeeded, and none is when anything fails. Everything here is module-level and
the per-function settings live in a plain :class:`Step`, so a wrapped task stays picklable for
the process-pool task runner.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from artiflow.steps import (
    Input,
    Output,
    absorb_return,
    draft_outputs,
    require_filled,
    wants_path,
)

from .blocks import ArtifactRegistry
from .clients import aload_registry_block, load_registry_block, shared_registry
from .identity import distributed_id_for, prefect_identity, producer, run_identity
from .mirror import VersionSummary, amirror_versions, mirror_versions

if TYPE_CHECKING:
    import artiflow
    from artiflow.runs import Run

__all__ = ["Step", "build_step", "execute_async", "execute_sync"]


@dataclass(frozen=True)
class Step:
    """Everything one wrapped function needs at run time (plain data: picklable)."""

    fn: Callable[..., Any]
    inputs: Mapping[str, Input]
    outputs: Mapping[str, Output]
    registry: ArtifactRegistry | str | Any | None
    run_param: str | None
    job_type: str | None
    mirror: bool
    assets: bool
    signature: inspect.Signature
    exposed: inspect.Signature
    receives: frozenset[str]
    downloads: frozenset[str]


@dataclass
class _Prepared:
    """A step call after its inputs are resolved, before the function runs."""

    stack: ExitStack
    run: Run
    identity: dict[str, Any]
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    produced: dict[str, artiflow.Artifact] = field(default_factory=dict)
    consumed: list[str] = field(default_factory=list)

    def close(self, err: BaseException | None = None) -> None:
        """Leave the artiflow run: finished, or failed when ``err`` is given."""
        if err is None:
            self.stack.close()
        else:
            self.stack.__exit__(type(err), err, err.__traceback__)


def build_step(
    fn: Callable[..., Any],
    inputs: Mapping[str, Input],
    outputs: Mapping[str, Output],
    run_param: str | None,
    **options: Any,
) -> Step:
    """Check the function against the specs and work out the signature the task shows.

    Output and run parameters are filled in by the wrapper, so they disappear from the task's
    signature; every input becomes a keyword-only parameter defaulting to its reference.
    An output the function does not declare is filled from its return value (a path).
    """
    kinds = inspect.Parameter
    sig = inspect.signature(fn)
    params = sig.parameters
    accepts_any = any(p.kind is kinds.VAR_KEYWORD for p in params.values())
    overlap = set(inputs) & (set(outputs) | {run_param})
    if overlap:
        raise TypeError(f"parameters {sorted(overlap)} are declared twice (input and output)")
    if run_param and run_param not in params and not accepts_any:
        raise TypeError(f"{fn.__name__}() has no parameter {run_param!r} for the artiflow run")
    injected = set(inputs) | set(outputs) | ({run_param} if run_param else set())
    for name in injected & set(params):
        if params[name].kind in (kinds.POSITIONAL_ONLY, kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD):
            raise TypeError(f"{fn.__name__}() parameter {name!r} must accept a keyword argument")
    receives = frozenset(n for n in injected if n in params or accepts_any)
    downloads = frozenset(n for n, spec in inputs.items() if spec.download or wants_path(fn, n))
    kept = [p for p in params.values() if p.name not in injected]
    refs = [
        kinds(name, kinds.KEYWORD_ONLY, default=spec.ref, annotation="str")
        for name, spec in inputs.items()
    ]
    var_keyword = [p for p in kept if p.kind is kinds.VAR_KEYWORD]
    exposed = sig.replace(
        parameters=[*[p for p in kept if p.kind is not kinds.VAR_KEYWORD], *refs, *var_keyword]
    )
    return Step(
        fn=fn,
        inputs=inputs,
        outputs=outputs,
        run_param=run_param,
        signature=sig,
        exposed=exposed,
        receives=receives,
        downloads=downloads,
        **options,
    )


def _call_arguments(
    sig: inspect.Signature, values: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Turn parameter values into ``(args, kwargs)`` for the original function."""
    kinds = inspect.Parameter
    has_var_positional = any(p.kind is kinds.VAR_POSITIONAL for p in sig.parameters.values())
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name not in values:
            continue
        value = values[p.name]
        if p.kind is kinds.POSITIONAL_ONLY or (
            p.kind is kinds.POSITIONAL_OR_KEYWORD and has_var_positional
        ):
            args.append(value)
        elif p.kind is kinds.VAR_POSITIONAL:
            args.extend(value)
        elif p.kind is kinds.VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[p.name] = value
    # values for **kwargs that are not named parameters (injected artifacts)
    kwargs.update({k: v for k, v in values.items() if k not in sig.parameters})
    return args, kwargs


def _ref_of(value: Any, param: str) -> str:
    """An input parameter's value as a reference string."""
    import artiflow

    if isinstance(value, str):
        return value
    if isinstance(value, artiflow.Artifact) and value.qualified_name:
        return value.qualified_name
    if isinstance(value, Mapping) and param in value:
        return _ref_of(value[param], param)
    raise TypeError(
        f"input {param!r} needs an artifact reference such as 'name:latest', got {value!r}"
    )


def _prepare(
    step: Step,
    registry: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    identity: dict[str, Any],
) -> _Prepared:
    """Open the run, use the inputs and create the outputs (blocking I/O)."""
    bound = step.exposed.bind(*args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    refs = {param: _ref_of(values.pop(param), param) for param in step.inputs}
    stack = ExitStack()
    run = stack.enter_context(
        shared_registry(registry).run(atomic=True, **run_identity(identity, step.job_type))
    )
    prepared = _Prepared(stack=stack, run=run, identity=identity)
    try:
        for param, spec in step.inputs.items():
            used = run.use_artifact(refs[param], type=spec.type)
            prepared.consumed.append(used.qualified_name or used.name)
            if param in step.receives:
                values[param] = used.download() if param in step.downloads else used
        prepared.produced = draft_outputs(step.outputs)
        for param, art in prepared.produced.items():
            if param in step.receives:
                values[param] = art
        if step.run_param:
            values[step.run_param] = run
    except BaseException as err:
        prepared.close(err)
        raise
    prepared.args, prepared.kwargs = _call_arguments(step.signature, values)
    return prepared


def _commit(step: Step, prepared: _Prepared, returned: Any) -> tuple[Any, list[VersionSummary]]:
    """Log the outputs after the function succeeded, then close the run, which commits them.

    Versions are logged first (each checked against the registry when logged; they commit
    together when the run closes), then distributed parts and finishes, which the registry
    commits at once: a refused output fails the task before any of those is stored.

    Returns:
        The task's result and the committed versions.
    """
    run = prepared.run
    committed: dict[str, artiflow.Artifact] = {}
    refs: dict[str, str] = {}
    try:
        absorbed = absorb_return(returned, prepared.produced)
        require_filled(prepared.produced, step.outputs)
        for param, out in step.outputs.items():
            if out.mode == "log":
                art = prepared.produced[param]
                committed[param] = run.log_artifact(art, aliases=list(out.aliases) or None)
        for param, out in step.outputs.items():
            if out.mode == "log":
                continue
            art = prepared.produced[param]
            did = out.distributed_id or distributed_id_for(
                art.name, prepared.identity.get("pipeline_run")
            )
            if out.mode == "upsert":
                run.upsert_artifact(art, distributed_id=did)
                refs[param] = did
            else:
                committed[param] = run.finish_artifact(
                    art, distributed_id=did, aliases=list(out.aliases) or None
                )
    except BaseException as err:
        prepared.close(err)
        raise
    prepared.close()  # commits the logged versions, or raises (and commits none)
    refs.update({param: art.qualified_name or art.name for param, art in committed.items()})
    if absorbed:
        ordered = [refs[param] for param in step.outputs if param in refs]
        result: Any = ordered[0] if len(ordered) == 1 else (refs or None)
    else:
        result = returned
    return result, [VersionSummary.of(art) for art in committed.values()]


def execute_sync(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a wrapped synchronous function as one artiflow run."""
    identity = prefect_identity()
    source = step.registry
    registry = load_registry_block(source) if isinstance(source, str) else source
    prepared = _prepare(step, registry, args, kwargs, identity)
    try:
        returned = step.fn(*prepared.args, **prepared.kwargs)
    except BaseException as err:
        prepared.close(err)
        raise
    result, committed = _commit(step, prepared, returned)
    if step.mirror or step.assets:
        mirror_versions(
            committed,
            prepared.consumed,
            producer(identity, prepared.run),
            artifacts=step.mirror,
            assets=step.assets,
        )
    return result


async def execute_async(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Async twin of :func:`execute_sync`: registry I/O runs in a worker thread."""
    identity = prefect_identity()
    source = step.registry
    registry = await aload_registry_block(source) if isinstance(source, str) else source
    prepared = await anyio.to_thread.run_sync(_prepare, step, registry, args, kwargs, identity)
    try:
        returned = await step.fn(*prepared.args, **prepared.kwargs)
    except BaseException as err:
        await anyio.to_thread.run_sync(prepared.close, err)
        raise
    result, committed = await anyio.to_thread.run_sync(_commit, step, prepared, returned)
    if step.mirror or step.assets:
        await amirror_versions(
            committed,
            prepared.consumed,
            producer(identity, prepared.run),
            artifacts=step.mirror,
            assets=step.assets,
        )
    return result
