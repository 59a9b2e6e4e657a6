"""One call of an artifact task, on the core's step protocol (:mod:`artiflow.orchestration.step`).

:func:`build_step` checks a function against its specs once, when it is decorated, and works
out the signature the task shows. A call then runs in three phases around the user's function:
:func:`open_call` opens the step's atomic run and uses the inputs (a :class:`OpenCall`), the
function runs, :meth:`OpenCall.commit` logs the outputs and closes the run: every version of
the call, the outputs and anything the function logged through ``run_param``, commits in one
transaction, or none does when anything fails. :func:`execute_sync` and :func:`execute_async`
only sequence those phases and mirror the committed versions into Prefect; the async one runs
the registry I/O in a worker thread. Everything here is module-level and the per-function
settings live in a plain :class:`Step`, so a wrapped task stays picklable for the process-pool
task runner.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from artiflow.errors import InvalidSpec
from artiflow.orchestration import (
    Input,
    Output,
    StepCall,
    VersionSummary,
    check_distinct,
    ref_of,
    wants_path,
)

from .clients import RegistrySource, load_source, shared_registry
from .identity import open_prefect_step, prefect_identity, producer, task_logger
from .mapping import MAP_INDEX
from .mirror import Producer, amirror_versions, mirror_versions

__all__ = ["OpenCall", "Step", "build_step", "execute_async", "execute_sync", "open_call"]

_KINDS = inspect.Parameter
# parameter kinds the wrapper cannot pass an artifact to by name
_NOT_BY_KEYWORD = (_KINDS.POSITIONAL_ONLY, _KINDS.VAR_POSITIONAL, _KINDS.VAR_KEYWORD)


@dataclass(frozen=True)
class Step:
    """Everything one wrapped function needs at run time (plain data: picklable)."""

    fn: Callable[..., Any]
    inputs: Mapping[str, Input]
    outputs: Mapping[str, Output]
    registry: RegistrySource
    run_param: str | None
    job_type: str | None
    mirror: bool
    assets: bool
    signature: inspect.Signature
    exposed: inspect.Signature
    receives: frozenset[str]
    downloads: frozenset[str]


# ------------------------------------------------------------------------- decoration time
def build_step(
    fn: Callable[..., Any],
    inputs: Mapping[str, Input],
    outputs: Mapping[str, Output],
    run_param: str | None,
    **options: Any,
) -> Step:
    """Check the function against the specs and work out the signature the task shows.

    Output and run parameters are filled in by the wrapper, so they disappear from the task's
    signature; every input becomes a keyword-only parameter defaulting to its reference, and
    :data:`~artiflow.prefect.mapping.MAP_INDEX` one that ``.map()`` fills with each run's
    position (recorded as the run's map index). An output the function does not declare is
    filled from its return value (a path). The specs were checked when parsed (names, types,
    aliases, references), so a bad one fails here, before any run.

    Raises:
        artiflow.errors.InvalidSpec: A parameter is declared twice, ``run_param`` is not a
            parameter of ``fn``, or one the wrapper fills cannot be passed by keyword.
    """
    sig = inspect.signature(fn)
    injected = _injected(fn, sig, inputs, outputs, run_param)
    receives = frozenset(n for n in injected if n in sig.parameters or _accepts_any(sig))
    downloads = {n for n, spec in inputs.items() if spec.download or wants_path(fn, n)}
    return Step(
        fn=fn,
        inputs=inputs,
        outputs=outputs,
        run_param=run_param,
        signature=sig,
        exposed=_exposed(sig, injected, inputs),
        receives=receives,
        downloads=frozenset(downloads & receives),
        **options,
    )


def _accepts_any(sig: inspect.Signature) -> bool:
    return any(p.kind is _KINDS.VAR_KEYWORD for p in sig.parameters.values())


def _injected(
    fn: Callable[..., Any],
    sig: inspect.Signature,
    inputs: Collection[str],
    outputs: Collection[str],
    run_param: str | None,
) -> set[str]:
    """The parameters the wrapper fills in, checked against ``fn``'s signature."""
    check_distinct(inputs, outputs, run_param)
    params = sig.parameters
    if run_param and run_param not in params and not _accepts_any(sig):
        raise InvalidSpec(f"{fn.__name__}() has no parameter {run_param!r} for the artiflow run")
    injected = {*inputs, *outputs, *([run_param] if run_param else [])}
    for name in sorted(injected & set(params)):
        if params[name].kind in _NOT_BY_KEYWORD:
            raise InvalidSpec(f"{fn.__name__}() parameter {name!r} must accept a keyword argument")
    return injected


def _exposed(
    sig: inspect.Signature, injected: Collection[str], inputs: Mapping[str, Input]
) -> inspect.Signature:
    """The task's signature: the injected parameters gone, a reference per input added, and
    the map index ``.map()`` fills in."""
    kept = [p for p in sig.parameters.values() if p.name not in injected]
    if MAP_INDEX in sig.parameters:
        raise InvalidSpec(f"parameter {MAP_INDEX!r} is artiflow's: rename it")
    refs = [
        _KINDS(name, _KINDS.KEYWORD_ONLY, default=spec.ref, annotation="str")
        for name, spec in inputs.items()
    ]
    index = _KINDS(MAP_INDEX, _KINDS.KEYWORD_ONLY, default=None, annotation="int | None")
    var_keyword = [p for p in kept if p.kind is _KINDS.VAR_KEYWORD]
    named = [p for p in kept if p.kind is not _KINDS.VAR_KEYWORD]
    return sig.replace(parameters=[*named, *refs, index, *var_keyword])


# ------------------------------------------------------------------------------- call time
def _call_arguments(
    sig: inspect.Signature, values: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Turn parameter values into ``(args, kwargs)`` for the original function."""
    has_var_positional = any(p.kind is _KINDS.VAR_POSITIONAL for p in sig.parameters.values())
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name not in values:
            continue
        value = values[p.name]
        if p.kind is _KINDS.POSITIONAL_ONLY or (
            p.kind is _KINDS.POSITIONAL_OR_KEYWORD and has_var_positional
        ):
            args.append(value)
        elif p.kind is _KINDS.VAR_POSITIONAL:
            args.extend(value)
        elif p.kind is _KINDS.VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[p.name] = value
    # values for **kwargs that are not named parameters (injected artifacts)
    kwargs.update({k: v for k, v in values.items() if k not in sig.parameters})
    return args, kwargs


def _close_failed(stack: ExitStack, err: BaseException) -> None:
    """Leave the step's run as failed: nothing it logged is committed."""
    stack.__exit__(type(err), err, err.__traceback__)


class OpenCall:
    """A call whose step run is open and inputs used: what the function is called with, and
    the phases left (:meth:`fail`, or :meth:`commit`; each blocks on registry I/O)."""

    def __init__(self, stack: ExitStack, call: StepCall, identity: Mapping[str, Any]) -> None:
        self.stack = stack
        self.call = call
        self.identity = identity
        self.args: list[Any] = []
        self.kwargs: dict[str, Any] = {}
        self.versions: list[VersionSummary] = []

    def fail(self, err: BaseException) -> None:
        """Close the run as failed: nothing it logged is committed."""
        _close_failed(self.stack, err)

    def commit(self, returned: Any) -> Any:
        """After the function returned: log the outputs, close the run (which commits every
        version of the call, or raises and commits none), and return the task's result."""
        try:
            self.call.commit(returned)
        except BaseException as err:
            self.fail(err)
            raise
        self.stack.close()
        # a version whose content was already committed is no news (as in Airflow): not mirrored
        committed = self.call.run.committed()
        self.versions = [VersionSummary.of(a) for a in committed if not a.reused]
        return self.call.result(returned)

    def report(self) -> tuple[list[VersionSummary], list[str], Producer]:
        """What the mirror shows, once committed: the new versions (reused ones are not news),
        consumed references, producer."""
        consumed = [a.qualified_name or a.name for a in self.call.run.used]
        return self.versions, consumed, producer(self.identity, self.call.run.id)


def open_call(
    step: Step,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    identity: Mapping[str, Any],
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> OpenCall:
    """Open the step's run, use the inputs and draft the outputs (blocking I/O).

    ``args`` and ``kwargs`` are the task's (bound against its exposed signature); an input's
    value is a reference, a committed artifact or an upstream artifact task's result. The
    step's lines (inputs used, outputs logged, nothing committed) go to ``logger``, the task
    run's logger the caller took in the task's own context.
    """
    bound = step.exposed.bind(*args, **kwargs)
    bound.apply_defaults()
    values = dict(bound.arguments)
    identity = {**identity, "map_index": values.pop(MAP_INDEX, None)}
    refs = {param: ref_of(values.pop(param), param) for param in step.inputs}
    registry = shared_registry(load_source(step.registry))
    stack = ExitStack()
    run = stack.enter_context(open_prefect_step(registry, identity, step.job_type, logger))
    try:
        call = StepCall(run, step.inputs, step.outputs)
        injected = {**call.use_inputs(refs, step.downloads), **call.drafts}
    except BaseException as err:
        _close_failed(stack, err)
        raise
    values.update({p: v for p, v in injected.items() if p in step.receives})
    if step.run_param:
        values[step.run_param] = run.run
    opened = OpenCall(stack, call, identity)
    opened.args, opened.kwargs = _call_arguments(step.signature, values)
    return opened


def execute_sync(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a wrapped synchronous function as one artiflow step, then mirror its versions."""
    opened = open_call(step, args, kwargs, prefect_identity(), task_logger())
    try:
        returned = step.fn(*opened.args, **opened.kwargs)
    except BaseException as err:
        opened.fail(err)
        raise
    result = opened.commit(returned)
    mirror_versions(*opened.report(), artifacts=step.mirror, assets=step.assets)
    return result


async def execute_async(step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """:func:`execute_sync` for a coroutine function: the registry I/O runs in a worker thread."""
    opened = await anyio.to_thread.run_sync(
        open_call, step, args, kwargs, prefect_identity(), task_logger()
    )
    try:
        returned = await step.fn(*opened.args, **opened.kwargs)
    except BaseException as err:
        await anyio.to_thread.run_sync(opened.fail, err)
        raise
    result = await anyio.to_thread.run_sync(opened.commit, returned)
    await amirror_versions(*opened.report(), artifacts=step.mirror, assets=step.assets)
    return result
