"""Test DAGs: a task that fails after filling its output, and one that succeeds on its retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

import artiflow as af

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task.artifact(outputs={"doomed": "dataset"})
def fail_after_filling(doomed: af.Artifact) -> None:
    with doomed.new_file("half-written.txt") as f:
        f.write("this must never become a version")
    raise RuntimeError("the task body failed")


@dag(dag_id="artiflow_test_failure", schedule=None, start_date=START, catchup=False)
def artiflow_test_failure() -> None:
    fail_after_filling()


@task.artifact(
    outputs={"flaky": "dataset"},
    retries=2,
    retry_delay=timedelta(seconds=0),
)
def fail_first_try(flaky: af.Artifact, ti: Any = None) -> None:
    with flaky.new_file("data.txt") as f:
        f.write("same content on every try")
    if ti.try_number == 1:
        raise RuntimeError("transient failure on the first try")


@dag(dag_id="artiflow_test_retry", schedule=None, start_date=START, catchup=False)
def artiflow_test_retry() -> None:
    fail_first_try()


artiflow_test_failure()
artiflow_test_retry()
