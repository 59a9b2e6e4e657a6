"""The commit protocol: upload the blobs, upload the manifest, then one transaction.

``log_artifact`` hands an artifact to :meth:`Committer.submit`, which uploads in the
background (:mod:`artiflow.push`) and then commits the version through the metadata store, or,
for an atomic run, hands the staged version back to the run, which commits all of its versions
in one transaction when its block exits. Nothing is visible before a transaction commits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from .artifact import Artifact
from .backend import ArtifactBackend, LogFuture
from .db import MetaStore, VersionSpec
from .manifest import Manifest
from .push import push_blobs, push_manifest
from .records import VersionRecord
from .storage import BlobStore

__all__ = ["Committer", "OnStaged"]

log = logging.getLogger(__name__)

#: An atomic run's hook: the upload of ``artifact`` is done and ``spec`` awaits the commit.
OnStaged = Callable[[Artifact, VersionSpec, LogFuture[Artifact]], None]


class Committer:
    """Uploads artifacts to ``store`` and commits their versions to ``meta``; committed
    artifacts are bound to ``backend`` (the registry that reads them back). Thread-safe."""

    def __init__(
        self,
        store: BlobStore,
        meta: MetaStore,
        backend: ArtifactBackend,
        *,
        upload_workers: int = 8,
    ) -> None:
        self.store = store
        self.meta = meta
        self.backend = backend
        self._uploads = ThreadPoolExecutor(upload_workers, thread_name_prefix="artiflow-upload")
        self._commits = ThreadPoolExecutor(4, thread_name_prefix="artiflow-commit")
        self._stats_lock = threading.Lock()
        self.uploaded_bytes = 0
        self.uploaded_blobs = 0

    def close(self) -> None:
        """Wait for the uploads and commits under way, then stop the pools."""
        self._commits.shutdown(wait=True)
        self._uploads.shutdown(wait=True)

    # ------------------------------------------------------------------ uploads
    def upload(self, artifact: Artifact) -> Manifest:
        """Upload the artifact's local files that the store lacks; return its manifest."""
        manifest = artifact.manifest
        pushed = push_blobs(
            artifact.name, manifest, artifact.local_sources, self.store, self._uploads
        )
        with self._stats_lock:
            self.uploaded_bytes += pushed.bytes
            self.uploaded_blobs += pushed.blobs
        return manifest

    def put_manifest(self, manifest: Manifest) -> str:
        return push_manifest(self.store, manifest)

    def stage(
        self, artifact: Artifact, producer: Callable[[], str], aliases: Sequence[str]
    ) -> VersionSpec:
        """Upload blobs and manifest: everything but the commit transaction. ``producer``
        gives the committing run's id once the upload succeeded (a failed upload writes no
        run row)."""
        manifest = self.upload(artifact)
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
            run_ids=(producer(),),
            aliases=tuple(aliases),
        )

    # ------------------------------------------------------------------ commits
    def submit(
        self,
        artifact: Artifact,
        producer: Callable[[], str],
        aliases: Sequence[str],
        on_staged: OnStaged | None = None,
    ) -> LogFuture[Artifact]:
        """Upload in the background, then commit at once, or hand the staged version to
        ``on_staged`` (an atomic run commits it with the others). ``producer`` gives the run
        id once the upload is done (a run's row is written lazily)."""
        future: LogFuture[Artifact] = LogFuture(deferred=on_staged is not None)
        artifact.begin_logging(self.backend, future)

        def job() -> None:
            try:
                spec = self.stage(artifact, producer, aliases)
                if on_staged is not None:
                    on_staged(artifact, spec, future)
                    return
                self.commit([(artifact, spec)])
            except BaseException as err:
                artifact.abort_logging()
                future.set_exception(err)
            else:
                future.set_result(artifact)

        self._commits.submit(job)
        return future

    def commit(self, staged: Sequence[tuple[Artifact, VersionSpec]]) -> None:
        """Commit staged versions in one transaction and bind each artifact to its version."""
        results = self.meta.commit_versions([spec for _, spec in staged])
        for (artifact, _), (record, created) in zip(staged, results, strict=True):
            self.bind(artifact, record, created)

    def bind(
        self,
        artifact: Artifact,
        record: VersionRecord,
        created: bool,
        manifest: Manifest | None = None,
    ) -> None:
        """``artifact`` is now ``record``; ``created`` is False when its content matched an
        existing version, which it then is."""
        if not created:
            log.info("%s: content unchanged, reusing %s", artifact.name, record.qualified_name)
        artifact.bind(self.backend, record, manifest, reused=not created)
