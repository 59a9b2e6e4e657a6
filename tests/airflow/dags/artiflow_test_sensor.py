"""Test DAGs for ArtifactSensor: deferrable (waits in the trigger) and poke mode."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from artiflow.airflow import ArtifactSensor, LogArtifactOperator

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@dag(
    dag_id="artiflow_test_sensor",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"path": ""},
)
def artiflow_test_sensor() -> None:
    seed = LogArtifactOperator(
        task_id="seed", name="ticker", type="dataset", files=["{{ params.path }}"]
    )
    wait = ArtifactSensor(
        task_id="wait_for_new_ticker",
        ref="ticker:latest",
        moved_from="{{ ti.xcom_pull(task_ids='seed') }}",
        deferrable=True,
        poke_interval=0.2,
        timeout=60,
    )
    seed >> wait


@dag(dag_id="artiflow_test_sensor_poke", schedule=None, start_date=START, catchup=False)
def artiflow_test_sensor_poke() -> None:
    ArtifactSensor(
        task_id="wait_for_ticker",
        ref="ticker",
        mode="poke",
        poke_interval=0.2,
        timeout=60,
    )


artiflow_test_sensor()
artiflow_test_sensor_poke()
