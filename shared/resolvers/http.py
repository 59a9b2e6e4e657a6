"""The ``http(s)://`` resolver: ETag and Content-Length from a HEAD, with stdlib urllib.

Without an ETag the digest is derived from the URL, Content-Length and Last-Modified (whichever
the server sends; ``extra["digest_from"]`` names them), so changed content gets a new digest.

A URL that carries credentials (``user:password@``) or a signed or secret query parameter is
refused before any request (:func:`~artiflow.resolvers.base.check_uri`, which every reference
passes): nothing secret may ever land in a manifest.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from http.client import HTTPMessage
from typing import Any

from ..manifest import ManifestEntry
from .base import (
    DIGEST_FROM,
    Resolver,
    StorageOptions,
    check_uri,
    checksum_disabled,
    corrupted,
    entry_name,
    read_chunks,
    text_digest,
    write_verified,
)

__all__ = ["HttpResolver", "normalise_etag"]

TIMEOUT = 60.0
_HEADERS = {"User-Agent": "artiflow", "Accept-Encoding": "identity"}


def normalise_etag(etag: str) -> str:
    """An ETag without its ``W/`` prefix and quotes."""
    text = etag.strip()
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"')


class _KeepHeadOnRedirect(urllib.request.HTTPRedirectHandler):
    """urllib turns a redirected HEAD into a GET; keep it a HEAD."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and req.get_method() == "HEAD":
            new.method = "HEAD"
        return new


_opener = urllib.request.build_opener(_KeepHeadOnRedirect)


def _content_length(headers: Message) -> int | None:
    value = headers.get("Content-Length")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def head(url: str) -> Message:
    """Response headers of a HEAD, or of a GET whose body is never read where HEAD is refused."""
    request = urllib.request.Request(url, method="HEAD", headers=_HEADERS)
    try:
        with _opener.open(request, timeout=TIMEOUT) as resp:
            return resp.headers  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        if err.code not in (405, 501):
            raise
    request = urllib.request.Request(url, method="GET", headers=_HEADERS)
    with _opener.open(request, timeout=TIMEOUT) as resp:
        return resp.headers  # type: ignore[no-any-return]


#: ``extra`` key of the Last-Modified header behind a derived digest (checked again at fetch)
_LAST_MODIFIED = "last_modified"


def _derived_digest(
    uri: str, size: int | None, last_modified: str | None
) -> tuple[str, dict[str, Any]]:
    """The digest and ``extra`` of a response without an ETag.

    The MD5 of the URL plus whichever of Content-Length and Last-Modified were sent, so a
    changed object gets a new digest whenever the server says anything about its version.
    """
    parts: list[object] = [uri]
    sources = ["uri"]
    if size is not None:
        parts.append(size)
        sources.append("size")
    if last_modified:
        parts.append(last_modified)
        sources.append("mtime")
    extra: dict[str, Any] = {DIGEST_FROM: "+".join(sources)}
    if last_modified:
        extra[_LAST_MODIFIED] = last_modified
    return text_digest(*parts), extra


class HttpResolver(Resolver):
    """``http://`` and ``https://`` objects; one entry per URL (there is no listing)."""

    def default_name(self, uri: str) -> str:
        parts = urllib.parse.urlsplit(uri)
        segment = urllib.parse.unquote(parts.path).rstrip("/").rsplit("/", 1)[-1]
        return segment or parts.hostname or "index"

    def resolve(
        self,
        uri: str,
        name: str | None,
        *,
        max_objects: int | None,
        storage_options: StorageOptions,
    ) -> list[ManifestEntry]:
        target = entry_name(name, self.default_name(uri))
        headers = head(uri)
        size = _content_length(headers)
        etag = headers.get("ETag")
        if etag:
            return [ManifestEntry(target, normalise_etag(etag), size, uri, {"etag": etag})]
        digest, extra = _derived_digest(uri, size, headers.get("Last-Modified"))
        return [ManifestEntry(target, digest, size, uri, extra)]

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        url = entry.ref or ""
        check_uri(url)
        request = urllib.request.Request(url, method="GET", headers=_HEADERS)
        with _opener.open(request, timeout=TIMEOUT) as resp:
            if checksum_disabled(entry):
                return write_verified(dest, read_chunks(resp), entry=entry)
            recorded = entry.extra.get("etag")
            etag = resp.headers.get("ETag")
            if recorded and normalise_etag(etag or "") != normalise_etag(str(recorded)):
                raise corrupted(entry, f"ETag {etag!r} now, {recorded!r} recorded")
            recorded = entry.extra.get(_LAST_MODIFIED)
            modified = resp.headers.get("Last-Modified")
            if recorded and modified != recorded:
                raise corrupted(entry, f"Last-Modified {modified!r} now, {recorded!r} recorded")
            length = _content_length(resp.headers)
            if entry.size is not None and length is not None and length != entry.size:
                raise corrupted(entry, f"Content-Length {length} now, {entry.size} recorded")
            return write_verified(dest, read_chunks(resp), entry=entry, size=entry.size)
