"""The ETL and consumer example DAGs end to end: versions, lineage, assets and OpenLineage."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk import DagRunState

import artiflow
from artiflow.openlineage import dataset_namespace

ETL_ARTIFACTS = ("raw-data", "clean-data", "model", "eval-report")
REFERENCE_BODY = b"sepal_length,species\n5.1,setosa\n7.0,versicolor\n"


@pytest.fixture
def etl_run(run_dag: Any, http_server: Any) -> Any:
    """One run of the ETL example, its reference served by the local HTTP server."""
    url = http_server.put("etl/reference.csv", REFERENCE_BODY)
    dag_run = run_dag("airflow_etl", reference_uri=url)
    assert dag_run.state == DagRunState.SUCCESS
    dag_run.reference_url = url
    return dag_run


def test_etl_logs_one_version_of_each_artifact(etl_run: Any, registry: Any, xcom: Any) -> None:
    for name in ETL_ARTIFACTS:
        assert [a.version for a in registry.versions(name)] == ["v0"], name

    raw = registry.artifact("raw-data:v0")
    assert set(raw.manifest.entries) == {"orders.csv", "customers.json", "reference/source.csv"}
    reference = raw.get_entry("reference/source.csv")
    assert reference.ref == etl_run.reference_url
    assert reference.size == len(REFERENCE_BODY)

    clean = registry.artifact("clean-data:staging")
    assert clean.version == "v0"
    summary = clean.get("tables/summary")
    assert summary.columns == ["metric", "value"]
    assert summary.data[0][0] == "orders"
    assert registry.artifact("model:candidate").version == "v0"

    # each task returns the pinned "name:vN" of its output through XCom
    assert xcom(etl_run, "extract") == "raw-data:v0"
    assert xcom(etl_run, "train") == "model:v0"
    assert xcom(etl_run, "evaluate") == "eval-report:v0"


def test_etl_lineage_carries_the_airflow_identity(etl_run: Any, registry: Any) -> None:
    producer = registry.artifact("model:v0").logged_by()
    assert producer.orchestrator == "airflow"
    assert producer.pipeline == "airflow_etl"
    assert producer.pipeline_run == etl_run.run_id
    assert producer.step == "train"
    assert producer.map_index == -1
    assert producer.attempt == 1
    assert producer.status == "finished"

    consumers = registry.artifact("clean-data:v0").used_by()
    assert sorted(r.step for r in consumers) == ["evaluate", "train"]
    assert {r.pipeline_run for r in consumers} == {etl_run.run_id}

    graph = registry.lineage("eval-report:v0", direction="upstream").to_dict()
    labels = {n["label"] for n in graph["nodes"] if n["kind"] == "artifact"}
    assert labels == {"eval-report:v0", "model:v0", "clean-data:v0", "raw-data:v0"}
    runs = {n["label"] for n in graph["nodes"] if n["kind"] == "run"}
    assert runs == {f"airflow_etl/{step}" for step in ("extract", "transform", "train", "evaluate")}
    assert len(graph["edges"]) >= 8


def test_a_second_run_with_the_same_content_dedupes(
    etl_run: Any, run_dag: Any, registry: Any, xcom: Any, asset_events: Any, http_server: Any
) -> None:
    again = run_dag("airflow_etl", reference_uri=etl_run.reference_url)
    assert again.state == DagRunState.SUCCESS
    assert again.run_id != etl_run.run_id
    for name in ETL_ARTIFACTS:
        assert [a.version for a in registry.versions(name)] == ["v0"], name
        # no new version landed: DAGs scheduled on the asset must not run again
        assert asset_events(f"artiflow://{name}", again.run_id) == [], name
    assert xcom(again, "train") == "model:v0"

    # new reference data: only raw-data changes (clean-data keeps the same rows, and so on)
    url = http_server.put("etl/reference-2.csv", REFERENCE_BODY + b"6.3,virginica\n")
    changed = run_dag("airflow_etl", reference_uri=url)
    assert changed.state == DagRunState.SUCCESS
    raw = registry.artifact("raw-data:latest")
    assert raw.version == "v1"
    assert asset_events("artiflow://raw-data", changed.run_id) == [
        ({"version": "v1", "digest": raw.digest, "type": "dataset"}, "extract", [])
    ]
    for name in ETL_ARTIFACTS[1:]:
        assert [a.version for a in registry.versions(name)] == ["v0"], name
        assert asset_events(f"artiflow://{name}", changed.run_id) == [], name


def test_every_output_is_an_asset_event_with_the_version(
    etl_run: Any, registry: Any, asset_events: Any
) -> None:
    for name, task_id in zip(
        ETL_ARTIFACTS, ("extract", "transform", "train", "evaluate"), strict=True
    ):
        version = registry.artifact(f"{name}:v0")
        events = asset_events(f"artiflow://{name}", etl_run.run_id)
        assert events == [
            ({"version": "v0", "digest": version.digest, "type": version.type}, task_id, [])
        ]


def test_inputs_and_outputs_are_declared_as_inlets_and_outlets(dagbag: Any) -> None:
    dag = dagbag.get_dag("airflow_etl")
    uris = {
        task_id: (
            sorted(a.uri for a in dag.get_task(task_id).inlets),
            sorted(a.uri for a in dag.get_task(task_id).outlets),
        )
        for task_id in ("extract", "transform", "train", "evaluate")
    }
    assert uris == {
        "extract": ([], ["artiflow://raw-data"]),
        "transform": (["artiflow://raw-data"], ["artiflow://clean-data"]),
        "train": (["artiflow://clean-data"], ["artiflow://model"]),
        "evaluate": (["artiflow://clean-data", "artiflow://model"], ["artiflow://eval-report"]),
    }


def test_the_consumer_dag_is_scheduled_on_the_model_asset(
    run_dag: Any, http_server: Any, registry: Any, dagbag: Any
) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    consumer = dagbag.get_dag("airflow_model_consumer")
    assert [a.uri for a in consumer.timetable.asset_condition.objects] == ["artiflow://model"]
    with create_session() as session:
        session.execute(
            delete(AssetDagRunQueue).where(
                AssetDagRunQueue.target_dag_id == "airflow_model_consumer"
            )
        )
    url = http_server.put("etl/reference.csv", REFERENCE_BODY)
    assert run_dag("airflow_etl", reference_uri=url).state == DagRunState.SUCCESS
    with create_session() as session:
        queued = session.scalars(
            select(AssetModel.uri)
            .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == "airflow_model_consumer")
        ).all()
    assert queued == ["artiflow://model"], "the scheduler would now start the consumer"

    consumed = run_dag("airflow_model_consumer")
    assert consumed.state == DagRunState.SUCCESS
    predictions = registry.artifact("model-predictions:v0")
    assert predictions.metadata == {"model": "model:v0"}
    assert predictions.get("predictions").columns == ["quantity", "amount"]
    users = {(r.pipeline, r.step) for r in registry.artifact("model:v0").used_by()}
    assert users == {("airflow_etl", "evaluate"), ("airflow_model_consumer", "score")}


def test_openlineage_events_carry_the_artifact_versions(
    etl_run: Any, registry: Any, openlineage_events: Any
) -> None:
    namespace = dataset_namespace(registry.store_url)
    complete = {
        e["job"]["name"]: e
        for e in openlineage_events(etl_run.run_id)
        if e["eventType"] == "COMPLETE" and e["job"]["name"].startswith("airflow_etl.")
    }
    assert set(complete) >= {"airflow_etl.extract", "airflow_etl.train", "airflow_etl.evaluate"}

    train = complete["airflow_etl.train"]
    ((out_ns, out_name, out_facets),) = [
        (d["namespace"], d["name"], d["facets"]) for d in train["outputs"]
    ]
    assert (out_ns, out_name) == (namespace, "model")
    assert out_facets["version"]["datasetVersion"] == "v0"
    assert out_facets["version"]["digest"] == registry.artifact("model:v0").digest
    # the datasets artiflow's own OpenLineage events carry, built from the version record
    assert out_facets["artiflow_artifact"]["type"] == "model"
    assert out_facets["artiflow_artifact"]["qualifiedName"] == "model:v0"
    assert "candidate" in out_facets["artiflow_artifact"]["aliases"]
    assert out_facets["lifecycleStateChange"]["lifecycleStateChange"] == "CREATE"
    assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in train["inputs"]] == [
        ("clean-data", "v0")
    ]
    evaluate = complete["airflow_etl.evaluate"]
    assert sorted(d["name"] for d in evaluate["inputs"]) == ["clean-data", "model"]
    assert [d["name"] for d in evaluate["outputs"]] == ["eval-report"]


def test_the_reference_may_be_an_s3_object(run_dag: Any, registry: Any, s3: Any) -> None:
    put = s3.put(s3.versioned_bucket, "reference/iris.csv", REFERENCE_BODY)
    uri = f"s3://{s3.versioned_bucket}/reference/iris.csv"
    assert run_dag("airflow_etl", reference_uri=uri).state == DagRunState.SUCCESS
    entry = registry.artifact("raw-data:v0").get_entry("reference/source.csv")
    assert entry.ref == uri
    assert entry.size == len(REFERENCE_BODY)
    assert put["VersionId"] in entry.extra.values()


def test_the_model_file_is_the_returned_path(etl_run: Any, registry: Any) -> None:
    model = registry.artifact("model:v0")
    assert set(model.manifest.entries) == {"model.json"}
    import json

    params = json.loads((model.download() / "model.json").read_text())
    assert params["slope"] == pytest.approx(2.5, abs=0.1)
    assert isinstance(model, artiflow.Artifact)
