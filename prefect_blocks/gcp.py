"""``GcsArtifactRegistry``: an artiflow registry on Google Cloud Storage with nested credentials.

Needs the ``prefect-gcp`` extra (``pip install 'artiflow[prefect-gcp,gcs]'``). The nested
``GcpCredentials`` block becomes gcsfs options when the registry is built.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from artiflow.errors import MissingDependency

try:
    from prefect_gcp import GcpCredentials
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise MissingDependency(
        "artiflow.prefect.gcp needs prefect-gcp: pip install 'artiflow[prefect-gcp]'"
    ) from err

from .blocks import DOCUMENTATION_URL, ArtifactRegistry

__all__ = ["GcsArtifactRegistry", "gcs_storage_options"]


class GcsArtifactRegistry(ArtifactRegistry):
    """An artiflow registry whose store is on Google Cloud Storage, with nested GCP credentials.

    The nested ``GcpCredentials`` block (a service account file or its JSON contents, and a
    project) becomes the gcsfs options of the store; without it gcsfs uses Google's application
    default credentials. ``storage_options`` and ``secret_storage_options`` still apply on top.

    Example:
        Load a saved GCS registry:
        ```python
        from artiflow.prefect.gcp import GcsArtifactRegistry

        gcs_artifact_registry_block = GcsArtifactRegistry.load("BLOCK_NAME")
        registry = gcs_artifact_registry_block.registry()
        ```
    """

    _block_type_name = "Artiflow GCS Registry"
    _block_type_slug = "artiflow-gcs-registry"
    _documentation_url = DOCUMENTATION_URL
    _description = (
        "An artiflow registry on Google Cloud Storage, authenticated by a nested prefect-gcp "
        "GcpCredentials block."
    )

    credentials: GcpCredentials | None = Field(
        default=None,
        description="GCP credentials used to reach the GCS store; empty uses the defaults.",
    )

    def credential_storage_options(self) -> dict[str, Any]:
        """Return the gcsfs options of the nested credentials block.

        Returns:
            gcsfs keyword arguments (``token``, ``project``).
        """
        return gcs_storage_options(self.credentials) if self.credentials else {}


def gcs_storage_options(credentials: GcpCredentials) -> dict[str, Any]:
    """Translate a prefect-gcp ``GcpCredentials`` block into gcsfs options.

    Args:
        credentials: The credentials block.

    Returns:
        A JSON-safe dict (``token`` is the service-account file path or its JSON contents,
        ``project`` the project); secrets included: keep it in memory only.
    """
    options: dict[str, Any] = {}
    if credentials.service_account_info is not None:
        options["token"] = dict(credentials.service_account_info.get_secret_value())
    elif credentials.service_account_file is not None:
        options["token"] = str(credentials.service_account_file)
    if credentials.project:
        options["project"] = credentials.project
    return options
