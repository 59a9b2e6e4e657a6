"""What ``artiflow ls`` and ``artiflow show`` print: rich tables for people (``--format
table``), JSON for programs (``--format json``). Both show every run's status, so a failed try
or a run whose process died (``lost``) never reads as a good run.

The JSON of a run is :func:`run_dict`; timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import RenderableType
from rich.table import Table as RichTable
from rich.text import Text

from .artifact import Artifact
from .formatting import SHORT_UNITS, format_size
from .manifest import ManifestEntry
from .records import RunInfo, VersionRecord

__all__ = [
    "FORMATS",
    "dumps",
    "ls_json",
    "ls_table",
    "run_dict",
    "run_text",
    "show_json",
    "show_tables",
    "size",
    "when",
]

FORMATS = ("table", "json")
"""The ``--format`` choices of ``ls`` and ``show``."""


def size(n: int | None) -> str:
    return format_size(n, SHORT_UNITS)


def when(value: datetime | None) -> str:
    """A local time to the minute, for people."""
    return "-" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def dumps(data: Any) -> str:
    """JSON as the CLI prints it (two-space indent, a final newline)."""
    return json.dumps(data, indent=2) + "\n"


# ---------------------------------------------------------------------------------- runs
def run_dict(run: RunInfo) -> dict[str, Any]:
    """A run as JSON: identity, ``status`` (``running``, ``finished``, ``failed``, ``lost``),
    where it ran and when."""
    return {
        "id": run.id,
        "label": run.label,
        "status": run.status,
        "orchestrator": run.orchestrator,
        "pipeline": run.pipeline,
        "pipeline_run": run.pipeline_run,
        "step": run.step,
        "step_run": run.step_run,
        "map_index": run.map_index,
        "attempt": run.attempt,
        "host": run.host,
        "pid": run.pid,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "heartbeat_at": _iso(run.heartbeat_at),
    }


def run_text(run: RunInfo, id_length: int = 8) -> str:
    """``pipeline/step#2 manual__1 (failed, run 1a2b3c4d)``: label, pipeline run, status."""
    where = f" {run.pipeline_run}" if run.pipeline_run else ""
    return f"{run.label}{where} ({run.status}, run {run.id[:id_length]})"


def _producers(runs: Sequence[RunInfo]) -> str:
    """The producing runs' labels, each marked with its status unless it finished."""
    shown = {r.label if r.status == "finished" else f"{r.label} ({r.status})" for r in runs}
    return ", ".join(sorted(shown)) or "-"


# ---------------------------------------------------------------------------------- ls
def ls_json(
    records: Sequence[VersionRecord],
    counts: Mapping[str, int] | None,
    made_by: Mapping[int, Sequence[RunInfo]],
    aliases: Mapping[int, Sequence[str]],
) -> list[dict[str, Any]]:
    """One object per artifact (its latest version; ``counts`` given) or per version of one
    artifact (``counts`` None)."""
    out = []
    for r in records:
        item: dict[str, Any] = {"name": r.name, "type": r.type}
        if counts is not None:
            item["versions"] = counts[r.name]
            item["latest"] = r.version
        else:
            item["version"] = r.version
            item["aliases"] = list(aliases[r.id])
        item.update(
            qualified_name=r.qualified_name,
            digest=r.digest,
            size=r.size,
            file_count=r.file_count,
            created_at=_iso(r.created_at),
            producers=[run_dict(run) for run in made_by[r.id]],
        )
        out.append(item)
    return out


def ls_table(
    records: Sequence[VersionRecord],
    counts: Mapping[str, int] | None,
    made_by: Mapping[int, Sequence[RunInfo]],
    aliases: Mapping[int, Sequence[str]],
) -> RichTable:
    """The table ``ls`` prints: artifacts (``counts`` given), or one artifact's versions."""
    versions = counts is None
    head = (
        ["version", "aliases", "size", "files", "created", "producer", "digest"]
        if versions
        else ["artifact", "type", "versions", "latest", "size", "files", "created", "producer"]
    )
    table = RichTable()
    for i, column in enumerate(head):
        table.add_column(column, no_wrap=i == 0)
    for r in records:
        first = (
            [r.version, ", ".join(aliases[r.id])]
            if counts is None
            else [r.name, r.type, str(counts[r.name]), r.version]
        )
        rest = [size(r.size), str(r.file_count), when(r.created_at), _producers(made_by[r.id])]
        table.add_row(*first, *rest, *([r.digest[:12]] if versions else []))
    return table


# ---------------------------------------------------------------------------------- show
def _entry_dict(entry: ManifestEntry) -> dict[str, Any]:
    return {"path": entry.path, "size": entry.size, "digest": entry.digest, "ref": entry.ref}


def show_json(
    art: Artifact,
    producer: RunInfo | None,
    consumers: Sequence[RunInfo],
    entries: Sequence[ManifestEntry],
    limit: int,
) -> dict[str, Any]:
    """A version as JSON: what ``show`` prints, with the first ``limit`` entries (0: all)."""
    shown = entries if limit <= 0 else entries[:limit]
    return {
        "qualified_name": art.qualified_name,
        "name": art.name,
        "version": art.version,
        "type": art.type,
        "aliases": list(art.aliases),
        "digest": art.digest,
        "size": art.size,
        "file_count": art.file_count,
        "references": sum(1 for e in entries if e.ref is not None),
        "created_at": _iso(art.created_at),
        "description": art.description,
        "metadata": art.metadata,
        "producer": None if producer is None else run_dict(producer),
        "used_by": [run_dict(r) for r in consumers],
        "entries_total": len(entries),
        "entries": [_entry_dict(e) for e in shown],
    }


def show_tables(
    art: Artifact,
    producer: RunInfo | None,
    consumers: Sequence[RunInfo],
    entries: Sequence[ManifestEntry],
    limit: int,
) -> list[RenderableType]:
    """What ``show`` prints: the version, its runs (one consumer a line, each with its
    status), the first ``limit`` manifest entries (0: all) and how many more there are."""
    refs = sum(1 for e in entries if e.ref is not None)
    info = RichTable.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    info.add_row("artifact", f"{art.qualified_name} ({art.type})")
    info.add_row("aliases", ", ".join(art.aliases) or "-")
    info.add_row("digest", art.digest)
    info.add_row("size", f"{size(art.size)} in {art.file_count} files ({refs} references)")
    info.add_row("created", when(art.created_at))
    info.add_row("producer", Text(run_text(producer, 32)) if producer else "-")
    info.add_row("used by", Text("\n".join(run_text(r) for r in consumers) or "-"))
    if art.description:
        info.add_row("description", Text(art.description))
    if art.metadata:
        info.add_row("metadata", Text(json.dumps(art.metadata, sort_keys=True)))
    shown = entries if limit <= 0 else entries[:limit]
    table = RichTable(
        "entry", "size", "digest", "reference", title=f"manifest: {len(entries)} entries"
    )
    for entry in shown:
        table.add_row(Text(entry.path), size(entry.size), entry.digest, Text(entry.ref or ""))
    out: list[RenderableType] = [info, table]
    if len(shown) < len(entries):
        out.append(f"... and {len(entries) - len(shown)} more (--entries 0 lists all)")
    return out
