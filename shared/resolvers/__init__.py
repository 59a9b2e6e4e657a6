"""Reference resolvers: turn a path or URI into manifest entries, and fetch them back verified.

:mod:`.registry` maps protocols onto :class:`Resolver` objects, loading built-in ones on first
use (a protocol known only to fsspec goes through the generic resolver). Adding a protocol is
one call::

    register_resolver(["myproto"], MyResolver())

Built in: local paths and ``file://`` (content MD5 through the hash cache), ``http(s)://``
(ETag, else Content-Length and Last-Modified), ``s3://`` (ETag, VersionId), ``gs://``
(md5Hash, generation).
"""

from __future__ import annotations

import os

from ..errors import TooManyObjects, UnsupportedScheme
from ..manifest import ManifestEntry
from ..naming import entry_path
from ..remote_errors import backend_errors
from .base import Resolver, StorageOptions, check_uri, entry_name, text_digest
from .registry import (
    KNOWN_RESOLVERS,
    RESOLVERS,
    install_hint,
    register_resolver,
    resolver_for,
)

__all__ = [
    "KNOWN_RESOLVERS",
    "RESOLVERS",
    "Resolver",
    "StorageOptions",
    "check_uri",
    "fetch_reference",
    "install_hint",
    "register_resolver",
    "resolve_reference",
    "resolver_for",
]


def resolve_reference(
    uri: str,
    name: str | None = None,
    *,
    checksum: bool = True,
    max_objects: int | None = 10_000,
    storage_options: StorageOptions = None,
) -> list[ManifestEntry]:
    """The manifest entries that reference ``uri`` without copying it.

    A single object gives one entry named ``name`` (default: the object's base name); a
    directory or prefix gives one entry per object, at ``<name or prefix base name>/<key>``.
    More than ``max_objects`` objects raises :class:`~artiflow.errors.TooManyObjects`
    (``None`` lifts the bound). ``checksum=False`` records the URI alone: one entry whose
    digest is the URI's MD5, no listing and no network.

    Raises :class:`~artiflow.errors.UnsupportedScheme`, :class:`~artiflow.errors.SourceNotFound`,
    :class:`~artiflow.errors.UnsafeReference`, :class:`~artiflow.errors.MissingDependency`,
    :class:`~artiflow.errors.InvalidPath` or :class:`~artiflow.errors.StoreError`; nothing is
    returned in part. A URI carrying user info or a signature in any link is refused before
    anything else, and no message repeats it.
    """
    if isinstance(uri, str):
        check_uri(uri)
    if name is not None:
        entry_path(name)
    if max_objects is not None and (
        isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 0
    ):
        raise TooManyObjects(f"max_objects must be an integer >= 0 or None, got {max_objects!r}")
    resolver = resolver_for(uri)
    resolver.check(uri)
    if not checksum:
        ref = resolver.reference(uri)
        target = entry_name(name, resolver.default_name(uri))
        return [ManifestEntry(target, text_digest(ref), None, ref, {"checksum": False})]
    with backend_errors(uri):
        return resolver.resolve(uri, name, max_objects=max_objects, storage_options=storage_options)


def fetch_reference(
    entry: ManifestEntry, dest: str | os.PathLike[str], *, storage_options: StorageOptions = None
) -> str | None:
    """Download a reference entry's object to ``dest``, verified against the manifest.

    The bytes go to a temp file beside ``dest`` and are moved into place only once they match
    what the entry recorded (MD5 for local files and GCS, ETag/VersionId for S3, ETag or
    Last-Modified, and Content-Length for HTTP); a mismatch raises
    :class:`~artiflow.errors.CorruptedBlob` and leaves nothing at ``dest``. Entries added with
    ``checksum=False`` are copied unverified (a prefix becomes a directory at ``dest``).

    Returns the MD5 (hex) of the bytes written, so the caller need not read them again; None
    when ``dest`` is a directory.
    """
    if entry.ref is None:
        raise UnsupportedScheme(f"entry {entry.path!r} is stored content, not a reference")
    resolver = resolver_for(entry.ref)
    with backend_errors(entry.ref):
        return resolver.fetch(entry, os.fspath(dest), storage_options=storage_options)
