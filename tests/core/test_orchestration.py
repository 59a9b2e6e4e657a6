"""artiflow.orchestration: the step protocol, settings and payloads both orchestrators share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import artiflow as af
from artiflow import errors
from artiflow.db import schema
from artiflow.orchestration import (
    Input,
    Output,
    StepCall,
    VersionSummary,
    check_distinct,
    default_distributed_id,
    describe,
    event_extra,
    make_settings,
    open_step,
    ref_of,
    shared_registry,
    with_credentials,
)


def _versions(reg: af.Registry) -> int:
    import sqlalchemy as sa

    with reg.meta.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.versions)).scalar())


# -- identities and references ---------------------------------------------------------------
def test_default_distributed_id_is_readable_unique_and_stable() -> None:
    did = default_distributed_id("features", "etl", "manual__2026-01-01T00:00:00+00:00")
    assert did.startswith("etl.manual__2026-01-01T00_00_00_00_00.features-")
    assert did == default_distributed_id("features", "etl", "manual__2026-01-01T00:00:00+00:00")
    # two scopes that sanitise alike still get two ids
    assert default_distributed_id("x", "a:b") != default_distributed_id("x", "a/b")
    assert default_distributed_id("x", "run-1") != default_distributed_id("y", "run-1")
    assert len(default_distributed_id("n", "d" * 300)) <= 113


def test_ref_of_takes_strings_committed_artifacts_and_upstream_results(
    local_registry: af.Registry, tmp_path: Path
) -> None:
    assert ref_of("raw:v3", "raw") == "raw:v3"
    assert ref_of({"raw": "raw:v1", "other": "o:v0"}, "raw") == "raw:v1"
    src = tmp_path / "a.txt"
    src.write_text("a")
    art = af.Artifact("raw", "dataset")
    art.add_file(src)
    with local_registry.run() as run:
        run.log_artifact(art)
    assert ref_of(art, "raw") == "raw:v0"
    with pytest.raises(errors.InvalidSpec, match="needs an artifact reference"):
        ref_of(af.Artifact("draft", "dataset"), "raw")
    with pytest.raises(errors.InvalidSpec, match="needs an artifact reference"):
        ref_of(42, "raw")


def test_check_distinct_refuses_a_parameter_declared_twice() -> None:
    check_distinct(["a"], ["b"], "run", None)
    with pytest.raises(errors.InvalidSpec, match=r"\['a'\] are declared twice"):
        check_distinct(["a"], ["a"])
    with pytest.raises(TypeError, match="declared twice"):
        check_distinct(["run"], ["b"], "run")


# -- settings -----------------------------------------------------------------------------------
def test_make_settings_merges_credentials_and_parses_options() -> None:
    settings = make_settings(
        "s3://b/p",
        "postgresql+psycopg://db.internal/artiflow",
        '{"endpoint_url": "http://minio:9000", "secret": "s3cr3t"}',
        login="arti",
        password="pw",
    )
    assert settings["database"] == "postgresql+psycopg://arti:pw@db.internal/artiflow"
    assert settings["storage_options"] == {"endpoint_url": "http://minio:9000", "secret": "s3cr3t"}
    text = describe(settings)
    assert "pw" not in text and "s3cr3t" not in text and "minio" not in text
    assert "arti:***@db.internal" in text and "['endpoint_url', 'secret']" in text
    assert make_settings("", "", {}) == {"store": None, "database": None, "storage_options": None}
    with pytest.raises(errors.InvalidArgument, match="conn 'x': storage_options must be a JSON"):
        make_settings(storage_options="[1, 2]", where="conn 'x'")
    with pytest.raises(ValueError, match="storage_options must be a JSON object"):
        make_settings(storage_options="{not json")
    # a URL that already names its user keeps it
    assert with_credentials("postgresql://u@h/d", "other", "pw") == "postgresql://u:pw@h/d"
    with pytest.raises(errors.DatabaseError, match="invalid database URL"):
        make_settings(database="not a url", login="u", password="pw")


def test_shared_registry_is_one_per_settings_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFLOW_HOME", str(tmp_path / "one"))
    try:
        first = shared_registry()
        assert shared_registry() is first
        assert af.Registry.shared() is first
        other = make_settings(str(tmp_path / "store"), f"sqlite:///{tmp_path / 'r.db'}")
        assert shared_registry(other) is not first
        assert shared_registry(other) is shared_registry(dict(other))  # type: ignore[arg-type]
        changes = {
            "ARTIFLOW_HOME": str(tmp_path / "two"),
            "ARTIFLOW_CACHE_MAX_BYTES": "1048576",
            "ARTIFLOW_HASH_CACHE": str(tmp_path / "hashes.db"),
        }
        for name, value in changes.items():
            before = os.environ.get(name)
            monkeypatch.setenv(name, value)
            assert shared_registry() is not first, name
            if before is None:
                monkeypatch.delenv(name)
            else:
                monkeypatch.setenv(name, before)
        assert shared_registry() is first
    finally:
        af.Registry.close_shared()
    assert shared_registry() is not first
    af.Registry.close_shared()


# -- the step protocol ------------------------------------------------------------------------
def _seed(reg: af.Registry, tmp_path: Path) -> str:
    src = tmp_path / "raw.csv"
    src.write_text("a,b\n1,2\n")
    art = af.Artifact("raw", "dataset")
    art.add_file(src)
    with reg.run(step="seed") as run:
        run.log_artifact(art)
    return str(art.qualified_name)


def test_a_step_call_uses_inputs_fills_drafts_and_returns_refs(
    registry: af.Registry, tmp_path: Path
) -> None:
    _seed(registry, tmp_path)
    inputs = {"raw": Input("raw:latest", type="dataset"), "path": Input("raw:v0")}
    outputs = {"clean": Output("dataset", aliases=("fresh",)), "model": Output("model")}
    out = tmp_path / "model.bin"
    out.write_bytes(b"weights")
    with open_step(registry, {"pipeline": "p", "step": "s", "job_type": None}, ("p", "r1")) as run:
        call = StepCall(run, inputs, outputs)
        values = call.use_inputs({"raw": {"raw": "raw:v0"}}, downloads={"path"})
        assert isinstance(values["raw"], af.Artifact) and values["raw"].version == "v0"
        assert isinstance(values["path"], Path) and (values["path"] / "raw.csv").is_file()
        with call.drafts["clean"].new_file("clean.csv") as fh:
            fh.write("a\n1\n")
        call.commit({"model": str(out)})
        assert _versions(registry) == 1  # nothing commits before the step's block exits
    assert call.result({"model": str(out)}) == {"clean": "clean:v0", "model": "model:v0"}
    assert registry.artifact("clean:fresh").version == "v0"
    (info,) = [r for r in registry.runs() if r.step == "s"]
    assert info.pipeline == "p" and info.status == "finished" and info.job_type is None
    assert [a.qualified_name for a in run.used] == ["raw:v0", "raw:v0"]
    assert [a.qualified_name for a in run.committed()] == ["clean:v0", "model:v0"]
    assert event_extra(run.produced[0]) == {
        "version": "v0",
        "digest": run.produced[0].digest,
        "type": "dataset",
    }
    summary = VersionSummary.of(run.produced[0])
    assert summary.aliases == ("latest", "fresh") and summary.files == 1
    assert summary.asset_metadata()["artiflow"]["qualified_name"] == "clean:v0"


def test_a_failing_step_commits_nothing(registry: af.Registry, tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    out.write_bytes(b"m")
    with (
        pytest.raises(RuntimeError, match="after commit"),
        open_step(registry, {"step": "fails"}) as run,
    ):
        call = StepCall(run, {}, {"model": Output("model")})
        call.commit(str(out))
        raise RuntimeError("the function failed after commit")
    assert _versions(registry) == 0
    assert [r.status for r in registry.runs(step="fails")] == ["failed"]


def test_results_pass_through_single_and_empty(local_registry: af.Registry, tmp_path: Path) -> None:
    out = tmp_path / "m.bin"
    out.write_bytes(b"m")
    with open_step(local_registry, {"step": "one"}) as run:
        call = StepCall(run, {}, {"model": Output("model")})
        with call.drafts["model"].new_file("m.txt") as fh:
            fh.write("m")
        call.commit({"score": 0.9})  # not a source mapping: passed through
    assert call.result({"score": 0.9}) == {"score": 0.9}
    with open_step(local_registry, {"step": "one"}) as run:
        call = StepCall(run, {}, {"model": Output("model")})
        call.commit(str(out))
    assert call.result(str(out)) == "model:v1"
    with open_step(local_registry, {"step": "none"}) as run:
        call = StepCall(run, {}, {})
        call.commit(None)
    assert call.result(None) is None
    with (
        pytest.raises(errors.EmptyOutput, match="'model'"),
        open_step(local_registry, {"step": "empty"}) as run,
    ):
        StepCall(run, {}, {"model": Output("model")}).commit(None)


def test_distributed_parts_share_the_default_id_and_finish_once(
    registry: af.Registry, tmp_path: Path
) -> None:
    parts = []
    for i in range(3):
        src = tmp_path / f"part-{i}.txt"
        src.write_text(str(i))
        with open_step(registry, {"step": "write", "map_index": i}, ("dag", "run-7")) as run:
            call = StepCall(run, {}, {"features": Output("dataset", distributed="upsert")})
            call.commit(str(src))
        parts.append(call.result(str(src)))
    did = default_distributed_id("features", "dag", "run-7")
    assert parts == [did] * 3
    with open_step(registry, {"step": "finish"}, ("dag", "run-7")) as run:
        call = StepCall(run, {}, {"features": Output("dataset", distributed="finish")})
        call.commit(None)
    assert call.result(None) == "features:v0"
    assert sorted(registry.artifact("features:v0").manifest.entries) == [
        "part-0.txt",
        "part-1.txt",
        "part-2.txt",
    ]


def test_distributed_outputs_outside_a_pipeline_run_need_an_id(
    local_registry: af.Registry, tmp_path: Path
) -> None:
    src = tmp_path / "p.txt"
    src.write_text("p")
    with (
        pytest.raises(errors.DistributedError, match="needs a pipeline run"),
        open_step(local_registry, {"step": "w"}) as run,
    ):
        StepCall(run, {}, {"f": Output("dataset", distributed=True)}).commit(str(src))
    with open_step(local_registry, {"step": "w"}) as run:
        spec = Output("dataset", distributed=True, distributed_id="mine")
        call = StepCall(run, {}, {"f": spec})
        call.commit(str(src))
    assert call.result(str(src)) == "mine"


def test_payloads_need_a_committed_version() -> None:
    draft = af.Artifact("x", "dataset")
    with pytest.raises(errors.ArtifactStateError, match="no version yet"):
        event_extra(draft)
    with pytest.raises(errors.ArtifactStateError, match="no version yet"):
        VersionSummary.of(draft)
