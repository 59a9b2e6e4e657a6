"""Test DAGs: tasks that fail after filling or logging outputs, and one that succeeds on its
retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import dag, task

import artiflow as af
from artiflow.airflow import ArtifactHook

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


@task.artifact(outputs={"first": "dataset", "second": {"type": "dataset", "name": "taken-name"}})
def second_output_refused(first: af.Artifact, second: af.Artifact) -> None:
    """``taken-name`` already is a model (the test logs it): logging ``second`` is refused."""
    with first.new_file("first.txt") as f:
        f.write("accepted on its own, but its task fails")
    with second.new_file("second.txt") as f:
        f.write("refused: wrong type")


@dag(dag_id="artiflow_test_partial_outputs", schedule=None, start_date=START, catchup=False)
def artiflow_test_partial_outputs() -> None:
    second_output_refused()


@task
def fail_after_logging_through_the_hook() -> None:
    """A plain @task whose body fails after it logged through the hook's run."""
    with ArtifactHook().run() as run:
        logged = af.Artifact("hook-doomed", "dataset")
        with logged.new_file("data.txt") as f:
            f.write("logged, then the task failed")
        run.log_artifact(logged)
        raise RuntimeError("the task body failed after logging")


@dag(dag_id="artiflow_test_hook_failure", schedule=None, start_date=START, catchup=False)
def artiflow_test_hook_failure() -> None:
    fail_after_logging_through_the_hook()


artiflow_test_partial_outputs()
artiflow_test_hook_failure()
