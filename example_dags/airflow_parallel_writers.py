"""Parallel writers: mapped tasks each add a part of one artifact; a final task commits it.

``write_shard.expand(...)`` runs one task instance per shard; each upserts its files into the
distributed artifact ``features`` under an id derived from the DAG run, so the writers need no
coordination. ``FinishArtifactOperator`` then commits every part as one version (one asset
event for ``artiflow://features``). Identical shards on a re-run dedupe to the same version.
"""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import dag, task

import artiflow as af
from artiflow.airflow import FinishArtifactOperator

SHARDS = [0, 1, 2, 3]


@task.artifact(
    outputs={"shard": {"type": "dataset", "name": "features", "distributed": True}},
)
def write_shard(index: int, shard: af.Artifact) -> None:
    """Compute one shard of features (deterministic per index)."""
    rows = [{"id": index * 100 + i, "square": (index * 100 + i) ** 2} for i in range(100)]
    with shard.new_file(f"shards/part-{index:03d}.json") as f:
        json.dump(rows, f)


@dag(
    dag_id="airflow_parallel_writers",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["artiflow", "example"],
)
def airflow_parallel_writers() -> None:
    parts = write_shard.expand(index=SHARDS)
    finish = FinishArtifactOperator(
        task_id="finish", name="features", type="dataset", aliases=["complete"]
    )
    parts >> finish


airflow_parallel_writers()
