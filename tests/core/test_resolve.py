"""Reference resolvers against real servers: moto S3, the GCS emulator, a stdlib HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from artiflow.errors import (
    CorruptedBlob,
    InvalidPath,
    MissingDependency,
    SourceNotFound,
    StoreError,
    TooManyObjects,
    UnsafeReference,
    UnsupportedScheme,
)
from artiflow.hashing import default_hash_cache
from artiflow.manifest import ManifestEntry
from artiflow.resolvers import (
    KNOWN_RESOLVERS,
    RESOLVERS,
    Resolver,
    fetch_reference,
    register_resolver,
    resolve_reference,
    resolver_for,
)

if TYPE_CHECKING:
    from tests.conftest import GCSEnv, HTTPEnv, S3Env


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def by_path(entries: list[ManifestEntry]) -> dict[str, ManifestEntry]:
    return {e.path: e for e in entries}


def old(path: Path) -> Path:
    """Age a file past the hash cache's racy window."""
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


# -- local ------------------------------------------------------------------------------------
def test_local_file_path_and_file_uri(tmp_path: Path) -> None:
    f = tmp_path / "my data.bin"
    f.write_bytes(b"hello")
    (entry,) = resolve_reference(str(f))
    assert entry == ManifestEntry("my data.bin", md5(b"hello"), 5, f.as_uri(), {})
    assert entry.ref == "file://" + urllib.parse.quote(str(f))
    (same,) = resolve_reference(f.as_uri(), name="models/m.bin")
    assert (same.path, same.digest, same.ref) == ("models/m.bin", md5(b"hello"), f.as_uri())


def test_local_file_goes_through_the_hash_cache(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_bytes(b"abc")
    old(f)
    resolve_reference(str(f))
    st = f.stat()
    assert default_hash_cache().get(str(f), st.st_ino, st.st_size, st.st_mtime_ns) == md5(b"abc")


def test_local_directory_expands_sorted(tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (root / "b.png").write_bytes(b"b")
    (root / "a.png").write_bytes(b"a")
    (root / "sub" / "c.png").write_bytes(b"c")
    entries = resolve_reference(str(root))
    assert [e.path for e in entries] == ["images/a.png", "images/b.png", "images/sub/c.png"]
    assert entries[2].ref == (root / "sub" / "c.png").as_uri()
    assert entries[2].digest == md5(b"c")
    named = resolve_reference(root.as_uri() + "/", name="pics")
    assert [e.path for e in named] == ["pics/a.png", "pics/b.png", "pics/sub/c.png"]


def test_local_directory_max_objects(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(str(i))
    with pytest.raises(TooManyObjects, match=r"5 found.*max_objects=None"):
        resolve_reference(str(tmp_path), max_objects=4)
    assert len(resolve_reference(str(tmp_path), max_objects=None)) == 5
    assert len(resolve_reference(str(tmp_path), max_objects=5)) == 5


def test_local_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound):
        resolve_reference(str(tmp_path / "missing"))
    with pytest.raises(SourceNotFound):
        resolve_reference((tmp_path / "missing").as_uri())
    with pytest.raises(UnsupportedScheme, match="remote host"):
        resolve_reference("file://otherhost/etc/passwd")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidPath):
        resolve_reference(str(tmp_path / "f"), name="../escape")
    with pytest.raises(UnsupportedScheme):
        resolve_reference("")


def test_local_fetch_verifies(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"original")
    (entry,) = resolve_reference(str(src))
    dest = tmp_path / "out" / "copy.bin"
    assert fetch_reference(entry, dest) == md5(b"original")  # the md5 of what was written
    assert dest.read_bytes() == b"original"

    src.write_bytes(b"tampered")
    bad = tmp_path / "bad.bin"
    with pytest.raises(CorruptedBlob, match=r"src.bin.*md5"):
        fetch_reference(entry, bad)
    assert not bad.exists()
    assert [p.name for p in tmp_path.iterdir() if "artiflow" in p.name] == []

    src.unlink()
    with pytest.raises(SourceNotFound):
        fetch_reference(entry, bad)


def test_checksum_false_is_one_uri_entry_without_io(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    (entry,) = resolve_reference(str(missing), checksum=False)
    assert entry.path == "not-there"
    assert entry.ref == missing.as_uri()
    assert entry.digest == md5(missing.as_uri().encode())
    assert entry.size is None
    assert entry.extra == {"checksum": False}
    dead = f"http://127.0.0.1:{free_port()}/data.csv"  # nothing listens: no request is made
    (web,) = resolve_reference(dead, name="web.csv", checksum=False)
    assert (web.path, web.digest, web.ref) == ("web.csv", md5(dead.encode()), dead)
    (bucket,) = resolve_reference("s3://bucket/some/prefix/", checksum=False)
    assert (bucket.path, bucket.ref) == ("prefix", "s3://bucket/some/prefix/")


def test_checksum_false_still_refuses_bad_uris() -> None:
    with pytest.raises(UnsafeReference):
        resolve_reference("https://h/x?X-Amz-Signature=abc", checksum=False)
    with pytest.raises(UnsupportedScheme):
        resolve_reference("nosuchproto://x/y", checksum=False)


def test_checksum_false_fetch_is_unverified(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "x.txt").write_text("x")
    (entry,) = resolve_reference(str(tree), checksum=False)
    assert fetch_reference(entry, tmp_path / "copy") is None  # a directory
    assert (tmp_path / "copy" / "d" / "x.txt").read_text() == "x"
    (one,) = resolve_reference(str(tree / "d" / "x.txt"), checksum=False)
    fetch_reference(one, tmp_path / "one.txt")
    assert (tmp_path / "one.txt").read_text() == "x"


# -- registry -----------------------------------------------------------------------------------
class _Fixed(Resolver):
    protocols = ("fixed",)

    def resolve(
        self, uri: str, name: str | None, *, max_objects: int | None, storage_options: Any
    ) -> list[ManifestEntry]:
        return [ManifestEntry(name or "fixed", "0" * 32, 1, uri)]

    def fetch(self, entry: ManifestEntry, dest: str, *, storage_options: Any) -> None:
        Path(dest).write_bytes(b"f")


def test_register_resolver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("artiflow.resolvers.registry.RESOLVERS", dict(RESOLVERS))
    from artiflow import resolvers as resolve

    register_resolver(["fixed", "FIXED2"], _Fixed())
    assert isinstance(resolver_for("fixed2://a/b"), _Fixed)
    (entry,) = resolve.resolve_reference("fixed://a/b", name="n")
    assert entry == ManifestEntry("n", "0" * 32, 1, "fixed://a/b")
    fetch_reference(entry, tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == b"f"
    assert "fixed" not in RESOLVERS  # the module-level registry was swapped, not edited


def test_builtin_protocols_are_registered() -> None:
    classes = {"file": "LocalResolver", "http": "HttpResolver", "s3": "S3Resolver"}
    classes |= {"local": "LocalResolver", "https": "HttpResolver", "s3a": "S3Resolver"}
    classes |= {"gs": "GCSResolver", "gcs": "GCSResolver"}
    for protocol, cls in classes.items():
        assert protocol in KNOWN_RESOLVERS
        assert type(resolver_for(f"{protocol}://bucket/key")).__name__ == cls
    assert type(resolver_for("memory://bucket/key")).__name__ == "FsspecResolver"
    with pytest.raises(UnsupportedScheme, match="nosuch"):
        resolve_reference("nosuch://bucket/key")


def test_fetch_of_stored_content_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedScheme, match="not a reference"):
        fetch_reference(ManifestEntry("a", md5(b""), 0), tmp_path / "x")


# -- any other fsspec protocol (memory://) -------------------------------------------------
@pytest.fixture
def memfs() -> Any:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    return fs


def test_memory_single_object_and_prefix(memfs: Any) -> None:
    memfs.pipe("/bucket/data/a.txt", b"aaa")
    memfs.pipe("/bucket/data/sub/b.txt", b"bb")
    (entry,) = resolve_reference("memory://bucket/data/a.txt")
    assert entry.path == "a.txt" and entry.size == 3
    assert entry.ref == "memory:///bucket/data/a.txt"
    assert entry.extra == {"digest_from": "uri+size+mtime"}
    assert len(entry.digest) == 32
    entries = resolve_reference("memory://bucket/data", name="d")
    assert [e.path for e in sorted(entries, key=lambda e: e.path)] == ["d/a.txt", "d/sub/b.txt"]
    with pytest.raises(TooManyObjects, match="max_objects=None"):
        resolve_reference("memory://bucket/data", max_objects=1)
    with pytest.raises(SourceNotFound):
        resolve_reference("memory://bucket/nothing")


def test_memory_fetch_detects_change(memfs: Any, tmp_path: Path) -> None:
    memfs.pipe("/m/a.txt", b"abc")
    (entry,) = resolve_reference("memory://m/a.txt")
    fetch_reference(entry, tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_bytes() == b"abc"
    memfs.pipe("/m/a.txt", b"abcd")
    with pytest.raises(CorruptedBlob):
        fetch_reference(entry, tmp_path / "b.txt")
    assert not (tmp_path / "b.txt").exists()


class _Md5MemoryFS(MemoryFileSystem):
    """A memory filesystem whose info() reports a base64 md5Hash, like a cloud store."""

    protocol = "md5mem"

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        if path.startswith("md5mem://"):
            path = path[len("md5mem://") :]
        stripped: str = MemoryFileSystem._strip_protocol(path)
        return stripped

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        out: dict[str, Any] = super().info(path, **kwargs)
        if out["type"] == "file":
            import base64

            data = self.cat_file(path)
            out["md5Hash"] = base64.b64encode(hashlib.md5(data).digest()).decode()
        return out


def test_backend_value_error_is_a_store_error(memfs: Any, tmp_path: Path) -> None:
    # A listing whose key climbs out of the prefix: fsspec refuses to copy it (ValueError).
    memfs.pipe("/t/a.txt", b"a")
    memfs.pipe("/t/../escape.txt", b"e")
    (entry,) = resolve_reference("memory://t", checksum=False)
    with pytest.raises(StoreError, match="ValueError") as err:
        fetch_reference(entry, tmp_path / "out")
    assert isinstance(err.value.__cause__, ValueError)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape.txt").exists()


class _BrokenMemoryFS(MemoryFileSystem):
    """A filesystem plugin whose ``info`` fails with a builtin error of its own."""

    protocol = "brokenmem"

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("backend exploded")


def test_backend_builtin_error_is_a_store_error() -> None:
    fsspec.register_implementation("brokenmem", _BrokenMemoryFS, clobber=True)
    with pytest.raises(StoreError, match="RuntimeError: backend exploded") as err:
        resolve_reference("brokenmem://b/k")
    assert isinstance(err.value.__cause__, RuntimeError)
    with pytest.raises(StoreError, match="backend exploded"):
        fetch_reference(ManifestEntry("k", "0" * 32, 1, "brokenmem://b/k"), "/nonexistent/k")


def test_generic_checksum_field_is_used(memfs: Any, tmp_path: Path) -> None:
    fsspec.register_implementation("md5mem", _Md5MemoryFS, clobber=True)
    memfs.pipe("/c/x.bin", b"payload")
    (entry,) = resolve_reference("md5mem://c/x.bin")
    assert entry.digest == md5(b"payload")
    assert "md5hash" in entry.extra
    fetch_reference(entry, tmp_path / "x.bin")
    assert (tmp_path / "x.bin").read_bytes() == b"payload"


# -- HTTP ---------------------------------------------------------------------------------------
def test_http_head_etag_and_length(http_server: HTTPEnv) -> None:
    body = b"a,b\n1,2\n"
    url = http_server.put("data/file one.csv", body)
    quoted = url.replace(" ", "%20")
    http_server.requests.clear()
    (entry,) = resolve_reference(quoted)
    assert entry.path == "file one.csv"
    assert entry.digest == md5(body)
    assert entry.size == 8
    assert entry.ref == quoted
    assert entry.extra == {"etag": f'"{md5(body)}"'}
    assert [m for m, _ in http_server.requests] == ["HEAD"]


def test_http_get_fallback_when_head_refused(http_server: HTTPEnv) -> None:
    url = http_server.put("nohead/x.bin", b"xyz")
    http_server.requests.clear()
    (entry,) = resolve_reference(url, name="x")
    assert (entry.path, entry.digest, entry.size) == ("x", md5(b"xyz"), 3)
    assert [m for m, _ in http_server.requests] == ["HEAD", "GET"]


def test_http_weak_and_missing_etag(http_server: HTTPEnv) -> None:
    (weak,) = resolve_reference(http_server.put("weak/w.txt", b"w"))
    assert weak.digest == md5(b"w")
    assert weak.extra["etag"].startswith("W/")
    url = http_server.put("noetag/n.txt", b"n")
    (none,) = resolve_reference(url)
    assert none.digest == md5(f"{url}\n1".encode())  # the URL and its Content-Length
    assert none.extra == {"digest_from": "uri+size"}
    assert none.size == 1


def test_http_without_etag_new_length_is_a_new_digest(http_server: HTTPEnv) -> None:
    url = http_server.put("noetag/grows.csv", b"a,b\n")
    (before,) = resolve_reference(url)
    http_server.put("noetag/grows.csv", b"a,b\n1,2\n")
    (after,) = resolve_reference(url)
    assert (before.size, after.size) == (4, 8)
    assert before.digest != after.digest
    assert before.digest != md5(url.encode())  # not the URL alone, as checksum=False records


@pytest.fixture
def bare_http() -> Iterator[dict[str, Any]]:
    """A stdlib HTTP server with one object and no ETag: ``state`` sets its body and headers.

    ``state["headers"]`` are sent as given (e.g. Last-Modified); ``state["raw"]``, when set, is
    written as the whole response to a GET (a broken one), then the connection closes.
    """
    state: dict[str, Any] = {"body": b"", "headers": {}, "raw": None}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _head(self) -> bytes:
            body: bytes = state["body"]
            self.send_response(200)
            for key, value in state["headers"].items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return body

        def do_HEAD(self) -> None:
            self._head()

        def do_GET(self) -> None:
            if state["raw"] is not None:
                self.wfile.write(state["raw"])
                self.close_connection = True
                return
            self.wfile.write(self._head())

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/object.bin"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_http_without_etag_new_last_modified_is_a_new_digest(
    bare_http: dict[str, Any], tmp_path: Path
) -> None:
    url = bare_http["url"]
    bare_http["body"] = b"version 1"
    bare_http["headers"] = {"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    (first,) = resolve_reference(url)
    assert first.extra == {
        "digest_from": "uri+size+mtime",
        "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
    }
    assert first.digest == md5(f"{url}\n9\nMon, 01 Jan 2024 00:00:00 GMT".encode())
    assert fetch_reference(first, tmp_path / "v1.bin") == md5(b"version 1")

    bare_http["body"] = b"version 2"  # same length, new content, new Last-Modified
    bare_http["headers"] = {"Last-Modified": "Tue, 02 Jan 2024 00:00:00 GMT"}
    (second,) = resolve_reference(url)
    assert second.size == first.size
    assert second.digest != first.digest
    with pytest.raises(CorruptedBlob, match="Last-Modified"):
        fetch_reference(first, tmp_path / "stale.bin")
    assert not (tmp_path / "stale.bin").exists()

    bare_http["headers"] = {}  # neither ETag nor Last-Modified: the URL and the length
    (third,) = resolve_reference(url)
    assert third.extra == {"digest_from": "uri+size"}


def test_http_truncated_body_is_a_store_error(bare_http: dict[str, Any], tmp_path: Path) -> None:
    # A chunk that announces 16 bytes and sends 5 before the connection closes.
    bare_http["raw"] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"
    (unchecked,) = resolve_reference(bare_http["url"], checksum=False)
    with pytest.raises(StoreError, match="IncompleteRead") as err:
        fetch_reference(unchecked, tmp_path / "x.bin")
    assert err.value.__cause__ is not None
    assert not (tmp_path / "x.bin").exists()


def test_http_errors(http_server: HTTPEnv) -> None:
    with pytest.raises(SourceNotFound, match="404"):
        resolve_reference(f"{http_server.url}/missing.csv")
    with pytest.raises(StoreError, match="500"):
        resolve_reference(f"{http_server.url}/status/500/x")
    with pytest.raises(StoreError, match="cannot connect"):
        resolve_reference(f"http://127.0.0.1:{free_port()}/x")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2@example.com/data.csv",
        "https://user@example.com/data.csv",
        "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=A&X-Amz-Credential=c&X-Amz-Signature=hunter2",
        "https://storage.googleapis.com/b/k?X-Goog-Signature=hunter2",
        "https://d.cloudfront.net/k?Expires=1&Signature=hunter2&Key-Pair-Id=K",
        "https://acct.blob.core.windows.net/c/k?sv=1&se=2&sig=hunter2",
        "https://example.com/k?token=hunter2",
        "https://example.com/k?access_token=hunter2",
        "https://example.com/k#access_token=hunter2",
        "https://example.com/k?api_key=hunter2",
        "https://example.com/k?x-custom-auth-token=hunter2",
    ],
)
def test_http_unsafe_urls_refused(url: str) -> None:
    with pytest.raises(UnsafeReference) as err:
        resolve_reference(url)
    assert "hunter2" not in str(err.value)


def test_http_plain_query_is_fine(http_server: HTTPEnv) -> None:
    url = http_server.put("q.csv", b"q") + "?format=csv&download=1"
    (entry,) = resolve_reference(url)
    assert entry.ref == url and entry.path == "q.csv"


def test_http_fetch_verifies(http_server: HTTPEnv, tmp_path: Path) -> None:
    url = http_server.put("f/data.bin", b"0123456789")
    (entry,) = resolve_reference(url)
    fetch_reference(entry, tmp_path / "data.bin")
    assert (tmp_path / "data.bin").read_bytes() == b"0123456789"
    http_server.put("f/data.bin", b"9876543210")
    with pytest.raises(CorruptedBlob, match="ETag"):
        fetch_reference(entry, tmp_path / "again.bin")
    assert not (tmp_path / "again.bin").exists()
    (http_server.root / "f" / "data.bin").unlink()
    with pytest.raises(SourceNotFound):
        fetch_reference(entry, tmp_path / "gone.bin")


def test_http_fetch_without_etag_checks_size(http_server: HTTPEnv, tmp_path: Path) -> None:
    url = http_server.put("noetag/s.bin", b"12345")
    (entry,) = resolve_reference(url)
    fetch_reference(entry, tmp_path / "s.bin")
    http_server.put("noetag/s.bin", b"123456")
    with pytest.raises(CorruptedBlob, match="Content-Length"):
        fetch_reference(entry, tmp_path / "t.bin")


# -- S3 -------------------------------------------------------------------------------------------
def test_s3_versioned_object_records_version_id(s3: S3Env) -> None:
    put = s3.put(s3.versioned_bucket, "models/m.h5", b"weights")
    (entry,) = resolve_reference(f"s3://{s3.versioned_bucket}/models/m.h5")
    assert entry.path == "m.h5"
    assert entry.digest == md5(b"weights")
    assert entry.size == 7
    assert entry.ref == f"s3://{s3.versioned_bucket}/models/m.h5"
    assert entry.extra == {"etag": f'"{md5(b"weights")}"', "version_id": put["VersionId"]}


def test_s3_plain_bucket_has_no_version(s3: S3Env) -> None:
    s3.put(s3.plain_bucket, "k.txt", b"k")
    (entry,) = resolve_reference(f"s3a://{s3.plain_bucket}/k.txt", name="renamed.txt")
    assert entry.path == "renamed.txt"
    assert entry.ref == f"s3://{s3.plain_bucket}/k.txt"
    assert entry.extra == {"etag": f'"{md5(b"k")}"'}


def test_s3_prefix_expands_and_skips_folder_markers(s3: S3Env) -> None:
    b = s3.versioned_bucket
    for key in ("images/cat.png", "images/sub/dog.png", "images-other/x.png", "imagesX.png"):
        s3.put(b, key, key.encode())
    s3.put(b, "images/", b"")
    s3.put(b, "images/sub/", b"")
    s3.put(b, "images/cat.png", b"cat v2")  # only the latest version is listed
    s3.put(b, "images/deleted.png", b"gone")
    s3.client.delete_object(Bucket=b, Key="images/deleted.png")
    entries = by_path(resolve_reference(f"s3://{b}/images"))
    assert sorted(entries) == ["images/cat.png", "images/sub/dog.png"]
    assert entries["images/cat.png"].digest == md5(b"cat v2")
    assert all("version_id" in e.extra for e in entries.values())
    named = resolve_reference(f"s3://{b}/images/", name="pics")
    assert sorted(e.path for e in named) == ["pics/cat.png", "pics/sub/dog.png"]
    root = resolve_reference(f"s3://{b}")
    assert f"{b}/imagesX.png" in by_path(root)


def test_s3_max_objects_and_pagination(s3: S3Env) -> None:
    b = s3.plain_bucket
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: s3.put(b, f"many/{i:05d}.txt", b"x"), range(1005)))
    with pytest.raises(TooManyObjects, match=r"max_objects=10\b.*max_objects=None"):
        resolve_reference(f"s3://{b}/many", max_objects=10)
    with pytest.raises(TooManyObjects, match="1001 seen"):
        resolve_reference(f"s3://{b}/many", max_objects=1000)
    assert len(resolve_reference(f"s3://{b}/many", max_objects=None)) == 1005


def test_s3_missing(s3: S3Env) -> None:
    with pytest.raises(SourceNotFound):
        resolve_reference(f"s3://{s3.versioned_bucket}/nothing/here")
    with pytest.raises(SourceNotFound):
        resolve_reference("s3://no-such-bucket-artiflow/key")
    with pytest.raises(SourceNotFound, match="no bucket"):
        resolve_reference("s3:///key")


def test_s3_key_that_is_not_a_valid_entry_path(s3: S3Env) -> None:
    s3.put(s3.plain_bucket, "p/a//b.txt", b"x")
    with pytest.raises(InvalidPath):
        resolve_reference(f"s3://{s3.plain_bucket}/p")


def test_s3_unreachable_endpoint_is_a_store_error(s3: S3Env) -> None:
    options = {
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{free_port()}"},
        "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
    }
    with pytest.raises(StoreError) as err:
        resolve_reference("s3://bucket/key", storage_options=options)
    assert err.value.__cause__ is not None


def test_s3_fetch_pins_the_version(s3: S3Env, tmp_path: Path) -> None:
    b = s3.versioned_bucket
    s3.put(b, "v.txt", b"first")
    (entry,) = resolve_reference(f"s3://{b}/v.txt")
    s3.put(b, "v.txt", b"second")
    assert fetch_reference(entry, tmp_path / "v.txt") == md5(b"first")
    assert (tmp_path / "v.txt").read_bytes() == b"first"
    s3.client.delete_object(Bucket=b, Key="v.txt", VersionId=entry.extra["version_id"])
    with pytest.raises(CorruptedBlob, match="no longer exists"):
        fetch_reference(entry, tmp_path / "w.txt")


def test_s3_fetch_detects_tampering(s3: S3Env, tmp_path: Path) -> None:
    b = s3.plain_bucket
    s3.put(b, "t.txt", b"trusted")
    (entry,) = resolve_reference(f"s3://{b}/t.txt")
    s3.put(b, "t.txt", b"tampered")
    with pytest.raises(CorruptedBlob, match="ETag"):
        fetch_reference(entry, tmp_path / "t.txt")
    assert not (tmp_path / "t.txt").exists()
    s3.client.delete_object(Bucket=b, Key="t.txt")
    with pytest.raises(SourceNotFound):
        fetch_reference(entry, tmp_path / "t.txt")


def test_s3_fetch_verifies_bytes_against_the_etag(s3: S3Env, tmp_path: Path) -> None:
    b = s3.plain_bucket
    s3.put(b, "e.txt", b"bytes")
    (entry,) = resolve_reference(f"s3://{b}/e.txt")
    forged = ManifestEntry(entry.path, md5(b"other"), 5, entry.ref, {"etag": f'"{md5(b"other")}"'})
    with pytest.raises(CorruptedBlob):
        fetch_reference(forged, tmp_path / "e.txt")
    fetch_reference(entry, tmp_path / "e.txt")
    assert (tmp_path / "e.txt").read_bytes() == b"bytes"


def test_s3_checksum_false_prefix_fetch(s3: S3Env, tmp_path: Path) -> None:
    b = s3.plain_bucket
    s3.put(b, "tree/a.txt", b"a")
    s3.put(b, "tree/d/b.txt", b"b")
    (entry,) = resolve_reference(f"s3://{b}/tree", checksum=False)
    fetch_reference(entry, tmp_path / "tree")
    assert (tmp_path / "tree" / "d" / "b.txt").read_bytes() == b"b"


def test_missing_s3_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(MissingDependency, match=r"pip install 'artiflow\[s3\]'"):
        resolve_reference("s3://bucket/key")
    entry = ManifestEntry("k", "0" * 32, 1, "s3://bucket/key", {"etag": "x"})
    with pytest.raises(MissingDependency, match=r"artiflow\[s3\]"):
        fetch_reference(entry, "/nonexistent/never-written")


def test_missing_gcs_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    with pytest.raises(MissingDependency, match=r"pip install 'artiflow\[gcs\]'"):
        resolve_reference("gs://bucket/key")


# -- GCS ------------------------------------------------------------------------------------------
def test_gcs_object_md5_hex_and_generation(gcs: GCSEnv) -> None:
    gcs.put("models/m.bin", b"gcs weights")
    (entry,) = resolve_reference(f"gs://{gcs.bucket}/models/m.bin")
    info = gcs.fs().info(f"{gcs.bucket}/models/m.bin")
    assert entry.path == "m.bin"
    assert entry.digest == md5(b"gcs weights")
    assert entry.size == 11
    assert entry.ref == f"gs://{gcs.bucket}/models/m.bin"
    assert entry.extra == {"generation": str(info["generation"])}


def test_gcs_prefix_markers_and_limits(gcs: GCSEnv) -> None:
    for key in ("data/a.txt", "data/sub/b.txt", "data-other/c.txt"):
        gcs.put(key, key.encode())
    gcs.put("data/sub/", b"")
    entries = by_path(resolve_reference(f"gcs://{gcs.bucket}/data", name="d"))
    assert sorted(entries) == ["d/a.txt", "d/sub/b.txt"]
    assert entries["d/sub/b.txt"].digest == md5(b"data/sub/b.txt")
    assert entries["d/a.txt"].ref == f"gs://{gcs.bucket}/data/a.txt"
    with pytest.raises(TooManyObjects, match="max_objects=None"):
        resolve_reference(f"gs://{gcs.bucket}/data", max_objects=1)
    assert len(resolve_reference(f"gs://{gcs.bucket}/data", max_objects=None)) == 2
    with pytest.raises(SourceNotFound):
        resolve_reference(f"gs://{gcs.bucket}/nothing")


def test_gcs_fetch_verifies(gcs: GCSEnv, tmp_path: Path) -> None:
    gcs.put("f.bin", b"good bytes")
    (entry,) = resolve_reference(f"gs://{gcs.bucket}/f.bin")
    fetch_reference(entry, tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == b"good bytes"
    gcs.put("f.bin", b"evil bytes")
    gcs.fs().invalidate_cache()
    with pytest.raises(CorruptedBlob):
        fetch_reference(entry, tmp_path / "g.bin")
    assert not (tmp_path / "g.bin").exists()


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_max_objects_must_be_a_count(tmp_path: Path, bad: Any) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(TooManyObjects, match="max_objects must be"):
        resolve_reference(str(tmp_path), max_objects=bad)


def test_empty_directories(tmp_path: Path, memfs: Any) -> None:
    (tmp_path / "empty").mkdir()
    assert resolve_reference(str(tmp_path / "empty")) == []
    memfs.mkdir("/emptydir")
    assert resolve_reference("memory://emptydir") == []


def test_http_redirect_keeps_head(http_server: HTTPEnv) -> None:
    http_server.put("target.bin", b"t")
    http_server.requests.clear()
    url = f"{http_server.url}/redirect/target.bin"
    (entry,) = resolve_reference(url)
    assert (entry.path, entry.digest, entry.ref) == ("target.bin", md5(b"t"), url)
    assert http_server.requests == [("HEAD", "/redirect/target.bin"), ("HEAD", "/target.bin")]


def test_gcs_missing_bucket(gcs: GCSEnv) -> None:
    with pytest.raises(SourceNotFound):
        resolve_reference("gs://no-such-bucket-artiflow/key")


def test_gcs_composite_object_without_md5() -> None:
    from artiflow.resolvers.cloud import GCSResolver

    record = {"name": "k", "size": "3", "generation": "7", "crc32c": "AAAAAA=="}
    entry = GCSResolver()._entry("b", record, "k")
    assert entry.size == 3 and len(entry.digest) == 32
    assert entry.extra == {
        "generation": "7",
        "digest_from": "uri+generation+crc32c",
        "crc32c": "AAAAAA==",
    }
