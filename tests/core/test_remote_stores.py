"""A team registry: the blob store on S3 (moto server) or GCS (emulator), the database on
SQLite or PostgreSQL. Logging, dedupe, download and references through the same API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artiflow as af
from artiflow import errors


def _roundtrip(reg: af.Registry, tmp_path: Path, make_tree) -> None:  # type: ignore[no-untyped-def]
    src = make_tree(tmp_path / "src", {"a.txt": "alpha", "b/big.bin": os.urandom(200_000)})
    art = af.Artifact("remote-data", "dataset")
    art.add_dir(src)
    with reg.run(pipeline="team", step="extract") as run:
        run.log_artifact(art, aliases=["prod"])
    assert art.version == "v0"
    uploaded = reg.uploaded_bytes
    again = af.Artifact("remote-data", "dataset")
    again.add_dir(src)
    with reg.run(pipeline="team", step="extract") as run:
        run.log_artifact(again)
    assert again.version == "v0" and reg.uploaded_bytes == uploaded  # nothing re-uploaded
    got = reg.artifact("remote-data:prod")
    root = got.download(tmp_path / "out")
    assert (root / "b/big.bin").read_bytes() == (src / "b/big.bin").read_bytes()
    got.verify(root)
    assert got.logged_by().pipeline == "team"  # type: ignore[union-attr]


def test_s3_store(s3, tmp_path, make_tree, db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    reg = af.Registry(
        store=f"s3://{s3.plain_bucket}/artiflow",
        database=db_url,
        storage_options=s3.storage_options,
    )
    _roundtrip(reg, tmp_path, make_tree)
    keys = [k for k in reg.store.fs.find(f"{s3.plain_bucket}/artiflow")]
    assert keys and all("/blobs/md5/" in k for k in keys)


def test_gcs_store(gcs, tmp_path, make_tree, sqlite_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    reg = af.Registry(
        store=f"gs://{gcs.bucket}/artiflow",
        database=sqlite_url,
        storage_options=gcs.storage_options,
    )
    _roundtrip(reg, tmp_path, make_tree)


def test_s3_references_are_verified_on_download(s3, tmp_path, local_registry) -> None:  # type: ignore[no-untyped-def]
    s3.put(s3.versioned_bucket, "images/cat.png", b"cat v1")
    art = af.Artifact("s3-refs", "dataset")
    art.add_reference(f"s3://{s3.versioned_bucket}/images", name="images")
    with local_registry.run() as run:
        run.log_artifact(art)
    s3.put(s3.versioned_bucket, "images/cat.png", b"cat v2")  # a newer object version
    root = local_registry.artifact("s3-refs:v0").download(tmp_path / "out")
    assert (root / "images/cat.png").read_bytes() == b"cat v1"  # the recorded VersionId


def test_missing_s3_bucket_fails_the_log_and_writes_nothing(s3, tmp_path, make_tree, sqlite_url):  # type: ignore[no-untyped-def]
    reg = af.Registry(store="s3://no-such-bucket-here/x", database=sqlite_url)
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    art = af.Artifact("nowhere", "dataset")
    art.add_dir(src)
    with reg.run() as run:
        run.log_artifact(art)
        with pytest.raises(errors.StoreError):
            art.wait()
    with pytest.raises(errors.ArtifactNotFound):
        reg.artifact("nowhere")
