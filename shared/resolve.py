"""Reference resolvers: turn a path or URI into manifest entries, and fetch them back verified.

Protocols map onto :class:`Resolver` objects in :data:`RESOLVERS`; a protocol not registered
there but known to fsspec goes through the generic resolver (``info()``/``walk()``). Adding a
protocol is one call::

    register_resolver(["myproto"], MyResolver())

Built in: local paths and ``file://`` (content MD5 through the hash cache), ``http(s)://``
(ETag, else Content-Length and Last-Modified), ``s3://`` (ETag, VersionId), ``gs://``
(md5Hash, generation).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .errors import TooManyObjects, UnsupportedScheme
from .manifest import ManifestEntry
from .naming import entry_path
from .resolve_base import Resolver, StorageOptions, backend_errors, entry_name, text_digest
from .resolve_cloud import GCSResolver, S3Resolver
from .resolve_http import HttpResolver
from .resolve_local import FsspecResolver, LocalResolver

__all__ = [
    "RESOLVERS",
    "Resolver",
    "fetch_reference",
    "register_resolver",
    "resolve_reference",
    "resolver_for",
]

#: protocol → resolver; consulted before the generic fsspec resolver
RESOLVERS: dict[str, Resolver] = {}

_GENERIC = FsspecResolver()
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")


def register_resolver(protocols: str | Iterable[str], resolver: Resolver) -> None:
    """Route URIs of these protocols (``"s3"``, ``["gs", "gcs"]``...) to ``resolver``."""
    for protocol in [protocols] if isinstance(protocols, str) else protocols:
        RESOLVERS[protocol.lower()] = resolver


for _builtin in (LocalResolver(), HttpResolver(), S3Resolver(), GCSResolver()):
    register_resolver(_builtin.protocols, _builtin)


def _fsspec_knows(protocol: str) -> bool:
    from fsspec.registry import known_implementations, registry

    return protocol in known_implementations or protocol in registry


def resolver_for(uri: str) -> Resolver:
    """The resolver for a URI (a plain path is local); :class:`UnsupportedScheme` if none."""
    if not isinstance(uri, str) or not uri:
        raise UnsupportedScheme(f"a reference must be a non-empty path or URI, got {uri!r}")
    if "::" in uri.split("://", 1)[0]:  # an fsspec chain such as simplecache::s3://...
        protocol = uri.split("::", 1)[0].lower()
    else:
        match = _SCHEME_RE.match(uri)
        if match is None:
            return RESOLVERS["file"]
        protocol = match.group(1).lower()
    resolver = RESOLVERS.get(protocol)
    if resolver is not None:
        return resolver
    if _fsspec_knows(protocol):
        return _GENERIC
    raise UnsupportedScheme(
        f"no resolver for {protocol!r} in {uri!r}: artiflow knows "
        f"{', '.join(sorted(RESOLVERS))} and every protocol fsspec knows"
    )


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
    returned in part.
    """
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
