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
from typing import TYPE_CHECKING, Any, Self

import anyio.to_thread
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from prefect.types import SecretDict
from pydantic import ConfigDict, Field, SecretStr, model_validator

from artiflow import Registry
from artiflow.config import environment
from artiflow.errors import InvalidPath
from artiflow.orchestration import (
    RegistrySettings,
    make_settings,
    shared_registry,
    with_credentials,
)

from .options import merge_options, option_paths, split_secrets

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
    Secret settings are kept in ``secret_storage_options``, ``secret_reference_options`` and
    ``database_password``; Prefect encrypts them, never prints them, and artiflow never writes
    them to a manifest. A credential-like option (``key``, ``secret``, ``token``, ...; see
    :func:`artiflow.prefect.options.is_secret_option`) given in ``storage_options`` or
    ``reference_options`` is moved to the secret field (with a warning), so it is never shown.

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
            "Non-secret fsspec options for the store, such as endpoint_url or client_kwargs; "
            "credential-like keys are moved to secret_storage_options."
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
    reference_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description=(
            "Non-secret fsspec options by protocol for the references artifacts add and "
            "download (the store's protocol defaults to the store's options); "
            "credential-like keys are moved to secret_reference_options."
        ),
        examples=[{"s3": {"client_kwargs": {"region_name": "eu-west-1"}}}],
    )
    secret_reference_options: SecretDict | None = Field(
        default=None,
        description=(
            "Secret fsspec options by protocol for references (keys, tokens); merged over "
            "reference_options."
        ),
        examples=[{"s3": {"key": "AKIA...", "secret": "..."}}],
    )

    # assigning a field later runs the same checks (credentials move to the secret fields)
    model_config = ConfigDict(validate_assignment=True)

    @model_validator(mode="after")
    def _keep_credentials_secret(self) -> Self:
        """Move credential-like options out of the plain option fields (shown by the block's
        repr, its REST document and ``prefect block inspect``) into their secret twins."""
        plain, moved = split_secrets(self.storage_options)
        self._move("storage_options", plain, "secret_storage_options", moved)
        split = {p: split_secrets(o) for p, o in self.reference_options.items()}
        refs = {p: plain for p, (plain, _) in split.items()}
        moved_refs = {p: secret for p, (_, secret) in split.items() if secret}
        self._move("reference_options", refs, "secret_reference_options", moved_refs)
        return self

    def _move(self, field: str, plain: dict[str, Any], to: str, moved: dict[str, Any]) -> None:
        if not moved:
            return
        logger.warning(
            "%s block: moved %s from %s to %s (credentials belong in the secret field)",
            self.get_block_type_slug(),
            ", ".join(option_paths(moved)),
            field,
            to,
        )
        held: SecretDict | None = getattr(self, to)
        secret = merge_options(moved, held.get_secret_value() if held else {})
        # straight into the instance: assigning would run this validator again
        self.__dict__[field] = plain
        self.__dict__[to] = SecretDict(secret)

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
        ``secret_storage_options``; a later source wins. Nested dicts are merged (at any
        depth) so that ``client_kwargs`` from several sources combine.

        Returns:
            A new dict; keep it in memory only.
        """
        secret = (
            self.secret_storage_options.get_secret_value() if self.secret_storage_options else {}
        )
        return merge_options(self.credential_storage_options(), self.storage_options, secret)

    def resolved_reference_options(self) -> dict[str, Any]:
        """Return the fsspec options by protocol for references, secrets included.

        ``secret_reference_options`` is merged over ``reference_options`` (nested dicts
        combine). The store's own protocol needs no entry: the registry reads references there
        with the store's options unless one is given.

        Returns:
            A new dict (``{"s3": {...}, "gs": {...}}``); keep it in memory only.
        """
        held = self.secret_reference_options
        return merge_options(self.reference_options, held.get_secret_value() if held else {})

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
            fills them from the environment), the password is in the database URL, and
            ``reference_options`` is there when the block sets any.
        """
        return make_settings(
            self.store,
            self.resolved_database_url(),
            self.resolved_storage_options(),
            reference_options=self.resolved_reference_options(),
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
