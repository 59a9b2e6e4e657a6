"""The contract between an artifact and the registry that holds it.

:class:`ArtifactBackend` is what a logged :class:`~artiflow.Artifact` asks of its registry
(:class:`artiflow.Registry` implements it); a :class:`LogFuture` is the outcome of one
``log_artifact``, which ``artifact.wait()`` waits on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol, TypeVar

from .errors import ArtifactStateError
from .manifest import Manifest, ManifestEntry
from .records import RunInfo, VersionRecord

T = TypeVar("T")

__all__ = ["ArtifactBackend", "LogFuture", "Progress"]

#: ``progress(files_done, files_total)``, called from worker threads as files land.
Progress = Callable[[int, int], None]


class ArtifactBackend(Protocol):
    """What a logged artifact asks of the registry that holds it."""

    def manifest_of(self, record: VersionRecord) -> Manifest: ...

    def aliases_of(self, record: VersionRecord) -> list[str]: ...

    def logged_by(self, record: VersionRecord) -> RunInfo | None: ...

    def used_by(self, record: VersionRecord) -> list[RunInfo]: ...

    def read_entry(self, entry: ManifestEntry) -> bytes: ...

    def download(
        self,
        manifest: Manifest,
        root: Path,
        progress: Progress | None = None,
        hard_link: bool = False,
    ) -> Path: ...

    def verify(self, manifest: Manifest, root: Path, label: str) -> None: ...


class LogFuture(Future[T]):
    """The outcome of one ``log_artifact``.

    ``staged`` is set once the upload is over (committed, staged for an atomic run, or
    failed); ``seen`` once ``artifact.wait()`` handed its failure to the caller, so leaving the
    run does not raise it a second time; ``deferred`` while it waits for an atomic run's end.
    """

    def __init__(self, *, deferred: bool = False) -> None:
        super().__init__()
        self.staged = threading.Event()
        self.seen = False
        self.deferred = deferred

    def wait(self, name: str, timeout: float | None = None) -> T:
        """The committed result for artifact ``name``; its failure is re-raised (and marked
        seen). Refused while it waits for the end of an atomic run (it would wait for itself)."""
        if self.deferred and not self.done():
            raise ArtifactStateError(
                f"{name!r} is logged in an atomic run: it is committed when the run's block exits"
            )
        try:
            return self.result(timeout)
        except TimeoutError:
            raise
        except BaseException:
            self.seen = True
            raise

    def set_result(self, result: T) -> None:
        super().set_result(result)
        self.staged.set()

    def set_exception(self, exception: BaseException | None) -> None:
        super().set_exception(exception)
        self.staged.set()
