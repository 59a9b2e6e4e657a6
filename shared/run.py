"""A step run: what a pipeline step consumed and produced, recorded as it happens."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import wait
from types import TracebackType
from typing import Any, Protocol

from . import config
from .artifact import Artifact
from .backend import LogFuture
from .committer import Committer
from .db import MetaStore, VersionSpec, schema
from .distributed import finish, upsert
from .errors import ArtifactStateError, TypeMismatch
from .heartbeat import LEASE_BEATS, Heartbeat
from .naming import check_alias, check_run_identity, check_type
from .openlineage import OpenLineageEmitter
from .records import RunInfo

__all__ = ["Run", "RunHost", "RunInfo"]

log = logging.getLogger(__name__)

#: identity keys stored in text columns of their own, with each column's length (checked before
#: anything is written, so both databases accept or refuse alike)
_TEXT_COLUMNS = {
    key: getattr(schema.runs.c[key].type, "length", None)
    for key in ("orchestrator", "pipeline", "pipeline_run", "step", "step_run", "job_type", "group")
}
_INT_COLUMNS = ("map_index", "attempt")


class RunHost(Protocol):
    """What a run needs of the registry that opened it."""

    @property
    def meta(self) -> MetaStore: ...

    @property
    def committer(self) -> Committer: ...

    @property
    def openlineage(self) -> OpenLineageEmitter | None: ...

    @property
    def lineage_namespace(self) -> str: ...

    @property
    def reference_options(self) -> Mapping[str, Mapping[str, Any]]: ...

    def artifact(self, ref: str) -> Artifact: ...


class Run:
    """The context of one step run; get one from :meth:`Registry.run`.

    Its row is written lazily, with the first artifact it uses or logs, so a run that touches
    nothing leaves nothing behind. Leaving the ``with`` block waits for every pending log and marks
    the run ``finished``, or ``failed`` if the block raised or a log failed unnoticed. In an
    ``atomic`` run the logged versions are committed together when the block exits cleanly.
    """

    def __init__(
        self, registry: RunHost, identity: Mapping[str, Any], *, atomic: bool = False
    ) -> None:
        self.registry = registry
        self.identity = check_run_identity(identity, _TEXT_COLUMNS, _INT_COLUMNS)
        self.atomic = atomic
        self._info: RunInfo | None = None
        self._lock = threading.Lock()
        self._pending: list[LogFuture[Artifact]] = []
        self._staged: list[tuple[Artifact, VersionSpec, LogFuture[Artifact]]] = []
        self._closed = False
        self._heartbeat: Heartbeat | None = None

    # ------------------------------------------------------------------ identity
    def _row(self) -> RunInfo:
        with self._lock:
            if self._info is None:
                meta = self.registry.meta
                interval = config.heartbeat_seconds() if meta.leases else None
                lease = None if interval is None else interval * LEASE_BEATS
                self._info = meta.create_run(self.identity, lease_seconds=lease)
                if interval is not None:  # renews the lease until finish() (or this run is gone)
                    beat = self._heartbeat = Heartbeat(meta, self._info.id, interval)
                    weakref.finalize(self, beat.stop)
                if self.registry.openlineage is not None:  # queues an event; never blocks
                    self.registry.openlineage.run_started(self._info)
            return self._info

    @property
    def id(self) -> str:
        return self._row().id

    @property
    def info(self) -> RunInfo:
        return self._row()

    def __repr__(self) -> str:
        label = self._info.label if self._info else self.identity
        return f"<Run {label}>"

    # ------------------------------------------------------------------ verbs
    def use_artifact(self, ref: str, type: str | None = None) -> Artifact:
        """Resolve ``ref`` to a committed version and record it as this run's input."""
        self._ensure_open()
        if type is not None:
            check_type(type)
        art = self.registry.artifact(ref)
        if type is not None and art.type != type:
            raise TypeMismatch(f"{art.qualified_name} has type {art.type!r}, expected {type!r}")
        record = art.record
        if record is None:  # pragma: no cover - registry.artifact always binds a record
            raise ArtifactStateError(f"{ref!r} resolved to an uncommitted artifact")
        self.registry.meta.record_input(self.id, record.id)
        return art

    def log_artifact(self, artifact: Artifact, aliases: Iterable[str] | None = None) -> Artifact:
        """Upload and commit ``artifact`` in the background; returns it at once.

        ``artifact.wait()`` blocks until the version is committed and re-raises any failure.
        Content identical to an existing version of the name returns that version.
        """
        self._ensure_open()
        wanted = [check_alias(a) for a in (aliases or [])]
        self.registry.meta.check_type(artifact.name, artifact.type)
        future = self.registry.committer.submit(
            artifact, lambda: self.id, wanted, self._stage if self.atomic else None
        )
        with self._lock:
            self._pending.append(future)
        return artifact

    def upsert_artifact(self, artifact: Artifact, distributed_id: str) -> Artifact:
        """Add ``artifact``'s entries as one part of the pending distributed version."""
        self._ensure_open()
        return upsert(self.registry.committer, lambda: self.id, artifact, distributed_id)

    def finish_artifact(
        self, artifact: Artifact, distributed_id: str, aliases: Iterable[str] | None = None
    ) -> Artifact:
        """Commit every part upserted under ``distributed_id`` (plus ``artifact``'s own entries)
        as a single version."""
        self._ensure_open()
        wanted = [check_alias(a) for a in (aliases or [])]
        return finish(self.registry.committer, lambda: self.id, artifact, distributed_id, wanted)

    # ------------------------------------------------------------------ lifecycle
    def _ensure_open(self) -> None:
        if self._closed:
            raise ArtifactStateError("this run has finished; start a new one with registry.run()")

    def _stage(self, artifact: Artifact, spec: VersionSpec, future: LogFuture[Artifact]) -> None:
        """An atomic run's upload is done: keep it for the commit at the end of the block."""
        with self._lock:
            self._staged.append((artifact, spec, future))
        future.staged.set()

    def wait(self) -> None:
        """Wait for every pending log; re-raise the first failure (not in an atomic run,
        whose versions are committed when its block exits)."""
        if self.atomic:
            raise ArtifactStateError("an atomic run commits when its block exits")
        with self._lock:
            pending = list(self._pending)
        wait(pending)
        for future in pending:
            future.result()

    def _commit_staged(self, failed: bool) -> None:
        with self._lock:
            staged = list(self._staged)
        if not staged:
            return
        upload_failed = any(f.exception() for f in self._pending if f.done())
        if failed or upload_failed:
            for artifact, _, future in staged:
                artifact.abort_logging()
                future.seen = True  # the block's own error (or the upload's) is what matters
                future.set_exception(
                    ArtifactStateError(f"{artifact.name!r} was not committed: its run failed")
                )
            return
        try:
            self.registry.committer.commit([(artifact, spec) for artifact, spec, _ in staged])
        except BaseException as err:
            for artifact, _, future in staged:
                artifact.abort_logging()
                future.set_exception(err)
            return
        for artifact, _, future in staged:
            future.set_result(artifact)

    def finish(self, failed: bool = False, exc: BaseException | None = None) -> None:
        """Wait for pending logs (committing an atomic run's), then mark the run finished or
        failed. A failed log the caller did not already see through ``artifact.wait()`` makes
        the run failed and is raised here (unless the block is failing anyway)."""
        if self._closed:
            return
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.staged.wait()
        if self.atomic:
            self._commit_staged(failed)
        wait(pending)
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.stop()
        unseen = [f.exception() for f in pending if f.exception() is not None and not f.seen]
        if self._info is not None:
            self.registry.meta.finish_run(
                self._info.id, "failed" if failed or unseen else "finished"
            )
            if self.registry.openlineage is not None:  # queues an event; never blocks
                self.registry.openlineage.run_finished(
                    self.registry.meta,
                    self.registry.lineage_namespace,
                    self._info.id,
                    exc or next(iter(unseen), None),
                )
        if unseen and not failed and unseen[0] is not None:
            raise unseen[0]

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(failed=exc is not None, exc=exc)
