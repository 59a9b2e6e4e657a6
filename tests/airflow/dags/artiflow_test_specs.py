"""Test DAGs: ``Input``/``Output`` instances as specs, and an outlet Asset the user declared."""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Asset, dag, task

import artiflow as af
from artiflow.steps import Input, Output

START = pendulum.datetime(2024, 1, 1, tz="UTC")
DOG = Asset(name="dog", uri="artiflow://dog-model")


@task.artifact(
    inputs={"source": Input("spec-source:latest", type="dataset", download=True)},
    outputs={
        "m": Output("model", name="cat-model", aliases=("best",), metadata={"k": 1}),
        "part": Output("dataset", name="cat-parts", distributed=True),
    },
)
def with_instances(source: Path, m: af.Artifact, part: af.Artifact) -> None:
    text = (source / "source.txt").read_text()
    with m.new_file("model.txt") as f:
        f.write(f"model of {text}")
    with part.new_file("part-0.txt") as f:
        f.write(f"part of {text}")


@task.artifact(outputs={"dog": {"type": "model", "name": "dog-model"}}, outlets=[DOG])
def declared_outlet(dog: af.Artifact) -> None:
    with dog.new_file("dog.txt") as f:
        f.write("woof")


@dag(dag_id="artiflow_test_specs", schedule=None, start_date=START, catchup=False)
def artiflow_test_specs() -> None:
    with_instances()
    declared_outlet()


artiflow_test_specs()
