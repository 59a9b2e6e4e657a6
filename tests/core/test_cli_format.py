"""``artiflow ls`` and ``artiflow show``: every run with its status, and ``--format json``.

Issue 10, item 24: a failed try listed among "used by" read like a good run. On SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import artiflow as af
from artiflow.cli import main


def _invoke(registry: af.Registry, tmp_path: Path, *args: str) -> Result:
    where = ["--store", str(tmp_path / "store"), "--database", registry.meta.url]
    result = CliRunner().invoke(main, [*args, *where], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def evaluated(registry: af.Registry, tmp_path: Path) -> af.Registry:
    """``model:v0`` from ``train``, used by ``evaluate`` (try 1 failed) and ``evaluate#2``."""
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights")
    art = af.Artifact("model", "model", metadata={"epochs": 3})
    art.add_file(src)
    with registry.run(pipeline="dag", pipeline_run="r1", step="train") as run:
        run.log_artifact(art)
    with (
        pytest.raises(RuntimeError),
        registry.run(pipeline="dag", pipeline_run="r1", step="evaluate", attempt=1) as run,
    ):
        run.use_artifact("model:v0")
        raise RuntimeError("evaluation crashed")
    with registry.run(pipeline="dag", pipeline_run="r1", step="evaluate", attempt=2) as run:
        run.use_artifact("model:v0")
    return registry


def test_show_marks_each_consumer_with_its_run_status(
    evaluated: af.Registry, tmp_path: Path
) -> None:
    out = _invoke(evaluated, tmp_path, "show", "model:v0").stdout
    lines = {line.split("(")[0].split()[-2]: line for line in out.splitlines() if "(" in line}
    assert "(failed, run " in lines["dag/evaluate"]
    assert "(finished, run " in lines["dag/evaluate#2"]
    assert "(finished, run " in lines["dag/train"]


def test_show_as_json(evaluated: af.Registry, tmp_path: Path) -> None:
    data = json.loads(_invoke(evaluated, tmp_path, "show", "model:v0", "--format", "json").stdout)
    assert data["qualified_name"] == "model:v0" and data["type"] == "model"
    assert data["aliases"] == ["latest"] and data["metadata"] == {"epochs": 3}
    assert data["producer"]["label"] == "dag/train"
    assert data["producer"]["status"] == "finished"
    assert [(r["label"], r["status"]) for r in data["used_by"]] == [
        ("dag/evaluate", "failed"),
        ("dag/evaluate#2", "finished"),
    ]
    assert data["entries_total"] == 1
    entry = evaluated.artifact("model:v0").get_entry("model.bin")
    assert data["entries"] == [
        {"path": "model.bin", "size": 7, "digest": entry.digest, "ref": None}
    ]
    assert data["used_by"][0]["finished_at"].endswith("+00:00")


def test_ls_as_json(evaluated: af.Registry, tmp_path: Path) -> None:
    names = json.loads(_invoke(evaluated, tmp_path, "ls", "--format", "json").stdout)
    assert [(a["name"], a["type"], a["versions"], a["latest"]) for a in names] == [
        ("model", "model", 1, "v0")
    ]
    assert [(p["label"], p["status"]) for p in names[0]["producers"]] == [("dag/train", "finished")]
    versions = json.loads(_invoke(evaluated, tmp_path, "ls", "model", "--format", "json").stdout)
    assert [(v["version"], v["aliases"], v["size"], v["file_count"]) for v in versions] == [
        ("v0", ["latest"], 7, 1)
    ]


def test_ls_marks_a_producer_that_did_not_finish(registry: af.Registry, tmp_path: Path) -> None:
    src = tmp_path / "data.txt"
    src.write_text("rows")
    art = af.Artifact("data", "dataset")
    art.add_file(src)
    with pytest.raises(RuntimeError), registry.run(step="load") as run:
        run.log_artifact(art).wait()  # committed (not atomic), then the step fails
        raise RuntimeError("later failure")
    out = _invoke(registry, tmp_path, "ls", "data").stdout
    assert "load (failed)" in out


def test_ls_json_of_an_empty_registry_is_an_empty_list(
    registry: af.Registry, tmp_path: Path
) -> None:
    assert json.loads(_invoke(registry, tmp_path, "ls", "--format", "json").stdout) == []
