"""The prefect-aws / prefect-gcp registry blocks against moto S3 and the GCS emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.blocks.core import Block

import artiflow
from artiflow.prefect import artifact_task
from artiflow.prefect.clients import load_registry_block

pytest.importorskip("prefect_aws")
pytest.importorskip("prefect_gcp")

from prefect_aws import AwsClientParameters, AwsCredentials, MinIOCredentials
from prefect_gcp import GcpCredentials

from artiflow.prefect.aws import S3ArtifactRegistry, s3_storage_options
from artiflow.prefect.gcp import GcsArtifactRegistry, gcs_storage_options

SECRET = "aws-Secret-Never-Stored-0815"


def _log_through(block: S3ArtifactRegistry | GcsArtifactRegistry, name: str) -> str:
    @artifact_task(outputs={"out": {"type": "dataset", "name": name}}, registry=block)
    def write(out: artiflow.Artifact) -> None:
        with out.new_file("hello.txt") as f:
            f.write("from the cloud")

    @flow
    def cloud_flow() -> str:
        return write()

    return cloud_flow()


def _no_secret_in(root: Path, objects: list[bytes], secret: str = SECRET) -> None:
    """Neither the registry's local files (database, WAL, cache) nor stored objects hold it."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
    for body in objects:
        assert secret.encode() not in body


def test_s3_registry_with_nested_aws_credentials(s3: Any, tmp_path: Path) -> None:
    credentials = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key=SECRET,
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=s3.endpoint_url),
    )
    block = S3ArtifactRegistry(
        store=f"s3://{s3.plain_bucket}/artiflow",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        credentials=credentials,
    )
    block.save("s3-team", overwrite=True)

    loaded = load_registry_block("artiflow-s3-registry/s3-team")
    assert isinstance(loaded, S3ArtifactRegistry)
    assert isinstance(loaded.credentials, AwsCredentials)
    assert isinstance(Block.load("artiflow-s3-registry/s3-team"), S3ArtifactRegistry)
    options = loaded.resolved_storage_options()
    assert options == {
        "key": "testing",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": s3.endpoint_url, "region_name": "us-east-1"},
    }
    assert SECRET not in repr(loaded)

    assert _log_through(loaded, "s3-data") == "s3-data:v0"
    listing = s3.client.list_objects_v2(Bucket=s3.plain_bucket, Prefix="artiflow/")
    keys = [o["Key"] for o in listing.get("Contents", [])]
    assert keys, "nothing was uploaded to the S3 store"
    bodies = [s3.client.get_object(Bucket=s3.plain_bucket, Key=k)["Body"].read() for k in keys]
    assert b"from the cloud" in bodies
    _no_secret_in(tmp_path, bodies)


def test_s3_registry_with_nested_minio_credentials(s3: Any, tmp_path: Path) -> None:
    block = S3ArtifactRegistry(
        store=f"s3://{s3.versioned_bucket}/team",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        credentials=MinIOCredentials(
            minio_root_user="minio",
            minio_root_password=SECRET,
            aws_client_parameters=AwsClientParameters(endpoint_url=s3.endpoint_url),
        ),
    )
    block.save("minio-team", overwrite=True)

    loaded = S3ArtifactRegistry.load("minio-team")
    assert isinstance(loaded.credentials, MinIOCredentials)  # the Union picked the right type
    assert s3_storage_options(loaded.credentials) == {
        "key": "minio",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": s3.endpoint_url},
    }
    assert _log_through(loaded, "minio-data") == "minio-data:v0"
    _no_secret_in(tmp_path, [])


def _service_account() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "artiflow-test",
        "private_key_id": "test-key",
        "private_key": pem,
        "client_email": "ci@artiflow-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_gcs_registry_with_nested_gcp_credentials(gcs: Any, tmp_path: Path) -> None:
    info = _service_account()
    credentials = GcpCredentials(service_account_info=info)
    assert gcs_storage_options(credentials) == {"token": info, "project": "artiflow-test"}

    block = GcsArtifactRegistry(
        store=f"gs://{gcs.bucket}/artiflow",
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        credentials=credentials,
        # the emulator takes no real credentials: explicit options win over derived ones
        storage_options={"token": "anon", "endpoint_url": gcs.endpoint_url},
    )
    block.save("gcs-team", overwrite=True)

    loaded = load_registry_block("artiflow-gcs-registry/gcs-team")
    assert isinstance(loaded, GcsArtifactRegistry)
    assert loaded.credentials is not None
    assert loaded.credentials.service_account_info is not None
    assert loaded.credentials.service_account_info.get_secret_value() == info
    assert info["private_key"] not in repr(loaded)
    assert loaded.resolved_storage_options() == {
        "token": "anon",
        "project": "artiflow-test",
        "endpoint_url": gcs.endpoint_url,
    }

    assert _log_through(loaded, "gcs-data") == "gcs-data:v0"
    blobs = [gcs.fs().cat_file(p) for p in gcs.fs().find(f"{gcs.bucket}/artiflow")]
    _no_secret_in(tmp_path, blobs, secret=info["private_key"])
