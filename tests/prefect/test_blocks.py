"""The registry blocks: Prefect's block contract, save/load, secrets, registries, result storage."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

import artiflow
from artiflow.errors import InvalidArgument
from artiflow.prefect import ArtifactRegistry, close_shared_registries, shared_registry
from artiflow.prefect.clients import load_registry_block

SECRET = "s3cr3t-Do-Not-Leak-4711"


class _NoLogoDownload(BlockStandardTestSuite):
    @pytest.mark.skip(reason="downloads the logo from the internet")
    def test_has_a_valid_image(self, block: type[Block]) -> None:
        """Skipped: no internet in CI."""


class TestArtifactRegistryStandard(_NoLogoDownload):
    @pytest.fixture
    def block(self) -> type[Block]:
        return ArtifactRegistry


class TestS3ArtifactRegistryStandard(_NoLogoDownload):
    @pytest.fixture
    def block(self) -> type[Block]:
        pytest.importorskip("prefect_aws")
        from artiflow.prefect.aws import S3ArtifactRegistry

        return S3ArtifactRegistry


class TestGcsArtifactRegistryStandard(_NoLogoDownload):
    @pytest.fixture
    def block(self) -> type[Block]:
        pytest.importorskip("prefect_gcp")
        from artiflow.prefect.gcp import GcsArtifactRegistry

        return GcsArtifactRegistry


def _secret_block(tmp_path: Path) -> ArtifactRegistry:
    return ArtifactRegistry(
        store=str(tmp_path / "store"),
        database=f"sqlite:///{tmp_path / 'registry.db'}",
        storage_options={"auto_mkdir": True},
        secret_storage_options={"api_token": SECRET},
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    block = _secret_block(tmp_path)
    block.save("roundtrip", overwrite=True)

    loaded = ArtifactRegistry.load("roundtrip")
    assert loaded.store == block.store
    assert loaded.database == block.database
    assert loaded.storage_options == {"auto_mkdir": True}
    assert loaded.secret_storage_options is not None
    assert loaded.secret_storage_options.get_secret_value() == {"api_token": SECRET}
    by_slug = Block.load("artiflow-registry/roundtrip")
    assert isinstance(by_slug, ArtifactRegistry)
    assert by_slug.store == block.store


def test_save_and_load_round_trip_async(tmp_path: Path) -> None:
    block = _secret_block(tmp_path)

    async def round_trip() -> ArtifactRegistry:
        await block.asave("roundtrip-async", overwrite=True)
        # inside async code the sync names return coroutines too
        return await ArtifactRegistry.load("roundtrip-async")

    loaded = asyncio.run(round_trip())
    assert loaded.store == block.store
    assert loaded.secret_storage_options is not None
    assert loaded.secret_storage_options.get_secret_value() == {"api_token": SECRET}


def test_secrets_are_never_printed(tmp_path: Path) -> None:
    block = _secret_block(tmp_path)
    block.database_password = SecretStr(SECRET)

    for text in (repr(block), str(block), block.model_dump_json()):
        assert SECRET not in text
    # Prefect's own document (what the API and UI show) masks them too
    document = block._to_block_document(name="masked", include_secrets=False)
    assert SECRET not in str(document.data)


def test_registry_builds_the_configured_registry(tmp_path: Path) -> None:
    block = ArtifactRegistry(
        store=str(tmp_path / "blobs"), database=f"sqlite:///{tmp_path / 'meta.db'}"
    )
    reg = block.registry()
    try:
        assert isinstance(reg, artiflow.Registry)
        assert reg.store_url == str(tmp_path / "blobs")
        art = artiflow.Artifact("notes", "dataset")
        with art.new_file("a.txt") as f:
            f.write("hello")
        with reg.run(pipeline="blocks") as run:
            run.log_artifact(art)
        assert reg.artifact("notes:latest").version == "v0"
    finally:
        reg.close()
    assert (tmp_path / "meta.db").exists()


def test_database_password_is_inserted_into_the_url() -> None:
    block = ArtifactRegistry(
        database="postgresql+psycopg://artiflow@db.example:5432/artiflow",
        database_password=SecretStr("p@ss/word"),
    )
    url = block.resolved_database_url()
    assert url is not None
    assert url.startswith("postgresql+psycopg://artiflow:")
    assert url.endswith("@db.example:5432/artiflow")
    from sqlalchemy.engine import make_url

    assert make_url(url).password == "p@ss/word"
    assert ArtifactRegistry(database="sqlite:///x.db").resolved_database_url() == "sqlite:///x.db"


def test_registry_settings_are_the_cores(tmp_path: Path) -> None:
    block = ArtifactRegistry(
        store=str(tmp_path / "store"),
        database="postgresql+psycopg://artiflow@db.example:5432/artiflow",
        database_password=SecretStr("pw"),
        storage_options={"auto_mkdir": True},
    )
    settings = block.registry_settings()
    assert settings["store"] == str(tmp_path / "store")
    assert settings["database"] == block.resolved_database_url()
    assert settings["storage_options"] == {"auto_mkdir": True}
    # empty fields stay empty: artiflow fills them from the environment
    assert ArtifactRegistry().registry_settings() == {
        "store": None,
        "database": None,
        "storage_options": None,
    }


def test_shared_registry_is_the_process_wide_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = ArtifactRegistry(
        store=str(tmp_path / "store"), database=f"sqlite:///{tmp_path / 'shared.db'}"
    )
    shared = shared_registry(block)
    assert shared is shared_registry(block)
    assert shared is artiflow.Registry.shared(**block.registry_settings())
    assert shared_registry(shared) is shared  # a registry is taken as is
    default = shared_registry()
    assert default is artiflow.Registry.shared()
    monkeypatch.setenv("ARTIFLOW_HOME", str(tmp_path / "elsewhere"))
    assert shared_registry() is not default  # the environment is part of the key
    close_shared_registries()
    assert shared_registry(block) is not shared


def test_loading_a_block_that_is_not_a_registry_fails() -> None:
    from prefect.blocks.system import Secret

    Secret(value="not a registry").save("not-a-registry", overwrite=True)
    with pytest.raises(InvalidArgument, match="not an ArtifactRegistry") as caught:
        load_registry_block("secret/not-a-registry")
    assert isinstance(caught.value, TypeError)  # what callers caught before


def test_storage_options_merge_secrets_last() -> None:
    block = ArtifactRegistry(
        storage_options={"client_kwargs": {"endpoint_url": "http://minio:9000"}, "anon": True},
        secret_storage_options={"key": "id", "secret": SECRET, "anon": False},
    )
    assert block.resolved_storage_options() == {
        "client_kwargs": {"endpoint_url": "http://minio:9000"},
        "anon": False,
        "key": "id",
        "secret": SECRET,
    }


def test_cache_key_follows_settings_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = ArtifactRegistry(secret_storage_options={"token": "one"})
    b = ArtifactRegistry(secret_storage_options={"token": "two"})
    assert a.cache_key() != b.cache_key()
    assert "one" not in a.cache_key()
    before = a.cache_key()
    monkeypatch.setenv("ARTIFLOW_HOME", str(tmp_path / "elsewhere"))
    assert a.cache_key() != before


def test_secrets_never_reach_the_database_or_store(tmp_path: Path) -> None:
    block = _secret_block(tmp_path)
    block.database_password = SecretStr(SECRET)  # ignored by SQLite, must still not leak
    reg = block.registry()
    try:
        art = artiflow.Artifact("leak-check", "dataset", metadata={"ok": True})
        with art.new_file("data.txt") as f:
            f.write("content")
        with reg.run(pipeline="secrets") as run:
            run.log_artifact(art)
    finally:
        reg.close()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_block_is_a_result_storage(tmp_path: Path) -> None:
    block = ArtifactRegistry(store=str(tmp_path / "store"))
    block.save("results-store", overwrite=True)  # Prefect wants result storage saved
    written = block.write_path("run-1/result.bin", b"payload")
    assert Path(written) == tmp_path / "store" / "prefect-results" / "run-1" / "result.bin"
    assert block.read_path("run-1/result.bin") == b"payload"
    for bad in ("../escape", "/abs/path", "s3://other/bucket"):
        with pytest.raises(ValueError, match="relative"):
            block.write_path(bad, b"x")

    @task(persist_result=True, result_storage=block, result_storage_key="answer.json")
    def answer() -> int:
        return 42

    @flow
    def uses_block_storage() -> int:
        return answer()

    assert uses_block_storage() == 42
    assert (tmp_path / "store" / "prefect-results" / "answer.json").is_file()


def test_block_is_a_result_storage_async(tmp_path: Path) -> None:
    block = ArtifactRegistry(store=str(tmp_path / "store"))

    async def write_then_read() -> tuple[bytes, bytes]:
        await block.awrite_path("a/b.bin", b"async payload")
        # in async code read_path dispatches to the async twin
        return await block.aread_path("a/b.bin"), await block.read_path("a/b.bin")

    assert asyncio.run(write_then_read()) == (b"async payload", b"async payload")
    assert block.read_path("a/b.bin", _sync=True) == b"async payload"


def test_block_register_cli_registers_every_block(prefect_server: str) -> None:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "block", "register", "-m", "artiflow.prefect"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    out = result.stdout
    assert "Artiflow Registry" in out
    from importlib.util import find_spec

    if find_spec("prefect_aws"):
        assert "Artiflow S3 Registry" in out
    if find_spec("prefect_gcp"):
        assert "Artiflow GCS Registry" in out


def test_collection_entry_point_and_version() -> None:
    from importlib.metadata import entry_points

    import artiflow.prefect

    names = {ep.name: ep.value for ep in entry_points(group="prefect.collections")}
    assert names.get("artiflow") == "artiflow.prefect"
    assert artiflow.prefect.__version__ == artiflow.__version__
    assert ArtifactRegistry.get_block_schema_version() == artiflow.prefect.__version__
    assert "ArtifactRegistry" in dir(artiflow.prefect)


def test_optional_blocks_load_lazily() -> None:
    code = (
        "import sys, artiflow.prefect as p; "
        "print('prefect_aws' in sys.modules, 'prefect_gcp' in sys.modules, "
        "p.S3ArtifactRegistry.__name__, 'prefect_aws' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split() == ["False", "False", "S3ArtifactRegistry", "True"]
