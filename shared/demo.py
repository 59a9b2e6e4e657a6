"""``artiflow demo``: a small but real ETL pipeline on the core API, run twice.

Four steps, each an artiflow run of the pipeline ``artiflow-demo``:

1. ``extract`` logs ``demo-raw-readings`` (dataset): three days of weather-station readings as
   CSV files, plus a ``file://`` reference to the stations table (tracked, not copied);
2. ``transform`` uses it, drops malformed and duplicate rows, joins the stations and logs
   ``demo-clean-readings`` (dataset): ``clean.csv`` and a :class:`~artiflow.Table`;
3. ``train`` fits a tiny logistic-regression rain model (pure Python) and logs
   ``demo-rain-model`` (model) with the alias ``candidate``;
4. ``evaluate`` scores the model on held-out rows, logs ``demo-eval-report`` (report) and
   moves the model's ``production`` alias when it beats the current production model.

The second pass re-runs the pipeline on the same source with tuned training settings: extract
and transform produce identical content and get the existing versions back (dedupe), while the
model and report get new versions and ``production`` moves to the better model.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifact import Artifact
from .errors import ArtifactNotFound
from .registry import Registry
from .run import Run
from .tables import Table

__all__ = ["MODEL", "PIPELINE", "DemoResult", "run_demo"]

log = logging.getLogger(__name__)

PIPELINE = "artiflow-demo"
RAW, CLEAN, MODEL, REPORT = (
    "demo-raw-readings",
    "demo-clean-readings",
    "demo-rain-model",
    "demo-eval-report",
)
FEATURES = ["temp_c", "humidity", "pressure_hpa", "elevation_m"]
PASSES = [
    {"epochs": 5, "learning_rate": 0.05},  # pass 1: a quick first model
    {"epochs": 300, "learning_rate": 0.5},  # pass 2: tuned
]
_STATIONS = [("ST01", 12, "coast"), ("ST02", 340, "hills"), ("ST03", 1210, "alps")]
_STATIONS += [("ST04", 45, "coast"), ("ST05", 780, "hills")]


@dataclass
class DemoResult:
    """What the demo logged: per pass, the qualified name of each step's output."""

    passes: list[dict[str, str]] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    production: str | None = None


# ------------------------------------------------------------------------------- source data
def write_source(root: Path) -> Path:
    """Generate the raw source under ``root``: ``readings/*.csv`` and ``stations.csv``.

    Deterministic, with a few malformed and duplicate rows for ``transform`` to drop.
    """
    rng = random.Random(7)
    readings = root / "readings"
    readings.mkdir(parents=True, exist_ok=True)
    for day in (1, 2, 3):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["time", "station", "temp_c", "humidity", "pressure_hpa", "rain"])
        rows = []
        for hour in range(24):
            for station, elevation, _ in _STATIONS:
                temp = round(
                    22 - elevation / 150 + 6 * math.sin(hour / 24 * 2 * math.pi) + rng.gauss(0, 2),
                    1,
                )
                humidity = round(min(100.0, max(20.0, rng.gauss(70, 15))), 1)
                pressure = round(1013 - elevation / 9 + rng.gauss(0, 6), 1)
                score = 0.09 * (humidity - 75) - 0.12 * (pressure + elevation / 9 - 1013)
                rain = int(score + rng.gauss(0, 0.5) > 0)
                rows.append(
                    [f"2024-06-0{day}T{hour:02d}:00", station, temp, humidity, pressure, rain]
                )
        rows[5][3] = ""  # a missing humidity reading
        rows[9][4] = "n/a"  # a broken pressure sensor
        rows.append(rows[3])  # a row delivered twice
        writer.writerows(rows)
        (readings / f"2024-06-0{day}.csv").write_text(out.getvalue())
    stations = root / "stations.csv"
    stations.write_text(
        "station,elevation_m,region\n" + "".join(f"{s},{e},{r}\n" for s, e, r in _STATIONS)
    )
    return root


# ------------------------------------------------------------------------------- the model
def _standardise(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    columns = list(zip(*rows, strict=True))
    means = [sum(c) / len(c) for c in columns]
    stds = [
        math.sqrt(sum((x - m) ** 2 for x in c) / len(c)) or 1.0
        for c, m in zip(columns, means, strict=True)
    ]
    return means, stds


def _predict(model: dict[str, Any], features: list[float]) -> float:
    z = model["bias"] + sum(
        w * (x - m) / s
        for w, x, m, s in zip(
            model["weights"], features, model["means"], model["stds"], strict=True
        )
    )
    return 1 / (1 + math.exp(-z))


def train_model(
    rows: list[list[float]], labels: list[int], epochs: int, learning_rate: float
) -> dict[str, Any]:
    """Logistic regression by batch gradient descent on standardised features."""
    means, stds = _standardise(rows)
    model: dict[str, Any] = {
        "kind": "logistic-regression",
        "features": FEATURES,
        "means": means,
        "stds": stds,
        "weights": [0.0] * len(FEATURES),
        "bias": 0.0,
    }
    for _ in range(epochs):
        grad_w, grad_b = [0.0] * len(FEATURES), 0.0
        for x, y in zip(rows, labels, strict=True):
            error = _predict(model, x) - y
            grad_b += error
            for i, value in enumerate(x):
                grad_w[i] += error * (value - means[i]) / stds[i]
        model["weights"] = [
            w - learning_rate * g / len(rows) for w, g in zip(model["weights"], grad_w, strict=True)
        ]
        model["bias"] -= learning_rate * grad_b / len(rows)
    return model


def accuracy(model: dict[str, Any], rows: list[list[float]], labels: list[int]) -> float:
    hits = sum(int(_predict(model, x) >= 0.5) == y for x, y in zip(rows, labels, strict=True))
    return round(hits / len(rows), 4)


def _split(table: Table) -> tuple[list[list[float]], list[int], list[list[float]], list[int]]:
    """Every fifth row is held out for evaluation."""
    idx = [table.columns.index(f) for f in FEATURES]
    label = table.columns.index("rain")
    train_x, train_y, test_x, test_y = [], [], [], []
    for i, row in enumerate(table.data):
        x, y = [float(row[j]) for j in idx], int(row[label])
        if i % 5 == 4:
            test_x.append(x)
            test_y.append(y)
        else:
            train_x.append(x)
            train_y.append(y)
    return train_x, train_y, test_x, test_y


# ------------------------------------------------------------------------------- the steps
def _log(
    run: Run, registry: Registry, art: Artifact, aliases: list[str] | None = None
) -> tuple[str, bool]:
    """Log ``art`` and wait; returns ``(qualified name, newly created)``."""
    try:
        known = {a.version for a in registry.versions(art.name)}
    except ArtifactNotFound:
        known = set()
    run.log_artifact(art, aliases=aliases)
    art.wait()
    return str(art.qualified_name), art.version not in known


def _extract(run: Run, registry: Registry, source: Path) -> tuple[str, bool]:
    raw = Artifact(
        RAW,
        "dataset",
        description="hourly weather-station readings, as delivered",
        metadata={"source": "synthetic weather stations", "days": 3},
    )
    raw.add_dir(source / "readings", name="readings")
    raw.add_reference((source / "stations.csv").resolve().as_uri(), name="stations.csv")
    return _log(run, registry, raw)


def _transform(run: Run, registry: Registry) -> tuple[str, bool]:
    raw_root = run.use_artifact(f"{RAW}:latest", type="dataset").download()
    with open(raw_root / "stations.csv", newline="") as fh:
        elevation = {r["station"]: float(r["elevation_m"]) for r in csv.DictReader(fh)}
    columns = ["time", "station", *FEATURES, "rain"]
    rows: list[list[Any]] = []
    seen: set[tuple[str, str]] = set()
    dropped = 0
    for path in sorted((raw_root / "readings").glob("*.csv")):
        with open(path, newline="") as fh:
            for r in csv.DictReader(fh):
                key = (r["time"], r["station"])
                try:
                    values = [float(r["temp_c"]), float(r["humidity"]), float(r["pressure_hpa"])]
                except ValueError:
                    dropped += 1
                    continue
                if key in seen:
                    dropped += 1
                    continue
                seen.add(key)
                rows.append(
                    [r["time"], r["station"], *values, elevation[r["station"]], int(r["rain"])]
                )
    clean = Artifact(
        CLEAN,
        "dataset",
        description="validated readings joined with station elevation",
        metadata={"rows": len(rows), "dropped": dropped},
    )
    clean.add(Table(columns=columns, data=rows), "readings")
    with clean.new_file("clean.csv") as fh:
        csv.writer(fh, lineterminator="\n").writerows([columns, *rows])
    return _log(run, registry, clean)


def _train(run: Run, registry: Registry, settings: dict[str, Any]) -> tuple[str, bool]:
    table = run.use_artifact(f"{CLEAN}:latest", type="dataset").get("readings")
    if not isinstance(table, Table):  # pragma: no cover - the demo always logs a Table
        raise TypeError("expected a Table")
    train_x, train_y, _, _ = _split(table)
    model = train_model(train_x, train_y, settings["epochs"], settings["learning_rate"])
    art = Artifact(
        MODEL,
        "model",
        description="rain / no rain from one station reading",
        metadata={**settings, "train_accuracy": accuracy(model, train_x, train_y)},
    )
    with art.new_file("model.json") as fh:
        json.dump(model, fh, indent=2, sort_keys=True)
    return _log(run, registry, art, aliases=["candidate"])


def _evaluate(run: Run, registry: Registry, model_ref: str) -> tuple[str, bool, bool]:
    model_art = run.use_artifact(model_ref, type="model")
    model = json.loads((model_art.download() / "model.json").read_text())
    table = run.use_artifact(f"{CLEAN}:latest", type="dataset").get("readings")
    if not isinstance(table, Table):  # pragma: no cover
        raise TypeError("expected a Table")
    _, _, test_x, test_y = _split(table)
    score = accuracy(model, test_x, test_y)
    try:  # the report of the current production model holds its score
        best = float(registry.artifact(f"{REPORT}:production").metadata["accuracy"])
    except ArtifactNotFound:
        best = -1.0
    promote = score > best
    report = Artifact(
        REPORT,
        "report",
        description=f"hold-out evaluation of {model_ref}",
        metadata={"model": model_ref, "accuracy": score, "test_rows": len(test_y)},
    )
    with report.new_file("report.json") as fh:
        json.dump({"model": model_ref, "accuracy": score, "test_rows": len(test_y)}, fh, indent=2)
    with report.new_file("report.md") as fh:
        fh.write(
            f"# Evaluation of {model_ref}\n\nAccuracy on {len(test_y)} held-out rows: {score:.1%}\n"
        )
    name, created = _log(run, registry, report, aliases=["production"] if promote else None)
    if promote:
        registry.set_alias(model_ref, "production")
    return name, created, promote


def run_demo(
    registry: Registry, workdir: str | Path, echo: Callable[[str], None] = log.info
) -> DemoResult:
    """Run both passes of the demo pipeline against ``registry``; narrate through ``echo``.

    ``workdir`` holds the generated source data (the stations reference points into it, so it
    must outlive the registry's use of the demo artifacts).
    """
    source = write_source(Path(workdir) / "source")
    result = DemoResult()

    def step(name: str, n: int) -> Run:
        return registry.run(
            orchestrator="python",
            pipeline=PIPELINE,
            pipeline_run=f"pass-{n}",
            step=name,
            job_type=name,
        )

    for n, settings in enumerate(PASSES, start=1):
        echo(f"pass {n}: epochs={settings['epochs']} learning_rate={settings['learning_rate']}")
        outputs: dict[str, str] = {}
        with step("extract", n) as run:
            outputs["extract"], created = _extract(run, registry, source)
        _narrate(echo, "extract", outputs["extract"], created, result)
        with step("transform", n) as run:
            outputs["transform"], created = _transform(run, registry)
        _narrate(echo, "transform", outputs["transform"], created, result)
        with step("train", n) as run:
            outputs["train"], created = _train(run, registry, settings)
        _narrate(echo, "train", outputs["train"], created, result)
        with step("evaluate", n) as run:
            outputs["evaluate"], created, promoted = _evaluate(run, registry, outputs["train"])
        _narrate(echo, "evaluate", outputs["evaluate"], created, result)
        accuracy_now = registry.artifact(outputs["evaluate"]).metadata["accuracy"]
        if promoted:
            echo(f"  accuracy {accuracy_now:.1%}: {outputs['train']} is now {MODEL}:production")
        else:
            echo(f"  accuracy {accuracy_now:.1%}: {MODEL}:production stays where it is")
        result.passes.append(outputs)
    result.production = registry.artifact(f"{MODEL}:production").qualified_name
    return result


def _narrate(
    echo: Callable[[str], None], step: str, name: str, created: bool, result: DemoResult
) -> None:
    if created:
        echo(f"  {step:<9} → {name} (new version)")
    else:
        result.reused.append(name)
        echo(f"  {step:<9} → {name} (same content: existing version reused)")
