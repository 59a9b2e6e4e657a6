"""Test DAGs for the classic operators, a templated artifact name and a plain @task."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, task

import artiflow as af
from artiflow.airflow import ArtifactHook, LogArtifactOperator, UseArtifactOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@dag(
    dag_id="artiflow_test_operators",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"data_dir": "", "name": "op-data", "reference": ""},
)
def artiflow_test_operators() -> None:
    log_op = LogArtifactOperator(
        task_id="log",
        name="{{ params.name }}",
        type="dataset",
        files={"a.txt": "{{ params.data_dir }}/a.txt"},
        dirs=["{{ params.data_dir }}/sub"],
        references={"remote.csv": "{{ params.reference }}"},
        metadata={"day": "{{ ds }}"},
        description="logged by {{ ti.task_id }}",
        aliases=["ops"],
    )
    use_op = UseArtifactOperator(
        task_id="use",
        ref="{{ ti.xcom_pull(task_ids='log') }}",
        type="dataset",
    )
    log_op >> use_op


@task
def plain_task_with_hook(params: Any = None) -> str:
    """A plain @task: the hook's run records lineage and reports it to the collector."""
    with ArtifactHook().run() as run:
        source = run.use_artifact("plain-input:latest", type="dataset")
        result = af.Artifact("plain-output", "dataset")
        with result.new_file("copy.txt") as f:
            f.write((source.download() / "in.txt").read_text().upper())
        run.log_artifact(result)
    return str(result.qualified_name)


@dag(dag_id="artiflow_test_plain_task", schedule=None, start_date=START, catchup=False)
def artiflow_test_plain_task() -> None:
    plain_task_with_hook()


artiflow_test_operators()
artiflow_test_plain_task()
