"""Issue 10, the Prefect items: secrets in blocks, reference options, assets and mirrors of
reused versions, mapped runs, folders, declaration-time checks, task logs, the benchmark.

Everything runs against the session's real Prefect server and, for S3, a moto server with no
credentials in the environment (as on a worker that only has the block's settings).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner

import artiflow
from artiflow.errors import InvalidName
from artiflow.prefect import (
    ArtifactRegistry,
    Input,
    Output,
    artifact_key,
    artifact_task,
    asset_key,
    log_artifact,
)

REPO = Path(__file__).resolve().parents[2]
SECRET = "hardening-Secret-0xC0FFEE"
ACCESS_KEY = "AKIA-HARDENING-ID"


def _unique(prefix: str) -> str:
    """Names unique across the session: the Prefect server outlives each test's registry."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _writer(name: str, **kwargs: Any) -> Any:
    @artifact_task(outputs={"out": Output("dataset", name=name)}, **kwargs)
    def write(out: artiflow.Artifact, text: str = "hello") -> None:
        with out.new_file("data.txt") as f:
            f.write(text)

    return write


# ------------------------------------------------------------- 14: credentials stay secret
def _cli(prefect_server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    return subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def test_credentials_given_as_storage_options_never_show(
    prefect_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.client.orchestration import get_client

    given = {
        "auto_mkdir": True,
        "key": ACCESS_KEY,
        "secret": SECRET,
        "client_kwargs": {"region_name": "eu-west-1", "aws_session_token": SECRET},
    }
    caplog.set_level(logging.WARNING, logger="artiflow.prefect.blocks")
    block = ArtifactRegistry(  # as the README showed it: credentials among storage_options
        store=str(tmp_path / "store"),
        storage_options=given,
        reference_options={"gcs": {"project": "p", "token": SECRET}},
    )
    assert block.storage_options == {
        "auto_mkdir": True,
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert block.reference_options == {"gcs": {"project": "p"}}
    assert block.resolved_storage_options() == given  # moved, not lost
    assert block.resolved_reference_options() == {"gcs": {"project": "p", "token": SECRET}}
    for text in (repr(block), str(block), block.model_dump_json()):
        assert SECRET not in text and ACCESS_KEY not in text
    assert "moved client_kwargs.aws_session_token, key, secret from storage_options" in caplog.text
    assert "moved gcs.token from reference_options" in caplog.text
    assert SECRET not in caplog.text

    name = _unique("secret-moved")
    block.save(name, overwrite=True)
    with get_client(sync_client=True) as client:  # the REST block document
        document = client.read_block_document_by_name(
            name, block_type_slug="artiflow-registry", include_secrets=False
        )
    shown = json.dumps(document.data, default=str)
    assert SECRET not in shown and ACCESS_KEY not in shown
    inspected = _cli(prefect_server, "block", "inspect", f"artiflow-registry/{name}")
    assert inspected.returncode == 0, inspected.stderr
    assert "auto_mkdir" in inspected.stdout
    assert SECRET not in inspected.stdout and ACCESS_KEY not in inspected.stdout
    loaded = ArtifactRegistry.load(name)
    assert loaded.resolved_storage_options() == given
    assert loaded.registry_settings()["reference_options"] == {
        "gs": {"project": "p", "token": SECRET}
    }


def test_credentials_assigned_later_move_too() -> None:
    block = ArtifactRegistry(secret_storage_options={"secret": "kept"})
    block.storage_options = {"endpoint_url": "http://minio:9000", "token": SECRET, "secret": "x"}
    assert block.storage_options == {"endpoint_url": "http://minio:9000"}
    assert SECRET not in repr(block)
    # what was already secret keeps precedence, as secret options are merged last
    assert block.resolved_storage_options() == {
        "endpoint_url": "http://minio:9000",
        "token": SECRET,
        "secret": "kept",
    }


# ---------------------------------------------------- 15: references read with the block's


def _blocks(s3: Any, tmp_path: Path) -> dict[str, ArtifactRegistry]:
    endpoint = {"client_kwargs": {"endpoint_url": s3.endpoint_url}}
    keys = {"key": "testing", "secret": "testing"}
    database = f"sqlite:///{tmp_path / 'registry.db'}"
    return {
        # the store's own options serve references on the store's protocol
        "store": ArtifactRegistry(
            store=f"s3://{s3.plain_bucket}/team",
            database=database,
            storage_options=endpoint,
            secret_storage_options=keys,
        ),
        # a local store; S3 references read with the options configured for s3
        "configured": ArtifactRegistry(
            store=str(tmp_path / "store"),
            database=database,
            reference_options={"s3": endpoint},
            secret_reference_options={"s3": keys},
        ),
    }


@pytest.mark.parametrize("kind", ["store", "configured"])
def test_references_are_added_and_read_with_the_blocks_options(
    kind: str, bare_worker: Any, tmp_path: Path
) -> None:
    s3 = bare_worker
    s3.put(s3.versioned_bucket, "exports/day.csv", b"day,total\n1,10\n")
    uri = f"s3://{s3.versioned_bucket}/exports/day.csv"
    block = _blocks(s3, tmp_path)[kind]
    name = _unique("s3-refs")

    @artifact_task(outputs={"raw": Output("dataset", name=name)}, registry=block)
    def track(raw: artiflow.Artifact) -> None:
        raw.add_reference(uri, name="day.csv")

    @artifact_task(inputs={"raw": Input(f"{name}:latest", download=True)}, registry=block)
    def read(raw: Path) -> str:
        return (raw / "day.csv").read_text()

    @flow
    def references() -> tuple[str, str]:
        ref = track()
        return ref, read(raw=ref)

    state = references(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == (f"{name}:v0", "day,total\n1,10\n")
    registry = block.registry()
    try:
        assert registry.artifact(f"{name}:v0").get_entry("day.csv").ref == uri
    finally:
        registry.close()


def test_the_explicit_log_task_reads_references_with_the_blocks_options(
    bare_worker: Any, tmp_path: Path
) -> None:
    s3 = bare_worker
    s3.put(s3.versioned_bucket, "exports/one.csv", b"one\n")
    block = _blocks(s3, tmp_path)["configured"]
    name = _unique("logged-refs")

    @flow
    def explicit() -> str:
        return log_artifact(
            name,
            "dataset",
            references=[f"s3://{s3.versioned_bucket}/exports/one.csv"],
            registry=block,
        )

    assert explicit() == f"{name}:v0"


# ------------------------------------------------------ 16: upstream assets are the inputs
def test_upstream_assets_are_exactly_the_versions_inputs(prefect_api: Any) -> None:
    stats, features, model = _unique("stats"), _unique("features"), _unique("model")
    write_stats, write_features = _writer(stats), _writer(features)

    @artifact_task(
        inputs={"features": f"{features}:latest"}, outputs={"model": Output("model", name=model)}
    )
    def train(features: artiflow.Artifact, model: artiflow.Artifact) -> None:
        with model.new_file("weights.txt") as f:
            f.write(features.digest)

    @flow
    def pipeline() -> str:
        done = write_stats.submit()
        feats = write_features()
        return train(features=feats, wait_for=[done])  # stats only ordered, never an input

    state = pipeline(return_state=True)
    assert state.result() == f"{model}:v0"
    flow_run_id = str(state.state_details.flow_run_id)
    (event,) = prefect_api.events(asset_key(model), flow_run_id=flow_run_id)
    assets = [r.id for r in event.related if r.role == "asset"]
    assert assets == [asset_key(features)]  # once, and nothing inherited through wait_for
    referenced = prefect_api.events(
        asset_key(features), prefix="prefect.asset.referenced", flow_run_id=flow_run_id
    )
    assert len(referenced) == 1
    assert (
        prefect_api.events(
            asset_key(stats), prefix="prefect.asset.referenced", flow_run_id=flow_run_id, expect=0
        )
        == []
    )


# ------------------------------------------------------------ 17: reuse publishes nothing
def test_a_reused_version_is_mirrored_once(prefect_api: Any, registry: artiflow.Registry) -> None:
    name = _unique("reused")
    write = _writer(name)

    @flow
    def rerun() -> str:
        return write()

    assert [rerun() for _ in range(3)] == [f"{name}:v0"] * 3  # three runs, one version
    assert registry.artifact(f"{name}:v0").version == "v0"
    assert len(prefect_api.artifacts(artifact_key(name))) == 1
    events = prefect_api.events(asset_key(name), expect=3, timeout=10)
    assert [e.payload["artiflow"]["version"] for e in events] == ["v0"]


def test_the_explicit_log_task_mirrors_a_reused_version_once(
    prefect_api: Any, tmp_path: Path
) -> None:
    name = _unique("reused-log")
    (tmp_path / "a.txt").write_text("same")

    @flow
    def log_twice() -> list[str]:
        return [log_artifact(name, "dataset", paths=tmp_path / "a.txt") for _ in range(2)]

    assert log_twice() == [f"{name}:v0"] * 2
    assert len(prefect_api.artifacts(artifact_key(name))) == 1


# ------------------------------------------------------------- 18: mapped runs' map index
def _part_writer(name: str) -> Any:
    @artifact_task(outputs={"part": Output("dataset", name=name, distributed=True)})
    def write_part(index: int, part: artiflow.Artifact, suffix: str = "") -> None:
        with part.new_file(f"parts/{index}{suffix}.txt") as f:
            f.write(str(index))

    return write_part


def _map_indexes(registry: artiflow.Registry, flow_run_id: str, step: str) -> list[int | None]:
    """The map index of each recorded run of ``step`` in the flow run (``-1``: not mapped)."""
    runs = registry.runs(pipeline_run=flow_run_id, step=step)
    return sorted(-1 if r.map_index is None else r.map_index for r in runs)


def test_mapped_runs_record_their_map_index(registry: artiflow.Registry) -> None:
    from prefect import unmapped

    write_part = _part_writer(_unique("mapped"))

    @flow(name="mapped-writers")
    def mapped() -> None:
        write_part.map((i for i in range(3)), suffix=unmapped("-a")).wait()  # a generator too
        write_part.with_options(name="write_again").map([7, 8]).wait()
        write_part(9)  # not mapped: no index

    state = mapped(return_state=True)
    assert state.is_completed(), state.message
    flow_run_id = str(state.state_details.flow_run_id)
    assert _map_indexes(registry, flow_run_id, "write_part") == [-1, 0, 1, 2]
    assert _map_indexes(registry, flow_run_id, "write_again") == [0, 1]
    labels = sorted(r.label for r in registry.runs(pipeline_run=flow_run_id, step="write_part"))
    assert labels == [
        "mapped-writers/write_part",
        "mapped-writers/write_part[0]",
        "mapped-writers/write_part[1]",
        "mapped-writers/write_part[2]",
    ]


def test_mapped_runs_on_the_process_pool_record_their_map_index(
    load_example: Callable[[str], Any], registry: artiflow.Registry
) -> None:
    example = load_example("prefect_parallel_writers")
    runner = ProcessPoolTaskRunner(max_workers=2)
    state = example.parallel_writers.with_options(task_runner=runner)(
        shards=[0, 1, 2], return_state=True
    )
    assert state.result() == "features:v0"
    flow_run_id = str(state.state_details.flow_run_id)
    assert _map_indexes(registry, flow_run_id, "write_shard") == [0, 1, 2]


def test_the_map_index_is_the_wrappers_keyword() -> None:
    from artiflow.prefect.mapping import MAP_INDEX

    write_part = _part_writer(_unique("signature"))
    assert MAP_INDEX in write_part.fn.__signature__.parameters

    def clashes(artiflow_map_index: int, out: artiflow.Artifact) -> None:
        return None

    with pytest.raises(TypeError, match=MAP_INDEX):
        artifact_task(outputs={"out": "dataset"})(clashes)


# ---------------------------------------------------------- 19: a folder keeps its name
def test_log_artifact_keeps_a_folders_name(registry: artiflow.Registry, tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "one.md").write_text("# one")
    (tmp_path / "index.md").write_text("# index")
    name = _unique("site")

    @flow
    def publish() -> str:
        return log_artifact(name, "site", paths=[str(tmp_path / "index.md"), tmp_path / "pages"])

    assert publish() == f"{name}:v0"
    assert sorted(registry.artifact(f"{name}:v0").manifest.entries) == ["index.md", "pages/one.md"]


# ---------------------------------------------------- 20: bad specs fail at declaration
@pytest.mark.parametrize(
    ("inputs", "outputs"),
    [
        ({}, {"model": {"type": "model", "aliases": ["latest"]}}),  # a reserved alias
        ({}, {"model": {"type": "model", "aliases": ["v3"]}}),
        ({}, {"model": {"type": "model", "name": "bad name"}}),
        ({}, {"model": Output("no/slashes")}),
        ({"data": "no spaces:latest"}, {}),
        ({"data": Input("data:latest", type="bad type")}, {}),
    ],
)
def test_invalid_names_aliases_and_types_fail_when_declared(
    inputs: dict[str, Any], outputs: dict[str, Any]
) -> None:
    ran: list[bool] = []

    def train(**_: Any) -> None:
        ran.append(True)  # pragma: no cover - must never run

    with pytest.raises(InvalidName):
        artifact_task(inputs=inputs, outputs=outputs)(train)
    assert ran == []


# --------------------------------------------------------------- 21: the task run's log
@pytest.fixture
def info_task_logs() -> Iterator[None]:
    """The suite logs warnings only; these tests read the task runs' INFO lines."""
    logger = logging.getLogger("prefect.task_runs")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.setLevel(level)


def _task_logs(
    flow_run_id: str, prefect_api: Any, wanted: int, timeout: float = 30.0
) -> dict[str, list[str]]:
    """Task name → the messages its runs logged, once ``wanted`` artiflow lines arrived."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    flt = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[UUID(flow_run_id)]))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=flt)
        lines = [log for log in logs if log.message.startswith(("Used ", "Logged ", "Nothing "))]
        if len(lines) >= wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    runs = prefect_api.task_runs(flow_run_id)
    names = {run_id: run.name.rsplit("-", 1)[0] for run_id, run in runs.items()}
    found: dict[str, list[str]] = {}
    for log in lines:
        found.setdefault(names.get(str(log.task_run_id), "?"), []).append(log.message)
    return found


@pytest.mark.usefixtures("info_task_logs")
@pytest.mark.parametrize("is_async", [False, True])
def test_task_logs_say_what_was_used_and_logged(prefect_api: Any, is_async: bool) -> None:
    source, report = _unique("logged-src"), _unique("logged-report")
    write = _writer(source)
    spec = {
        "inputs": {"src": f"{source}:latest"},
        "outputs": {"out": Output("report", name=report)},
    }
    if is_async:

        async def summarise(src: artiflow.Artifact, out: artiflow.Artifact) -> None:
            await asyncio.sleep(0)
            with out.new_file("summary.txt") as f:
                f.write(src.digest)

    else:

        def summarise(src: artiflow.Artifact, out: artiflow.Artifact) -> None:  # type: ignore[misc]
            with out.new_file("summary.txt") as f:
                f.write(src.digest)

    read = artifact_task(**spec)(summarise)

    @flow
    def twice() -> list[str]:
        return [write(), read(), read()]

    @flow
    async def twice_async() -> list[str]:
        return [write(), await read(), await read()]

    state = asyncio.run(twice_async(return_state=True)) if is_async else twice(return_state=True)
    assert state.result() == [f"{source}:v0", f"{report}:v0", f"{report}:v0"]
    logs = _task_logs(str(state.state_details.flow_run_id), prefect_api, wanted=5)
    assert logs["write"] == [f"Logged {source}:v0 (1 file, 5 B, new version)"]
    used = [line for line in logs["summarise"] if line.startswith("Used ")]
    assert len(used) == 2 and all(line.startswith(f"Used {source}:v0 (1 file") for line in used)
    logged = sorted(line for line in logs["summarise"] if line.startswith("Logged "))
    assert logged[0].startswith(f"Logged {report}:v0 (1 file, 32 B, new version")
    assert logged[1].startswith(f"Logged {report}:v0 (1 file, 32 B, reused v0")


@pytest.mark.usefixtures("info_task_logs")
def test_a_failed_try_logs_that_nothing_was_committed(prefect_api: Any) -> None:
    name = _unique("logged-failure")

    @artifact_task(outputs={"out": Output("dataset", name=name)})
    def broken(out: artiflow.Artifact) -> None:
        with out.new_file("half.txt") as f:
            f.write("half")
        raise RuntimeError("disk on fire")

    @flow
    def fails() -> None:
        broken()

    state = fails(return_state=True)
    assert state.is_failed()
    logs = _task_logs(str(state.state_details.flow_run_id), prefect_api, wanted=1)
    assert logs["broken"] == ["Nothing committed: the step failed (RuntimeError: disk on fire)"]


# ------------------------------------------------ 27: the benchmark runs on a fresh machine
def _benchmark() -> Any:
    path = REPO / "benchmarks" / "bench_prefect_task.py"
    spec = importlib.util.spec_from_file_location("bench_prefect_task", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_gives_the_ephemeral_server_time_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    bench = _benchmark()
    for name in ("ARTIFLOW_HOME", "ARTIFLOW_CACHE_DIR", "ARTIFLOW_HASH_CACHE", "PREFECT_HOME"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
    monkeypatch.delenv(variable, raising=False)
    bench._setup_env(tmp_path)
    assert os.environ[variable] == "120"
    monkeypatch.setenv(variable, "300")
    bench._setup_env(tmp_path)
    assert os.environ[variable] == "300"  # a value the user set wins


def test_the_benchmark_runs_with_its_docstrings_command(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "ARTIFLOW_")) and not k.startswith("AWS_")
    }
    env["HOME"] = str(tmp_path)  # a fresh machine: no Prefect profile, no artiflow home
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_prefect_task.py", "--calls", "1", "--size", "1024"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert "Timed out while attempting to connect" not in result.stderr
    report = json.loads(result.stdout)
    assert set(report["median_ms"]) == {"plain_task", "artifact_task", "artifact_task_no_mirror"}
    assert result.returncode == (0 if report["ok"] else 1), result.stderr[-3000:]
