"""Fixtures shared by every suite: real protocol servers on 127.0.0.1, isolated artiflow dirs.

Heavy test dependencies (boto3, moto, the GCS emulator, s3fs) are imported inside the
fixtures, so the Airflow and Prefect environments can load this file without them.

- ``s3_server`` (session): a moto server; ``s3`` (function): reset, a versioned bucket and a
  plain one, fsspec's ``s3`` defaults pointed at the server; ``bare_worker``: the same server
  with no credentials anywhere in the environment.
- ``gcs_server`` (session): gcp-storage-emulator; ``gcs`` (function): a fresh bucket, fsspec's
  ``gs``/``gcs`` defaults pointed at the emulator.
- ``http_server`` (session): a stdlib HTTP server with strong ETags and Content-Length.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import shutil
import socket
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import pytest

S3_VERSIONED_BUCKET = "artiflow-test"
S3_PLAIN_BUCKET = "artiflow-plain"
GCS_BUCKET = "artiflow-gcs"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def _artiflow_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test away from the real home and user cache directory."""
    base = tmp_path_factory.mktemp("artiflow-env")
    monkeypatch.setenv("ARTIFLOW_HOME", str(base / "home"))
    monkeypatch.setenv("ARTIFLOW_HASH_CACHE", str(base / "hash-cache" / "hashes.db"))
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(base / "blob-cache"))
    monkeypatch.setenv("ARTIFLOW_ARTIFACT_DIR", str(base / "artifacts"))


# -- S3 (moto) --------------------------------------------------------------------------------
@dataclass
class S3Env:
    endpoint_url: str
    versioned_bucket: str
    plain_bucket: str
    client: Any  # a boto3 S3 client
    storage_options: dict[str, Any] = field(default_factory=dict)

    def put(self, bucket: str, key: str, body: bytes) -> dict[str, Any]:
        resp: dict[str, Any] = self.client.put_object(Bucket=bucket, Key=key, Body=body)
        return resp


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1; yields its endpoint URL."""
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.update(_AWS_ENV)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Env]:
    """A reset moto with a versioned and a plain bucket; fsspec ``s3`` defaults set."""
    boto3 = pytest.importorskip("boto3")
    s3fs = pytest.importorskip("s3fs")

    urllib.request.urlopen(
        urllib.request.Request(f"{s3_server}/moto-api/reset", method="POST"), timeout=10
    ).close()
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=S3_VERSIONED_BUCKET)
    client.put_bucket_versioning(
        Bucket=S3_VERSIONED_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    client.create_bucket(Bucket=S3_PLAIN_BUCKET)
    options = {"client_kwargs": {"endpoint_url": s3_server}, "anon": False}
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(options))
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield S3Env(s3_server, S3_VERSIONED_BUCKET, S3_PLAIN_BUCKET, client, options)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def bare_worker(s3: S3Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    """The ``s3`` moto server, reachable only with explicit options (a worker with nothing in
    its environment): no ``AWS_*`` credentials, no config files, no fsspec defaults for s3."""
    import s3fs

    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delitem(fsspec.config.conf, "s3", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    return s3


# -- GCS (gcp-storage-emulator) -----------------------------------------------------------------
@dataclass
class GCSEnv:
    endpoint_url: str
    bucket: str
    storage_options: dict[str, Any]

    def fs(self) -> Any:
        return fsspec.filesystem("gs", **self.storage_options)

    def put(self, key: str, body: bytes) -> None:
        self.fs().pipe_file(f"{self.bucket}/{key}", body)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[str]:
    """The GCS emulator on 127.0.0.1 (in memory); yields its endpoint URL."""
    pytest.importorskip("gcp_storage_emulator")
    from gcp_storage_emulator.server import create_server

    port = free_port()
    env = {
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def gcs(gcs_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[GCSEnv]:
    """An empty bucket on the emulator; fsspec ``gs``/``gcs`` defaults pointed at it."""
    gcsfs = pytest.importorskip("gcsfs")
    options = {"token": "anon", "endpoint_url": gcs_server}
    monkeypatch.setitem(fsspec.config.conf, "gs", dict(options))
    monkeypatch.setitem(fsspec.config.conf, "gcs", dict(options))
    gcsfs.GCSFileSystem.clear_instance_cache()
    env = GCSEnv(gcs_server, GCS_BUCKET, options)
    fs = env.fs()
    with contextlib.suppress(FileNotFoundError):
        fs.rm(GCS_BUCKET, recursive=True)
    fs.mkdir(GCS_BUCKET)
    fs.invalidate_cache()
    try:
        yield env
    finally:
        gcsfs.GCSFileSystem.clear_instance_cache()


# -- HTTP (stdlib) ------------------------------------------------------------------------------
@dataclass
class HTTPEnv:
    url: str
    root: Path
    requests: list[tuple[str, str]]

    def put(self, name: str, body: bytes) -> str:
        """Serve ``body`` at ``/<name>``; returns its URL. ``nohead/<x>`` refuses HEAD (405)."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return f"{self.url}/{name}"


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    requests: list[tuple[str, str]]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _target(self) -> Path | None:
        rel = urllib.request.url2pathname(self.path.split("?", 1)[0]).lstrip("/")
        path = (self.root / rel).resolve()
        if self.root.resolve() not in path.parents or not path.is_file():
            return None
        return path

    def _headers(self) -> bytes | None:
        self.requests.append((self.command, self.path))
        path = self._target()
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if path is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        body = path.read_bytes()
        self.send_response(200)
        etag = f'"{hashlib.md5(body).hexdigest()}"'
        if self.path.startswith("/weak/"):
            self.send_header("ETag", "W/" + etag)
        elif not self.path.startswith("/noetag/"):
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return body

    def do_HEAD(self) -> None:
        if self.path.startswith("/nohead/"):
            self.requests.append((self.command, self.path))
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._headers()

    def do_GET(self) -> None:
        body = self._headers()
        if body is not None:
            self.wfile.write(body)


@pytest.fixture(scope="session")
def http_server() -> Iterator[HTTPEnv]:
    """A threaded HTTP server serving files from a temp dir with ETag and Content-Length.

    Paths under ``/nohead/`` answer HEAD with 405 (to test the GET fallback), paths under
    ``/noetag/`` send no ETag, paths under ``/weak/`` a weak one (``W/"..."``), and
    ``/status/<code>/...`` answers with that status, ``/redirect/<path>`` sends a 302 to
    ``/<path>``. ``requests`` logs ``(method, path)``.
    """
    root = Path(tempfile.mkdtemp(prefix="artiflow-http-"))
    requests: list[tuple[str, str]] = []
    handler = type("Handler", (_Handler,), {"root": root, "requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HTTPEnv(f"http://127.0.0.1:{server.server_address[1]}", root, requests)
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(root, ignore_errors=True)
