"""Mirror committed artiflow versions into Prefect: UI artifacts and asset events.

Every committed version becomes a Prefect markdown artifact under a key derived from its name
(one key holds the history of a name in the UI's Artifacts page), listing version, digest,
aliases, size, inputs and the producing run. Every version is also reported as a materialised
Prefect asset ``artiflow://<name>`` whose upstream dependencies are the consumed artifacts.

Inside a task run the assets go through the task's ``AssetContext``, so Prefect emits
``prefect.asset.materialization.succeeded`` (and ``prefect.asset.referenced`` per input) with
the task's final state. That part of Prefect is undocumented: :func:`report_assets` checks for
the attributes it relies on and falls back to emitting the same events itself, which is also
what happens outside a task run. On an open-source Prefect server assets are stored events
only; the markdown artifacts are what users see there.

Mirroring is best effort: the registry is the record, so a Prefect API failure here is logged
and does not fail the step whose versions are already committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from artiflow.formatting import format_size

if TYPE_CHECKING:
    import artiflow

__all__ = [
    "ASSET_CONTEXT_ATTRIBUTES",
    "ASSET_SCHEME",
    "MATERIALIZED_BY",
    "Producer",
    "VersionSummary",
    "amirror_versions",
    "artifact_key",
    "asset_key",
    "mirror_versions",
    "render_markdown",
    "report_assets",
    "try_report_assets",
]

logger = logging.getLogger(__name__)

ASSET_SCHEME = "artiflow://"
"""Prefix of the Prefect asset keys of artiflow artifacts."""

MATERIALIZED_BY = "artiflow"
"""The tool named as the materialiser of artiflow assets."""

_KEY_INVALID = re.compile(r"[^a-z0-9-]+")


def artifact_key(name: str) -> str:
    """Return the Prefect artifact key for an artifact name (``^[a-z0-9-]*$``).

    Args:
        name: An artiflow artifact name (letters, digits, ``.``, ``_``, ``-``).

    Returns:
        The name lower-cased with every other character run replaced by ``-``; for example
        ``"Clean_Data.v2"`` becomes ``"clean-data-v2"``.
    """
    key = _KEY_INVALID.sub("-", name.lower()).strip("-")
    return key or "artifact"


def asset_key(name: str) -> str:
    """Return the Prefect asset key of an artifact name: ``artiflow://<name>``.

    Args:
        name: An artiflow artifact name, or a reference such as ``"cats:v3"`` (the part after
            ``:`` is dropped: an asset is the artifact, its versions are materialisations).

    Returns:
        The asset key.
    """
    return ASSET_SCHEME + name.partition(":")[0]


@dataclass(frozen=True)
class VersionSummary:
    """What the mirror shows of one committed version (plain data, picklable)."""

    name: str
    type: str
    version: str
    digest: str
    aliases: tuple[str, ...] = ()
    size: int = 0
    files: int = 0
    description: str | None = None

    @property
    def qualified_name(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @classmethod
    def of(cls, artifact: artiflow.Artifact) -> VersionSummary:
        """Summarise a committed artifact.

        Args:
            artifact: An artifact with a version (logged and waited for, or fetched).

        Returns:
            The summary.
        """
        if artifact.version is None:
            raise ValueError(f"artifact {artifact.name!r} has no version yet: wait() for it")
        return cls(
            name=artifact.name,
            type=artifact.type,
            version=artifact.version,
            digest=artifact.digest,
            aliases=tuple(artifact.aliases),
            size=artifact.size,
            files=len(artifact.manifest),
            description=artifact.description,
        )

    def asset_metadata(self) -> dict[str, Any]:
        """Return the payload attached to the asset's materialisation event."""
        return {
            "artiflow": {
                "qualified_name": self.qualified_name,
                "version": self.version,
                "digest": self.digest,
                "type": self.type,
                "aliases": list(self.aliases),
                "size": self.size,
                "files": self.files,
            }
        }


@dataclass(frozen=True)
class Producer:
    """The step run that produced the versions being mirrored."""

    run_id: str | None = None
    flow_name: str | None = None
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    task_name: str | None = None
    task_run_id: str | None = None
    attempt: int | None = None
    ui_url: str | None = None

    def describe(self) -> str:
        """Return a one-line markdown description of the run."""
        parts = []
        if self.flow_name:
            flow = f"flow `{self.flow_name}`"
            if self.flow_run_name:
                flow += f" run `{self.flow_run_name}`"
            parts.append(flow)
        if self.task_name:
            task = f"task `{self.task_name}`"
            if self.attempt and self.attempt > 1:
                task += f" (attempt {self.attempt})"
            parts.append(task)
        text = ", ".join(parts) or "a step outside Prefect"
        if self.ui_url:
            text = f"[{text}]({self.ui_url})"
        if self.run_id:
            text += f"; artiflow run `{self.run_id}`"
        return text


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(
    version: VersionSummary, producer: Producer | None, inputs: Sequence[str] = ()
) -> str:
    """Render the markdown body of a version's Prefect artifact.

    Args:
        version: The committed version.
        producer: The run that produced it, if known.
        inputs: Qualified names of the versions the run consumed.

    Returns:
        Markdown: a heading and a two-column table.
    """
    aliases = ", ".join(f"`{a}`" for a in version.aliases) or "none"
    rows = [
        ("type", f"`{version.type}`"),
        ("version", f"`{version.version}`"),
        ("digest", f"`{version.digest}`"),
        ("aliases", aliases),
        ("size", f"{format_size(version.size)} in {version.files} file{_plural(version.files)}"),
        ("inputs", ", ".join(f"`{i}`" for i in inputs) or "none"),
        ("produced by", producer.describe() if producer else "unknown"),
    ]
    if version.description:
        rows.insert(1, ("description", version.description))
    lines = [f"### artiflow `{version.qualified_name}`", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {_cell(value)} |" for key, value in rows]
    lines += ["", f"Lineage: `artiflow lineage {version.qualified_name}`"]
    return "\n".join(lines) + "\n"


def _artifact_requests(
    produced: Sequence[VersionSummary], producer: Producer | None, inputs: Sequence[str]
) -> list[dict[str, str]]:
    return [
        {
            "key": artifact_key(v.name),
            "markdown": render_markdown(v, producer, inputs),
            "description": f"artiflow {v.qualified_name} ({v.type})",
        }
        for v in produced
    ]


def _in_run_context() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def mirror_versions(
    produced: Sequence[VersionSummary],
    inputs: Sequence[str] = (),
    producer: Producer | None = None,
    *,
    artifacts: bool = True,
    assets: bool = True,
) -> None:
    """Mirror committed versions into Prefect: markdown artifacts and asset materialisations.

    Safe to call from synchronous code that runs inside an event loop (it passes
    ``_sync=True``); async code should await :func:`amirror_versions` instead. Prefect
    artifacts are only created inside a flow or task run.

    Args:
        produced: The committed versions.
        inputs: Qualified names of the versions consumed by the producing run.
        producer: The producing run, shown in the artifact.
        artifacts: Create the Prefect markdown artifacts.
        assets: Report the versions as materialised assets.
    """
    from prefect.artifacts import create_markdown_artifact

    if artifacts and _in_run_context():
        for request in _artifact_requests(produced, producer, inputs):
            try:
                create_markdown_artifact(**request, _sync=True)  # type: ignore[call-arg]
            except Exception:
                logger.warning("could not mirror %s into Prefect", request["key"], exc_info=True)
    if assets:
        try_report_assets(produced, inputs)


async def amirror_versions(
    produced: Sequence[VersionSummary],
    inputs: Sequence[str] = (),
    producer: Producer | None = None,
    *,
    artifacts: bool = True,
    assets: bool = True,
) -> None:
    """Async twin of :func:`mirror_versions` (uses ``acreate_markdown_artifact``).

    Args:
        produced: The committed versions.
        inputs: Qualified names of the versions consumed by the producing run.
        producer: The producing run, shown in the artifact.
        artifacts: Create the Prefect markdown artifacts.
        assets: Report the versions as materialised assets.
    """
    from prefect.artifacts import acreate_markdown_artifact

    if artifacts and _in_run_context():
        for request in _artifact_requests(produced, producer, inputs):
            try:
                await acreate_markdown_artifact(**request)
            except Exception:
                logger.warning("could not mirror %s into Prefect", request["key"], exc_info=True)
    if assets:
        try_report_assets(produced, inputs)


def try_report_assets(
    produced: Sequence[VersionSummary], inputs: Sequence[str] = ()
) -> Literal["context", "events", "none", "failed"]:
    """:func:`report_assets`, best effort: a failure is logged, not raised.

    The versions are committed by then; like the markdown mirror, reporting them to Prefect
    must not fail the task (a retry would run the function again for nothing).

    Args:
        produced: The committed versions (may be empty).
        inputs: Qualified names (or names) of the consumed versions.

    Returns:
        What :func:`report_assets` returned, or ``"failed"``.
    """
    try:
        return report_assets(produced, inputs)
    except Exception:
        names = ", ".join(v.qualified_name for v in produced) or ", ".join(inputs)
        logger.warning("could not report %s as Prefect assets", names, exc_info=True)
        return "failed"


# The undocumented AssetContext surface report_assets relies on (pinned by a test).
ASSET_CONTEXT_ATTRIBUTES = (
    "task_run_id",
    "downstream_assets",
    "direct_asset_dependencies",
    "materialized_by",
    "add_asset_metadata",
    "update_tracked_assets",
)


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
        ctx.direct_asset_dependencies.update(upstream)
        if outputs:
            ctx.downstream_assets.update(outputs)
            if ctx.materialized_by is None:
                ctx.materialized_by = MATERIALIZED_BY
            for key, payload in metadata.items():
                ctx.add_asset_metadata(key, payload)
        ctx.update_tracked_assets()
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
