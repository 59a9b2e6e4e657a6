"""Prefect tasks that consume and produce artiflow artifacts with automatic lineage.

``artifact_task`` turns an existing task function into one that uses input artifacts and
logs output artifacts under the task run's Prefect identity; ``log_artifact`` and
``use_artifact`` are plain tasks for flows that prefer explicit steps::

    @artifact_task(inputs={"raw": "raw-data:latest"}, outputs={"clean": "dataset"})
    def transform(raw: af.Artifact, clean: af.Artifact) -> None:
        clean.add_file(tidy(raw.download() / "data.csv"))

Every call opens one artiflow run with ``orchestrator="prefect"``, the flow name and flow run
id as pipeline and pipeline run, the task name and task run id as step and step run, and the
task run's ``run_count`` as attempt, all read from ``prefect.runtime`` when the task runs.
Outputs are logged only after the function returns; a failed attempt commits nothing.
The specs follow Airflow's ``@task.artifact`` so a step reads the same in both orchestrators.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from prefect import task
from prefect.cache_policies import NO_CACHE

from artiflow import Artifact
from artiflow.orchestration import (
    InputSpec,
    OutputSpec,
    VersionSummary,
    add_source,
    parse_input,
    parse_output,
)

from .blocks import ArtifactRegistry
from .clients import load_source, shared_registry
from .identity import open_prefect_step, prefect_identity, producer
from .mapping import ArtifactTask
from .mirror import mirror_versions, try_report_assets
from .step import build_step, execute_async, execute_sync

if TYPE_CHECKING:
    from prefect import Task

    import artiflow

__all__ = ["artifact_task", "log_artifact", "use_artifact"]

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------------- decorator
@overload
def artifact_task(__fn: F) -> Task[..., Any]: ...


@overload
def artifact_task(
    __fn: None = None,
    *,
    inputs: Mapping[str, InputSpec] | None = None,
    outputs: Mapping[str, OutputSpec] | None = None,
    registry: ArtifactRegistry | str | artiflow.Registry | None = None,
    run_param: str | None = None,
    job_type: str | None = None,
    mirror: bool = True,
    assets: bool = True,
    **task_kwargs: Any,
) -> Callable[[F], Task[..., Any]]: ...


def artifact_task(
    __fn: F | None = None,
    *,
    inputs: Mapping[str, InputSpec] | None = None,
    outputs: Mapping[str, OutputSpec] | None = None,
    registry: ArtifactRegistry | str | artiflow.Registry | None = None,
    run_param: str | None = None,
    job_type: str | None = None,
    mirror: bool = True,
    assets: bool = True,
    **task_kwargs: Any,
) -> Task[..., Any] | Callable[[F], Task[..., Any]]:
    """Make a function a Prefect task that consumes and produces artiflow artifacts.

    Inputs: the parameter receives the used ``Artifact``, or its downloaded directory (a
    ``Path``) with ``download`` or a ``Path`` annotation. In the task's signature every input
    is a keyword-only parameter defaulting to its reference, so a caller may pass another
    reference, or an upstream artifact task's result to pin the exact version it committed.

    Outputs: the parameter receives a fresh ``Artifact`` to fill. A function may instead
    return a path (file, directory or URI) for its single empty output, or ``{output: path}``.
    Outputs are logged after the function returns, and every version of the call commits in
    one transaction before the task returns; if the function raises, or any output is refused
    or fails to upload, nothing is committed and the artiflow run is marked failed (a retry is
    a new run with the next attempt number). The task returns the committed reference
    (``"name:v3"``; a dict by parameter for several outputs; the distributed id for an upsert)
    unless the function returned something else, which is passed through.

    Works on sync and async functions, under the thread-pool and process-pool task runners,
    with ``.submit()`` and ``.map()`` (each mapped run records its position as its map index:
    see :mod:`artiflow.prefect.mapping`). Caching is off by default
    (``cache_policy=NO_CACHE``): a cached run would skip the function and record no lineage.
    The specs are checked when the task is declared: an invalid name, type, alias or
    reference raises ``artiflow.errors.InvalidName`` (or ``InvalidSpec``) here, not after a
    run. The task run's log gets a line per input used, per output (new version or reused),
    or that nothing was committed; a version whose content was already committed is not
    mirrored again (no new Prefect artifact, no materialisation).

    Args:
        inputs: Parameter name to reference (``"raw-data:latest"``), :class:`Input`, or
            ``{"ref": ..., "type": ..., "download": ...}``.
        outputs: Parameter name to type (``"dataset"``), :class:`Output`, or a dict of its
            fields (``{"type": ..., "name": ..., "aliases": [...]}``).
        registry: An ``ArtifactRegistry`` block, the name of a saved one (loaded when the
            task runs), an ``artiflow.Registry`` (thread runners only), or ``None`` for
            artiflow's defaults from the environment.
        run_param: A parameter that receives the artiflow ``Run`` itself, for steps that
            log or use more artifacts than they declare. The run is atomic: what the
            function logs through it is committed with the outputs once the function
            returned, or not at all; read ``artifact.version`` from the task's caller, not
            inside the function (``artifact.wait()`` there raises ``ArtifactStateError``).
        job_type: The artiflow run's job type (``"train"``, ``"eval"``, ...).
        mirror: Mirror each committed version into a Prefect markdown artifact.
        assets: Report committed versions as materialised Prefect assets.
        **task_kwargs: Passed to ``prefect.task`` (``name``, ``retries``, ``tags``, ...).

    Returns:
        A Prefect ``Task``, or a decorator that makes one.

    Example:
        ```python
        @artifact_task(inputs={"raw": "raw-data:latest"}, outputs={"clean": "dataset"})
        def transform(raw, clean):
            clean.add_file(tidy(raw.download() / "data.csv"))
        ```
    """
    in_specs = {param: parse_input(param, spec) for param, spec in (inputs or {}).items()}
    out_specs = {param: parse_output(param, spec) for param, spec in (outputs or {}).items()}
    task_kwargs.setdefault("cache_policy", NO_CACHE)

    def decorate(fn: F) -> Task[..., Any]:
        step = build_step(
            fn,
            in_specs,
            out_specs,
            run_param,
            registry=registry,
            job_type=job_type,
            mirror=mirror,
            assets=assets,
        )
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await execute_async(step, args, kwargs)

            wrapper = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return execute_sync(step, args, kwargs)

            wrapper = sync_wrapper
        marked: Any = wrapper
        marked.__signature__ = step.exposed  # what Prefect binds calls against
        marked.__prefect_task_source__ = fn  # distinct task keys per wrapped function
        return ArtifactTask(fn=marked, **task_kwargs)  # what task(**task_kwargs) builds, + map

    if __fn is not None:
        return decorate(__fn)
    return decorate


# ------------------------------------------------------------------------- explicit tasks
def _as_list(value: str | Path | Iterable[str | Path] | None) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


def _add_path(art: Artifact, source: str | Path) -> None:
    """A local folder keeps its name (``pages/one.md``, as ``LogArtifactOperator(dirs=...)``
    gives it); a local file or a URI goes in as :func:`~artiflow.orchestration.add_source`
    adds it."""
    path = Path(source)
    if "://" not in str(source) and path.is_dir():
        art.add_dir(path, name=path.resolve().name or None)
    else:
        add_source(art, source)


@task(cache_policy=NO_CACHE)
def log_artifact(
    name: str,
    type: str,
    paths: str | Path | Sequence[str | Path] | None = None,
    references: str | Sequence[str] | None = None,
    aliases: Sequence[str] = (),
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
    registry: ArtifactRegistry | str | None = None,
) -> str:
    """Log local files, directories and references as a new artifact version.

    Args:
        name: The artifact name.
        type: The artifact type.
        paths: Local files or directories; a directory is added under its own name
            (``paths=["pages"]`` gives ``pages/one.md``).
        references: URIs to track by reference (``s3://``, ``gs://``, ``https://``, ...).
        aliases: Aliases to set on the version.
        description: The version's description.
        metadata: The version's metadata (JSON-safe).
        registry: An ``ArtifactRegistry`` block, a saved block's name, or ``None`` for
            artiflow's defaults.

    Returns:
        The committed version's reference, ``"name:vN"``.
    """
    target = shared_registry(load_source(registry))
    art = Artifact(name, type, description=description, metadata=metadata)
    art.reference_options = target.reference_options  # read as the registry will read them
    for path in _as_list(paths):
        _add_path(art, path)
    for uri in _as_list(references):
        art.add_reference(str(uri))
    identity = prefect_identity()
    with open_prefect_step(target, identity) as run:
        run.log_artifact(art, aliases=list(aliases) or None)
    (committed,) = run.committed()
    if not committed.reused:  # an existing version is no news: nothing mirrored again
        mirror_versions([VersionSummary.of(committed)], (), producer(identity, run.id))
    return str(committed.qualified_name)


@task(cache_policy=NO_CACHE)
def use_artifact(
    ref: str,
    type: str | None = None,
    root: str | Path | None = None,
    registry: ArtifactRegistry | str | None = None,
) -> Path:
    """Use an artifact version (recorded as this task run's input) and download it.

    Args:
        ref: ``"name"``, ``"name:latest"``, ``"name:v3"`` or ``"name:alias"``.
        type: The expected type; a mismatch raises ``artiflow.errors.TypeMismatch``.
        root: Where to download; defaults to artiflow's cache directory for the version.
        registry: An ``ArtifactRegistry`` block, a saved block's name, or ``None`` for
            artiflow's defaults.

    Returns:
        The directory holding the version's files (verified against their digests).
    """
    with open_prefect_step(shared_registry(load_source(registry)), prefect_identity()) as run:
        used = run.use_artifact(ref, type=type)
        root_path: Path = used.download(root)
    try_report_assets([], [used.qualified_name or used.name])
    return root_path
