"""Provider registration: the provider-info dict, discovery, the decorator and the asset scheme."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import airflow
import jsonschema
import pytest
from airflow.sdk import Asset

from artiflow.airflow import artifact_asset, artifact_task, get_provider_info
from artiflow.airflow.assets import convert_asset_to_openlineage, create_asset, sanitize_uri
from artiflow.errors import InvalidName

AIRFLOW_DIR = Path(airflow.__file__).parent


def test_provider_info_is_valid_for_airflows_runtime_schema() -> None:
    schema = json.loads((AIRFLOW_DIR / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_connection_types_are_valid_for_airflows_provider_yaml_schema() -> None:
    # The runtime schema does not describe conn-fields / ui-field-behaviour; the stricter
    # provider.yaml schema does, and the connection form is built from them.
    schema = json.loads((AIRFLOW_DIR / "provider.yaml.schema.json").read_text())
    conn_schema = schema["properties"]["connection-types"]
    jsonschema.validate(get_provider_info()["connection-types"], conn_schema)


def test_package_name_is_the_distribution_name() -> None:
    (ep,) = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value == "artiflow.airflow:get_provider_info"
    ]
    assert ep.dist is not None
    assert ep.dist.name == get_provider_info()["package-name"] == "artiflow"


def test_providers_manager_discovers_everything(airflow_db: None) -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "artiflow" in manager.providers
    assert manager.providers["artiflow"].data["package-name"] == "artiflow"
    runtime = ProvidersManagerTaskRuntime()
    hook = runtime.hooks["artiflow"]
    assert hook is not None
    assert hook.hook_class_name == "artiflow.airflow.hooks.ArtifactHook"
    assert hook.connection_id_attribute_name == "artiflow_conn_id"
    assert hook.connection_testable
    assert runtime.taskflow_decorators["artifact"] is artifact_task
    assert runtime.asset_uri_handlers["artiflow"] is sanitize_uri
    assert runtime.asset_factories["artiflow"] is create_asset
    assert runtime.asset_to_openlineage_converters["artiflow"] is convert_asset_to_openlineage
    widgets = {k for k in manager.connection_form_widgets if k.startswith("extra__artiflow__")}
    assert widgets == {
        "extra__artiflow__store",
        "extra__artiflow__database",
        "extra__artiflow__storage_options",
    }
    assert "host" in manager.field_behaviours["artiflow"]["hidden_fields"]


def test_airflow_providers_list_shows_artiflow() -> None:
    airflow_cli = Path(sys.executable).parent / "airflow"
    result = subprocess.run(
        [str(airflow_cli), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=True,
    )
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    (row,) = [r for r in rows if r["package_name"] == "artiflow"]
    assert row["version"] == get_provider_info()["versions"][0]


def test_task_artifact_is_the_registered_decorator() -> None:
    from airflow.sdk import task

    assert task.artifact is artifact_task


def test_artiflow_assets_are_normalised_and_validated() -> None:
    asset = Asset(uri="artiflow://raw-data")
    assert asset.uri == "artiflow://raw-data"  # Airflow's sanitiser would add a trailing "/"
    assert asset.normalized_uri == "artiflow://raw-data"
    assert artifact_asset("raw-data") == asset
    assert Asset(uri="ARTIFLOW://Raw.Data_1/").uri == "artiflow://Raw.Data_1"
    with pytest.raises(InvalidName, match="not a version or a file"):
        Asset(uri="artiflow://raw-data/v3")
    with pytest.raises(InvalidName, match="not a version or a file"):
        Asset(uri="artiflow://raw-data?version=v3")
    with pytest.raises(InvalidName, match="invalid artifact name"):
        sanitize_uri(urlsplit("artiflow://bad name"))
    with pytest.raises(InvalidName, match="needs an artifact name"):
        sanitize_uri(urlsplit("artiflow:///path"))


def test_openlineage_converter_carries_the_version() -> None:
    extra = {"version": "v3", "digest": "abc", "type": "model", "namespace": "artiflow+s3://b/p"}
    dataset = convert_asset_to_openlineage(Asset(uri="artiflow://cat-model", extra=extra), None)
    assert (dataset.namespace, dataset.name) == ("artiflow+s3://b/p", "cat-model")
    assert dataset.facets["version"].datasetVersion == "v3"
    assert dataset.facets["datasetType"].subType == "model"
    bare = convert_asset_to_openlineage(artifact_asset("cat-model"), None)
    assert (bare.namespace, bare.name, bare.facets) == ("artiflow", "cat-model", {})


def test_asset_factory_builds_the_artifact_asset() -> None:
    asset = create_asset(name="features", extra={"version": "v1"})
    assert asset.uri == "artiflow://features"
    assert asset.extra == {"version": "v1"}
