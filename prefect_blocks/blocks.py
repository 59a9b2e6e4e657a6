"""The ``ArtifactRegistry`` block: registry settings that build an :class:`artiflow.Registry`.

A saved block holds where blobs and metadata live and how to reach them. It only turns its fields
into :class:`~artiflow.orchestration.RegistrySettings`; opening and sharing the registry those
name is the core's (:func:`artiflow.orchestration.shared_registry`). The block is also a Prefect
:class:`~prefect.filesystems.WritableFileSystem` rooted at ``<store>/prefect-results`` so that
one saved block can serve as a flow's ``result_storage``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from prefect.types import SecretDict
from pydantic import Field, SecretStr

from artiflow import Registry
from artiflow.config import environment
from artiflow.errors import InvalidPath
from artiflow.orchestration import (
    RegistrySettings,
    make_settings,
    shared_registry,
    with_credentials,
)

if TYPE_CHECKING:
    import fsspec

__all__ = ["DOCUMENTATION_URL", "RESULTS_PREFIX", "ArtifactRegistry"]

logger = logging.getLogger(__name__)

DOCUMENTATION_URL = "https://github.com/artiflow/artiflow#prefect"
"""Where the block types link to in the Prefect UI."""

RESULTS_PREFIX = "prefect-results"
"""Folder under the store that holds Prefect results when the block is ``result_storage``."""


class ArtifactRegistry(WritableFileSystem):
    """Connection settings of an artiflow registry: blob store, metadata database, credentials.

    ``registry()`` builds the :class:`artiflow.Registry` these settings describe; the
    ``artifact_task`` decorator and the ``log_artifact``/``use_artifact`` tasks take this block.
    Fields left empty fall back to artiflow's defaults (``$ARTIFLOW_STORE``,
    ``$ARTIFLOW_DATABASE``, then ``$ARTIFLOW_HOME`` with a SQLite database and a local store).
    Secret settings are kept in ``secret_storage_options`` and ``database_password``; Prefect
    encrypts them, never prints them, and artiflow never writes them to a manifest.

    Example:
        Load a saved registry and read an artifact:
        ```python
        from artiflow.prefect import ArtifactRegistry

        artifact_registry_block = ArtifactRegistry.load("BLOCK_NAME")
        registry = artifact_registry_block.registry()
        print(registry.artifact("clean-data:latest").qualified_name)
        ```
    """

    _block_type_name = "Artiflow Registry"
    _block_type_slug = "artiflow-registry"
    _documentation_url = DOCUMENTATION_URL
    _description = (
        "Settings of an artiflow registry (blob store, metadata database, credentials) for "
        "typed, versioned artifacts with automatic lineage."
    )

    store: str | None = Field(
        default=None,
        description=(
            "fsspec URL of the content-addressed blob store, e.g. s3://bucket/artiflow; "
            "empty means $ARTIFLOW_STORE or $ARTIFLOW_HOME/store."
        ),
        examples=["s3://my-bucket/artiflow", "gs://my-bucket/artiflow", "/data/artiflow"],
    )
    database: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL of the metadata database, without its password; empty means "
            "$ARTIFLOW_DATABASE or SQLite under $ARTIFLOW_HOME."
        ),
        examples=["postgresql+psycopg://artiflow@db:5432/artiflow"],
    )
    database_password: SecretStr | None = Field(
        default=None,
        description="Password inserted into the database URL when the registry is built.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Non-secret fsspec options for the store, such as endpoint_url or client_kwargs."
        ),
        examples=[{"client_kwargs": {"endpoint_url": "http://minio:9000"}}],
    )
    secret_storage_options: SecretDict | None = Field(
        default=None,
        description=(
            "Secret fsspec options for the store (keys, tokens); merged over storage_options."
        ),
        examples=[{"key": "AKIA...", "secret": "..."}],
    )

    # ------------------------------------------------------------------------ building clients
    def credential_storage_options(self) -> dict[str, Any]:
        """Return fsspec options derived from nested credentials blocks.

        The base block has none; the prefect-aws and prefect-gcp subclasses override this.

        Returns:
            A dict merged under ``storage_options`` and ``secret_storage_options``.
        """
        return {}

    def resolved_storage_options(self) -> dict[str, Any]:
        """Return every fsspec option for the store, secrets included.

        Credentials-derived options come first, then ``storage_options``, then
        ``secret_storage_options``; a later source wins. Nested dicts are merged one level
        deep so that ``client_kwargs`` from several sources combine.

        Returns:
            A new dict; keep it in memory only.
        """
        merged: dict[str, Any] = {}
        secret = (
            self.secret_storage_options.get_secret_value() if self.secret_storage_options else {}
        )
        for source in (self.credential_storage_options(), self.storage_options, secret):
            for key, value in source.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        return merged

    def resolved_database_url(self) -> str | None:
        """Return the database URL with ``database_password`` inserted, or ``None``.

        A password already in ``database`` is kept (the field is meant to hold the URL without
        one).

        Returns:
            The SQLAlchemy URL as a string (it contains the password: keep it in memory only).
        """
        if self.database is None or self.database_password is None:
            return self.database
        return with_credentials(self.database, password=self.database_password.get_secret_value())

    def registry_settings(self) -> RegistrySettings:
        """Return the settings of the registry this block describes, secrets included.

        Returns:
            :class:`artiflow.orchestration.RegistrySettings`: empty fields are ``None`` (artiflow
            fills them from the environment), the password is in the database URL.
        """
        return make_settings(
            self.store,
            self.resolved_database_url(),
            self.resolved_storage_options(),
            where=f"block {self.get_block_type_slug()!r}",
        )

    def registry(self) -> Registry:
        """Build the :class:`artiflow.Registry` these settings describe.

        Returns:
            A new registry; tasks share one per distinct configuration and process
            (:func:`artiflow.prefect.shared_registry`).
        """
        return Registry(**self.registry_settings())

    def cache_key(self) -> str:
        """Return a digest of the full configuration, secrets included, for in-memory caches.

        The environment variables that fill empty fields (:data:`artiflow.config.ENVIRONMENT`)
        are part of the key, so a block with defaults maps to a new registry when
        ``$ARTIFLOW_HOME`` changes.

        Returns:
            A hex SHA-256 digest (it reveals nothing about the secrets it covers).
        """
        payload = {
            "type": self.get_block_type_slug(),
            "settings": self.model_dump(mode="json", context={"include_secrets": True}),
            "env": environment(),
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    # ------------------------------------------------------------- WritableFileSystem (results)
    def _results_fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        from fsspec.core import url_to_fs

        # the registry resolves empty fields from the environment exactly as artiflow does
        registry = shared_registry(self.registry_settings())
        fs, root = url_to_fs(registry.store_url, **registry.storage_options)
        return fs, posixpath.join(root.rstrip("/"), RESULTS_PREFIX)

    def _result_path(self, root: str, path: str) -> str:
        parts = path.replace("\\", "/").split("/")
        if not path or path.startswith("/") or "://" in path or ".." in parts:
            raise InvalidPath(
                f"result path {path!r} must be relative to the registry's results folder"
            )
        return posixpath.join(root, *[p for p in parts if p not in ("", ".")])

    def _read_bytes(self, path: str) -> bytes:
        fs, root = self._results_fs()
        with fs.open(self._result_path(root, path), "rb") as file:
            data: bytes = file.read()
        return data

    def _write_bytes(self, path: str, content: bytes) -> str:
        fs, root = self._results_fs()
        target = self._result_path(root, path)
        fs.makedirs(posixpath.dirname(target), exist_ok=True)
        with fs.open(target, "wb") as file:
            file.write(content)
        return target

    async def aread_path(self, path: str) -> bytes:
        """Read a Prefect result stored under ``<store>/prefect-results``.

        Args:
            path: The result key, relative to the results folder.

        Returns:
            The stored bytes.
        """
        return await anyio.to_thread.run_sync(self._read_bytes, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]
        """Read a Prefect result stored under ``<store>/prefect-results``.

        Args:
            path: The result key, relative to the results folder.

        Returns:
            The stored bytes.
        """
        return self._read_bytes(path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        """Write a Prefect result under ``<store>/prefect-results``.

        Args:
            path: The result key, relative to the results folder.
            content: The bytes to store.

        Returns:
            The full path written.
        """
        return await anyio.to_thread.run_sync(self._write_bytes, path, content)

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:  # type: ignore[override]
        """Write a Prefect result under ``<store>/prefect-results``.

        Args:
            path: The result key, relative to the results folder.
            content: The bytes to store.

        Returns:
            The full path written.
        """
        return self._write_bytes(path, content)
