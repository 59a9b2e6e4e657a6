"""Prefect 3 integration for artiflow: registry blocks, artifact tasks, UI and asset mirroring.

Registered as a Prefect collection (entry point ``prefect.collections``), so
``prefect block register -m artiflow.prefect`` registers every block type whose dependencies
are installed: ``ArtifactRegistry`` always, ``S3ArtifactRegistry`` with ``prefect-aws`` and
``GcsArtifactRegistry`` with ``prefect-gcp`` (those two load lazily, on first access).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

# One distribution: the collection's version is artiflow's (Prefect also takes the block schema
# version from the top-level package, ``artiflow.__version__``).
from artiflow import __version__
from artiflow.orchestration import Input, Output

from .blocks import ArtifactRegistry
from .clients import close_shared_registries, shared_registry
from .identity import distributed_id_for, prefect_identity
from .mirror import amirror_versions, artifact_key, asset_key, mirror_versions, report_assets
from .tasks import artifact_task, log_artifact, use_artifact

__all__ = [
    "ArtifactRegistry",
    "GcsArtifactRegistry",
    "Input",
    "Output",
    "S3ArtifactRegistry",
    "__version__",
    "amirror_versions",
    "artifact_key",
    "artifact_task",
    "asset_key",
    "close_shared_registries",
    "distributed_id_for",
    "log_artifact",
    "mirror_versions",
    "prefect_identity",
    "report_assets",
    "shared_registry",
    "use_artifact",
]

# name -> (module, the distribution it needs)
_OPTIONAL_BLOCKS = {
    "S3ArtifactRegistry": ("artiflow.prefect.aws", "prefect_aws"),
    "GcsArtifactRegistry": ("artiflow.prefect.gcp", "prefect_gcp"),
}


def _available(name: str) -> bool:
    return importlib.util.find_spec(_OPTIONAL_BLOCKS[name][1]) is not None


def __getattr__(name: str) -> Any:
    if name not in _OPTIONAL_BLOCKS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _available(name):
        # AttributeError (not ImportError) keeps `prefect block register -m` and dir() walks
        # working when the extra is absent.
        raise AttributeError(
            f"{name} needs {_OPTIONAL_BLOCKS[name][1].replace('_', '-')}: "
            f"pip install 'artiflow[{_OPTIONAL_BLOCKS[name][1].replace('_', '-')}]'"
        )
    value = getattr(importlib.import_module(_OPTIONAL_BLOCKS[name][0]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    names = set(globals()) | {n for n in _OPTIONAL_BLOCKS if _available(n)}
    return sorted(names)
