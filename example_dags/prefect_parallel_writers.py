"""Parallel writers as a Prefect flow: mapped tasks each add a part of one artifact; a final
task commits it (the same pipeline as ``airflow_parallel_writers``).

``write_shard.map(...)`` runs one task run per shard; each upserts its files into the
distributed artifact ``features`` under an id derived from the flow run, so the writers need no
coordination. ``finish_features`` runs after all of them and commits every part as one version
(one Prefect artifact and one asset event for ``artiflow://features``). Identical shards on a
re-run dedupe to the same version. Run it in Prefect's ephemeral mode::

    python example_dags/prefect_parallel_writers.py               # thread pool (default)
    python example_dags/prefect_parallel_writers.py --processes   # process pool
    artiflow lineage features:latest
"""

from __future__ import annotations

import json
import sys

from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner

import artiflow as af
from artiflow.prefect import artifact_task

SHARDS = [0, 1, 2, 3]


@artifact_task(outputs={"shard": {"type": "dataset", "name": "features", "distributed": True}})
def write_shard(index: int, shard: af.Artifact) -> None:
    """Compute one shard of features (deterministic per index)."""
    rows = [{"id": index * 100 + i, "square": (index * 100 + i) ** 2} for i in range(100)]
    with shard.new_file(f"shards/part-{index:03d}.json") as f:
        json.dump(rows, f)


@artifact_task(
    outputs={
        "features": {
            "type": "dataset",
            "name": "features",
            "distributed": "finish",
            "aliases": ["complete"],
        }
    }
)
def finish_features(features: af.Artifact, shards: int) -> None:
    """Commit every upserted part as one version, with a manifest of the shards."""
    with features.new_file("_SUCCESS.json") as f:
        json.dump({"shards": shards}, f)


@flow(name="prefect-parallel-writers")
def parallel_writers(shards: list[int] = SHARDS) -> str:
    """Write the shards in parallel, then commit them; returns the committed version."""
    parts = write_shard.map(shards)
    return finish_features(shards=len(shards), wait_for=parts)


def on_processes(shards: list[int] = SHARDS, workers: int = 2) -> str:
    """The same flow on Prefect's process-pool task runner."""
    runner = ProcessPoolTaskRunner(max_workers=workers)
    return parallel_writers.with_options(task_runner=runner)(shards=shards)


if __name__ == "__main__":
    print(on_processes() if "--processes" in sys.argv[1:] else parallel_writers())
