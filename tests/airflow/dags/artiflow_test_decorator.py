"""Test DAGs for @task.artifact: several outputs, returned paths, Path inputs, templated names."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

import artiflow as af

START = pendulum.datetime(2024, 1, 1, tz="UTC")


@task.artifact(outputs={"features": "dataset", "labels": "dataset"})
def split() -> dict[str, str]:
    """Two outputs built from returned paths: a directory and a file."""
    root = Path(tempfile.mkdtemp(prefix="artiflow-split-"))
    (root / "features").mkdir()
    (root / "features" / "x1.csv").write_text("1,2\n3,4\n")
    (root / "features" / "x2.csv").write_text("5,6\n")
    (root / "labels.csv").write_text("0\n1\n")
    return {"features": str(root / "features"), "labels": str(root / "labels.csv")}


@task.artifact(
    inputs={"features": {"type": "dataset"}, "labels": {"type": "dataset", "download": True}},
    outputs={"report": {"type": "report", "name": "{{ params.report_name }}"}},
    job_type="check",
)
def check(features: Path, labels: Path, report: af.Artifact) -> dict[str, Any]:
    """Inputs arrive as downloaded directories; the output's name is templated."""
    summary = {
        "features": sorted(p.name for p in features.iterdir()),
        "labels": (labels / "labels.csv").read_text().split(),
    }
    with report.new_file("summary.json") as f:
        json.dump(summary, f)
    return {"checked": len(summary["features"])}


@dag(
    dag_id="artiflow_test_decorator",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"report_name": "split-report"},
)
def artiflow_test_decorator() -> None:
    parts = split()
    check(features=parts["features"], labels=parts["labels"])


@task.artifact(inputs={"model": {"ref": "features:latest", "type": "model"}}, outputs={"out": "x"})
def wrong_type(model: af.Artifact, out: af.Artifact) -> None:
    with out.new_file("never.txt") as f:
        f.write("never logged")


@dag(dag_id="artiflow_test_type_mismatch", schedule=None, start_date=START, catchup=False)
def artiflow_test_type_mismatch() -> None:
    wrong_type()


@task.artifact(
    inputs={"source": "features:latest"},
    outputs={"item": {"type": "dataset", "name": "item-{{ ti.map_index }}"}},
)
def per_item(letter: str, source: af.Artifact, item: af.Artifact) -> None:
    with item.new_file("letter.txt") as f:
        f.write(f"{letter} from {source.qualified_name}")


@dag(dag_id="artiflow_test_mapped", schedule=None, start_date=START, catchup=False)
def artiflow_test_mapped() -> None:
    per_item.expand(letter=["a", "b"])


artiflow_test_decorator()
artiflow_test_type_mismatch()
artiflow_test_mapped()
