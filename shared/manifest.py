"""Value objects at the bottom of the stack: a manifest entry, a manifest, and its digest."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import EntryConflict, EntryNotFound, InvalidMetadata
from .naming import entry_path

__all__ = ["MANIFEST_VERSION", "Manifest", "ManifestEntry", "manifest_digest"]

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestEntry:
    """One file of an artifact.

    ``digest`` is the hex MD5 of stored content, or for a reference the source's own checksum
    (S3 ETag, GCS md5, HTTP ETag) or, with ``checksum=False``, the MD5 of the URI. ``ref`` is the
    source URI of a reference and ``None`` for content stored in the registry. ``extra`` holds
    what else identifies the source object (``etag``, ``version_id``, ``generation``, ...).
    """

    path: str
    digest: str
    size: int | None
    ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digest": self.digest, "size": self.size}
        if self.ref is not None:
            out["ref"] = self.ref
        if self.extra:
            out["extra"] = dict(self.extra)
        return out

    @classmethod
    def from_json(cls, path: str, data: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            path=entry_path(path),
            digest=str(data["digest"]),
            size=None if data.get("size") is None else int(data["size"]),
            ref=data.get("ref"),
            extra=dict(data.get("extra") or {}),
        )


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """MD5 (hex) over the sorted ``path:digest`` lines: the artifact's content identity."""
    h = hashlib.md5(usedforsecurity=False)
    for entry in sorted(entries, key=lambda e: e.path):
        h.update(f"{entry.path}:{entry.digest}\n".encode())
    return h.hexdigest()


class Manifest:
    """The entries of an artifact, keyed and ordered by path."""

    def __init__(self, entries: Iterable[ManifestEntry] = ()) -> None:
        self._entries: dict[str, ManifestEntry] = {}
        self._sorted: Mapping[str, ManifestEntry] | None = None
        self._folders: dict[str, int] = {}  # folder -> entries and folders directly in it
        for entry in entries:
            self.put(entry)

    # -- reading ---------------------------------------------------------------------------
    @property
    def entries(self) -> Mapping[str, ManifestEntry]:
        """A read-only mapping path → :class:`ManifestEntry`, sorted by path."""
        if self._sorted is None:
            self._sorted = MappingProxyType(dict(sorted(self._entries.items())))
        return self._sorted

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries.values())

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str) -> ManifestEntry:
        try:
            return self._entries[entry_path(path)]
        except KeyError:
            raise EntryNotFound(f"no entry {path!r} in this artifact") from None

    def under(self, prefix: str) -> list[ManifestEntry]:
        """The entry at ``prefix`` and every entry below ``prefix/``."""
        prefix = entry_path(prefix)
        below = prefix + "/"
        return [e for p, e in self.entries.items() if p == prefix or p.startswith(below)]

    @property
    def digest(self) -> str:
        return manifest_digest(self._entries.values())

    @property
    def size(self) -> int:
        return sum(e.size or 0 for e in self._entries.values())

    # -- changing (the artifact guards these) --------------------------------------------
    def check_additions(self, entries: Sequence[ManifestEntry], overwrite: bool) -> None:
        """Raise :class:`EntryConflict` if ``entries`` cannot all be added: two of them at one
        path with other content, an existing path with other content (unless ``overwrite``),
        or a path that would be both a file and a folder. Changes nothing."""
        seen: dict[str, ManifestEntry] = {}
        for entry in entries:
            other = seen.get(entry.path)
            if other is not None and other.digest != entry.digest:
                raise EntryConflict(f"two different sources map to entry {entry.path!r}")
            seen[entry.path] = entry
            current = None if overwrite else self._entries.get(entry.path)
            if current is not None and (current.digest, current.ref) != (entry.digest, entry.ref):
                raise EntryConflict(
                    f"entry {entry.path!r} already exists with other content; "
                    "pass overwrite=True to replace it"
                )
        clash = self.file_folder_clash(seen)
        if clash is not None:
            raise EntryConflict(
                f"entry {clash[0]!r} would be both a file and the folder holding {clash[1]!r}"
            )

    def file_folder_clash(self, paths: Iterable[str]) -> tuple[str, str] | None:
        """A pair ``(file, path below it)`` if adding ``paths`` would make one path both a file
        and a folder (``a`` and ``a/b``): such a version could never be downloaded."""
        new = set(paths)
        checked: set[str] = set()  # folders whose whole chain of parents is known to be fine
        for path in new:
            if path in self._folders:
                below = next(p for p in self._entries if p.startswith(path + "/"))
                return path, below
            folder = path.rpartition("/")[0]
            while folder and folder not in checked:
                if folder in self._entries or folder in new:
                    return folder, path
                checked.add(folder)
                folder = folder.rpartition("/")[0]
        return None

    def put(self, entry: ManifestEntry) -> None:
        """Add or replace ``entry`` (unchecked: see :meth:`check_additions`)."""
        if entry.path not in self._entries:
            self._link(entry.path.rpartition("/")[0])
        self._entries[entry.path] = entry
        self._sorted = None

    def drop(self, path: str) -> None:
        """Remove the entry at ``path``."""
        del self._entries[path]
        self._unlink(path.rpartition("/")[0])
        self._sorted = None

    # ``_folders[f]`` counts the files and folders directly inside folder ``f``; a folder is
    # registered in its own parent when it gains its first child. O(1) per entry.
    def _link(self, folder: str) -> None:
        while folder:
            count = self._folders.get(folder, 0)
            self._folders[folder] = count + 1
            if count:
                return
            folder = folder.rpartition("/")[0]

    def _unlink(self, folder: str) -> None:
        while folder:
            count = self._folders[folder] - 1
            if count:
                self._folders[folder] = count
                return
            del self._folders[folder]
            folder = folder.rpartition("/")[0]

    # -- serialisation -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "entries": {p: e.to_json() for p, e in self.entries.items()},
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Manifest:
        if data.get("version") != MANIFEST_VERSION:
            raise InvalidMetadata(f"unsupported manifest version {data.get('version')!r}")
        return cls(ManifestEntry.from_json(p, e) for p, e in data["entries"].items())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        return cls.from_json(json.loads(raw))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and self._entries == other._entries

    def __repr__(self) -> str:
        return f"Manifest({len(self)} entries, digest={self.digest})"
