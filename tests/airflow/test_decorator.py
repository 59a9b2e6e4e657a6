"""@task.artifact beyond the examples: several outputs, returned paths, Path inputs, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import DagRunState, dag, task

import artiflow


def test_several_outputs_paths_and_templated_names(
    run_dag: Any, registry: Any, xcom: Any, asset_events: Any, dagbag: Any
) -> None:
    dag_run = run_dag("artiflow_test_decorator")
    assert dag_run.state == DagRunState.SUCCESS

    features = registry.artifact("features:v0")
    assert sorted(features.manifest.entries) == ["x1.csv", "x2.csv"]
    assert sorted(registry.artifact("labels:v0").manifest.entries) == ["labels.csv"]
    # several outputs: a dict of versions, and one XCom per output for downstream tasks
    assert xcom(dag_run, "split") == {"features": "features:v0", "labels": "labels:v0"}
    assert xcom(dag_run, "split", key="features") == "features:v0"

    report = registry.artifact("split-report:v0")
    summary = json.loads((report.download() / "summary.json").read_text())
    assert summary == {"features": ["x1.csv", "x2.csv"], "labels": ["0", "1"]}
    producer = report.logged_by()
    assert (producer.step, producer.job_type) == ("check", "check")
    assert xcom(dag_run, "check") == {"checked": 2}  # any other return value passes through

    check_task = dagbag.get_dag("artiflow_test_decorator").get_task("check")
    assert sorted(a.uri for a in check_task.inlets) == ["artiflow://features", "artiflow://labels"]
    assert [o.name for o in check_task.outlets] == ["artiflow:artiflow_test_decorator.check"]
    assert asset_events("artiflow://split-report", dag_run.run_id) == [
        (
            {"version": "v0", "digest": report.digest, "type": "report"},
            "check",
            ["artiflow:artiflow_test_decorator.check"],
        )
    ]


def test_an_input_of_the_wrong_type_fails_the_task_and_commits_nothing(
    run_dag: Any, registry: Any, task_states: Any, tmp_path: Any
) -> None:
    source = tmp_path / "f.csv"
    source.write_text("1\n")
    features = artiflow.Artifact("features", "dataset")
    features.add_file(str(source))
    with registry.run(pipeline="seed", step="seed") as run:
        run.log_artifact(features)

    dag_run = run_dag("artiflow_test_type_mismatch")
    assert dag_run.state == DagRunState.FAILED
    assert task_states(dag_run) == {("wrong_type", -1): "failed"}
    assert [name for name, _, _ in registry.names()] == ["features"]
    assert registry.artifact("features:v0").used_by() == []


def test_mapped_tasks_declare_their_assets_at_parse_time(
    run_dag: Any, registry: Any, asset_events: Any, dagbag: Any
) -> None:
    mapped = dagbag.get_dag("artiflow_test_mapped").get_task("per_item")
    assert [a.uri for a in mapped.inlets] == ["artiflow://features"]
    assert [o.name for o in mapped.outlets] == ["artiflow:artiflow_test_mapped.per_item"]

    assert run_dag("artiflow_test_decorator").state == DagRunState.SUCCESS  # logs features:v0
    dag_run = run_dag("artiflow_test_mapped")
    assert dag_run.state == DagRunState.SUCCESS
    for index, letter in enumerate("ab"):
        item = registry.artifact(f"item-{index}:v0")
        text = (item.download() / "letter.txt").read_text()
        assert text == f"{letter} from features:v0"
        producer = item.logged_by()
        assert (producer.step, producer.map_index) == ("per_item", index)
        assert asset_events(f"artiflow://item-{index}", dag_run.run_id) == [
            (
                {"version": "v0", "digest": item.digest, "type": "dataset"},
                "per_item",
                ["artiflow:artiflow_test_mapped.per_item"],
            )
        ]


def test_wrong_declarations_fail_when_the_dag_is_parsed() -> None:
    @task.artifact(inputs={"data": {"type": "dataset"}}, outputs={"out": "dataset"})
    def needs_a_ref(data: Any, out: Any) -> None: ...

    @task.artifact(inputs={"x": "x:latest"}, outputs={"x": "dataset"})
    def both(x: Any) -> None: ...

    @task.artifact(outputs={"out": "dataset"})
    def takes_output(out: Any) -> None: ...

    @dag(dag_id="artiflow_parse_errors", schedule=None)
    def parse_errors() -> None:
        with pytest.raises(TypeError, match="have no reference"):
            needs_a_ref()
        with pytest.raises(ValueError, match="both inputs and outputs"):
            both()
        with pytest.raises(ValueError, match="cannot be passed as arguments"):
            takes_output(out="something")
        with pytest.raises(TypeError, match="unknown keys"):
            task.artifact(inputs={"d": {"ref": "d:v0", "typo": 1}})(lambda d: None)()

    parse_errors()
