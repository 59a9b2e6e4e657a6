"""The artifact: a named, typed set of files and references, built up then logged to a registry.

Local files are never copied into a staging folder: ``add_file``/``add_dir`` hash them in place
(through the hash cache) and remember ``(inode, size, mtime_ns)``; the registry re-verifies each
file while uploading it and refuses one that changed in between.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .errors import (
    ArtifactStateError,
    EntryConflict,
    EntryNotFound,
    SourceNotFound,
)
from .hashing import HashedFile, gc_paused, hash_files, hash_tree
from .manifest import Manifest, ManifestEntry
from .naming import check_metadata, check_name, check_type, entry_path
from .resolve import resolve_reference
from .runs import LogFuture
from .tables import PARTITIONED_SUFFIX, TABLE_SUFFIX, PartitionedTable, Table, is_table_part

if TYPE_CHECKING:
    from .records import VersionRecord
    from .registry import Registry
    from .runs import RunInfo

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
        self._name = check_name(name)
        self._type = check_type(type)
        self._description = description
        self._metadata = check_metadata(metadata)
        self._manifest: Manifest | None = Manifest()
        self._sources: dict[str, HashedFile] = {}
        self._state = _DRAFT
        self._lock = threading.Lock()
        self._tmpdir: str | None = None
        self._future: Future[Artifact] | None = None
        self._reused = False
        self._registry: Registry | None = None
        self._record: VersionRecord | None = None

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
        self._description = value

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the metadata; assign a new mapping to change it before logging."""
        return dict(self._metadata)

    @metadata.setter
    def metadata(self, value: Mapping[str, Any] | None) -> None:
        self._ensure_draft()
        self._metadata = check_metadata(value)

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            if self._registry is None or self._record is None:
                raise ArtifactStateError(f"artifact {self._name!r} has no manifest loaded")
            self._manifest = self._registry._load_manifest(self._record)
        return self._manifest

    @property
    def digest(self) -> str:
        """MD5 over the sorted ``path:digest`` lines of the manifest."""
        if self._record is not None:
            return self._record.digest
        return self.manifest.digest

    @property
    def size(self) -> int:
        """Bytes of every entry whose size is known."""
        if self._record is not None:
            return self._record.size
        return self.manifest.size

    @property
    def file_count(self) -> int:
        if self._record is not None:
            return self._record.file_count
        return len(self.manifest)

    @property
    def state(self) -> str:
        """``draft`` (being built), ``pending`` (being logged) or ``committed``."""
        return self._state

    @property
    def version(self) -> str | None:
        """``"v3"`` once committed, else ``None``."""
        return None if self._record is None else f"v{self._record.index}"

    @property
    def reused(self) -> bool:
        """True when logging found identical content already committed and returned that
        version instead of creating one (orchestrators then announce no new data)."""
        return self._reused

    @property
    def qualified_name(self) -> str | None:
        """``"name:v3"`` once committed, else ``None``."""
        return None if self._record is None else f"{self._name}:v{self._record.index}"

    @property
    def aliases(self) -> list[str]:
        """The version's aliases (``latest`` included while it is the latest), read fresh."""
        if self._registry is None or self._record is None:
            return []
        return self._registry._aliases_of(self._record)

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

    def _check_conflicts(self, entries: Sequence[ManifestEntry], overwrite: bool) -> None:
        """Refuse clashes before anything is changed, so a failed add writes nothing."""
        manifest = self.manifest
        seen: dict[str, ManifestEntry] = {}
        for entry in entries:
            other = seen.get(entry.path)
            if other is not None and other.digest != entry.digest:
                raise EntryConflict(f"two different sources map to entry {entry.path!r}")
            seen[entry.path] = entry
            if overwrite or entry.path not in manifest:
                continue
            current = manifest.get(entry.path)
            if current.digest != entry.digest or current.ref != entry.ref:
                raise EntryConflict(
                    f"entry {entry.path!r} already exists with other content; "
                    "pass overwrite=True to replace it"
                )
        clash = manifest.file_folder_clash(seen)
        if clash is not None:
            raise EntryConflict(
                f"entry {clash[0]!r} would be both a file and the folder holding {clash[1]!r}"
            )

    def _put(
        self,
        entries: Sequence[ManifestEntry],
        sources: Mapping[str, HashedFile],
        overwrite: bool,
    ) -> list[ManifestEntry]:
        with self._lock:
            self._ensure_draft()
            self._check_conflicts(entries, overwrite)
            manifest = self.manifest
            for entry in entries:
                manifest._put(entry)
                source = sources.get(entry.path)
                if source is None:
                    self._sources.pop(entry.path, None)
                else:
                    self._sources[entry.path] = source
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
        path = os.fspath(local_path)
        if not os.path.isfile(path):
            raise SourceNotFound(f"no such file: {path!r}")
        target = entry_path(name if name is not None else os.path.basename(path))
        (hashed,) = hash_files([path])
        entry = ManifestEntry(target, hashed.digest, hashed.size)
        return self._put([entry], {target: hashed}, overwrite)[0]

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        *,
        overwrite: bool = False,
    ) -> list[ManifestEntry]:
        """Add every file under a local directory, below ``name/`` if given."""
        self._ensure_draft()
        root = os.fspath(local_path)
        if not os.path.isdir(root):
            raise SourceNotFound(f"no such directory: {root!r}")
        prefix = entry_path(name) + "/" if name else ""
        with gc_paused():  # tens of thousands of small objects: skip needless GC passes
            pairs = hash_tree(root)
            targets = [entry_path(prefix + rel) for rel, _ in pairs]
            entries = [
                ManifestEntry(t, h.digest, h.size) for t, (_, h) in zip(targets, pairs, strict=True)
            ]
            sources = {t: h for t, (_, h) in zip(targets, pairs, strict=True)}
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
        """Track an external object (or every object under a prefix) without copying it."""
        self._ensure_draft()
        entries = resolve_reference(uri, name, checksum=checksum, max_objects=max_objects)
        return self._put(entries, {}, overwrite)

    def _scratch(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="artiflow-new-")
            weakref.finalize(self, shutil.rmtree, self._tmpdir, True)
        return self._tmpdir

    def _add_bytes(self, name: str, data: bytes, overwrite: bool) -> ManifestEntry:
        fd, tmp = tempfile.mkstemp(dir=self._scratch())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return self.add_file(tmp, name, overwrite=overwrite)

    @contextmanager
    def new_file(
        self, name: str, mode: str = "w", encoding: str | None = None, *, overwrite: bool = False
    ) -> Iterator[IO[Any]]:
        """Open a new file to write; it becomes entry ``name`` when the block exits cleanly."""
        self._ensure_draft()
        target = entry_path(name)
        if mode not in ("w", "wb", "x", "xb"):
            raise ValueError(f"new_file mode must be 'w' or 'wb', got {mode!r}")
        if not overwrite and target in self.manifest:
            raise EntryConflict(f"entry {target!r} already exists; pass overwrite=True")
        fd, tmp = tempfile.mkstemp(dir=self._scratch())
        os.close(fd)
        binary = "b" in mode
        with open(tmp, "wb" if binary else "w", encoding=None if binary else encoding) as fh:
            yield fh
        self.add_file(tmp, target, overwrite=overwrite)

    def add(
        self, obj: Table | PartitionedTable, name: str, *, overwrite: bool = False
    ) -> ManifestEntry:
        """Add a :class:`Table` (``<name>.table.json``) or :class:`PartitionedTable`."""
        if isinstance(obj, Table):
            return self._add_bytes(entry_path(name) + TABLE_SUFFIX, obj.to_bytes(), overwrite)
        if isinstance(obj, PartitionedTable):
            return self._add_bytes(entry_path(name) + PARTITIONED_SUFFIX, obj.to_bytes(), overwrite)
        raise TypeError(f"add() takes a Table or PartitionedTable, got {type(obj).__name__}")

    def remove(self, name: str) -> list[ManifestEntry]:
        """Remove an entry, or every entry under a directory prefix."""
        with self._lock:
            self._ensure_draft()
            gone = self.manifest.under(name)
            if not gone:
                raise EntryNotFound(f"no entry or directory {name!r} in artifact {self._name!r}")
            for entry in gone:
                self.manifest._drop(entry.path)
                self._sources.pop(entry.path, None)
            return gone

    def get_entry(self, name: str) -> ManifestEntry:
        return self.manifest.get(name)

    # ------------------------------------------------------------------------------ reading
    def _read_entry(self, path: str) -> bytes:
        source = self._sources.get(path)
        if source is not None:
            return Path(source.path).read_bytes()
        if self._registry is None:
            raise EntryNotFound(f"entry {path!r} has no local content")
        return self._registry._read_entry(self.manifest.get(path))

    def get(self, name: str) -> Table | PartitionedTable:
        """The object added with :meth:`add` under ``name`` (a Table or PartitionedTable)."""
        path = entry_path(name)
        manifest = self.manifest
        if path + TABLE_SUFFIX in manifest:
            return Table.from_bytes(self._read_entry(path + TABLE_SUFFIX))
        if path + PARTITIONED_SUFFIX in manifest:
            raw = self._read_entry(path + PARTITIONED_SUFFIX)
            return PartitionedTable.from_bytes(raw, self._part_loader(raw))
        if path.endswith(TABLE_SUFFIX) and path in manifest:
            return Table.from_bytes(self._read_entry(path))
        raise EntryNotFound(f"no table {name!r} in artifact {self._name!r}")

    def _part_loader(self, raw: bytes) -> Any:
        parts_path = PartitionedTable.from_bytes(raw, list).parts_path

        def load() -> list[tuple[str, Table]]:
            return [
                (p, Table.from_bytes(self._read_entry(p)))
                for p in self.manifest.entries
                if is_table_part(p, parts_path)
            ]

        return load

    # ------------------------------------------------------------------------------ logged
    def _require_registry(self, what: str) -> Registry:
        if self._registry is None:
            raise ArtifactStateError(
                f"artifact {self._name!r} is not logged; {what} needs a logged version"
            )
        return self._registry

    def wait(self, timeout: float | None = None) -> Artifact:
        """Block until a pending log finishes; re-raise its failure."""
        future = self._future
        if future is None:
            if self._state == _DRAFT:
                raise ArtifactStateError(f"artifact {self._name!r} was never logged")
            return self
        if isinstance(future, LogFuture) and future.deferred and not future.done():
            raise ArtifactStateError(
                f"{self._name!r} is logged in an atomic run: it is committed when the run's "
                "block exits"
            )
        try:
            future.result(timeout)
        except TimeoutError:
            raise
        except BaseException:
            if isinstance(future, LogFuture):
                future.seen = True
            raise
        return self

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """Materialise every entry under ``root`` (verified, through the local cache).

        ``progress(files_done, files_total)`` is called as files land (from worker threads).
        """
        self.wait()
        return self._require_registry("download()")._download(self, root, progress)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise :class:`~artiflow.errors.CorruptedBlob` if a file under ``root`` differs."""
        self.wait()
        self._require_registry("verify()")._verify(self, root)

    def logged_by(self) -> RunInfo | None:
        """The run that produced this version."""
        self.wait()
        registry = self._require_registry("logged_by()")
        if self._record is None:
            raise ArtifactStateError(f"artifact {self._name!r} has no committed version")
        return registry._logged_by(self._record)

    def used_by(self) -> list[RunInfo]:
        """Every run that consumed this version, oldest first."""
        self.wait()
        registry = self._require_registry("used_by()")
        if self._record is None:
            raise ArtifactStateError(f"artifact {self._name!r} has no committed version")
        return registry._used_by(self._record)

    # ------------------------------------------------------------------------------ registry side
    def _begin_logging(self, registry: Registry, future: Future[Artifact]) -> None:
        with self._lock:
            self._ensure_draft()
            self._state = _PENDING
            self._registry = registry
            self._future = future
            self._reused = False

    def _abort_logging(self) -> None:
        """A failed log leaves the artifact as a draft the user can fix and log again."""
        with self._lock:
            self._state = _DRAFT
            self._registry = None

    def _bind(
        self,
        registry: Registry,
        record: VersionRecord,
        manifest: Manifest | None = None,
        *,
        reused: bool = False,
    ) -> None:
        with self._lock:
            self._registry = registry
            self._record = record
            self._reused = reused
            self._state = _COMMITTED
            if manifest is not None:  # committed content differs from the draft (distributed)
                self._manifest = manifest

    @classmethod
    def _from_record(cls, registry: Registry, record: VersionRecord) -> Artifact:
        art = cls.__new__(cls)
        art._name = record.name
        art._type = record.type
        art._description = record.description
        art._metadata = dict(record.metadata)
        art._manifest = None
        art._sources = {}
        art._state = _COMMITTED
        art._lock = threading.Lock()
        art._tmpdir = None
        art._future = None
        art._reused = False
        art._registry = registry
        art._record = record
        return art

    @property
    def _local_sources(self) -> Mapping[str, HashedFile]:
        return self._sources
