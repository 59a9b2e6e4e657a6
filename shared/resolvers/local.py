"""Resolvers for local paths (``file://``) and for any other protocol fsspec knows.

Local content is hashed (MD5, through the hash cache); the generic resolver records what the
filesystem's ``info()`` reports: the size plus whatever checksum or ETag it has.
"""

from __future__ import annotations

import base64
import binascii
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import SourceNotFound, UnsupportedScheme
from ..hashing import hash_files, walk_files
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
    read_chunks,
    text_digest,
    too_many,
    write_verified,
)

__all__ = ["FsspecResolver", "LocalResolver", "info_digest", "local_path"]


def local_path(uri: str) -> str:
    """The absolute local path of a plain path or a ``file://`` URI."""
    if "://" not in uri:
        return os.path.abspath(uri)
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme.lower() not in ("file", "local"):
        raise UnsupportedScheme(f"{uri!r} is not a local path or file:// URI")
    if parts.netloc not in ("", "localhost"):
        raise UnsupportedScheme(f"{uri!r} names a remote host; file:// URIs must be local")
    return os.path.abspath(urllib.request.url2pathname(parts.path))


class LocalResolver(Resolver):
    """Local files and directories: content MD5 via :func:`artiflow.hashing.hash_files`."""

    def reference(self, uri: str) -> str:
        return Path(local_path(uri)).as_uri()

    def default_name(self, uri: str) -> str:
        return os.path.basename(local_path(uri).rstrip(os.sep)) or "root"

    def resolve(
        self,
        uri: str,
        name: str | None,
        *,
        max_objects: int | None,
        storage_options: StorageOptions,
    ) -> list[ManifestEntry]:
        path = local_path(uri)
        if not os.path.isdir(path):
            (hashed,) = hash_files([path])
            target = entry_name(name, self.default_name(uri))
            return [ManifestEntry(target, hashed.digest, hashed.size, ref=Path(path).as_uri())]
        files = walk_files(path)
        if max_objects is not None and len(files) > max_objects:
            raise too_many(uri, max_objects, len(files), exact=True)
        base = self.default_name(uri)
        targets = [entry_name(name, base, rel) for _, rel in files]
        hashed_files = hash_files([abs_path for abs_path, _ in files])
        return [
            ManifestEntry(target, h.digest, h.size, ref=Path(h.path).as_uri())
            for target, h in zip(targets, hashed_files, strict=True)
        ]

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        path = local_path(entry.ref or "")
        if checksum_disabled(entry):
            import fsspec

            return download_tree(fsspec.filesystem("file"), path, dest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after the verified copy
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
            raise SourceNotFound(f"entry {entry.path!r}: {entry.ref} no longer exists") from err
        with fh:
            return write_verified(
                dest, read_chunks(fh), entry=entry, md5=entry.digest, size=entry.size
            )


# -- any other fsspec protocol ---------------------------------------------------------------
#: info() fields that carry a content checksum or version tag, in order of preference
_CHECKSUM_FIELDS = ("md5", "content_md5", "md5Hash", "ETag", "etag", "checksum", "crc32c")
#: fields whose value is an MD5 of the bytes (so a download can be verified byte for byte)
_MD5_FIELDS = frozenset({"md5", "content_md5", "md5Hash"})
_MD5_EXTRA = frozenset(f.lower() for f in _MD5_FIELDS)
_MTIME_FIELDS = ("mtime", "LastModified", "last_modified", "modified", "updated", "created")


def _normalise(field: str, value: Any) -> str:
    text = str(value).strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if field in _MD5_FIELDS and len(text) != 32:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return text
        if len(raw) == 16:
            return raw.hex()
    return text


def info_digest(ref: str, info: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The digest and ``extra`` for an fsspec ``info()`` dict: a checksum field if any, else
    the MD5 of ``ref``, size and mtime (noted in ``extra["digest_from"]``)."""
    for field in _CHECKSUM_FIELDS:
        value = info.get(field)
        if value not in (None, ""):
            return _normalise(field, value), {field.lower(): str(value)}
    mtime = next((info[f] for f in _MTIME_FIELDS if info.get(f) is not None), "")
    return text_digest(ref, info.get("size"), mtime), {DIGEST_FROM: "uri+size+mtime"}


class FsspecResolver(Resolver):
    """Any protocol fsspec knows (``memory://``, ``hdfs://``, ``abfs://``...), via ``info()``."""

    def _fs(self, uri: str, storage_options: StorageOptions) -> tuple[Any, str]:
        import fsspec.core

        try:
            fs, path = fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
        except ValueError as err:
            raise UnsupportedScheme(f"no fsspec filesystem can open {uri!r}: {err}") from err
        return fs, path

    def _entry(self, fs: Any, info: Mapping[str, Any], target: str) -> ManifestEntry:
        ref = fs.unstrip_protocol(info["name"])
        digest, extra = info_digest(ref, info)
        size = info.get("size")
        return ManifestEntry(target, digest, None if size is None else int(size), ref, extra)

    def _walk(self, fs: Any, path: str) -> Iterator[Mapping[str, Any]]:
        for _root, _dirs, files in fs.walk(path, detail=True):
            yield from files.values()

    def resolve(
        self,
        uri: str,
        name: str | None,
        *,
        max_objects: int | None,
        storage_options: StorageOptions,
    ) -> list[ManifestEntry]:
        fs, path = self._fs(uri, storage_options)
        info = fs.info(path)
        if info.get("type") != "directory":
            return [self._entry(fs, info, entry_name(name, self.default_name(uri)))]
        root = fs._strip_protocol(path).rstrip("/")
        base = self.default_name(uri)
        counter = ObjectCounter(uri, max_objects)
        entries = []
        for obj in self._walk(fs, path):
            if obj.get("type") == "directory":
                continue
            counter.add()
            rel = str(obj["name"])[len(root) :].lstrip("/")
            entries.append(self._entry(fs, obj, entry_name(name, base, rel)))
        return entries

    def fetch(
        self, entry: ManifestEntry, dest: str, *, storage_options: StorageOptions
    ) -> str | None:
        fs, path = self._fs(entry.ref or "", storage_options)
        if checksum_disabled(entry):
            return download_tree(fs, path, dest)
        info = fs.info(path)
        digest, _extra = info_digest(entry.ref or "", info)
        if digest != entry.digest:
            raise corrupted(entry, f"digest {digest} now, {entry.digest} recorded")
        byte_md5 = entry.digest if _MD5_EXTRA.intersection(entry.extra) else None
        with fs.open(path, "rb") as fh:
            return write_verified(dest, read_chunks(fh), entry=entry, md5=byte_md5, size=entry.size)
