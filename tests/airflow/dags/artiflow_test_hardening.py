"""Test DAGs for issue 10's Airflow items: templated names checked once rendered (before the
body runs), an operator whose log is refused, and a DAG scheduled on what a plain @task logs."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import dag, task

import artiflow as af
from artiflow.airflow import LogArtifactOperator, artifact_asset

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task.artifact(outputs={"checked": {"type": "dataset", "aliases": ["{{ params.alias }}"]}})
def body_after_checks(checked: af.Artifact, params: dict[str, str] | None = None) -> None:
    """Leaves a marker file when its body runs: the test tells whether the checks came first."""
    assert params is not None
    Path(params["marker"]).write_text("the body ran")
    with checked.new_file("data.txt") as f:
        f.write("checked")


@dag(
    dag_id="artiflow_test_rendered_checks",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"alias": "good", "marker": "", "source": ""},
)
def artiflow_test_rendered_checks() -> None:
    body_after_checks()
    LogArtifactOperator(
        task_id="log_checked",
        name="checked-op",
        type="dataset",
        files=["{{ params.source }}"],
        aliases=["{{ params.alias }}"],
    )


@dag(
    dag_id="artiflow_test_operator_failure",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"source": ""},
)
def artiflow_test_operator_failure() -> None:
    """``taken-name`` already is a model (the test logs it): logging a dataset is refused."""
    LogArtifactOperator(
        task_id="log_refused",
        name="taken-name",
        type="dataset",
        files=["{{ params.source }}"],
    )


@dag(
    dag_id="artiflow_test_plain_consumer",
    schedule=[artifact_asset("plain-output")],
    start_date=START,
    catchup=False,
)
def artiflow_test_plain_consumer() -> None:
    """Scheduled on what the plain @task of ``artiflow_test_plain_task`` logs."""

    @task
    def consume() -> None:
        return None

    consume()


artiflow_test_rendered_checks()
artiflow_test_operator_failure()
artiflow_test_plain_consumer()
