"""Object-store resolvers: ``s3://`` through s3fs and ``gs://`` through gcsfs (both optional).

Everything recorded comes from the bucket listing, never a HEAD per object: S3's ETag,
VersionId and size; GCS's md5Hash (as hex), generation and size. The listing is paginated
here, page by page, so an unbounded prefix (``max_objects=None``) never builds more than the
entries themselves. A key that is itself an object resolves to that object; otherwise the key
is a prefix and expands to one entry per object below it (folder markers skipped).
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import SourceNotFound
from ..manifest import ManifestEntry
from .base import (
    DIGEST_FROM,
    ObjectCounter,
    Resolver,
    StorageOptions,
    checksum_disabled,
    corrupted,
    download_tree,
    entry_name,
    last_segment,
    read_chunks,
    text_digest,
    write_verified,
)
from .registry import import_backend

__all__ = ["GCSResolver", "ObjectStoreResolver", "S3Resolver"]

log = logging.getLogger(__name__)

Listing = Callable[[str, int | None], Iterator[Mapping[str, Any]]]


def split_bucket(uri: str) -> tuple[str, str]:
    """``("bucket", "key/or/prefix")`` of ``scheme://bucket/key/or/prefix``."""
    bucket, _, key = uri.split("://", 1)[-1].partition("/")
    if not bucket:
        raise SourceNotFound(f"{uri!r} names no bucket")
    return bucket, key


class ObjectStoreResolver(Resolver):
    """The shared walk: exact object first, else the prefix below ``key/``, page by page."""

    scheme = ""

    def _listing(self, uri: str, storage_options: StorageOptions) -> Listing:
        """``list(prefix, limit)``: the store's object records under a prefix, page by page."""
        raise NotImplementedError

    def _entry(self, bucket: str, obj: Mapping[str, Any], target: str) -> ManifestEntry:
        raise NotImplementedError

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        raise NotImplementedError

    @staticmethod
    def _size(obj: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def resolve(
        self,
        uri: str,
        name: str | None,
        *,
        max_objects: int | None,
        storage_options: StorageOptions,
    ) -> list[ManifestEntry]:
        bucket, key = split_bucket(uri)
        listing = self._listing(uri, storage_options)
        if key and not key.endswith("/"):
            first = next(iter(listing(key, 1)), None)
            if first is not None and self._key(first) == key:
                return [self._entry(bucket, first, entry_name(name, last_segment(key)))]
        prefix = key.rstrip("/") + "/" if key else ""
        base = last_segment(key) if key else bucket
        counter = ObjectCounter(uri, max_objects)
        entries: list[ManifestEntry] = []
        for obj in listing(prefix, None):
            obj_key = self._key(obj)
            if obj_key.endswith("/"):
                if self._size(obj):
                    log.warning(
                        "skipping %s://%s/%s: a key ending in '/' with content",
                        self.scheme,
                        bucket,
                        obj_key,
                    )
                continue  # a folder marker
            counter.add()
            entries.append(self._entry(bucket, obj, entry_name(name, base, obj_key[len(prefix) :])))
        if not entries:
            raise SourceNotFound(f"{uri}: no such object, and no objects under that prefix")
        return entries


# -- S3 -------------------------------------------------------------------------------------
def _s3_pages(fs: Any, method: str, **kwargs: Any) -> Iterator[Mapping[str, Any]]:
    while True:
        page: Mapping[str, Any] = fs.call_s3(method, **kwargs)
        yield page
        if not page.get("IsTruncated"):
            return
        if method == "list_object_versions":
            kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
            kwargs["VersionIdMarker"] = page.get("NextVersionIdMarker", "")
        else:
            kwargs["ContinuationToken"] = page["NextContinuationToken"]


def _latest(page: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The current version of each key (a key whose latest is a delete marker is gone)."""
    for obj in page.get("Versions", ()):
        if obj.get("IsLatest"):
            yield obj


class S3Resolver(ObjectStoreResolver):
    """``s3://bucket/key``: digest = ETag, ``extra = {"etag", "version_id"}``, size.

    Objects are listed with ``ListObjectVersions`` (the latest version of each key, delete
    markers excluded), so a versioned bucket's VersionId is recorded without a HEAD per
    object; without the permission for it, ``ListObjectsV2`` is used and no version recorded.
    """

    scheme = "s3"

    def reference(self, uri: str) -> str:
        return "s3://" + uri.split("://", 1)[-1]

    def _fs(self, storage_options: StorageOptions, **extra: Any) -> Any:
        s3fs = import_backend("s3fs")
        return s3fs.S3FileSystem(**{**dict(storage_options or {}), **extra})

    def _listing(self, uri: str, storage_options: StorageOptions) -> Listing:
        fs = self._fs(storage_options)
        bucket, _key = split_bucket(uri)
        state = {"versions": True}

        def listing(prefix: str, limit: int | None) -> Iterator[Mapping[str, Any]]:
            args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if limit is not None:
                args["MaxKeys"] = limit
            if state["versions"]:
                pages = _s3_pages(fs, "list_object_versions", **args)
                try:
                    first = next(pages)
                except PermissionError:
                    log.info("no permission to list versions in %s; recording no VersionId", bucket)
                    state["versions"] = False
                else:
                    yield from _latest(first)
                    if limit is None:
                        for page in pages:
                            yield from _latest(page)
                    return
            for page in _s3_pages(fs, "list_objects_v2", **args):
                yield from page.get("Contents", ())
                if limit is not None:
                    return

        return listing

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        return str(obj["Key"])

    @staticmethod
    def _size(obj: Mapping[str, Any]) -> int:
        return int(obj.get("Size") or 0)

    def _entry(self, bucket: str, obj: Mapping[str, Any], target: str) -> ManifestEntry:
        ref = f"s3://{bucket}/{obj['Key']}"
        etag = obj.get("ETag")
        extra: dict[str, Any] = {}
        if etag:
            digest = str(etag).strip('"')
            extra["etag"] = str(etag)
        else:
            digest = text_digest(ref, obj.get("Size"), obj.get("LastModified"))
            extra[DIGEST_FROM] = "uri+size+mtime"
        version_id = obj.get("VersionId")
        if version_id and version_id != "null":
            extra["version_id"] = str(version_id)
        return ManifestEntry(target, digest, self._size(obj), ref, extra)

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        ref = entry.ref or ""
        path = ref.split("://", 1)[-1]
        version_id = entry.extra.get("version_id")
        if checksum_disabled(entry):
            return download_tree(self._fs(storage_options), path, dest)
        fs = self._fs(storage_options, version_aware=bool(version_id))
        try:
            fh = fs.open(path, "rb", version_id=version_id) if version_id else fs.open(path, "rb")
        except FileNotFoundError:
            if version_id and self._fs(storage_options).exists(path):
                raise corrupted(entry, f"version {version_id} no longer exists") from None
            raise
        with fh:
            details: Mapping[str, Any] = getattr(fh, "details", {}) or {}
            recorded = str(entry.extra.get("etag") or "").strip('"')
            etag = str(details.get("ETag") or "").strip('"')
            if recorded and etag and etag != recorded:
                raise corrupted(entry, f"ETag {etag} now, {recorded} recorded")
            encrypted = details.get("ServerSideEncryption") == "aws:kms" or details.get(
                "SSECustomerAlgorithm"
            )
            plain_md5 = len(recorded) == 32 and "-" not in recorded and not encrypted
            return write_verified(
                dest,
                read_chunks(fh),
                entry=entry,
                md5=recorded if plain_md5 else None,
                size=entry.size,
            )


# -- GCS ------------------------------------------------------------------------------------
def _md5_hex(md5_b64: str) -> str | None:
    try:
        raw = base64.b64decode(md5_b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


class GCSResolver(ObjectStoreResolver):
    """``gs://bucket/key``: digest = md5Hash as hex, ``extra = {"generation"}``, size."""

    scheme = "gs"

    def reference(self, uri: str) -> str:
        return "gs://" + uri.split("://", 1)[-1]

    def _fs(self, storage_options: StorageOptions, **extra: Any) -> Any:
        gcsfs = import_backend("gcsfs")
        return gcsfs.GCSFileSystem(**{**dict(storage_options or {}), **extra})

    def _listing(self, uri: str, storage_options: StorageOptions) -> Listing:
        fs = self._fs(storage_options)
        bucket, _key = split_bucket(uri)

        def listing(prefix: str, limit: int | None) -> Iterator[Mapping[str, Any]]:
            token: str | None = None
            while True:
                page = fs.call(
                    "GET",
                    "b/{}/o",
                    bucket,
                    json_out=True,
                    prefix=prefix or None,
                    maxResults=limit or 1000,
                    pageToken=token,
                )
                yield from page.get("items", ())
                token = page.get("nextPageToken")
                if limit is not None or not token:
                    return

        return listing

    @staticmethod
    def _key(obj: Mapping[str, Any]) -> str:
        return str(obj["name"])

    @staticmethod
    def _size(obj: Mapping[str, Any]) -> int:
        return int(obj.get("size") or 0)

    def _entry(self, bucket: str, obj: Mapping[str, Any], target: str) -> ManifestEntry:
        ref = f"gs://{bucket}/{obj['name']}"
        generation = obj.get("generation")
        extra: dict[str, Any] = {}
        if generation is not None:
            extra["generation"] = str(generation)
        digest = _md5_hex(str(obj.get("md5Hash") or ""))
        if digest is None:  # composite objects have a crc32c but no md5Hash
            digest = text_digest(ref, generation, obj.get("crc32c"))
            extra[DIGEST_FROM] = "uri+generation+crc32c"
            if obj.get("crc32c"):
                extra["crc32c"] = str(obj["crc32c"])
        return ManifestEntry(target, digest, self._size(obj), ref, extra)

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        ref = entry.ref or ""
        path = ref.split("://", 1)[-1]
        fs = self._fs(storage_options)
        if checksum_disabled(entry):
            return download_tree(fs, path, dest)
        generation = entry.extra.get("generation")
        try:
            fh = fs.open(path, "rb", generation=generation)
        except FileNotFoundError:
            if generation and fs.exists(path):
                raise corrupted(entry, f"generation {generation} no longer exists") from None
            raise
        with fh:
            details: Mapping[str, Any] = getattr(fh, "details", {}) or {}
            now = details.get("generation")
            if generation and now and str(now) != str(generation):
                raise corrupted(entry, f"generation {now} now, {generation} recorded")
            byte_md5 = None if DIGEST_FROM in entry.extra else entry.digest
            return write_verified(dest, read_chunks(fh), entry=entry, md5=byte_md5, size=entry.size)
