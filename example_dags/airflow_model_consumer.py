"""Data-aware scheduling: runs whenever ``airflow_etl`` logs a new ``model`` version.

The DAG is scheduled on the Asset ``artiflow://model``; the asset event's extra carries the
version that triggered the run (``{"version": "v3", "digest": ..., "type": "model"}``), so the
scoring task uses exactly that version. Triggered by hand, it uses ``model:latest``.
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
from airflow.sdk import dag, task

import artiflow as af
from artiflow.airflow import artifact_asset

MODEL = artifact_asset("model")


@task
def triggering_model(triggering_asset_events: Any = None) -> str:
    """The model version whose asset event triggered this run, or ``model:latest``."""
    events = triggering_asset_events.get(MODEL, []) if triggering_asset_events else []
    if events:
        return f"model:{events[-1].extra['version']}"
    return "model:latest"


@task.artifact(
    inputs={"model": {"type": "model"}},
    outputs={"predictions": {"type": "predictions", "name": "model-predictions"}},
)
def score(model: af.Artifact, predictions: af.Artifact) -> None:
    """Predict the amount for 1..20 items with the triggering model version."""
    params = json.loads((model.download() / "model.json").read_text())
    table = [[q, round(params["slope"] * q + params["intercept"], 4)] for q in range(1, 21)]
    predictions.add(af.Table(columns=["quantity", "amount"], data=table), "predictions")
    predictions.metadata = {"model": model.qualified_name}


@dag(
    dag_id="airflow_model_consumer",
    schedule=[MODEL],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["artiflow", "example"],
)
def airflow_model_consumer() -> None:
    score(model=triggering_model())


airflow_model_consumer()
