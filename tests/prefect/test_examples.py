"""Every Prefect example flow runs, in-process and as ``python example_dags/<file>.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import artiflow

EXAMPLES = Path(__file__).resolve().parents[2] / "example_dags"


def test_every_prefect_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("prefect_*.py")) == [
        "prefect_etl.py",
        "prefect_parallel_writers.py",
    ]


def test_etl_example(
    load_example: Callable[[str], ModuleType],
    registry: artiflow.Registry,
    http_server: Any,
    prefect_api: Any,
) -> None:
    reference = http_server.put("prefect-etl/iris.csv", b"sepal,petal\n5.1,1.4\n")
    etl = load_example("prefect_etl")

    state = etl.etl(reference_uri=reference, return_state=True)
    produced = state.result()
    flow_run_id = str(state.state_details.flow_run_id)

    assert produced == {
        "extract": "raw-data:v0",
        "transform": "clean-data:v0",
        "train": "model:v0",
        "evaluate": "eval-report:v0",
    }
    raw = registry.artifact("raw-data:v0")
    assert sorted(raw.manifest.entries) == ["customers.json", "orders.csv", "reference/source.csv"]
    assert raw.get_entry("reference/source.csv").ref == reference
    clean = registry.artifact("clean-data:staging")
    summary = clean.get("tables/summary")
    assert summary.columns == ["metric", "value"]
    assert registry.artifact("model:candidate").version == "v0"
    metrics = json.loads(
        (registry.artifact("eval-report:v0").download() / "metrics.json").read_text()
    )
    assert metrics["model"] == "model:v0" and metrics["mse"] < 5

    graph = registry.lineage("eval-report:v0", direction="upstream").to_dict()
    labels = {n["label"] for n in graph["nodes"] if n["kind"] == "artifact"}
    assert labels == {"eval-report:v0", "model:v0", "clean-data:v0", "raw-data:v0"}
    producer = registry.artifact("model:v0").logged_by()
    assert producer is not None
    assert (producer.orchestrator, producer.pipeline, producer.step, producer.job_type) == (
        "prefect",
        "prefect-etl",
        "train",
        "train",
    )
    assert producer.pipeline_run == flow_run_id
    for key in ("raw-data", "clean-data", "model", "eval-report"):
        assert len(prefect_api.artifacts(key, flow_run_id)) == 1

    again = etl.etl(reference_uri=reference)
    assert again == produced  # unchanged inputs: every step deduplicates


def _check_features(registry: artiflow.Registry, shards: int, flow_run_id: str | None) -> None:
    features = registry.artifact("features:complete")
    assert features.version == "v0"
    assert sorted(features.manifest.entries) == [
        "_SUCCESS.json",
        *[f"shards/part-{i:03d}.json" for i in range(shards)],
    ]
    producer = features.logged_by()
    assert producer is not None and producer.orchestrator == "prefect"
    if flow_run_id is not None:
        assert producer.pipeline_run == flow_run_id
    graph = registry.lineage("features:v0", direction="upstream", depth=1).to_dict()
    writers = sorted(n["label"] for n in graph["nodes"] if n["kind"] == "run")
    assert writers == [  # each mapped writer is told apart by its map index
        "prefect-parallel-writers/finish_features",
        *[f"prefect-parallel-writers/write_shard[{i}]" for i in range(shards)],
    ]
    assert [v.version for v in registry.versions("features")] == ["v0"]


def test_parallel_writers_example(
    load_example: Callable[[str], ModuleType], registry: artiflow.Registry
) -> None:
    example = load_example("prefect_parallel_writers")

    state = example.parallel_writers(return_state=True)

    assert state.result() == "features:v0"
    _check_features(registry, 4, str(state.state_details.flow_run_id))
    again = example.parallel_writers()
    assert again == "features:v0"  # identical shards dedupe to the same version


def test_parallel_writers_on_the_process_pool_runner(
    load_example: Callable[[str], ModuleType], registry: artiflow.Registry
) -> None:
    example = load_example("prefect_parallel_writers")

    assert example.on_processes(shards=[0, 1, 2], workers=2) == "features:v0"
    _check_features(registry, 3, None)


@pytest.mark.parametrize(
    ("script", "args"),
    [("prefect_etl.py", ["{reference}"]), ("prefect_parallel_writers.py", ["--processes"])],
)
def test_examples_run_as_scripts(
    script: str, args: list[str], prefect_server: str, http_server: Any, tmp_path: Path
) -> None:
    reference = http_server.put("script/data.csv", b"a\n1\n")
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,  # the session's server instead of a new ephemeral one
        "ARTIFLOW_HOME": str(tmp_path / "home"),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *[a.format(reference=reference) for a in args]],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    registry = artiflow.Registry(
        store=str(tmp_path / "home" / "store"),
        database=f"sqlite:///{tmp_path / 'home' / 'registry.db'}",
    )
    try:
        names = {name for name, _type, _count in registry.names()}
    finally:
        registry.close()
    expected = (
        {"raw-data", "clean-data", "model", "eval-report"}
        if script == "prefect_etl.py"
        else {"features"}
    )
    assert names == expected


def test_readme_snippet_runs_as_a_newcomer_would(prefect_server: str, tmp_path: Path) -> None:
    """tests/prefect/readme_etl_flow.py is the README's Prefect snippet, verbatim."""
    script = Path(__file__).with_name("readme_etl_flow.py")
    env = {**os.environ, "PREFECT_API_URL": prefect_server, "ARTIFLOW_HOME": str(tmp_path / "h")}
    for _ in range(2):  # the second run dedupes: unchanged content, still v0
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=240
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().splitlines()[-1] == "clean-data:v0"
    lineage = subprocess.run(
        [
            Path(sys.executable).with_name("artiflow"),
            "lineage",
            "clean-data:latest",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert lineage.returncode == 0, lineage.stderr
    labels = {n["label"] for n in json.loads(lineage.stdout)["nodes"]}
    assert {"clean-data:v0", "raw-data:v0", "etl/extract", "etl/transform"} <= labels
