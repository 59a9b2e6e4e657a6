"""@task.artifact beyond the examples: several outputs, returned paths, Path inputs, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.sdk import DagRunState, dag, task

import artiflow
from artiflow.errors import InvalidArgument, InvalidSpec


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
    run_dag: Any, seed: Any, registry: Any, task_states: Any
) -> None:
    seed("features", "dataset", "f.csv", "1\n")

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
        with pytest.raises(InvalidSpec, match="have no reference"):
            needs_a_ref()
        with pytest.raises(InvalidSpec, match=r"\['x'\] are declared twice"):
            both()
        with pytest.raises(InvalidArgument, match="cannot be passed as arguments"):
            takes_output(out="something")
        with pytest.raises(InvalidSpec, match="unknown keys"):
            task.artifact(inputs={"d": {"ref": "d:v0", "typo": 1}})(lambda d: None)()

    parse_errors()


def test_input_and_output_instances_declare_the_right_assets(
    run_dag: Any, seed: Any, registry: Any, xcom: Any, asset_events: Any, dagbag: Any
) -> None:
    dag = dagbag.get_dag("artiflow_test_specs")
    task_ = dag.get_task("with_instances")
    assert [a.uri for a in task_.inlets] == ["artiflow://spec-source"]
    # the Output's name, not the parameter's; no outlet for the distributed part
    assert [a.uri for a in task_.outlets] == ["artiflow://cat-model"]

    seed("spec-source", "dataset", "source.txt", "spec")

    dag_run = run_dag("artiflow_test_specs")
    assert dag_run.state == DagRunState.SUCCESS
    model = registry.artifact("cat-model:best")
    assert (model.version, model.type, model.metadata) == ("v0", "model", {"k": 1})
    assert (model.download() / "model.txt").read_text() == "model of spec"
    with pytest.raises(artiflow.ArtifactNotFound):
        registry.versions("cat-parts")  # a part, not a version: nobody finished it
    refs = xcom(dag_run, "with_instances")
    assert refs["m"] == "cat-model:v0"
    assert refs["part"].startswith("artiflow_test_specs.")
    assert asset_events("artiflow://cat-model", dag_run.run_id) == [
        ({"version": "v0", "digest": model.digest, "type": "model"}, "with_instances", [])
    ]
    assert asset_events("artiflow://cat-parts", dag_run.run_id) == []
    assert asset_events("artiflow://m", dag_run.run_id) == []


def test_an_outlet_the_user_declared_is_used_as_is(
    run_dag: Any, seed: Any, registry: Any, asset_events: Any, dagbag: Any
) -> None:
    from airflow.sdk import Asset

    task_ = dagbag.get_dag("artiflow_test_specs").get_task("declared_outlet")
    assert task_.outlets == [Asset(name="dog", uri="artiflow://dog-model")]

    seed("spec-source", "dataset", "source.txt", "spec")
    dag_run = run_dag("artiflow_test_specs")
    assert dag_run.state == DagRunState.SUCCESS
    dog = registry.artifact("dog-model:v0")
    assert asset_events("artiflow://dog-model", dag_run.run_id) == [
        ({"version": "v0", "digest": dog.digest, "type": "model"}, "declared_outlet", [])
    ]


def test_instances_and_dicts_declare_the_same_task() -> None:
    from artiflow.steps import Input, Output

    @task.artifact(
        inputs={"a": Input("a:v1", type="dataset"), "b": {"ref": "b:latest", "download": True}},
        outputs={
            "x": Output("dataset", name="x-name", aliases=("gold",)),
            "y": {"type": "dataset", "name": "y-name", "aliases": ["gold"]},
            "z": Output("dataset", distributed="upsert"),
            "t": Output("report", name="{{ params.report }}"),
        },
    )
    def step(a: Any, b: Any, x: Any, y: Any, z: Any, t: Any) -> None: ...

    @dag(dag_id="artiflow_spec_forms", schedule=None)
    def forms() -> None:
        step()

    built = forms().get_task("step")
    assert built.inputs == {
        "a": {"ref": "a:v1", "type": "dataset"},
        "b": {"ref": "b:latest", "download": True},
    }
    assert built.outputs["x"] == {"type": "dataset", "name": "x-name", "aliases": ["gold"]}
    assert built.outputs["y"] == {"type": "dataset", "name": "y-name", "aliases": ["gold"]}
    assert built.outputs["z"] == {"type": "dataset", "distributed": "upsert"}
    assert sorted(a.uri for a in built.inlets) == ["artiflow://a", "artiflow://b"]
    assert [getattr(o, "uri", o.name) for o in built.outlets] == [
        "artiflow://x-name",
        "artiflow://y-name",
        "artiflow:artiflow_spec_forms.step",
    ]

    @dag(dag_id="artiflow_spec_errors", schedule=None)
    def errors() -> None:
        with pytest.raises(InvalidSpec, match="input 'bad'"):
            task.artifact(inputs={"bad": 3})(lambda bad: None)()
        with pytest.raises(InvalidSpec, match="distributed='finish' is not supported"):
            task.artifact(outputs={"o": Output("dataset", distributed="finish")})(lambda o: None)()

    errors()
