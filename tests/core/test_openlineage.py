"""OpenLineage run events, end to end through the client's own file transport.

Emission is switched on exactly as a user would: the client's ``OPENLINEAGE__TRANSPORT__*``
environment variables (or ``Registry(openlineage=client)``). The written events are parsed back
and checked against the OpenLineage 2-0-2 run-event schema (the parts artiflow emits, below) and
the facets' own schemas.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow.openlineage import (
    ARTIFACT_FACET,
    ARTIFACT_FACET_SCHEMA,
    PRODUCER,
    OpenLineageEmitter,
    dataset_namespace,
    enabled_by_env,
    parent_run_id,
)

pytest.importorskip("openlineage.client")
jsonschema = pytest.importorskip("jsonschema")

# OpenLineage 2-0-2 (https://openlineage.io/spec/2-0-2/OpenLineage.json), the definitions a
# RunEvent uses, and the required fields of the standard facets artiflow sets.
_FACET = {
    "type": "object",
    "properties": {
        "_producer": {"type": "string", "format": "uri"},
        "_schemaURL": {"type": "string", "format": "uri"},
    },
    "required": ["_producer", "_schemaURL"],
}
_DATASET = {
    "type": "object",
    "properties": {
        "namespace": {"type": "string"},
        "name": {"type": "string"},
        "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Facet"}},
    },
    "required": ["namespace", "name"],
}
RUN_EVENT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {
        "Facet": _FACET,
        "Dataset": _DATASET,
        "Run": {
            "type": "object",
            "properties": {
                "runId": {"type": "string", "format": "uuid"},
                "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Facet"}},
            },
            "required": ["runId"],
        },
        "Job": {
            "type": "object",
            "properties": {
                "namespace": {"type": "string"},
                "name": {"type": "string"},
                "facets": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Facet"}},
            },
            "required": ["namespace", "name"],
        },
    },
    "type": "object",
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"$ref": "#/$defs/Run"},
        "job": {"$ref": "#/$defs/Job"},
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/Dataset"}},
        "outputs": {"type": "array", "items": {"$ref": "#/$defs/Dataset"}},
    },
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
}
FACET_REQUIRED = {
    "version": ["datasetVersion"],
    "lifecycleStateChange": ["lifecycleStateChange"],
    "parent": ["run", "job"],
    "jobType": ["processingType", "integration"],
    "processing_engine": ["version"],
    "errorMessage": ["message", "programmingLanguage"],
}


@pytest.fixture
def events_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Configure the client's file transport through its environment variables."""
    path = tmp_path / "openlineage" / "events.jsonl"
    path.parent.mkdir()
    for key in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(path))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "test-jobs")
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    validator = jsonschema.Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=checker)
    facet_validator = jsonschema.Draft202012Validator(ARTIFACT_FACET_SCHEMA, format_checker=checker)
    for event in events:
        validator.validate(event)
        uuid.UUID(event["run"]["runId"])
        assert event["schemaURL"].startswith("https://openlineage.io/spec/2-0-2/OpenLineage.json")
        facets = [*event["run"]["facets"].items(), *event["job"]["facets"].items()]
        for dataset in [*event["inputs"], *event["outputs"]]:
            facets += dataset["facets"].items()
            facet_validator.validate(dataset["facets"])
        for key, facet in facets:
            for field in FACET_REQUIRED.get(key, []):
                assert field in facet, (key, field)
    return events


def log(run: af.Run, name: str, content: str, type_: str = "dataset", **kw: Any) -> af.Artifact:
    art = af.Artifact(name, type_)
    with art.new_file("data.txt") as fh:
        fh.write(content)
    run.log_artifact(art, **kw)
    return art.wait()


def by_run(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        out.setdefault(event["run"]["runId"], []).append(event)
    return out


def test_runs_become_start_and_complete_events(tmp_path: Path, events_file: Path) -> None:
    reg = af.Registry(store=tmp_path / "store", database=f"sqlite:///{tmp_path / 'r.db'}")
    assert isinstance(reg.openlineage, OpenLineageEmitter)
    ids = {}
    with reg.run(pipeline="etl", pipeline_run="2024-06-01", step="extract") as run:
        raw = log(run, "raw", "v0 content", aliases=["gold"])
        ids["extract"] = run.id
    with reg.run(pipeline="etl", pipeline_run="2024-06-01", step="train", map_index=2) as run:
        run.use_artifact("raw:gold", type="dataset")
        log(run, "model", "weights", "model")
        ids["train"] = run.id
    with reg.run(pipeline="etl", pipeline_run="2024-06-02", step="extract") as run:
        log(run, "raw", "v1 content")
        ids["extract2"] = run.id
    with reg.run(pipeline="etl", pipeline_run="2024-06-02", step="extract") as run:
        log(run, "raw", "v1 content")  # same content: the existing v1 comes back
        ids["dedupe"] = run.id
    reg.close()

    events = read_events(events_file)
    runs = by_run(events)
    assert len(events) == 8
    for key, run_id in ids.items():
        ol_id = str(uuid.UUID(run_id))
        assert [e["eventType"] for e in runs[ol_id]] == ["START", "COMPLETE"], key
        start, complete = runs[ol_id]
        assert start["eventTime"] <= complete["eventTime"]
        assert start["producer"] == PRODUCER and start["job"]["namespace"] == "test-jobs"

    extract, train = runs[str(uuid.UUID(ids["extract"]))], runs[str(uuid.UUID(ids["train"]))]
    assert extract[1]["job"]["name"] == "etl.extract" and train[1]["job"]["name"] == "etl.train"
    assert train[1]["job"]["facets"]["jobType"]["integration"] == "ARTIFLOW"
    # parent: the pipeline run, the same for every step of it; another pipeline run differs
    parent = train[1]["run"]["facets"]["parent"]
    assert parent["job"] == {"namespace": "test-jobs", "name": "etl", "facets": {}}
    assert parent["run"]["runId"] == extract[0]["run"]["facets"]["parent"]["run"]["runId"]
    assert parent["root"]["run"]["runId"] == parent["run"]["runId"]
    other = runs[str(uuid.UUID(ids["extract2"]))][1]["run"]["facets"]["parent"]
    assert other["run"]["runId"] != parent["run"]["runId"]

    namespace = dataset_namespace(reg.store_url)
    (output,) = extract[1]["outputs"]
    assert (output["namespace"], output["name"]) == (namespace, "raw")
    assert output["facets"]["version"]["datasetVersion"] == "v0"
    assert output["facets"]["version"]["digest"] == raw.digest
    assert output["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "CREATE"
    facet = output["facets"][ARTIFACT_FACET]
    assert (facet["type"], facet["version"], facet["qualifiedName"]) == ("dataset", "v0", "raw:v0")
    assert (facet["digest"], facet["size"], facet["fileCount"]) == (raw.digest, raw.size, 1)
    assert "gold" in facet["aliases"]  # aliases as they are when the event is built

    (used,) = train[1]["inputs"]
    assert (used["namespace"], used["name"]) == (namespace, "raw")  # stable per artifact
    assert used["facets"]["version"]["datasetVersion"] == "v0"
    assert "lifecycleStateChange" not in used["facets"]
    (model,) = train[1]["outputs"]
    assert model["name"] == "model" and model["facets"][ARTIFACT_FACET]["type"] == "model"

    (v1,) = runs[str(uuid.UUID(ids["extract2"]))][1]["outputs"]
    assert (v1["name"], v1["facets"]["version"]["datasetVersion"]) == ("raw", "v1")
    assert v1["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "OVERWRITE"
    (same,) = runs[str(uuid.UUID(ids["dedupe"]))][1]["outputs"]
    assert same["facets"]["version"]["datasetVersion"] == "v1"
    assert "lifecycleStateChange" not in same["facets"]  # this run did not change the dataset


def test_failed_run_emits_fail_with_the_error(tmp_path: Path, events_file: Path) -> None:
    reg = af.Registry(store=tmp_path / "store", database=f"sqlite:///{tmp_path / 'r.db'}")
    with reg.run(step="ok") as run:
        log(run, "cats", "c")
    with pytest.raises(ValueError, match="bad data"), reg.run(pipeline="p", step="boom") as run:
        run.use_artifact("cats:latest")
        raise ValueError("bad data")
    reg.close()
    events = read_events(events_file)
    (fail,) = [e for e in events if e["eventType"] == "FAIL"]
    assert fail["job"]["name"] == "p.boom"
    assert [d["name"] for d in fail["inputs"]] == ["cats"]
    error = fail["run"]["facets"]["errorMessage"]
    assert error["message"] == "ValueError: bad data" and error["programmingLanguage"] == "python"
    assert "raise ValueError" in error["stackTrace"]
    ok_job = next(e for e in events if e["eventType"] == "START")["job"]["name"]
    assert ok_job == "ok"


def test_an_explicit_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport

    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "explicit.jsonl"
    client = OpenLineageClient(transport=FileTransport(FileConfig(str(path), append=True)))
    reg = af.Registry(
        store=tmp_path / "s", database=f"sqlite:///{tmp_path / 'r.db'}", openlineage=client
    )
    with reg.run(pipeline="p", step="s") as run:
        log(run, "cats", "c")
    reg.close()
    assert [e["eventType"] for e in read_events(path)] == ["START", "COMPLETE"]


def test_emission_never_fails_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(tmp_path / "missing" / "x"))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    reg = af.Registry(store=tmp_path / "s", database=f"sqlite:///{tmp_path / 'r.db'}")
    with caplog.at_level("WARNING", logger="artiflow.openlineage"), reg.run(step="s") as run:
        art = log(run, "cats", "c")
    reg.close()
    assert art.version == "v0"
    assert reg.get_run(run.id).status == "finished"
    assert any(
        "OpenLineage" in r.getMessage() and "not sent" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),
        ({"OPENLINEAGE__TRANSPORT__TYPE": "console"}, True),
        ({"OPENLINEAGE_CONFIG": "/etc/openlineage.yml"}, True),
        ({"ARTIFLOW_OPENLINEAGE": "1"}, True),
        ({"OPENLINEAGE__TRANSPORT__TYPE": "console", "ARTIFLOW_OPENLINEAGE": "0"}, False),
        ({"OPENLINEAGE__TRANSPORT__TYPE": "console", "OPENLINEAGE_DISABLED": "true"}, False),
    ],
)
def test_opt_in_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], enabled: bool
) -> None:
    for key in [
        "OPENLINEAGE_URL",
        "OPENLINEAGE_CONFIG",
        "OPENLINEAGE_DISABLED",
        "ARTIFLOW_OPENLINEAGE",
        "OPENLINEAGE__TRANSPORT__TYPE",
    ]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert enabled_by_env() is enabled
    reg = af.Registry(store=tmp_path / "s", database=f"sqlite:///{tmp_path / 'r.db'}")
    assert (reg.openlineage is not None) is enabled
    reg.close()
    off = af.Registry(
        store=tmp_path / "s", database=f"sqlite:///{tmp_path / 'r.db'}", openlineage=False
    )
    assert off.openlineage is None
    off.close()


def test_parent_run_id_is_stable() -> None:
    info = af.RunInfo(
        id=uuid.uuid4().hex, orchestrator="airflow", pipeline="dag", pipeline_run="r1"
    )
    again = af.RunInfo(
        id=uuid.uuid4().hex, orchestrator="airflow", pipeline="dag", pipeline_run="r1"
    )
    assert parent_run_id(info) == parent_run_id(again)
    assert parent_run_id(af.RunInfo(id="x", orchestrator="python", pipeline="dag")) is None


def test_import_artiflow_does_not_import_the_client(tmp_path: Path) -> None:
    code = (
        "import sys, artiflow as af\n"
        f"reg = af.Registry(store={str(tmp_path / 's')!r}, database='sqlite:///{tmp_path}/r.db')\n"
        "with reg.run(step='s') as run: pass\n"
        "reg.close()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'openlineage')\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    env.pop("ARTIFLOW_OPENLINEAGE", None)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_the_schema_check_catches_broken_events() -> None:
    validator = jsonschema.Draft202012Validator(
        RUN_EVENT_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    event = {
        "eventType": "START",
        "eventTime": "2024-06-01T00:00:00+00:00",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "n", "name": "j", "facets": {}},
    }
    validator.validate(event)
    for broken in (
        {**event, "run": {"runId": "not-a-uuid"}},
        {**event, "job": {"name": "j"}},
        {**event, "eventType": "DONE"},
        {**event, "run": {"runId": str(uuid.uuid4()), "facets": {"x": {"_producer": "p"}}}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)
