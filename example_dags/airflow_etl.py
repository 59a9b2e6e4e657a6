"""ETL with versioned artifacts and lineage: extract -> transform -> train -> evaluate.

Every task is a normal TaskFlow function with one ``@task.artifact`` line. Each run logs
``raw-data`` (two local files plus a remote reference), ``clean-data`` (a CSV plus a table),
``model`` and ``eval-report``; re-running with unchanged inputs logs no new versions (content
dedupe). Downstream tasks pin the exact versions their upstream task produced (the XCom
``"name:vN"``), and every produced artifact is an Airflow Asset (``artiflow://<name>``), so
``airflow_model_consumer`` runs whenever a new ``model`` lands.

The remote reference is the DAG param ``reference_uri`` (an ``https://`` or ``s3://`` URI),
defaulting to ``$ARTIFLOW_EXAMPLE_REFERENCE``. Afterwards::

    artiflow lineage eval-report:latest
"""

from __future__ import annotations

import csv
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task

import artiflow as af

REFERENCE_URI = os.environ.get(
    "ARTIFLOW_EXAMPLE_REFERENCE",
    "https://raw.githubusercontent.com/mwaskom/seaborn-data/master/iris.csv",
)


@task.artifact(outputs={"raw_data": {"type": "dataset", "name": "raw-data"}})
def extract(raw_data: af.Artifact, params: dict[str, Any] | None = None) -> None:
    """Produce the raw orders and customers (deterministic), and track the reference data."""
    rng = random.Random(42)
    with raw_data.new_file("orders.csv") as f:
        writer = csv.writer(f)
        writer.writerow(["order_id", "customer_id", "quantity", "amount"])
        for order_id in range(500):
            quantity = rng.randint(0, 20)
            amount = round(quantity * 2.5 + rng.gauss(0, 1.0), 2)
            writer.writerow([order_id, rng.randint(1, 50), quantity, amount])
    with raw_data.new_file("customers.json") as f:
        json.dump([{"id": i, "segment": "ab"[i % 2]} for i in range(1, 51)], f)
    raw_data.add_reference((params or {})["reference_uri"], name="reference/source.csv")


@task.artifact(
    inputs={"raw": {"ref": "raw-data:latest", "type": "dataset"}},
    outputs={"clean_data": {"type": "dataset", "name": "clean-data", "aliases": ["staging"]}},
)
def transform(raw: af.Artifact, clean_data: af.Artifact) -> None:
    """Drop empty orders; write the clean CSV and a summary table."""
    root = raw.download()
    with open(root / "orders.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["quantity"]) > 0]
    with clean_data.new_file("orders.csv") as f:
        writer = csv.DictWriter(f, fieldnames=["order_id", "customer_id", "quantity", "amount"])
        writer.writeheader()
        writer.writerows(rows)
    total = sum(float(r["amount"]) for r in rows)
    clean_data.add(
        af.Table(columns=["metric", "value"], data=[["orders", len(rows)], ["revenue", total]]),
        "tables/summary",
    )


@task.artifact(
    inputs={"data": {"ref": "clean-data:latest", "type": "dataset"}},
    outputs={"model": {"type": "model", "aliases": ["candidate"]}},
)
def train(data: af.Artifact) -> str:
    """Fit amount = slope * quantity + intercept by least squares; return the model file."""
    with open(data.download() / "orders.csv", newline="") as f:
        points = [(float(r["quantity"]), float(r["amount"])) for r in csv.DictReader(f)]
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    intercept = mean_y - slope * mean_x
    out = Path(tempfile.mkdtemp(prefix="artiflow-model-")) / "model.json"
    out.write_text(json.dumps({"slope": round(slope, 6), "intercept": round(intercept, 6)}))
    return str(out)  # a returned path becomes the content of the single output


@task.artifact(
    inputs={"model": "model:candidate", "data": "clean-data:latest"},
    outputs={"report": {"type": "report", "name": "eval-report"}},
)
def evaluate(model: af.Artifact, data: af.Artifact, report: af.Artifact) -> None:
    """Score the model on the clean data; the report links both inputs in the lineage."""
    params = json.loads((model.download() / "model.json").read_text())
    with open(data.download() / "orders.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    errors = [
        float(r["amount"]) - (params["slope"] * float(r["quantity"]) + params["intercept"])
        for r in rows
    ]
    mse = sum(e * e for e in errors) / len(errors)
    with report.new_file("metrics.json") as f:
        json.dump({"mse": round(mse, 6), "rows": len(rows), "model": model.qualified_name}, f)


@dag(
    dag_id="airflow_etl",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"reference_uri": Param(REFERENCE_URI, type="string")},
    tags=["artiflow", "example"],
)
def airflow_etl() -> None:
    # Passing an upstream task's result pins the exact version it logged ("raw-data:v3")
    # instead of the decorator's default reference (":latest").
    raw = extract()
    clean = transform(raw=raw)
    model = train(data=clean)
    evaluate(model=model, data=clean)


airflow_etl()
