"""ETL with versioned artifacts and lineage, as a Prefect flow: extract -> transform -> train ->
evaluate (the same pipeline as ``airflow_etl``).

Every task is a normal Prefect task with one ``@artifact_task`` line. Each run logs ``raw-data``
(two local files plus a remote reference), ``clean-data`` (a CSV plus a table), ``model`` and
``eval-report``; re-running with unchanged inputs logs no new versions (content dedupe).
Downstream tasks pin the exact versions their upstream task produced (its ``"name:vN"`` result),
every version is mirrored into the Prefect UI's Artifacts page, and each one is reported as a
Prefect asset ``artiflow://<name>``.

The remote reference (an ``https://`` or ``s3://`` URI) is the first argument, defaulting to
``$ARTIFLOW_EXAMPLE_REFERENCE``. Run it in Prefect's ephemeral mode, then look at the lineage::

    python example_dags/prefect_etl.py [REFERENCE_URI]
    artiflow lineage eval-report:latest
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys

from prefect import flow

import artiflow as af
from artiflow.prefect import artifact_task

REFERENCE_URI = os.environ.get(
    "ARTIFLOW_EXAMPLE_REFERENCE",
    "https://raw.githubusercontent.com/mwaskom/seaborn-data/master/iris.csv",
)


@artifact_task(outputs={"raw_data": {"type": "dataset", "name": "raw-data"}})
def extract(raw_data: af.Artifact, reference_uri: str = REFERENCE_URI) -> None:
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
    raw_data.add_reference(reference_uri, name="reference/source.csv")


@artifact_task(
    inputs={"raw": {"ref": "raw-data:latest", "type": "dataset"}},
    outputs={"clean_data": {"type": "dataset", "name": "clean-data", "aliases": ["staging"]}},
)
def transform(raw: af.Artifact, clean_data: af.Artifact) -> None:
    """Drop empty orders; write the clean CSV and a summary table."""
    with open(raw.download() / "orders.csv", newline="") as f:
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


@artifact_task(
    inputs={"data": {"ref": "clean-data:latest", "type": "dataset"}},
    outputs={"model": {"type": "model", "aliases": ["candidate"]}},
    job_type="train",
)
def train(data: af.Artifact, model: af.Artifact) -> None:
    """Fit amount = slope * quantity + intercept by least squares."""
    with open(data.download() / "orders.csv", newline="") as f:
        points = [(float(r["quantity"]), float(r["amount"])) for r in csv.DictReader(f)]
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    intercept = mean_y - slope * mean_x
    with model.new_file("model.json") as f:
        json.dump({"slope": round(slope, 6), "intercept": round(intercept, 6)}, f)


@artifact_task(
    inputs={"model": "model:candidate", "data": "clean-data:latest"},
    outputs={"report": {"type": "report", "name": "eval-report"}},
    job_type="eval",
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


@flow(name="prefect-etl")
def etl(reference_uri: str = REFERENCE_URI) -> dict[str, str]:
    """Run the pipeline; returns the version each step committed."""
    # Passing an upstream task's result pins the exact version it logged ("raw-data:v3")
    # instead of the decorator's default reference (":latest").
    raw = extract(reference_uri=reference_uri)
    clean = transform(raw=raw)
    model = train(data=clean)
    report = evaluate(model=model, data=clean)
    return {"extract": raw, "transform": clean, "train": model, "evaluate": report}


if __name__ == "__main__":
    print(json.dumps(etl(*sys.argv[1:2]), indent=2))
