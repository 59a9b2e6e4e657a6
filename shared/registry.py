"""The registry: a metadata store plus a content-addressed blob store, and the commit protocol.

``Registry()`` is the embedded default: ``$ARTIFLOW_HOME`` (``~/.artiflow``) holding
``registry.db`` (SQLite) and ``store/``. A team points ``store`` at S3/GCS and ``database`` at
PostgreSQL, in code or through ``ARTIFLOW_STORE`` / ``ARTIFLOW_DATABASE`` /
``ARTIFLOW_STORAGE_OPTIONS`` (JSON), so workers on many machines share one registry.

Commit protocol (``log_artifact``): check the name's type → upload the missing blobs (in
parallel, each re-hashed while streamed) → upload the manifest → one transaction that dedupes or
assigns the next version number, moves the aliases and records the run's output usage. Nothing is
visible before that transaction commits.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifact import Artifact
from .blobstore import BlobStore, open_store
from .cache import BlobCache
from .config import artiflow_home, redact_url
from .errors import ArtiflowError, InvalidMetadata, SourceChanged
from .hashing import HashedFile, file_changed
from .manifest import Manifest, ManifestEntry
from .metastore import MetaStore, VersionSpec
from .openlineage import OpenLineageEmitter, resolve_emitter
from .records import RunInfo, VersionRecord
from .runs import LogFuture, Run

if TYPE_CHECKING:
    from .lineage import LineageGraph

__all__ = ["Registry", "artiflow_home"]

log = logging.getLogger(__name__)


def _storage_options_from_env() -> dict[str, Any]:
    raw = os.environ.get("ARTIFLOW_STORAGE_OPTIONS")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidMetadata(f"ARTIFLOW_STORAGE_OPTIONS is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidMetadata("ARTIFLOW_STORAGE_OPTIONS must be a JSON object")
    return value


class Registry:
    """Where artifact versions live. Thread-safe; share one per process.

    :param store: fsspec URL of the blob store (local path, ``s3://bucket/prefix``, ``gs://...``).
    :param database: SQLAlchemy URL (``sqlite:///...``, ``postgresql+psycopg://...``).
    :param storage_options: JSON-safe fsspec options for the store (endpoint, credentials).
    :param cache_dir: the local download cache (default ``$ARTIFLOW_CACHE_DIR`` or the user
        cache directory).
    :param upload_workers: parallel blob uploads.
    :param openlineage: OpenLineage run events: None follows the environment (see
        :mod:`artiflow.openlineage`), False is off, True is on, or an ``OpenLineageClient``.
    """

    def __init__(
        self,
        store: str | os.PathLike[str] | None = None,
        database: str | None = None,
        storage_options: Mapping[str, Any] | None = None,
        *,
        cache_dir: str | None = None,
        upload_workers: int = 8,
        openlineage: Any = None,
    ) -> None:
        home = artiflow_home()
        store_url = os.fspath(store) if store else os.environ.get("ARTIFLOW_STORE")
        self.store_url = store_url or str(home / "store")
        self.database_url = (
            database or os.environ.get("ARTIFLOW_DATABASE") or f"sqlite:///{home / 'registry.db'}"
        )
        options = dict(storage_options) if storage_options is not None else None
        self.storage_options = options if options is not None else _storage_options_from_env()
        self.store: BlobStore = open_store(self.store_url, self.storage_options)
        self.meta = MetaStore(self.database_url)
        self.cache = BlobCache(cache_dir)
        self._uploads = ThreadPoolExecutor(upload_workers, thread_name_prefix="artiflow-upload")
        self._commits = ThreadPoolExecutor(4, thread_name_prefix="artiflow-commit")
        self._stats_lock = threading.Lock()
        self.uploaded_bytes = 0
        self.uploaded_blobs = 0
        self.openlineage: OpenLineageEmitter | None = resolve_emitter(openlineage)

    def __repr__(self) -> str:
        return f"Registry(store={redact_url(self.store_url)!r}, database={self.meta.safe_url!r})"

    def check(self) -> None:
        """Raise :class:`DatabaseError` or :class:`StoreError` unless both stores answer."""
        self.meta.artifact_names()
        self.store.check_reachable()

    def close(self) -> None:
        self._commits.shutdown(wait=True)
        self._uploads.shutdown(wait=True)
        if self.openlineage is not None:
            self.openlineage.close()
        self.meta.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    def run(self, *, atomic: bool = False, **identity: Any) -> Run:
        """A step run (a context manager). Identity keys: ``orchestrator``, ``pipeline``,
        ``pipeline_run``, ``step``, ``step_run``, ``map_index``, ``attempt``, ``job_type``,
        ``group``; anything else is kept as extra.

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
        """
        return self.meta.runs(**filters)

    # ------------------------------------------------------------------ reading
    def artifact(self, ref: str) -> Artifact:
        """``"name"`` (latest), ``"name:alias"`` or ``"name:v3"``; :class:`ArtifactNotFound`
        (a ``KeyError``) when there is no such version."""
        return Artifact._from_record(self, self.meta.find(ref))

    def versions(self, name: str) -> list[Artifact]:
        """Every committed version of ``name``, ascending."""
        return [Artifact._from_record(self, r) for r in self.meta.versions(name)]

    def names(self) -> list[tuple[str, str, int]]:
        """``(name, type, number of versions)`` for every artifact."""
        return self.meta.artifact_names()

    def set_alias(self, ref: str, alias: str) -> Artifact:
        """Move a custom alias to the version ``ref`` names, atomically."""
        return Artifact._from_record(self, self.meta.set_alias(ref, alias))

    def lineage(
        self, ref: str, direction: str = "upstream", depth: int | None = None
    ) -> LineageGraph:
        """The graph of runs and versions upstream/downstream of ``ref`` (recursive SQL)."""
        from .lineage import lineage

        return lineage(self, ref, direction=direction, depth=depth)

    # ------------------------------------------------------------------ logging
    def _submit_log(self, run: Run, artifact: Artifact, aliases: Sequence[str]) -> LogFuture:
        """Upload in the background, then commit at once or, in an atomic run, stage."""
        future = LogFuture(deferred=run.atomic)
        artifact._begin_logging(self, future)

        def job() -> None:
            try:
                spec = self._stage(run, artifact, aliases)
                if run.atomic:
                    run._stage(artifact, spec, future)  # committed when the run's block exits
                    return
                record, created = self.meta.commit_versions([spec])[0]
                self._bound(artifact, record, created)
            except BaseException as err:
                artifact._abort_logging()
                future.set_exception(err)
            else:
                future.set_result(artifact)

        self._commits.submit(job)
        return future

    def upload_sources(self, artifact: Artifact) -> Manifest:
        """Upload the artifact's local files that the store lacks; return its manifest."""
        manifest = artifact.manifest
        sources = artifact._local_sources
        for path, source in sources.items():
            if file_changed(source):
                raise SourceChanged(
                    f"{source.path} (entry {path!r}) changed after it was added to "
                    f"{artifact.name!r}; add it again to log its new content"
                )
        by_digest: dict[str, HashedFile] = {}
        for entry in manifest:
            if entry.ref is None:
                local = sources.get(entry.path)
                if local is None:
                    raise ArtiflowError(f"entry {entry.path!r} has no local content to upload")
                by_digest.setdefault(entry.digest, local)
        todo = [by_digest[d] for d in sorted(self.store.missing(by_digest))]
        # Batches keep per-file overhead low; a local store gains nothing from many threads.
        batch = max(1, len(todo) // 2) if self.store.local else 4
        chunks = [todo[k : k + batch] for k in range(0, len(todo), batch)]
        put = self.store.put_file
        sizes = [
            n for part in self._uploads.map(lambda c: [put(f) for f in c], chunks) for n in part
        ]
        with self._stats_lock:
            self.uploaded_bytes += sum(sizes)
            self.uploaded_blobs += sum(1 for s in sizes if s)
        return manifest

    def put_manifest(self, manifest: Manifest) -> str:
        return self.store.put_bytes(manifest.to_bytes())

    def _stage(self, run: Run, artifact: Artifact, aliases: Sequence[str]) -> VersionSpec:
        """Upload blobs and manifest: everything but the commit transaction."""
        manifest = self.upload_sources(artifact)
        manifest_key = self.put_manifest(manifest)
        return VersionSpec(
            name=artifact.name,
            type=artifact.type,
            digest=manifest.digest,
            manifest_key=manifest_key,
            size=manifest.size,
            file_count=len(manifest),
            description=artifact.description,
            metadata=artifact.metadata,
            run_ids=(run.id,),
            aliases=tuple(aliases),
        )

    def _bound(self, artifact: Artifact, record: VersionRecord, created: bool) -> None:
        if not created:
            log.info("%s: content unchanged, reusing %s", artifact.name, record.qualified_name)
        artifact._bind(self, record, reused=not created)

    def reference_options(self, entry: ManifestEntry) -> dict[str, Any] | None:
        """fsspec options for fetching a reference: the store's own when the reference lives
        on the same filesystem as the store (same credentials, same endpoint), else fsspec's
        defaults from its config and the environment."""
        if entry.ref is None or not self.storage_options:
            return None
        scheme = entry.ref.split("://", 1)[0] if "://" in entry.ref else "file"
        store_scheme = self.store_url.split("://", 1)[0] if "://" in self.store_url else "file"
        return dict(self.storage_options) if scheme == store_scheme else None

    # ------------------------------------------------------------------ artifact internals
    def _load_manifest(self, record: VersionRecord) -> Manifest:
        key = f"md5/{record.manifest_key}"
        hit = self.cache.lookup(key)
        if hit is not None:
            return Manifest.from_bytes(Path(hit[0]).read_bytes())
        data = self.store.get_bytes(record.manifest_key)
        tmp = self.cache.temp_path()
        Path(tmp).write_bytes(data)
        self.cache.insert(key, tmp, record.manifest_key)
        return Manifest.from_bytes(data)

    def _aliases_of(self, record: VersionRecord) -> list[str]:
        return self.meta.aliases_of(record.id)

    def _logged_by(self, record: VersionRecord) -> RunInfo | None:
        """The run that committed the version (for a distributed one: the finishing run)."""
        if record.created_by is not None:
            return self.meta.get_run(record.created_by)
        runs = self.meta.runs_of(record.id, "output")
        return runs[0] if runs else None

    def _used_by(self, record: VersionRecord) -> list[RunInfo]:
        return self.meta.runs_of(record.id, "input")

    def _read_entry(self, entry: ManifestEntry) -> bytes:
        from .transfer import fetch_to_cache

        path, _ = fetch_to_cache(self, entry)
        return Path(path).read_bytes()

    def _download(
        self,
        artifact: Artifact,
        root: str | os.PathLike[str] | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        from .transfer import download

        return download(self, artifact, root, progress)

    def _verify(self, artifact: Artifact, root: str | os.PathLike[str] | None) -> None:
        from .transfer import verify

        verify(artifact, root)
