"""Adding a reference and reading it back use the same fsspec options: the registry's own for
its store's protocol, and options configured per protocol (``Registry(reference_options=...)``,
``$ARTIFLOW_REFERENCE_OPTIONS``), against a moto S3 server with no credentials in the
environment (as on a worker that has only the registry's settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow import config, errors
from artiflow.orchestration import Output, StepCall, make_settings, open_step, shared_registry


def _s3_options(s3: Any) -> dict[str, Any]:
    return {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": s3.endpoint_url},
    }


def _reference(s3: Any, body: bytes = b"id,value\n1,2\n") -> str:
    s3.put(s3.versioned_bucket, "exports/data.csv", body)
    return f"s3://{s3.versioned_bucket}/exports/data.csv"


def test_without_options_the_worker_cannot_reach_s3(bare_worker: Any) -> None:
    # the premise of the tests below: nothing in the environment reaches the bucket
    art = af.Artifact("no-options", "dataset")
    with pytest.raises(errors.StoreError):
        art.add_reference(_reference(bare_worker), name="data.csv")


def test_a_step_adds_and_reads_references_with_the_stores_options(
    bare_worker: Any, tmp_path: Path
) -> None:
    s3, uri = bare_worker, _reference(bare_worker)
    reg = af.Registry(
        store=f"s3://{s3.plain_bucket}/team",
        database=f"sqlite:///{tmp_path / 'r.db'}",
        storage_options=_s3_options(s3),
    )
    try:
        with open_step(reg, {"pipeline": "refs", "step": "extract"}) as step:
            call = StepCall(step, {}, {"raw": Output("dataset", name="raw-refs")})
            call.drafts["raw"].add_reference(uri, name="data.csv")  # what a task function does
            call.commit(None)
        got = reg.artifact("raw-refs:v0")
        assert got.get_entry("data.csv").ref == uri
        root = got.download(tmp_path / "out")
        assert (root / "data.csv").read_bytes() == b"id,value\n1,2\n"
    finally:
        reg.close()


def test_options_configured_per_protocol_serve_adding_and_reading(
    bare_worker: Any, tmp_path: Path
) -> None:
    s3, uri = bare_worker, _reference(bare_worker)
    reg = af.Registry(
        store=str(tmp_path / "store"),  # a local store: its options say nothing about S3
        database=f"sqlite:///{tmp_path / 'r.db'}",
        reference_options={"s3": _s3_options(s3)},
    )
    try:
        assert config.options_for(uri, reg.reference_options) == _s3_options(s3)
        art = af.Artifact("configured-refs", "dataset")
        art.reference_options = reg.reference_options
        art.add_reference(uri, name="data.csv")
        with reg.run(pipeline="refs") as run:
            run.log_artifact(art)
        art.wait()
        s3.put(s3.versioned_bucket, "exports/data.csv", b"a newer object")  # VersionId pins v1
        root = reg.artifact("configured-refs:v0").download(tmp_path / "out")
        assert (root / "data.csv").read_bytes() == b"id,value\n1,2\n"
    finally:
        reg.close()


def test_a_plain_artifact_uses_the_environments_registry_options(
    bare_worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, uri = bare_worker, _reference(bare_worker)
    monkeypatch.setenv("ARTIFLOW_STORE", f"s3://{s3.plain_bucket}/env-registry")
    monkeypatch.setenv("ARTIFLOW_STORAGE_OPTIONS", json.dumps(_s3_options(s3)))
    art = af.Artifact("env-refs", "dataset")
    art.add_reference(uri, name="data.csv")  # no registry yet: the environment's options
    reg = af.Registry(database=f"sqlite:///{tmp_path / 'r.db'}")
    try:
        with reg.run() as run:
            run.log_artifact(art)
        art.wait()
        root = reg.artifact("env-refs:v0").download(tmp_path / "out")
        assert (root / "data.csv").read_bytes() == b"id,value\n1,2\n"
    finally:
        reg.close()


def test_reference_options_from_the_environment(
    bare_worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3, uri = bare_worker, _reference(bare_worker)
    monkeypatch.setenv("ARTIFLOW_REFERENCE_OPTIONS", json.dumps({"s3a": _s3_options(s3)}))
    assert "ARTIFLOW_REFERENCE_OPTIONS" in config.ENVIRONMENT  # shared registries key on it
    reg = af.Registry(store=str(tmp_path / "store"), database=f"sqlite:///{tmp_path / 'r.db'}")
    try:
        assert reg.reference_options == {"s3": _s3_options(s3)}  # s3a is s3
        art = af.Artifact("env-configured", "dataset")
        art.add_reference(uri, name="data.csv")
        with reg.run() as run:
            run.log_artifact(art)
        art.wait()
        root = reg.artifact("env-configured:v0").download(tmp_path / "out")
        assert (root / "data.csv").read_bytes() == b"id,value\n1,2\n"
    finally:
        reg.close()


def test_configured_options_win_over_the_stores_for_its_protocol(tmp_path: Path) -> None:
    mine = {"client_kwargs": {"endpoint_url": "http://store.internal"}}
    theirs = {"anon": True}
    by_protocol = config.options_by_protocol("s3://bucket/x", mine, {"s3": theirs, "gcs": {}})
    assert by_protocol == {"s3": theirs, "gs": {}}
    assert config.options_by_protocol("s3://bucket/x", mine, {}) == {"s3": mine}
    assert config.options_for("s3a://b/k", {"s3": theirs}) == theirs
    assert config.options_for("simplecache::s3://b/k", {"s3": theirs}) == theirs
    assert config.options_for("https://example.com/x", {"s3": theirs}) is None
    assert config.protocol_of("data/file.csv") == "file"


@pytest.mark.parametrize(
    "value",
    [[1, 2], {"s3": "not an object"}, {"": {}}, "{not json", '["s3"]'],
)
def test_malformed_reference_options_are_one_clear_error(value: object, tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidArgument, match="reference_options"):
        af.Registry(
            store=str(tmp_path / "store"),
            database=f"sqlite:///{tmp_path / 'r.db'}",
            reference_options=value,  # type: ignore[arg-type]
        )
    assert not (tmp_path / "r.db").exists()  # refused before anything was opened


def test_malformed_environment_reference_options_name_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARTIFLOW_REFERENCE_OPTIONS", '{"s3": 1}')
    with pytest.raises(errors.InvalidMetadata, match="ARTIFLOW_REFERENCE_OPTIONS"):
        config.reference_options()


def test_orchestrator_settings_carry_reference_options(tmp_path: Path) -> None:
    settings = make_settings(
        str(tmp_path / "store"),
        f"sqlite:///{tmp_path / 'r.db'}",
        reference_options='{"gcs": {"project": "p"}}',
        where="connection 'x'",
    )
    assert settings["reference_options"] == {"gs": {"project": "p"}}
    assert "reference_options" not in make_settings()  # absent: the environment's
    with pytest.raises(errors.InvalidArgument, match="connection 'x': reference_options"):
        make_settings(reference_options="[1]", where="connection 'x'")
    reg = shared_registry(settings)
    assert reg.reference_options == {"gs": {"project": "p"}}
    af.Registry.close_shared()
