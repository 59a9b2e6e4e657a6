"""Mirror committed artiflow versions into Prefect: UI artifacts, and asset events.

Every committed version becomes a Prefect markdown artifact under a key derived from its name
(one key holds the history of a name in the UI's Artifacts page), listing version, digest,
aliases, size, inputs and the producing run. Every version is also reported as a materialised
Prefect asset ``artiflow://<name>`` whose upstream dependencies are the consumed artifacts
(:mod:`artiflow.prefect.asset_events`). What is shown of a version is the core's
:class:`~artiflow.orchestration.VersionSummary`, re-exported here.

Mirroring is best effort: the registry is the record, so a Prefect API failure here is logged
and does not fail the step whose versions are already committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from artiflow.formatting import format_size
from artiflow.orchestration import VersionSummary

from .asset_events import (
    ASSET_CONTEXT_ATTRIBUTES,
    ASSET_SCHEME,
    MATERIALIZED_BY,
    asset_key,
    report_assets,
)

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
    produced: Sequence[VersionSummary],
    producer: Producer | None,
    inputs: Sequence[str],
    wanted: bool,
) -> list[dict[str, str]]:
    """The markdown artifacts to create: none unless ``wanted`` and inside a flow or task run
    (Prefect creates artifacts only there)."""
    if not wanted or not _in_run_context():
        return []
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

    for request in _artifact_requests(produced, producer, inputs, artifacts):
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
    """:func:`mirror_versions` for async code (same arguments): it awaits
    ``acreate_markdown_artifact``, which inside an event loop is the one that runs."""
    from prefect.artifacts import acreate_markdown_artifact

    for request in _artifact_requests(produced, producer, inputs, artifacts):
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
