"""A content-addressed blob store on any fsspec filesystem.

Built from ``(fs, root)``; :meth:`BlobStore.oid_to_path` is the one function from a digest to a
path (``<root>/blobs/md5/ab/cdef...``) and nothing else builds blob paths. Every write is whole or
nothing (local: temp file + ``os.replace``; object stores: one PUT, or an upload to a temporary
key that is moved into place only once its bytes are verified), and the bytes written are always
the bytes whose MD5 names the blob.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import CorruptedBlob, MissingDependency, SourceChanged, StoreError
from ..hashing import HashedFile
from ..remote_errors import backend_errors, local_write_errors
from ..resolvers import install_hint

__all__ = ["BlobStore", "open_store"]

log = logging.getLogger(__name__)
CHUNK = 4 * 1024 * 1024
SMALL = 16 * 1024 * 1024  # up to this, read into memory and PUT once


def open_store(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    reference_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> BlobStore:
    """Resolve a store URL once, at the edge, into a :class:`BlobStore` (``reference_options``:
    see :attr:`BlobStore.reference_options`)."""
    options = dict(storage_options or {})
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as err:
        hint = install_hint(url.split("://", 1)[0]) if "://" in url else "pip install fsspec"
        raise MissingDependency(
            f"the store {url!r} needs an optional backend: {hint} ({err})"
        ) from err
    except ValueError as err:
        raise StoreError(f"unsupported store URL {url!r}: {err}") from err
    store = BlobStore(fs, root, url=url, options=options)
    store.reference_options = {p: dict(o) for p, o in (reference_options or {}).items()}
    return store


def _reported_md5(info: Mapping[str, Any]) -> str | None:
    """The content MD5 an object store reports in ``info()``, if it reports one."""
    md5_b64 = info.get("md5Hash")
    if isinstance(md5_b64, str):
        try:
            return base64.b64decode(md5_b64).hex()
        except ValueError:
            return None
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if len(etag) == 32 and "-" not in etag:  # a multipart ETag is "<md5 of md5s>-<parts>"
        return etag.lower()
    return None


def _md5_bytes(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class BlobStore:
    """Blobs named by their MD5, under ``<root>/blobs/md5/``.

    ``options`` are the fsspec options the store was opened with (its endpoint and
    credentials): references on the same filesystem are fetched with them, unless
    ``reference_options`` (fsspec options by protocol, what the registry adds references with:
    :func:`artiflow.config.options_by_protocol`) says otherwise.
    """

    def __init__(
        self, fs: Any, root: str, *, url: str | None = None, options: Mapping[str, Any] = {}
    ) -> None:
        self.fs = fs
        self.options = dict(options)
        self.reference_options: dict[str, dict[str, Any]] = {}
        self.root = root.rstrip("/")
        self.url = (
            url or f"{fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]}://{root}"
        )
        self.local = isinstance(fs, LocalFileSystem)
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        self._s3 = any(p in ("s3", "s3a") for p in protocols)

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    # ------------------------------------------------------------------ paths
    def oid_to_path(self, digest: str) -> str:
        if len(digest) != 32 or not all(c in "0123456789abcdef" for c in digest):
            raise CorruptedBlob(f"not an MD5 hex digest: {digest!r}")
        return f"{self.root}/blobs/md5/{digest[:2]}/{digest[2:]}"

    def _tmp_path(self) -> str:
        return f"{self.root}/tmp/{uuid.uuid4().hex}"

    # ------------------------------------------------------------------ queries
    def exists(self, digest: str) -> bool:
        path = self.oid_to_path(digest)
        if self.local:
            return os.path.isfile(path)
        with backend_errors(f"store {self.url}", writing=True):
            return bool(self.fs.exists(path))

    def missing(self, digests: Iterable[str], workers: int = 16) -> set[str]:
        """The digests not yet in the store (checked in parallel on remote stores)."""
        unique = sorted(set(digests))
        if self.local or len(unique) < 4:
            return {d for d in unique if not self.exists(d)}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            present = list(pool.map(self.exists, unique))
        return {d for d, here in zip(unique, present, strict=True) if not here}

    def check_reachable(self) -> None:
        """Raise :class:`StoreError` if the store's root cannot be listed or created."""
        with backend_errors(f"store {self.url}", writing=True):
            if self.local:
                os.makedirs(self.root, exist_ok=True)
                if not os.access(self.root, os.W_OK):
                    raise PermissionError(f"{self.root} is not writable")
            else:
                self.fs.ls(self.root.split("/", 1)[0] if "/" in self.root else self.root)

    # ------------------------------------------------------------------ writes
    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data``; returns its digest. ``digest``, if given, must match."""
        actual = _md5_bytes(data)
        if digest is not None and digest != actual:
            raise CorruptedBlob(f"bytes hash to {actual}, not the expected {digest}")
        if not self.exists(actual):
            self._write_small(actual, data)
        return actual

    def put_file(self, source: HashedFile) -> int:
        """Upload a local file added earlier; returns the bytes written (0 if already held).

        The file is re-hashed while it is streamed: if its content no longer matches the digest
        taken when it was added, nothing is stored and :class:`SourceChanged` is raised.
        """
        if self.exists(source.digest):
            return 0
        if not os.path.isfile(source.path):
            raise SourceChanged(f"{source.path} was removed after it was added to the artifact")
        with backend_errors(
            f"blob {source.digest} ({source.path}) to store {self.url}", writing=True
        ):
            if self.local:
                self._put_local(source)
            elif source.size <= SMALL:
                with open(source.path, "rb") as fh:
                    data = fh.read()
                self._check_source(source, _md5_bytes(data), len(data))
                self._write_small(source.digest, data)
            else:
                self._put_large(source)
        return source.size

    @staticmethod
    def _check_source(source: HashedFile, digest: str, size: int) -> None:
        if digest != source.digest or size != source.size:
            raise SourceChanged(
                f"{source.path} changed after it was added to the artifact "
                f"(md5 {source.digest} → {digest}, {source.size} → {size} bytes); "
                "add it again to log its new content"
            )

    def _put_local(self, source: HashedFile) -> None:
        final = self.oid_to_path(source.digest)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            h = hashlib.md5(usedforsecurity=False)
            size = 0
            with open(source.path, "rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
            self._check_source(source, h.hexdigest(), size)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _write_small(self, digest: str, data: bytes) -> None:
        path = self.oid_to_path(digest)
        with backend_errors(f"blob {digest} to store {self.url}", writing=True):
            if self.local:
                folder = os.path.dirname(path)
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, path)
                except BaseException:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                    raise
                return
            kwargs: dict[str, Any] = {}
            if self._s3:  # S3 refuses a PUT whose bytes do not match Content-MD5
                kwargs["ContentMD5"] = base64.b64encode(bytes.fromhex(digest)).decode()
            self.fs.pipe_file(path, data, **kwargs)
            self._check_remote(path, digest, len(data))

    def _put_large(self, source: HashedFile) -> None:
        tmp = self._tmp_path()
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            with open(source.path, "rb") as src, self.fs.open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
            self._check_source(source, h.hexdigest(), size)
            self._check_remote(tmp, source.digest, size)
            self.fs.mv(tmp, self.oid_to_path(source.digest))
        except BaseException:
            self._discard(tmp)
            raise

    def _discard(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:  # the temporary key may not exist; nothing visible depends on it
            log.debug("could not remove temporary upload %s", path, exc_info=True)

    def _check_remote(self, path: str, digest: str, size: int) -> None:
        """The stored object must have the size sent and, where the store reports one, the
        MD5 (GCS ``md5Hash``; an S3 ETag that is not a multipart one)."""
        info = self.fs.info(path)
        stored = _reported_md5(info)
        if int(info.get("size", -1)) != size or stored not in (None, digest):
            self._discard(path)
            raise CorruptedBlob(
                f"store {self.url} holds {info.get('size')} bytes (md5 {stored}) for blob "
                f"{digest}, sent {size}"
            )

    # ------------------------------------------------------------------ reads
    def get_bytes(self, digest: str) -> bytes:
        path = self.oid_to_path(digest)
        with backend_errors(f"blob {digest} in store {self.url}"):
            if self.local:
                with open(path, "rb") as fh:
                    data = fh.read()
            else:
                data = self.fs.cat_file(path)
        actual = _md5_bytes(data)
        if actual != digest:
            raise CorruptedBlob(f"blob {digest} in store {self.url} is corrupted (md5 {actual})")
        return data

    def get_file(self, digest: str, dest: str) -> int:
        """Copy a blob to ``dest`` (a temporary path the caller owns), verifying every byte."""
        path = self.oid_to_path(digest)
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        with backend_errors(f"blob {digest} in store {self.url}"), local_write_errors(dest):
            opener = open if self.local else self.fs.open
            with opener(path, "rb") as src, open(dest, "wb") as dst:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
        if h.hexdigest() != digest:
            os.unlink(dest)
            raise CorruptedBlob(
                f"blob {digest} in store {self.url} is corrupted (md5 {h.hexdigest()})"
            )
        return size
