"""Airflow 3 provider for artiflow: typed, versioned artifacts with lineage in Airflow DAGs.

Airflow discovers this package through the ``apache_airflow_provider`` entry point, which calls
:func:`get_provider_info`. Importing :mod:`artiflow.airflow` stays cheap: the hook, operators,
sensor, trigger and the ``@task.artifact`` decorator are imported on first attribute access, so
provider discovery never pulls in the registry or Airflow's operator machinery.

Public names::

    from artiflow.airflow import (
        ArtifactHook,            # the connection (conn type "artiflow") and the registry
        ArtifactSensor,          # wait for a new version, or for an alias to move
        ArtifactTrigger,         # the deferrable half of ArtifactSensor
        FinishArtifactOperator,  # commit the parts of a distributed artifact
        LogArtifactOperator,     # log files, directories and references as a new version
        UseArtifactOperator,     # resolve (and download) a version, recording the input edge
        artifact_asset,          # Asset(uri="artiflow://<name>") for schedules and outlets
        artifact_task,           # @task.artifact(inputs=..., outputs=...)
    )
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from artiflow.airflow.assets import artifact_asset
    from artiflow.airflow.decorators import artifact_task
    from artiflow.airflow.hooks import ArtifactHook
    from artiflow.airflow.lineage import TaskRun
    from artiflow.airflow.operators import (
        FinishArtifactOperator,
        LogArtifactOperator,
        UseArtifactOperator,
    )
    from artiflow.airflow.sensors import ArtifactSensor
    from artiflow.airflow.triggers import ArtifactTrigger

__all__ = [
    "ArtifactHook",
    "ArtifactSensor",
    "ArtifactTrigger",
    "FinishArtifactOperator",
    "LogArtifactOperator",
    "TaskRun",
    "UseArtifactOperator",
    "artifact_asset",
    "artifact_task",
    "get_provider_info",
]

_LAZY: dict[str, str] = {
    "ArtifactHook": "artiflow.airflow.hooks",
    "ArtifactSensor": "artiflow.airflow.sensors",
    "ArtifactTrigger": "artiflow.airflow.triggers",
    "FinishArtifactOperator": "artiflow.airflow.operators",
    "LogArtifactOperator": "artiflow.airflow.operators",
    "TaskRun": "artiflow.airflow.lineage",
    "UseArtifactOperator": "artiflow.airflow.operators",
    "artifact_asset": "artiflow.airflow.assets",
    "artifact_task": "artiflow.airflow.decorators",
}

_INTEGRATION = "artiflow"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("artiflow")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow's providers manager.

    The dict follows Airflow's ``provider_info.schema.json``; ``package-name`` must equal the
    distribution name or provider discovery fails for the whole Airflow installation.
    """
    return {
        "package-name": "artiflow",
        "name": "artiflow",
        "description": (
            "Typed, versioned artifacts with automatic lineage: log and use artifact versions "
            "from tasks, emit them as Airflow Assets and OpenLineage datasets."
        ),
        "versions": [_version()],
        "integrations": [{"integration-name": _INTEGRATION, "tags": ["software"]}],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": ["artiflow.airflow.hooks"]}],
        "operators": [
            {"integration-name": _INTEGRATION, "python-modules": ["artiflow.airflow.operators"]}
        ],
        "sensors": [
            {"integration-name": _INTEGRATION, "python-modules": ["artiflow.airflow.sensors"]}
        ],
        "triggers": [
            {"integration-name": _INTEGRATION, "python-modules": ["artiflow.airflow.triggers"]}
        ],
        "connection-types": [
            {
                "connection-type": "artiflow",
                "hook-class-name": "artiflow.airflow.hooks.ArtifactHook",
                "hook-name": "artiflow registry",
                "conn-fields": {
                    "store": {
                        "label": "Store URL",
                        "description": (
                            "fsspec URL of the blob store, e.g. s3://bucket/artiflow; "
                            "empty for $ARTIFLOW_STORE or $ARTIFLOW_HOME/store"
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "database": {
                        "label": "Database URL",
                        "description": (
                            "SQLAlchemy URL of the metadata database, e.g. "
                            "postgresql+psycopg://host/artiflow; Login and Password fill in "
                            "its credentials; empty for the embedded SQLite database"
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "storage_options": {
                        "label": "Storage options",
                        "description": (
                            "JSON object passed to fsspec for the store (endpoint_url, key, "
                            "secret, token, ...)"
                        ),
                        "schema": {"type": ["object", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "port", "schema", "extra"],
                    "relabeling": {"login": "Database user", "password": "Database password"},
                    "placeholders": {
                        "login": "user of the database URL (optional)",
                        "password": "password of the database URL (optional)",
                    },
                },
            }
        ],
        "task-decorators": [
            {"name": "artifact", "class-name": "artiflow.airflow.artifact_task"},
        ],
        "asset-uris": [
            {
                "schemes": ["artiflow"],
                "handler": "artiflow.airflow.assets.sanitize_uri",
                "factory": "artiflow.airflow.assets.create_asset",
                "to_openlineage_converter": "artiflow.airflow.assets.convert_asset_to_openlineage",
            }
        ],
    }
