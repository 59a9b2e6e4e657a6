"""The connection's ``reference_options`` extra: fsspec options by protocol that the registry
adds references with and reads them back with (moto S3, no credentials in the environment)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection

from artiflow.airflow import ArtifactHook
from artiflow.errors import InvalidArgument
from artiflow.orchestration import Output, StepCall, open_step

SECRET = "reference-Secret-never-logged-91"


def test_the_connection_extra_configures_reference_options() -> None:
    conn = Connection(
        conn_id="refs",
        conn_type="artiflow",
        extra=json.dumps({"reference_options": '{"gcs": {"project": "p"}}'}),
    )
    assert ArtifactHook.settings_from_connection(conn)["reference_options"] == {
        "gs": {"project": "p"}
    }
    bad = Connection(
        conn_id="refs", conn_type="artiflow", extra=json.dumps({"reference_options": [1]})
    )
    with pytest.raises(InvalidArgument, match="connection 'refs': reference_options"):
        ArtifactHook.settings_from_connection(bad)


def test_references_are_added_and_read_with_the_connections_options(
    bare_worker: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s3 = bare_worker
    s3.put(s3.versioned_bucket, "exports/day.csv", b"day,total\n1,10\n")
    uri = f"s3://{s3.versioned_bucket}/exports/day.csv"
    options = {
        "key": "testing",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": s3.endpoint_url},
    }
    extra = {
        "store": str(tmp_path / "store"),
        "database": f"sqlite:///{tmp_path / 'r.db'}",
        "reference_options": {"s3": options},
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARTIFLOW_REFS", json.dumps({"conn_type": "artiflow", "extra": extra})
    )
    caplog.set_level(logging.INFO, logger="artiflow.airflow.hooks")
    registry = ArtifactHook(artiflow_conn_id="artiflow_refs").get_registry()
    assert registry.reference_options == {"s3": options}
    assert "reference options for ['s3']" in caplog.text and SECRET not in caplog.text
    # the drafts @task.artifact hands a task function (StepCall), adding a reference ...
    with open_step(registry, {"pipeline": "refs", "step": "extract"}) as step:
        call = StepCall(step, {}, {"raw": Output("dataset", name="conn-refs")})
        call.drafts["raw"].add_reference(uri, name="day.csv")
        call.commit(None)
    # ... and reading it back, with the same options
    root = registry.artifact("conn-refs:v0").download(tmp_path / "out")
    assert (root / "day.csv").read_bytes() == b"day,total\n1,10\n"


def test_a_dag_adds_references_with_the_connections_options(
    bare_worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_dag: Any
) -> None:
    from airflow.sdk import DagRunState

    import artiflow

    s3 = bare_worker
    s3.put(s3.versioned_bucket, "exports/day.csv", b"day,total\n1,10\n")
    options = {
        "key": "testing",
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": s3.endpoint_url},
    }
    extra = {
        "store": f"s3://{s3.plain_bucket}/team",
        "database": f"sqlite:///{tmp_path / 'team.db'}",
        "storage_options": options,  # s3 references read with the store's own options
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARTIFLOW_DEFAULT", json.dumps({"conn_type": "artiflow", "extra": extra})
    )
    dag_run = run_dag(
        "artiflow_test_reference_options", reference=f"s3://{s3.versioned_bucket}/exports/day.csv"
    )
    assert dag_run.state == DagRunState.SUCCESS
    registry = artiflow.Registry(extra["store"], extra["database"], options)
    try:
        for name in ("decorator-refs", "operator-refs"):
            root = registry.artifact(f"{name}:v0").download(tmp_path / name)
            assert (root / "day.csv").read_bytes() == b"day,total\n1,10\n"
    finally:
        registry.close()
