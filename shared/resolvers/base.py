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
import re
import shutil
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import CorruptedBlob, TooManyObjects, UnsafeReference
from ..manifest import ManifestEntry
from ..naming import entry_path

__all__ = [
    "DIGEST_FROM",
    "ObjectCounter",
    "Resolver",
    "StorageOptions",
    "check_uri",
    "checksum_disabled",
    "corrupted",
    "download_tree",
    "entry_name",
    "last_segment",
    "read_chunks",
    "redact_uri",
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
        """Refuse a URI this protocol must never record; no network, no listing. (User info
        and signatures are refused for every protocol before this, by :func:`check_uri`.)"""

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


# -- what a reference must never carry ----------------------------------------------------------
#: query, fragment or path parameters that sign a URL or carry a secret, compared lower-case
SECRET_PARAMS = frozenset(
    {
        "sig",
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "googleaccessid",
        "awsaccesskeyid",
        "key-pair-id",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "auth",
        "authorization",
        "api_key",
        "apikey",
        "api-key",
        "key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "sessionid",
        "session_id",
        "session-id",
        "jwt",
    }
)
_SECRET_SUFFIX = re.compile(
    r"(signature|token|secret|passw(or)?d|credentials?|apikey|api[-_]key|session[-_]?id)$"
)
_PARAMS_START = re.compile(r"[?;#]")
_PARAMS_SPLIT = re.compile(r"[?&;#]")
_AUTHORITY_END = re.compile(r"[/?#]")


def _decoded(text: str) -> str:
    """``text`` percent-decoded until it stops changing (``%253D`` is ``=`` too)."""
    for _ in range(4):
        decoded = urllib.parse.unquote(text)
        if decoded == text:
            break
        text = decoded
    return text


def _split_userinfo(rest: str) -> tuple[bool, str]:
    """``(carries user info, the rest without it)`` for what follows ``scheme://``.

    ``user:secret@host`` is user info; so is ``KEY:SEC/RET@bucket`` (a secret holding a
    ``/``: an authority with a ``:`` that is no port, and an ``@`` after it)."""
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if "@" in authority:
        return True, rest[authority.rindex("@") + 1 :]
    _host, colon, port = authority.rpartition(":")
    if colon and not port.isdigit() and not authority.startswith("[") and "@" in rest:
        return True, rest[rest.index("@") + 1 :]
    return False, rest


def _secret_param(rest: str) -> str | None:
    """The first parameter (after ``?``, ``;`` or ``#``, however percent-encoded) whose
    name says it is a signature, a token or a password."""
    text = _decoded(rest)
    start = _PARAMS_START.search(text)
    if start is None:
        return None
    for token in _PARAMS_SPLIT.split(text[start.start() :]):
        key = token.split("=", 1)[0].strip()
        lowered = key.lower()
        if lowered in SECRET_PARAMS or _SECRET_SUFFIX.search(lowered):
            return key
    return None


def _links(uri: str) -> list[tuple[str, str]]:
    """``(scheme, rest)`` of every ``scheme://rest`` link of a (chained ``a::b``) URI."""
    links = []
    for link in uri.split("::"):
        scheme, sep, rest = link.partition("://")
        if sep:
            links.append((scheme, rest))
    return links


def redact_uri(uri: str) -> str:
    """``uri`` with no user info and no parameters in any link: safe to show in an error."""
    out = []
    for link in uri.split("::"):
        scheme, sep, rest = link.partition("://")
        if sep:
            rest = _PARAMS_START.split(_decoded(_split_userinfo(rest)[1]), maxsplit=1)[0]
        out.append(f"{scheme}{sep}{rest}")
    return "::".join(out)


def check_uri(uri: str) -> None:
    """Refuse, before any I/O, a URI that would record a secret in a manifest: user info
    (``user:password@``) or a signature or token parameter in any link of it (``a::b::c``).
    The message never repeats the secret."""
    for scheme, rest in _links(uri):
        has_userinfo, after = _split_userinfo(rest)
        if has_userinfo:
            raise UnsafeReference(
                f"{redact_uri(uri)}: its {scheme}:// part carries user info (user:password@), "
                "which would be recorded in the manifest; reference the object without it and "
                "pass credentials through storage options"
            )
        key = _secret_param(after)
        if key is not None:
            raise UnsafeReference(
                f"{redact_uri(uri)}: the URI has a signed or secret parameter {key!r}; "
                "signatures and tokens would be recorded in the manifest. Reference an "
                "unsigned URL (or the object's s3:// or gs:// URI) instead"
            )


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
