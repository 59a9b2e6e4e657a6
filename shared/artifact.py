"""The artifact: a named, typed set of files and references, built up then logged to a registry.

Local files are never copied into a staging folder: ``add_file``/``add_dir`` hash them in place
(through the hash cache) and remember ``(inode, size, mtime_ns)``; the registry re-verifies each
file while uploading it and refuses one that changed in between.

This module knows no registry: a logged artifact talks to the small :class:`ArtifactBackend`
protocol defined here, which :class:`artiflow.Registry` implements. The registry side moves an
artifact through its states with :meth:`Artifact.begin_logging`, :meth:`Artifact.bind` and
:meth:`Artifact.abort_logging`; user code never needs them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .backend import ArtifactBackend, LogFuture, Progress
from .config import artifact_dir, options_for
from .errors import (
    ArtifactStateError,
    EntryConflict,
    EntryNotFound,
)
from .hashing import HashedFile
from .manifest import Manifest, ManifestEntry
from .naming import check_description, check_metadata, check_name, check_type, entry_path
from .records import RunInfo, VersionRecord, frozen_metadata
from .resolvers import resolve_reference
from .scratch import Scratch
from .sources import dir_entries, file_entry
from .tables import PartitionedTable, Table, load_table, table_file

__all__ = ["Artifact"]

_DRAFT, _PENDING, _COMMITTED = "draft", "pending", "committed"


class Artifact:
    """A named, typed, versioned set of files and references.

    >>> art = Artifact("cats", "dataset", metadata={"source": "shelter"})
    >>> art.add_dir("images", name="images")          # doctest: +SKIP
    >>> run.log_artifact(art); art.wait(); art.version  # doctest: +SKIP
    'v0'
    """

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        description = check_description(description)
        self._setup(check_name(name), check_type(type), description, check_metadata(metadata))

    def _setup(
        self, name: str, type_: str, description: str | None, metadata: dict[str, Any]
    ) -> None:
        self._name = name
        self._type = type_
        self._description = description
        self._metadata = metadata
        self._manifest: Manifest | None = Manifest()
        self._sources: dict[str, HashedFile] = {}
        self._state = _DRAFT
        self._lock = threading.Lock()
        self._scratch = Scratch(self)
        self._future: LogFuture[Artifact] | None = None
        self._reused = False
        self._backend: ArtifactBackend | None = None
        self._record: VersionRecord | None = None
        self.reference_options: Mapping[str, Mapping[str, Any]] | None = None  # add_reference

    # ------------------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def description(self) -> str | None:
        return self._description

    @description.setter
    def description(self, value: str | None) -> None:
        self._ensure_draft()
        self._description = check_description(value)

    @property
    def metadata(self) -> dict[str, Any]:
        """A draft's own dict: change it in place or assign (checked when logged); then frozen."""
        return self._metadata if self._state == _DRAFT else frozen_metadata(self._metadata)

    @metadata.setter
    def metadata(self, value: Mapping[str, Any] | None) -> None:
        self._ensure_draft()
        self._metadata = check_metadata(value)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            if self._backend is None or self._record is None:
                raise ArtifactStateError(f"artifact {self._name!r} has no manifest loaded")
            self._manifest = self._backend.manifest_of(self._record)
        return self._manifest

    @property
    def digest(self) -> str:
        """MD5 over the sorted ``path:digest`` lines of the manifest."""
        return self.manifest.digest if self._record is None else self._record.digest

    @property
    def size(self) -> int:
        """Bytes of every entry whose size is known."""
        return self.manifest.size if self._record is None else self._record.size

    @property
    def file_count(self) -> int:
        """The number of entries."""
        return len(self.manifest) if self._record is None else self._record.file_count

    @property
    def state(self) -> str:
        """``draft`` (being built), ``pending`` (being logged) or ``committed``."""
        return self._state

    @property
    def record(self) -> VersionRecord | None:
        """The committed version as the registry holds it, once committed."""
        return self._record

    @property
    def version(self) -> str | None:
        """``"v3"`` once committed, else ``None``."""
        return None if self._record is None else self._record.version

    @property
    def reused(self) -> bool:
        """True when logging found identical content already committed and returned that
        version instead of creating one (orchestrators then announce no new data)."""
        return self._reused

    @property
    def qualified_name(self) -> str | None:
        """``"name:v3"`` once committed, else ``None``."""
        return None if self._record is None else self._record.qualified_name

    @property
    def aliases(self) -> list[str]:
        """The version's aliases (``latest`` included while it is the latest), read fresh."""
        if self._backend is None or self._record is None:
            return []
        return self._backend.aliases_of(self._record)

    @property
    def created_at(self) -> Any:
        return None if self._record is None else self._record.created_at

    def __repr__(self) -> str:
        label = self.qualified_name or f"{self._name} ({self._state})"
        return f"<Artifact {label} type={self._type!r} entries={len(self.manifest)}>"

    # ------------------------------------------------------------------------------ building
    def _ensure_draft(self) -> None:
        if self._state != _DRAFT:
            raise ArtifactStateError(
                f"artifact {self._name!r} is {self._state} and can no longer change; "
                "build a new Artifact for a new version"
            )

    def _put(
        self,
        entries: Sequence[ManifestEntry],
        sources: Mapping[str, HashedFile],
        overwrite: bool,
    ) -> list[ManifestEntry]:
        with self._lock:
            self._ensure_draft()
            manifest = self.manifest
            manifest.check_additions(entries, overwrite)  # a refused add changes nothing
            for entry in entries:
                manifest.put(entry)
                self._sources.pop(entry.path, None)  # a reference, or new content, replaces it
            self._sources.update(sources)
        return list(entries)

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add one local file as entry ``name`` (default: the file's base name)."""
        self._ensure_draft()
        entry, hashed = file_entry(local_path, name)
        return self._put([entry], {entry.path: hashed}, overwrite)[0]

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        overwrite: bool = False,
    ) -> list[ManifestEntry]:
        """Add every file under a local directory, below ``name/`` if given."""
        self._ensure_draft()
        entries, sources = dir_entries(local_path, name)
        return self._put(entries, sources, overwrite)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        *,
        checksum: bool = True,
        max_objects: int | None = 10_000,
        overwrite: bool = False,
    ) -> list[ManifestEntry]:
        """Track an external object (or every object under a prefix) without copying it, read
        with :attr:`reference_options` (fsspec options by protocol, handed by the registry that
        drafted it; ``None``: the environment's registry's), as its downloads will be."""
        self._ensure_draft()
        options = options_for(uri, self.reference_options)
        entries = resolve_reference(
            uri, name, checksum=checksum, max_objects=max_objects, storage_options=options
        )
        return self._put(entries, {}, overwrite)

    @contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None, *, overwrite: bool = False
    ) -> Iterator[IO[Any]]:
        """Open a new file to write; it becomes entry ``name`` when the block exits cleanly."""
        self._ensure_draft()
        target = entry_path(name)
        if not overwrite and target in self.manifest:
            raise EntryConflict(f"entry {target!r} already exists; pass overwrite=True")
        with self._scratch.open(mode, encoding) as (fh, path):
            yield fh
        self.add_file(path, target, overwrite=overwrite)

    def add(
        self, obj: Table | PartitionedTable, name: str, *, overwrite: bool = False
    ) -> ManifestEntry:
        """Add a :class:`Table` (``<name>.table.json``) or :class:`PartitionedTable`."""
        path, data = table_file(obj, name)
        return self.add_file(self._scratch.write(data), path, overwrite=overwrite)

    def remove(self, name: str) -> list[ManifestEntry]:
        """Remove an entry, or every entry under a directory prefix."""
        with self._lock:
            self._ensure_draft()
            gone = self.manifest.under(name)
            if not gone:
                raise EntryNotFound(f"no entry or directory {name!r} in artifact {self._name!r}")
            for entry in gone:
                self.manifest.drop(entry.path)
                self._sources.pop(entry.path, None)
            return gone

    def get_entry(self, name: str) -> ManifestEntry:
        return self.manifest.get(name)

    # ------------------------------------------------------------------------------ reading
    def _read_entry(self, path: str) -> bytes:
        source = self._sources.get(path)
        if source is not None:
            return Path(source.path).read_bytes()
        if self._backend is None:
            raise EntryNotFound(f"entry {path!r} has no local content")
        return self._backend.read_entry(self.manifest.get(path))

    def get(self, name: str) -> Table | PartitionedTable:
        """The object added with :meth:`add` under ``name`` (a Table or PartitionedTable)."""
        try:
            return load_table(name, self.manifest.entries, self._read_entry)
        except EntryNotFound:
            raise EntryNotFound(f"no table {name!r} in artifact {self._name!r}") from None

    # ------------------------------------------------------------------------------ logged
    def _logged(self, what: str) -> tuple[ArtifactBackend, VersionRecord]:
        """Wait for a pending log, then the backend and record ``what`` needs."""
        self.wait()
        if self._backend is None or self._record is None:
            raise ArtifactStateError(
                f"artifact {self._name!r} is not logged; {what} needs a logged version"
            )
        return self._backend, self._record

    def wait(self, timeout: float | None = None) -> Artifact:
        """Block until a pending log finishes; re-raise its failure."""
        future = self._future
        if future is None:
            if self._state == _DRAFT:
                raise ArtifactStateError(f"artifact {self._name!r} was never logged")
            return self
        future.wait(self._name, timeout)
        return self

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        progress: Progress | None = None,
        hard_link: bool = False,
    ) -> Path:
        """Materialise every entry under ``root`` (verified, through the local cache).

        ``root`` defaults to ``$ARTIFLOW_ARTIFACT_DIR/<name>/<version>`` (see
        :func:`artiflow.config.artifact_dir`). Each file is the caller's own (a reflink or a
        copy); ``hard_link=True`` links the cache's files instead: faster, but an edit then
        changes every consumer's copy. ``progress(files_done, files_total)`` is called as
        files land (from worker threads). Safe from many threads and processes at once.
        """
        backend, record = self._logged("download()")
        return backend.download(self.manifest, self._root(root, record), progress, hard_link)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`~artiflow.errors.CorruptedBlob` if a file under ``root`` differs."""
        backend, record = self._logged("verify()")
        backend.verify(self.manifest, self._root(root, record), record.qualified_name)

    def _root(self, root: str | os.PathLike[str] | None, record: VersionRecord) -> Path:
        return Path(root) if root is not None else artifact_dir() / self._name / record.version

    def logged_by(self) -> RunInfo | None:
        """The run that produced this version."""
        backend, record = self._logged("logged_by()")
        return backend.logged_by(record)

    def used_by(self) -> list[RunInfo]:
        """Every run that consumed this version, oldest first."""
        backend, record = self._logged("used_by()")
        return backend.used_by(record)

    # ------------------------------------------------------------------------------ registry side
    def begin_logging(self, backend: ArtifactBackend, future: LogFuture[Artifact]) -> None:
        """Registry side: a log started; the artifact is ``pending`` until bound or aborted."""
        with self._lock:
            self._ensure_draft()
            self._metadata = check_metadata(self._metadata)  # the draft's dict may have changed
            self._state = _PENDING
            self._backend = backend
            self._future = future
            self._reused = False

    def abort_logging(self) -> None:
        """Registry side: a failed log leaves a draft the user can fix and log again."""
        with self._lock:
            self._state = _DRAFT
            self._backend = None

    def bind(
        self,
        backend: ArtifactBackend,
        record: VersionRecord,
        manifest: Manifest | None = None,
        *,
        reused: bool = False,
    ) -> None:
        """Registry side: the artifact is the committed version ``record``. ``reused`` when
        its content matched an existing version; ``manifest`` when the committed content
        differs from the draft's (a distributed finish)."""
        with self._lock:
            self._backend = backend
            self._record = record
            self._reused = reused
            self._state = _COMMITTED
            if manifest is not None:
                self._manifest = manifest

    @classmethod
    def from_record(cls, backend: ArtifactBackend, record: VersionRecord) -> Artifact:
        """Registry side: the committed version ``record`` (its manifest loads on first use)."""
        art = cls.__new__(cls)  # a committed record was validated when it was logged
        art._setup(record.name, record.type, record.description, dict(record.metadata))
        art._manifest, art._state, art._backend, art._record = None, _COMMITTED, backend, record
        return art

    @property
    def local_sources(self) -> Mapping[str, HashedFile]:
        """Entry path → the local file it was added from (what a log uploads)."""
        return self._sources
