"""Failures and retries, dynamic task mapping, the classic operators and plain @task lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DagRunState

import artiflow
from artiflow.airflow.lineage import default_distributed_id
from artiflow.openlineage import dataset_namespace


def test_a_failing_task_commits_nothing(
    run_dag: Any, registry: Any, task_states: Any, asset_events: Any
) -> None:
    dag_run = run_dag("artiflow_test_failure")
    assert dag_run.state == DagRunState.FAILED
    assert task_states(dag_run) == {("fail_after_filling", -1): "failed"}
    with pytest.raises(artiflow.ArtifactNotFound):
        registry.artifact("doomed")
    assert registry.names() == []
    store = Path(registry.store_url)
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]
    assert asset_events("artiflow://doomed", dag_run.run_id) == []


def test_a_refused_second_output_commits_neither(
    run_dag: Any, seed: Any, registry: Any, task_states: Any, asset_events: Any
) -> None:
    seed("taken-name", "model", "weights.bin", b"w")

    dag_run = run_dag("artiflow_test_partial_outputs")
    assert dag_run.state == DagRunState.FAILED
    assert task_states(dag_run) == {("second_output_refused", -1): "failed"}
    # "first" was logged before "second" was refused: it must not be committed either
    with pytest.raises(artiflow.ArtifactNotFound):
        registry.artifact("first")
    assert [a.version for a in registry.versions("taken-name")] == ["v0"]
    (failed,) = registry.runs(pipeline="artiflow_test_partial_outputs")
    assert failed.status == "failed"
    assert asset_events("artiflow://first", dag_run.run_id) == []


def test_a_body_failing_after_logging_through_the_hook_commits_nothing(
    run_dag: Any, registry: Any, task_states: Any
) -> None:
    dag_run = run_dag("artiflow_test_hook_failure")
    assert dag_run.state == DagRunState.FAILED
    assert task_states(dag_run) == {("fail_after_logging_through_the_hook", -1): "failed"}
    with pytest.raises(artiflow.ArtifactNotFound):
        registry.artifact("hook-doomed")
    (failed,) = registry.runs(pipeline="artiflow_test_hook_failure")
    assert (failed.step, failed.status) == ("fail_after_logging_through_the_hook", "failed")


def test_a_retry_commits_once_and_a_rerun_dedupes(run_dag: Any, registry: Any, xcom: Any) -> None:
    first = run_dag("artiflow_test_retry")
    assert first.state == DagRunState.SUCCESS
    (flaky,) = registry.versions("flaky")
    assert flaky.version == "v0"
    producer = flaky.logged_by()
    assert (producer.step, producer.attempt, producer.pipeline_run) == (
        "fail_first_try",
        2,
        first.run_id,
    )
    assert xcom(first, "fail_first_try") == "flaky:v0"

    second = run_dag("artiflow_test_retry")
    assert second.state == DagRunState.SUCCESS
    assert [a.version for a in registry.versions("flaky")] == ["v0"]
    assert xcom(second, "fail_first_try") == "flaky:v0"


def test_mapped_writers_build_one_distributed_version(
    run_dag: Any, registry: Any, task_states: Any, xcom: Any, asset_events: Any
) -> None:
    dag_run = run_dag("airflow_parallel_writers")
    assert dag_run.state == DagRunState.SUCCESS
    assert task_states(dag_run) == {
        **{("write_shard", i): "success" for i in range(4)},
        ("finish", -1): "success",
    }
    (features,) = registry.versions("features")
    assert sorted(features.manifest.entries) == [f"shards/part-{i:03d}.json" for i in range(4)]
    assert "complete" in registry.artifact("features:latest").aliases
    assert xcom(dag_run, "finish") == "features:v0"
    # every writer returns the shared distributed id, derived from the DAG run
    expected_id = default_distributed_id("airflow_parallel_writers", dag_run.run_id, "features")
    assert {xcom(dag_run, "write_shard", map_index=i) for i in range(4)} == {expected_id}

    graph = registry.lineage("features:v0", direction="upstream").to_dict()
    runs = sorted(n["label"] for n in graph["nodes"] if n["kind"] == "run")
    assert runs == [
        "airflow_parallel_writers/finish",
        *[f"airflow_parallel_writers/write_shard[{i}]" for i in range(4)],
    ]
    assert asset_events("artiflow://features", dag_run.run_id) == [
        ({"version": "v0", "digest": features.digest, "type": "dataset"}, "finish", [])
    ]

    again = run_dag("airflow_parallel_writers")
    assert again.state == DagRunState.SUCCESS
    assert [a.version for a in registry.versions("features")] == ["v0"]


def test_log_and_use_operators_render_templates(
    run_dag: Any,
    registry: Any,
    xcom: Any,
    asset_events: Any,
    openlineage_events: Any,
    http_server: Any,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "sub" / "b.txt").write_text("b")
    url = http_server.put("operators/remote.csv", b"x,y\n1,2\n")
    dag_run = run_dag("artiflow_test_operators", data_dir=str(data), name="op-data", reference=url)
    assert dag_run.state == DagRunState.SUCCESS

    logged = registry.artifact("op-data:ops")
    assert (logged.version, logged.type) == ("v0", "dataset")
    assert sorted(logged.manifest.entries) == ["a.txt", "b.txt", "remote.csv"]
    assert logged.get_entry("remote.csv").ref == url
    assert logged.description == "logged by log"
    assert logged.metadata == {"day": dag_run.logical_date.strftime("%Y-%m-%d")}
    assert xcom(dag_run, "log") == "op-data:v0"

    used = xcom(dag_run, "use")
    assert used["ref"] == "op-data:v0"
    assert (used["name"], used["version"], used["type"]) == ("op-data", "v0", "dataset")
    assert used["digest"] == logged.digest
    assert (Path(used["path"]) / "b.txt").read_text() == "b"
    assert xcom(dag_run, "use", key="ref") == "op-data:v0"
    (consumer,) = logged.used_by()
    assert (consumer.pipeline, consumer.step) == ("artiflow_test_operators", "use")

    # the templated name is only known at run time: the event goes through the task's alias
    assert asset_events("artiflow://op-data", dag_run.run_id) == [
        (
            {"version": "v0", "digest": logged.digest, "type": "dataset"},
            "log",
            ["artiflow:artiflow_test_operators.log"],
        )
    ]
    # both operators report the version to OpenLineage
    complete = {
        e["job"]["name"]: e
        for e in openlineage_events(dag_run.run_id)
        if e["eventType"] == "COMPLETE"
    }
    log_event = complete["artiflow_test_operators.log"]
    use_event = complete["artiflow_test_operators.use"]
    assert [
        (d["name"], d["facets"]["version"]["datasetVersion"]) for d in log_event["outputs"]
    ] == [("op-data", "v0")]
    assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in use_event["inputs"]] == [
        ("op-data", "v0")
    ]


def test_a_plain_task_reports_through_the_hook_lineage_collector(
    run_dag: Any, seed: Any, registry: Any, openlineage_events: Any
) -> None:
    seed("plain-input", "dataset", "in.txt", "hello")

    dag_run = run_dag("artiflow_test_plain_task")
    assert dag_run.state == DagRunState.SUCCESS
    output = registry.artifact("plain-output:v0")
    assert (output.download() / "copy.txt").read_text() == "HELLO"
    producer = output.logged_by()
    assert (producer.orchestrator, producer.step) == ("airflow", "plain_task_with_hook")

    (complete,) = [
        e
        for e in openlineage_events(dag_run.run_id)
        if e["eventType"] == "COMPLETE"
        and e["job"]["name"] == "artiflow_test_plain_task.plain_task_with_hook"
    ]
    namespace = dataset_namespace(registry.store_url)
    assert [
        (d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"])
        for d in complete["inputs"]
    ] == [(namespace, "plain-input", "v0")]
    assert [
        (d["namespace"], d["name"], d["facets"]["version"]["datasetVersion"])
        for d in complete["outputs"]
    ] == [(namespace, "plain-output", "v0")]
