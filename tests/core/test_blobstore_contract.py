"""One contract for "a blob store", run on a local folder, fsspec memory and S3 (moto server)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import fsspec
import pytest

from artiflow import errors
from artiflow.hashing import hash_files
from artiflow.storage import BlobStore, open_store


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class BlobStoreContract:
    """Subclasses provide the ``blobs`` fixture (an empty :class:`BlobStore`)."""

    def test_paths_are_content_addressed(self, blobs: BlobStore) -> None:
        digest = _md5(b"x")
        assert blobs.oid_to_path(digest).endswith(f"blobs/md5/{digest[:2]}/{digest[2:]}")
        with pytest.raises(errors.CorruptedBlob):
            blobs.oid_to_path("../../etc/passwd")

    def test_put_and_get_bytes(self, blobs: BlobStore) -> None:
        digest = blobs.put_bytes(b"hello")
        assert digest == _md5(b"hello")
        assert blobs.exists(digest)
        assert blobs.get_bytes(digest) == b"hello"
        assert blobs.missing([digest, _md5(b"other")]) == {_md5(b"other")}
        with pytest.raises(errors.CorruptedBlob):
            blobs.put_bytes(b"hello", digest=_md5(b"not hello"))

    def test_put_file_uploads_once_and_verifies(self, blobs: BlobStore, tmp_path: Path) -> None:
        src = tmp_path / "f.bin"
        src.write_bytes(os.urandom(100_000))
        (hashed,) = hash_files([src], cache=None)
        assert blobs.put_file(hashed) == 100_000
        assert blobs.put_file(hashed) == 0  # already held: never uploaded again
        dest = tmp_path / "out.bin"
        assert blobs.get_file(hashed.digest, str(dest)) == 100_000
        assert dest.read_bytes() == src.read_bytes()

    def test_changed_source_is_refused_and_nothing_stored(
        self, blobs: BlobStore, tmp_path: Path
    ) -> None:
        src = tmp_path / "f.bin"
        src.write_bytes(b"A" * 5000)
        (hashed,) = hash_files([src], cache=None)
        src.write_bytes(b"B" * 5000)
        with pytest.raises(errors.SourceChanged):
            blobs.put_file(hashed)
        assert not blobs.exists(hashed.digest)

    def test_missing_blob(self, blobs: BlobStore, tmp_path: Path) -> None:
        with pytest.raises(errors.SourceNotFound):
            blobs.get_bytes(_md5(b"never stored"))
        with pytest.raises(errors.SourceNotFound):
            blobs.get_file(_md5(b"never stored"), str(tmp_path / "x"))

    def test_corruption_is_detected_on_read(self, blobs: BlobStore, tmp_path: Path) -> None:
        digest = blobs.put_bytes(b"original")
        path = blobs.oid_to_path(digest)
        if blobs.local:
            os.chmod(path, 0o644)
        blobs.fs.pipe_file(path, b"tampered")
        with pytest.raises(errors.CorruptedBlob):
            blobs.get_bytes(digest)
        dest = tmp_path / "out"
        with pytest.raises(errors.CorruptedBlob):
            blobs.get_file(digest, str(dest))
        assert not dest.exists()


class TestLocalBlobStore(BlobStoreContract):
    @pytest.fixture
    def blobs(self, tmp_path: Path) -> BlobStore:
        store = open_store(str(tmp_path / "store"))
        assert store.local
        return store


class TestMemoryBlobStore(BlobStoreContract):
    @pytest.fixture
    def blobs(self) -> BlobStore:
        return BlobStore(fsspec.filesystem("memory"), f"/artiflow-{uuid.uuid4().hex}")


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture
    def blobs(self, s3) -> BlobStore:  # type: ignore[no-untyped-def]
        return open_store(f"s3://{s3.plain_bucket}/registry")

    def test_large_files_go_through_a_temporary_key(
        self, blobs: BlobStore, tmp_path: Path, monkeypatch
    ) -> None:  # type: ignore[no-untyped-def]
        import artiflow.storage.blobstore as mod

        monkeypatch.setattr(mod, "SMALL", 1024)
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(300_000))
        (hashed,) = hash_files([src], cache=None)
        assert blobs.put_file(hashed) == 300_000
        assert blobs.get_bytes(hashed.digest) == src.read_bytes()
        assert not blobs.fs.exists(f"{blobs.root}/tmp") or blobs.fs.ls(f"{blobs.root}/tmp") == []


def test_unknown_store_scheme_is_one_error() -> None:
    with pytest.raises(errors.ArtiflowError):
        open_store("nosuchproto://bucket/x")
