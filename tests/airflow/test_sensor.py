"""ArtifactSensor (poke and deferrable) and ArtifactTrigger against a real registry."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DagRunState
from airflow.sdk.exceptions import AirflowException

import artiflow
from artiflow.airflow import ArtifactSensor, ArtifactTrigger


def _log_ticker(registry: artiflow.Registry, tmp_path: Path, content: str) -> str:
    source = tmp_path / f"ticker-{content}.txt"
    source.write_text(content)
    ticker = artiflow.Artifact("ticker", "dataset")
    ticker.add_file(str(source), name="ticker.txt")
    with registry.run(pipeline="publisher", step="publish") as run:
        run.log_artifact(ticker)
    return str(ticker.qualified_name)


def _sensor_row(run_id: str) -> dict[str, Any]:
    """The sensor's task instance: state, and what it deferred to (method and trigger)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(TaskInstance.state, TaskInstance.next_method, TaskInstance.trigger_id).where(
                TaskInstance.dag_id == "artiflow_test_sensor",
                TaskInstance.task_id == "wait_for_new_ticker",
                TaskInstance.run_id == run_id,
            )
        ).first()
    if row is None:
        return {}
    return {
        "state": str(row.state) if row.state is not None else None,
        "next_method": row.next_method,
        "trigger_id": row.trigger_id,
    }


def test_the_deferrable_sensor_waits_in_the_trigger_for_the_alias_to_move(
    run_dag: Any, registry: Any, xcom: Any, tmp_path: Path
) -> None:
    seed_file = tmp_path / "seed.txt"
    seed_file.write_text("first")
    observed: dict[str, Any] = {}

    def publish_later() -> None:
        # wait for the DAG's seed version, give the sensor time to defer, then publish v1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                registry.artifact("ticker:v0")
                break
            except artiflow.ArtifactNotFound:
                time.sleep(0.1)
        time.sleep(2.0)
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            run_id = session.scalar(
                select(DagRun.run_id)
                .where(DagRun.dag_id == "artiflow_test_sensor")
                .order_by(DagRun.id.desc())
            )
        observed["sensor_before_v1"] = _sensor_row(run_id)
        observed["published"] = _log_ticker(registry, tmp_path, "second")

    publisher = threading.Thread(target=publish_later, daemon=True)
    publisher.start()
    dag_run = run_dag("artiflow_test_sensor", path=str(seed_file))
    publisher.join(timeout=60)

    assert dag_run.state == DagRunState.SUCCESS
    assert xcom(dag_run, "seed") == "ticker:v0"
    assert observed["published"] == "ticker:v1"
    # before v1 the sensor had deferred: its task instance waits on the trigger to call
    # execute_complete (dag.test() runs the trigger in line, with the instance queued)
    before = observed["sensor_before_v1"]
    assert before["next_method"] == "execute_complete", before
    assert before["state"] == "deferred" or before["trigger_id"] is not None, before
    assert xcom(dag_run, "wait_for_new_ticker") == "ticker:v1"


def test_the_poke_sensor_returns_the_version_it_found(
    run_dag: Any, registry: Any, xcom: Any, tmp_path: Path
) -> None:
    _log_ticker(registry, tmp_path, "only")
    dag_run = run_dag("artiflow_test_sensor_poke")
    assert dag_run.state == DagRunState.SUCCESS
    assert xcom(dag_run, "wait_for_ticker") == "ticker:v0"


async def _first_event(trigger: ArtifactTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def test_the_trigger_fires_when_a_new_version_lands(registry: Any, tmp_path: Path) -> None:
    _log_ticker(registry, tmp_path, "one")
    trigger = ArtifactTrigger(ref="ticker:latest", moved_from="ticker:v0", poll_interval=0.1)
    classpath, kwargs = trigger.serialize()
    assert classpath == "artiflow.airflow.triggers.ArtifactTrigger"
    assert ArtifactTrigger(**kwargs).serialize() == (classpath, kwargs)

    timer = threading.Timer(0.5, _log_ticker, args=(registry, tmp_path, "two"))
    timer.start()
    try:
        event = asyncio.run(asyncio.wait_for(_first_event(trigger), timeout=30))
    finally:
        timer.join()
    assert event == {"status": "success", "ref": "ticker:v1"}


def test_the_trigger_reports_a_refused_reference_as_an_error_event() -> None:
    trigger = ArtifactTrigger(ref="not a valid name", poll_interval=0.1)
    event = asyncio.run(asyncio.wait_for(_first_event(trigger), timeout=30))
    assert event["status"] == "error"
    assert event["message"].startswith("InvalidName")


def test_the_sensor_fails_on_an_error_event() -> None:
    sensor = ArtifactSensor(task_id="wait", ref="ticker")
    with pytest.raises(AirflowException, match="InvalidName: bad"):
        sensor.execute_complete(
            context={}, event={"status": "error", "message": "InvalidName: bad"}
        )  # type: ignore[arg-type]
