"""Committed artiflow versions as Prefect assets: ``artiflow://<name>``, materialised by a task.

Every committed version is reported as a materialised Prefect asset whose key is the core's
:func:`artiflow.naming.artifact_uri` of its name, and whose upstream dependencies are the
consumed artifacts; the materialisation carries the core's
:meth:`~artiflow.orchestration.VersionSummary.asset_metadata`.

Inside a task run the assets go through the task's ``AssetContext``, so Prefect emits
``prefect.asset.materialization.succeeded`` (and ``prefect.asset.referenced`` per input) with
the task's final state. That part of Prefect is undocumented: :func:`report_assets` checks for
the attributes it relies on (:data:`ASSET_CONTEXT_ATTRIBUTES`) and falls back to emitting the
same events itself, which is also what happens outside a task run. On an open-source Prefect
server assets are stored events only; the markdown artifacts are what users see there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from artiflow.naming import URI_SCHEME, artifact_uri
from artiflow.orchestration import VersionSummary

__all__ = [
    "ASSET_CONTEXT_ATTRIBUTES",
    "ASSET_SCHEME",
    "MATERIALIZED_BY",
    "asset_key",
    "report_assets",
]

logger = logging.getLogger(__name__)

ASSET_SCHEME = f"{URI_SCHEME}://"
"""Prefix of the Prefect asset keys of artiflow artifacts."""

MATERIALIZED_BY = "artiflow"
"""The tool named as the materialiser of artiflow assets."""

# The undocumented AssetContext surface report_assets relies on (pinned by a test).
ASSET_CONTEXT_ATTRIBUTES = (
    "task_run_id",
    "downstream_assets",
    "upstream_assets",
    "direct_asset_dependencies",
    "materialized_by",
    "add_asset_metadata",
    "update_tracked_assets",
)


def asset_key(name: str) -> str:
    """Return the Prefect asset key of an artifact name: ``artiflow://<name>``.

    Args:
        name: An artiflow artifact name, or a reference such as ``"cats:v3"`` (the part after
            ``:`` is dropped: an asset is the artifact, its versions are materialisations).

    Returns:
        The asset key (:func:`artiflow.naming.artifact_uri`).

    Raises:
        artiflow.errors.InvalidName: ``name`` is not a valid artifact name (a ``ValueError``).
    """
    return artifact_uri(name)


def _asset(version: VersionSummary) -> Any:
    from prefect.assets import Asset, AssetProperties

    description = version.description or f"artiflow {version.type} artifact {version.name}"
    return Asset(
        key=asset_key(version.name),
        properties=AssetProperties(name=version.name, description=description[:2500]),
    )


def _current_asset_context() -> Any:
    try:
        from prefect.context import AssetContext, TaskRunContext
    except ImportError:  # pragma: no cover - Prefect before assets
        return None
    ctx = AssetContext.get()
    task_ctx = TaskRunContext.get()
    if ctx is None or task_ctx is None or ctx.task_run_id != task_ctx.task_run.id:
        return None
    missing = [a for a in ASSET_CONTEXT_ATTRIBUTES if not hasattr(ctx, a)]
    if missing:
        logger.debug("AssetContext lacks %s; emitting asset events directly", missing)
        return None
    return ctx


def _by_key(assets: Iterable[Any]) -> dict[str, Any]:
    return {asset.key: asset for asset in assets}


def _add_to_context(
    ctx: Any, outputs: Sequence[Any], upstream: set[Any], metadata: dict[str, dict[str, Any]]
) -> None:
    """Add the assets to the task's ``AssetContext``; Prefect emits them when the task ends.

    A task that materialises versions has exactly their inputs upstream (plus any
    ``asset_deps`` the task declares): the assets Prefect inherited from every upstream task
    whose result was passed in (``wait_for`` included) are dropped, and an input is listed
    once however many ``Asset`` objects name it. A task that only consumes adds its inputs
    to what it passes downstream, once per key.
    """
    if not outputs:
        known = _by_key(ctx.upstream_assets) | _by_key(ctx.direct_asset_dependencies)
        ctx.direct_asset_dependencies.update(a for a in upstream if a.key not in known)
    else:
        declared = _by_key(ctx.direct_asset_dependencies)  # the task's own asset_deps
        ctx.upstream_assets.clear()
        ctx.direct_asset_dependencies.clear()
        ctx.direct_asset_dependencies.update({**declared, **_by_key(upstream)}.values())
        ctx.downstream_assets.update(outputs)
        if ctx.materialized_by is None:
            ctx.materialized_by = MATERIALIZED_BY
        for key, payload in metadata.items():
            ctx.add_asset_metadata(key, payload)
    ctx.update_tracked_assets()


def report_assets(
    produced: Sequence[VersionSummary], inputs: Sequence[str] = ()
) -> Literal["context", "events", "none"]:
    """Report committed versions as materialised Prefect assets, inputs as their upstream.

    Inside a task run this adds them to the task's ``AssetContext``: Prefect emits
    ``prefect.asset.materialization.succeeded`` (and ``prefect.asset.referenced`` per input)
    when the task finishes, with its final state, and passes the assets on to downstream tasks
    that take this task's result. A task that only consumes artifacts records them as its asset
    dependencies. Outside a task run the events are emitted at once through
    ``prefect.events.emit_event``.

    Args:
        produced: The committed versions (may be empty).
        inputs: Qualified names (or names) of the consumed versions.

    Returns:
        How they were reported: ``"context"``, ``"events"``, or ``"none"`` (nothing to report,
        or only inputs outside a task run, which Prefect has no event for).
    """
    from prefect.assets import Asset

    outputs = [_asset(v) for v in produced]
    upstream = {Asset(key=asset_key(ref)) for ref in inputs}
    upstream -= {Asset(key=a.key) for a in outputs}
    if not outputs and not upstream:
        return "none"
    metadata = {asset_key(v.name): v.asset_metadata() for v in produced}

    ctx = _current_asset_context()
    if ctx is not None:
        _add_to_context(ctx, outputs, upstream, metadata)
        return "context"
    if not outputs:
        return "none"
    _emit_asset_events(outputs, sorted(upstream, key=lambda a: a.key), metadata)
    return "events"


def _resource(asset: Any) -> dict[str, str]:
    resource = {"prefect.resource.id": asset.key}
    if asset.properties is not None:
        if asset.properties.name:
            resource["prefect.resource.name"] = asset.properties.name
        if asset.properties.description:
            resource["prefect.asset.description"] = asset.properties.description
    return resource


def _emit_asset_events(
    outputs: Sequence[Any], upstream: Sequence[Any], metadata: dict[str, dict[str, Any]]
) -> None:
    from prefect.events import emit_event

    for asset in upstream:
        emit_event(event="prefect.asset.referenced", resource=_resource(asset), related=[])
    related = [{"prefect.resource.id": a.key, "prefect.resource.role": "asset"} for a in upstream]
    related.append(
        {"prefect.resource.id": MATERIALIZED_BY, "prefect.resource.role": "asset-materialized-by"}
    )
    for asset in outputs:
        emit_event(
            event="prefect.asset.materialization.succeeded",
            resource=_resource(asset),
            related=related,
            payload=metadata.get(asset.key),
        )
