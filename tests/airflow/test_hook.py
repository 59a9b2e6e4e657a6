"""ArtifactHook: the connection, the registry it builds, secrets, and the environment fallback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException

import artiflow
from artiflow.airflow import ArtifactHook
from artiflow.errors import InvalidArgument

SECRET = "s3cr3t-never-logged-7f3a"


def _set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "artiflow", **fields})
    )


def _log(registry: artiflow.Registry, tmp_path: Path, name: str) -> artiflow.Artifact:
    source = tmp_path / f"{name}.txt"
    source.write_text(f"content of {name}")
    artifact = artiflow.Artifact(name, "dataset")
    artifact.add_file(str(source))
    with registry.run(pipeline="hook-test", step="log") as run:
        run.log_artifact(artifact)
    return artifact


def test_without_a_connection_the_environment_registry_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home-from-env"
    monkeypatch.setenv("ARTIFLOW_HOME", str(home))
    registry = ArtifactHook().get_registry()
    assert Path(registry.store_url) == home / "store"
    assert registry.database_url == f"sqlite:///{home / 'registry.db'}"
    logged = _log(registry, tmp_path, "fallback-data")
    assert artiflow.Registry().artifact("fallback-data").digest == logged.digest


def test_a_named_connection_that_does_not_exist_is_an_error() -> None:
    with pytest.raises(AirflowNotFoundException):
        ArtifactHook(artiflow_conn_id="artiflow_missing").get_registry()


def test_the_connection_configures_store_and_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, database = tmp_path / "conn-store", f"sqlite:///{tmp_path / 'conn.db'}"
    _set_connection(monkeypatch, "artiflow_team", extra={"store": str(store), "database": database})
    hook = ArtifactHook(artiflow_conn_id="artiflow_team")
    registry = hook.get_registry()
    assert (registry.store_url, registry.database_url) == (str(store), database)
    assert hook.get_registry() is registry
    # one registry per process and configuration, whichever hook asks
    assert ArtifactHook(artiflow_conn_id="artiflow_team").get_registry() is registry
    logged = _log(registry, tmp_path, "team-data")
    assert artiflow.Registry(store=str(store), database=database).artifact(
        "team-data:v0"
    ).digest == (logged.digest)
    assert any(store.rglob("*")), "the blobs landed in the connection's store"
    # the environment's registry saw nothing
    with pytest.raises(artiflow.ArtifactNotFound):
        artiflow.Registry().artifact("team-data")


def test_an_s3_store_with_secret_storage_options_is_never_logged(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    options = {
        "client_kwargs": {"endpoint_url": s3.endpoint_url},
        "key": "testing",
        "secret": SECRET,
    }
    _set_connection(
        monkeypatch,
        "artiflow_default",
        extra={
            "store": f"s3://{s3.plain_bucket}/registry",
            "database": f"sqlite:///{tmp_path / 's3-registry.db'}",
            "storage_options": options,
        },
    )
    caplog.set_level(logging.DEBUG)
    registry = ArtifactHook().get_registry()
    assert registry.storage_options == options
    _log(registry, tmp_path, "s3-data")
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.plain_bucket)["Contents"]]
    assert keys and all(k.startswith("registry/") for k in keys)
    assert "Using artiflow registry from connection 'artiflow_default'" in caplog.text
    assert SECRET not in caplog.text


def test_credentials_in_the_store_url_are_never_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _set_connection(
        monkeypatch,
        "artiflow_url_secret",
        extra={
            "store": f"memory://user:{SECRET}@bucket/registry?token={SECRET}",
            "database": f"sqlite:///{tmp_path / 'url-secret.db'}",
        },
    )
    caplog.set_level(logging.INFO, logger="artiflow.airflow.hooks")
    ArtifactHook(artiflow_conn_id="artiflow_url_secret").get_registry()
    assert "store=memory://bucket/registry " in caplog.text
    assert SECRET not in caplog.text


def test_login_and_password_fill_in_the_database_url() -> None:
    conn = Connection(
        conn_id="artiflow_pg",
        conn_type="artiflow",
        login="artiflow",
        password="pa:ss/word",
        extra=json.dumps(
            {"database": "postgresql+psycopg://db.internal:5432/artiflow", "store": "s3://b/p"}
        ),
    )
    settings = ArtifactHook.settings_from_connection(conn)
    assert settings["database"] == (
        "postgresql+psycopg://artiflow:pa%3Ass%2Fword@db.internal:5432/artiflow"
    )
    assert settings["store"] == "s3://b/p"
    assert settings["storage_options"] is None


def test_storage_options_may_be_a_json_string_but_must_be_an_object() -> None:
    conn = Connection(
        conn_id="c", conn_type="artiflow", extra=json.dumps({"storage_options": '{"anon": true}'})
    )
    assert ArtifactHook.settings_from_connection(conn)["storage_options"] == {"anon": True}
    bad = Connection(
        conn_id="c", conn_type="artiflow", extra=json.dumps({"storage_options": "[1, 2]"})
    )
    with pytest.raises(InvalidArgument, match="storage_options must be a JSON object"):
        ArtifactHook.settings_from_connection(bad)


def test_test_connection_reports_success_and_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_connection(
        monkeypatch,
        "artiflow_ok",
        extra={"store": str(tmp_path / "ok"), "database": f"sqlite:///{tmp_path / 'ok.db'}"},
    )
    assert ArtifactHook(artiflow_conn_id="artiflow_ok").test_connection() == (
        True,
        "Connected to the artiflow registry",
    )
    # a directory is not a SQLite database file
    _set_connection(
        monkeypatch,
        "artiflow_broken",
        extra={"store": str(tmp_path / "s"), "database": f"sqlite:///{tmp_path}"},
    )
    ok, message = ArtifactHook(artiflow_conn_id="artiflow_broken").test_connection()
    assert not ok
    assert message.startswith("DatabaseError: cannot open database")


def test_a_connection_of_type_artiflow_builds_this_hook(tmp_path: Path) -> None:
    conn = Connection(
        conn_id="artiflow_direct",
        conn_type="artiflow",
        extra=json.dumps(
            {"store": str(tmp_path / "d"), "database": f"sqlite:///{tmp_path / 'd.db'}"}
        ),
    )
    hook = conn.get_hook()
    assert isinstance(hook, ArtifactHook)
    assert hook.artiflow_conn_id == "artiflow_direct"
    assert conn.test_connection() == (True, "Connected to the artiflow registry")
