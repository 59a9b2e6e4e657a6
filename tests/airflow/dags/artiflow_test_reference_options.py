"""Test DAG: references added by ``@task.artifact`` and ``LogArtifactOperator`` with the options
the ``artiflow_default`` connection configures (``tests/airflow/test_reference_options.py``)."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

import artiflow as af
from artiflow.airflow import LogArtifactOperator


@dag(
    dag_id="artiflow_test_reference_options",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"reference": ""},
)
def artiflow_test_reference_options() -> None:
    @task.artifact(outputs={"tracked": {"type": "dataset", "name": "decorator-refs"}})
    def track(tracked: af.Artifact) -> None:
        params: Any = get_current_context()["params"]
        tracked.add_reference(params["reference"], name="day.csv")

    logged = LogArtifactOperator(
        task_id="log",
        name="operator-refs",
        type="dataset",
        references={"day.csv": "{{ params.reference }}"},
    )
    track() >> logged


artiflow_test_reference_options()
