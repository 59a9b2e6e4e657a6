"""The registry: a metadata store plus a content-addressed blob store, and the commit protocol.

``Registry()`` is the embedded default: ``$ARTIFLOW_HOME`` (``~/.artiflow``) holding
``registry.db`` (SQLite) and ``store/``. A team points ``store`` at S3/GCS and ``database`` at
PostgreSQL, in code or through ``ARTIFLOW_STORE`` / ``ARTIFLOW_DATABASE`` /
``ARTIFLOW_STORAGE_OPTIONS`` (JSON), so workers on many machines share one registry.

Commit protocol (``log_artifact``, :mod:`artiflow.committer`): check the name's type → upload
the missing blobs (in parallel, each re-hashed while streamed) → upload the manifest → one
transaction that dedupes or assigns the next version number, moves the aliases and records the
run's output usage. Nothing is visible before that transaction commits.

The registry is the front door: it opens runs, finds versions, draws lineage, and it is the
:class:`~artiflow.backend.ArtifactBackend` its artifacts read through.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from . import checkout, config, pull
from .artifact import Artifact
from .backend import Progress
from .committer import Committer
from .db import MetaStore
from .lineage import LineageGraph, lineage
from .manifest import Manifest, ManifestEntry
from .naming import check_run_identity, check_text
from .openlineage import OpenLineageEmitter, dataset_namespace, resolve_emitter
from .records import RunInfo, VersionRecord
from .run import Run
from .storage import BlobCache, BlobStore, open_store

__all__ = ["Registry"]

log = logging.getLogger(__name__)


class Registry:
    """Where artifact versions live. Thread-safe; share one per process.

    :param store: fsspec URL of the blob store (local path, ``s3://bucket/prefix``, ``gs://...``).
    :param database: SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``).
    :param storage_options: JSON-safe fsspec options for the store (endpoint, credentials).
    :param reference_options: fsspec options by protocol (``{"s3": {...}, "gs": {...}}``) for
        the references its artifacts add and download (default ``$ARTIFLOW_REFERENCE_OPTIONS``);
        the store's own options serve its protocol unless given here. Adding a reference and
        reading it back use the same ones (:attr:`reference_options`).
    :param cache_dir: the local download cache (default ``$ARTIFLOW_CACHE_DIR`` or the user
        cache directory).
    :param upload_workers: parallel blob uploads.
    :param openlineage: OpenLineage run events: None follows the environment (see
        :mod:`artiflow.openlineage`), False is off, True is on, or an ``OpenLineageClient``.
    """

    _shared: ClassVar[dict[str, Registry]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        database: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        *,
        reference_options: Mapping[str, Mapping[str, Any]] | None = None,
        cache_dir: str | None = None,
        upload_workers: int = 8,
        openlineage: Any = None,
    ) -> None:
        self.store_url = os.fspath(store) if store else config.store_url()
        self.database_url = database or config.database_url()
        options = dict(storage_options) if storage_options is not None else None
        self.storage_options = options if options is not None else config.storage_options()
        #: fsspec options by protocol for references: what drafts it hands out add them with
        self.reference_options = config.options_by_protocol(
            self.store_url, self.storage_options, reference_options
        )
        self.store: BlobStore = open_store(
            self.store_url, self.storage_options, self.reference_options
        )
        self.meta = MetaStore(self.database_url)
        self.cache = BlobCache(cache_dir)
        self.committer = Committer(self.store, self.meta, self, upload_workers=upload_workers)
        self.openlineage: OpenLineageEmitter | None = resolve_emitter(openlineage)

    @classmethod
    def shared(
        cls,
        store: str | os.PathLike[str] | None = None,
        database: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Registry:
        """The process-wide registry for these settings, built on first use.

        A registry owns a database engine and upload pools and is thread-safe, so every task
        of a worker process shares one per distinct configuration: the arguments (secrets
        included, hashed) plus every variable in :data:`artiflow.config.ENVIRONMENT` that
        fills the ones left out. :meth:`close_shared` forgets them all.
        """
        settings = [os.fspath(store) if store else None, database, storage_options, options]
        text = json.dumps([settings, config.environment()], sort_keys=True, default=str)
        key = hashlib.sha256(text.encode()).hexdigest()
        with cls._shared_lock:
            registry = cls._shared.get(key)
            if registry is None:
                registry = cls(store, database, storage_options, **options)
                cls._shared[key] = registry
                log.debug("shared %r", registry)
            return registry

    @classmethod
    def close_shared(cls) -> None:
        """Close and forget every shared registry of this process (for long-lived processes
        that rotate credentials, and for tests that point ``$ARTIFLOW_HOME`` elsewhere). Call it
        only when no task is using them."""
        with cls._shared_lock:
            registries = list(cls._shared.values())
            cls._shared.clear()
        for registry in registries:
            registry.close()

    def __repr__(self) -> str:
        return (
            f"Registry(store={config.redact_url(self.store_url)!r}, "
            f"database={self.meta.safe_url!r})"
        )

    def check(self) -> None:
        """Raise :class:`DatabaseError` or :class:`StoreError` unless both stores answer."""
        self.meta.artifact_names()
        self.store.check_reachable()

    def close(self) -> None:
        self.committer.close()
        if self.openlineage is not None:
            self.openlineage.close()
        self.meta.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def uploaded_bytes(self) -> int:
        """Bytes uploaded to the store by this registry (blobs already held count nothing)."""
        return self.committer.uploaded_bytes

    @property
    def uploaded_blobs(self) -> int:
        return self.committer.uploaded_blobs

    @property
    def lineage_namespace(self) -> str:
        """The OpenLineage namespace of this registry's artifacts (from its store URL)."""
        return dataset_namespace(self.store_url)

    # ------------------------------------------------------------------ runs
    def run(self, *, atomic: bool = False, **identity: Any) -> Run:
        """A step run (a context manager). Identity keys: ``orchestrator``, ``pipeline``,
        ``pipeline_run``, ``step``, ``step_run``, ``map_index``, ``attempt``, ``job_type``,
        ``group``; anything else is kept as extra. They are checked here, alike for every
        database (:class:`~artiflow.errors.InvalidArgument`): text that fits its column, without
        NUL; ``map_index`` and ``attempt`` integers; extra values JSON-safe.

        ``atomic=True``: uploads still start at ``log_artifact``, but the versions logged in
        the run are committed together, in one transaction, when its block exits cleanly; a
        block that raises (or a failed upload) commits none of them. Orchestrator steps use it
        so that a failed try commits nothing.
        """
        return Run(self, identity, atomic=atomic)

    def get_run(self, run_id: str) -> RunInfo:
        return self.meta.get_run(run_id)

    def runs(self, **filters: Any) -> list[RunInfo]:
        """Recorded runs matching column filters, e.g. ``runs(pipeline_run="manual__1")``.

        Only runs that used or logged something are recorded (a run's row is written lazily).
        Values every database would not compare alike (NUL, an integer past its column) raise
        :class:`~artiflow.errors.InvalidArgument`.
        """
        numbers = {k: v for k, v in filters.items() if k in ("map_index", "attempt")}
        filters = {**filters, **check_run_identity(numbers, {}, numbers)}
        for key, value in filters.items():
            if isinstance(value, str):
                check_text(value, f"runs() filter {key!r}")
        return self.meta.runs(**filters)

    # ------------------------------------------------------------------ reading
    def artifact(self, ref: str) -> Artifact:
        """``"name"`` (latest), ``"name:alias"`` or ``"name:v3"``; :class:`ArtifactNotFound`
        (a ``KeyError``) when there is no such version."""
        return Artifact.from_record(self, self.meta.find(ref))

    def versions(self, name: str) -> list[Artifact]:
        """Every committed version of ``name``, ascending."""
        return [Artifact.from_record(self, r) for r in self.meta.versions(name)]

    def names(self) -> list[tuple[str, str, int]]:
        """``(name, type, number of versions)`` for every artifact."""
        return self.meta.artifact_names()

    def set_alias(self, ref: str, alias: str) -> Artifact:
        """Move a custom alias to the version ``ref`` names, atomically."""
        return Artifact.from_record(self, self.meta.set_alias(ref, alias))

    def lineage(
        self, ref: str, direction: str = "upstream", depth: int | None = None
    ) -> LineageGraph:
        """The graph of runs and versions upstream/downstream of ``ref`` (recursive SQL)."""
        return lineage(self.meta, ref, direction=direction, depth=depth)

    # ------------------------------------------------------------------ ArtifactBackend
    def manifest_of(self, record: VersionRecord) -> Manifest:
        """The manifest of a committed version (through the download cache)."""
        return pull.load_manifest(record.manifest_key, self.store, self.cache)

    def aliases_of(self, record: VersionRecord) -> list[str]:
        return self.meta.aliases_of(record.id)

    def logged_by(self, record: VersionRecord) -> RunInfo | None:
        """The run that committed the version (for a distributed one: the finishing run)."""
        if record.created_by is not None:
            return self.meta.get_run(record.created_by)
        runs = self.meta.runs_of(record.id, "output")
        return runs[0] if runs else None

    def used_by(self, record: VersionRecord) -> list[RunInfo]:
        return self.meta.runs_of(record.id, "input")

    def read_entry(self, entry: ManifestEntry) -> bytes:
        """One entry's bytes, verified, through the download cache."""
        return pull.read_entry(entry, self.store, self.cache)

    def download(
        self,
        manifest: Manifest,
        root: Path,
        progress: Progress | None = None,
        hard_link: bool = False,
    ) -> Path:
        """Materialise ``manifest`` under ``root`` (verified, through the download cache)."""
        mode = checkout.LINK if hard_link else checkout.COPY
        return pull.download(
            manifest, root, store=self.store, cache=self.cache, progress=progress, mode=mode
        )

    def verify(self, manifest: Manifest, root: Path, label: str) -> None:
        """Compare ``root`` with ``manifest``; :class:`CorruptedBlob` naming ``label`` if not."""
        pull.verify(manifest, root, cache=self.cache, label=label)
