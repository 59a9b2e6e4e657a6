"""What orchestrators report of a committed version: the payloads of asset events.

Airflow asset events carry :func:`event_extra` (``{"version", "digest", "type"}``); Prefect's
UI artifacts and asset materialisations show a :class:`VersionSummary`. Both are built here from
the committed :class:`~artiflow.Artifact`, so the two orchestrators describe a version alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..artifact import Artifact
from ..errors import ArtifactStateError
from ..formatting import format_size

__all__ = ["VersionSummary", "event_extra", "input_line", "nothing_committed_line", "output_line"]


def _committed(artifact: Artifact) -> str:
    if artifact.version is None:
        raise ArtifactStateError(f"artifact {artifact.name!r} has no version yet: wait() for it")
    return artifact.version


def event_extra(artifact: Artifact) -> dict[str, Any]:
    """The extra of an asset event for a committed version: version, digest and type."""
    return {"version": _committed(artifact), "digest": artifact.digest, "type": artifact.type}


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def output_line(artifact: Artifact) -> str:
    """The task-log line for one committed output:
    ``Logged model:v3 (12 files, 48.0 MiB, new version)`` or ``... reused v2)``."""
    version = _committed(artifact)
    what = f"reused {version}" if artifact.reused else "new version"
    size = format_size(artifact.size)
    return f"Logged {artifact.name}:{version} ({_files(artifact.file_count)}, {size}, {what})"


def input_line(artifact: Artifact) -> str:
    """The task-log line for one input: ``Used features:v2 (3 files, 1.2 KiB, digest ab12cd34)``."""
    size = format_size(artifact.size)
    return (
        f"Used {artifact.qualified_name} ({_files(artifact.file_count)}, {size}, "
        f"digest {artifact.digest[:12]})"
    )


def nothing_committed_line(error: BaseException) -> str:
    """The task-log line of a failed try: what failed, and that no version was committed."""
    return f"Nothing committed: the step failed ({type(error).__name__}: {error})"


@dataclass(frozen=True)
class VersionSummary:
    """A committed version as an orchestrator's UI shows it (plain data, picklable)."""

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
    def of(cls, artifact: Artifact) -> VersionSummary:
        """Summarise a committed artifact (logged and waited for, or fetched)."""
        return cls(
            name=artifact.name,
            type=artifact.type,
            version=_committed(artifact),
            digest=artifact.digest,
            aliases=tuple(artifact.aliases),
            size=artifact.size,
            files=artifact.file_count,
            description=artifact.description,
        )

    def asset_metadata(self) -> dict[str, Any]:
        """The payload of the version's asset materialisation: ``{"artiflow": {...}}``."""
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
