"""What every reference resolver shares: the base class, naming, limits, errors, verified writes.

A resolver turns a URI into manifest entries (``resolve``) and later brings one entry's object
back to a local file, checked against what the manifest recorded (``fetch``). Implementations
live in :mod:`.local`, :mod:`.http` and :mod:`.cloud`; the package (``artiflow.resolvers``)
holds the table that maps protocols onto them. Backend exceptions become artiflow errors in
:func:`artiflow.remote_errors.backend_errors`, around every call into a resolver.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import CorruptedBlob, TooManyObjects
from ..manifest import ManifestEntry
from ..naming import entry_path

__all__ = [
    "DIGEST_FROM",
    "ObjectCounter",
    "Resolver",
    "StorageOptions",
    "checksum_disabled",
    "corrupted",
    "download_tree",
    "entry_name",
    "last_segment",
    "read_chunks",
    "text_digest",
    "too_many",
    "write_verified",
]

log = logging.getLogger(__name__)

StorageOptions = Mapping[str, Any] | None

#: ``extra["digest_from"]`` when a store reported no checksum and the digest is derived instead.
DIGEST_FROM = "digest_from"


class Resolver:
    """Turns a URI of some protocols into manifest entries and fetches them back, verified.

    Subclasses implement :meth:`resolve` and :meth:`fetch`; :meth:`check` validates a URI
    without any I/O (it is all that runs for ``checksum=False``).
    """

    def check(self, uri: str) -> None:
        """Refuse a URI that must never be recorded; no network, no listing."""

    def reference(self, uri: str) -> str:
        """The canonical ``ref`` recorded for ``uri`` (e.g. a ``file://`` URI for a path)."""
        return uri

    def default_name(self, uri: str) -> str:
        """The entry name of ``uri`` when the caller gives none: its last path segment."""
        return last_segment(uri.split("://", 1)[-1])

    def resolve(
        self,
        uri: str,
        name: str | None,
        *,
        max_objects: int | None,
        storage_options: StorageOptions,
    ) -> list[ManifestEntry]:
        """The entries for ``uri``: one for an object, one per object under a prefix."""
        raise NotImplementedError

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        """Write the object behind ``entry.ref`` to ``dest``, verified against the entry.

        Returns the MD5 (hex) of the bytes written, or None when ``dest`` became a directory
        (a ``checksum=False`` prefix).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- naming ---------------------------------------------------------------------------------
def last_segment(path: str) -> str:
    """The last non-empty ``/`` segment of a path or key (``a/b/`` → ``b``)."""
    return posixpath.basename(path.rstrip("/"))


def entry_name(name: str | None, fallback: str, rel: str | None = None) -> str:
    """The validated entry path of an object: ``name`` (else ``fallback``), then ``/rel``."""
    base = name if name is not None else fallback
    if not base:
        base = "object"
    return entry_path(base if rel is None else f"{base.rstrip('/')}/{rel}")


def text_digest(*parts: object) -> str:
    """MD5 (hex) of the parts joined by newlines: the digest of something that has no checksum."""
    return hashlib.md5("\n".join(str(p) for p in parts).encode(), usedforsecurity=False).hexdigest()


def checksum_disabled(entry: ManifestEntry) -> bool:
    """True for an entry added with ``checksum=False`` (fetched without verification)."""
    return entry.extra.get("checksum") is False


def too_many(uri: str, max_objects: int, count: int, *, exact: bool) -> TooManyObjects:
    """The error for a listing past ``max_objects``; it names the count and the way out."""
    seen = f"{count} found" if exact else f"{count} seen when listing stopped"
    return TooManyObjects(
        f"{uri} holds more than max_objects={max_objects} objects ({seen}); pass "
        "max_objects=None to add them all, or reference a narrower prefix"
    )


class ObjectCounter:
    """Counts listed objects and raises :class:`TooManyObjects` past ``max_objects``."""

    def __init__(self, uri: str, max_objects: int | None) -> None:
        self.uri = uri
        self.max_objects = max_objects
        self.count = 0

    def add(self) -> None:
        self.count += 1
        if self.max_objects is not None and self.count > self.max_objects:
            raise too_many(self.uri, self.max_objects, self.count, exact=False)


# -- verified downloads ---------------------------------------------------------------------
def write_verified(
    dest: str | os.PathLike[str],
    chunks: Iterable[bytes],
    *,
    entry: ManifestEntry,
    md5: str | None = None,
    size: int | None = None,
) -> str:
    """Stream ``chunks`` into ``dest`` through a temp file beside it, then ``os.replace``.

    ``md5`` and ``size``, when given, must match the bytes written, else
    :class:`CorruptedBlob` is raised and nothing is left at ``dest``. Returns the MD5 (hex)
    of the bytes written.
    """
    target = os.fspath(dest)
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(target)}.artiflow-{uuid.uuid4().hex}")
    h = hashlib.md5(usedforsecurity=False)
    written = 0
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                h.update(chunk)
                out.write(chunk)
                written += len(chunk)
        problems = []
        if size is not None and written != size:
            problems.append(f"size {written} bytes, manifest says {size}")
        if md5 is not None and h.hexdigest() != md5:
            problems.append(f"md5 {h.hexdigest()}, manifest says {md5}")
        if problems:
            raise CorruptedBlob(
                f"entry {entry.path!r} ({entry.ref}) does not match its manifest: "
                + "; ".join(problems)
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return h.hexdigest()


def corrupted(entry: ManifestEntry, what: str) -> CorruptedBlob:
    """The error for a referenced object that no longer matches its manifest entry."""
    return CorruptedBlob(f"entry {entry.path!r} ({entry.ref}) changed since it was added: {what}")


def read_chunks(fh: Any, size: int = 1 << 20) -> Iterator[bytes]:
    """Read a binary file object to its end in ``size`` pieces."""
    while chunk := fh.read(size):
        yield chunk


def download_tree(fs: Any, path: str, dest: str | os.PathLike[str]) -> str | None:
    """Copy a file or a whole prefix from ``fs`` to ``dest`` (unverified: ``checksum=False``).

    Returns the file's MD5, or None for a prefix (``dest`` then is a directory).
    """
    target = os.path.abspath(os.fspath(dest))
    if not fs.isdir(path):
        with fs.open(path, "rb") as fh:
            return write_verified(target, read_chunks(fh), entry=_UNCHECKED)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(target)}.artiflow-{uuid.uuid4().hex}")
    try:
        fs.get(path.rstrip("/") + "/", tmp + "/", recursive=True)
        if os.path.isdir(target) and not os.listdir(target):
            os.rmdir(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return None


_UNCHECKED = ManifestEntry("unchecked", "", None)
