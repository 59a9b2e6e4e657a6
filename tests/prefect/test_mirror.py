"""Committed versions mirrored into Prefect: markdown artifacts and asset events."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task
from prefect.context import AssetContext

import artiflow
from artiflow.errors import ArtifactStateError, InvalidName
from artiflow.orchestration import VersionSummary as CoreVersionSummary
from artiflow.prefect import Output, artifact_key, artifact_task, asset_key, report_assets
from artiflow.prefect.mirror import (
    ASSET_CONTEXT_ATTRIBUTES,
    Producer,
    VersionSummary,
    render_markdown,
)


def _unique(prefix: str) -> str:
    """Names unique across the session: the Prefect server outlives each test's registry."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _writer(name: str, *, fail: bool = False, is_async: bool = False, **kwargs: Any) -> Any:
    spec = {"out": Output("dataset", name=name, aliases=("best",))}
    if is_async:

        async def write_async(out: artiflow.Artifact, text: str = "hello") -> None:
            await asyncio.sleep(0)
            with out.new_file("data.txt") as f:
                f.write(text)

        return artifact_task(outputs=spec, **kwargs)(write_async)

    def write(out: artiflow.Artifact, text: str = "hello") -> None:
        with out.new_file("data.txt") as f:
            f.write(text)
        if fail:
            raise RuntimeError("failed after writing")

    return artifact_task(outputs=spec, **kwargs)(write)


def _reader(source: str, name: str) -> Any:
    @artifact_task(inputs={"src": f"{source}:latest"}, outputs={"out": Output("report", name=name)})
    def read(src: artiflow.Artifact, out: artiflow.Artifact) -> None:
        with out.new_file("summary.txt") as f:
            f.write(src.qualified_name or "")

    return read


# --------------------------------------------------------------------------- artifact keys
@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("clean-data", "clean-data"),
        ("Clean_Data.v2", "clean-data-v2"),
        ("__x__", "x"),
        ("...", "artifact"),
    ],
)
def test_artifact_keys_match_prefects_rule(name: str, key: str) -> None:
    assert artifact_key(name) == key
    assert asset_key(f"{name}:v3") == f"artiflow://{name}"


def test_asset_keys_are_the_cores_artifact_uris() -> None:
    with pytest.raises(InvalidName):
        asset_key("not a name:v1")


def test_version_summary_is_the_cores() -> None:
    assert VersionSummary is CoreVersionSummary
    with pytest.raises(ArtifactStateError, match="no version yet"):
        VersionSummary.of(artiflow.Artifact("draft", "dataset"))


def test_markdown_lists_version_digest_aliases_size_and_run() -> None:
    version = VersionSummary(
        name="clean",
        type="dataset",
        version="v3",
        digest="abc123",
        aliases=("latest", "best"),
        size=2048,
        files=2,
        description="a | b",
    )
    producer = Producer(
        run_id="r1", flow_name="etl", flow_run_name="calm-cat", task_name="clean", attempt=2
    )
    text = render_markdown(version, producer, ["raw:v0"])
    for fragment in (
        "`clean:v3`",
        "`v3`",
        "`abc123`",
        "`latest`, `best`",
        "2.0 KiB in 2 files",
        "`raw:v0`",
        "flow `etl` run `calm-cat`",
        "(attempt 2)",
        "`r1`",
        "a \\| b",
    ):
        assert fragment in text


# ------------------------------------------------------------------ Prefect artifacts (UI)
def test_sync_task_mirrors_each_version(prefect_api: Any) -> None:
    name = _unique("mirror-sync")
    write = _writer(name)

    @flow
    def mirrored() -> list[str]:
        return [write(text="one"), write(text="two"), write(text="two")]

    state = mirrored(return_state=True)
    refs = state.result()
    flow_run_id = str(state.state_details.flow_run_id)

    assert refs == [f"{name}:v0", f"{name}:v1", f"{name}:v1"]
    found = prefect_api.artifacts(artifact_key(name), flow_run_id)
    assert len(found) == 2  # one per new version: the dedupe hit is no news
    versions = sorted(a.description for a in found)
    assert versions == sorted(f"artiflow {r} (dataset)" for r in refs[:2])
    registry = artiflow.Registry()
    try:
        v1 = registry.artifact(f"{name}:v1")
        body = next(a.data for a in found if a.description.startswith(f"artiflow {name}:v1"))
        assert f"`{v1.digest}`" in body
        assert "`best`" in body
        assert "task `write`" in body
        assert f"/flow-runs/flow-run/{flow_run_id})" in body and "(None/" not in body
        assert all(a.type == "markdown" and a.task_run_id is not None for a in found)
    finally:
        registry.close()


def test_async_task_mirrors_through_the_async_api(prefect_api: Any) -> None:
    name = _unique("mirror-async")
    write = _writer(name, is_async=True)

    @flow
    async def mirrored_async() -> str:
        return await write(text="async")

    state = asyncio.run(mirrored_async(return_state=True))
    flow_run_id = str(state.state_details.flow_run_id)
    assert state.result() == f"{name}:v0"
    found = prefect_api.artifacts(artifact_key(name), flow_run_id)
    assert [a.description for a in found] == [f"artiflow {name}:v0 (dataset)"]


def test_sync_task_called_inside_an_async_flow_still_mirrors(prefect_api: Any) -> None:
    # the trap: in async context create_markdown_artifact returns a coroutine unless _sync=True
    name = _unique("mirror-mixed")
    write = _writer(name)

    @flow
    async def mixed() -> str:
        return write(text="mixed")

    state = asyncio.run(mixed(return_state=True))
    flow_run_id = str(state.state_details.flow_run_id)
    assert state.result() == f"{name}:v0"
    assert len(prefect_api.artifacts(artifact_key(name), flow_run_id)) == 1


def test_failed_attempts_leave_no_prefect_artifact(prefect_api: Any) -> None:
    name = _unique("mirror-fail")
    write = _writer(name, fail=True, retries=1, retry_delay_seconds=0)

    @flow
    def failing() -> None:
        write()

    state = failing(return_state=True)
    assert state.is_failed()
    assert prefect_api.artifacts(artifact_key(name), str(state.state_details.flow_run_id)) == []


def test_mirror_can_be_turned_off(prefect_api: Any) -> None:
    name = _unique("mirror-off")
    write = _writer(name, mirror=False, assets=False)

    @flow
    def quiet() -> str:
        return write()

    state = quiet(return_state=True)
    assert state.result() == f"{name}:v0"
    assert prefect_api.artifacts(artifact_key(name), str(state.state_details.flow_run_id)) == []


# ------------------------------------------------------------------------------ assets
def test_asset_context_surface_is_still_there() -> None:
    # report_assets relies on these undocumented AssetContext members (prefect 3.9)
    for attribute in ASSET_CONTEXT_ATTRIBUTES:
        assert hasattr(AssetContext, attribute) or attribute in AssetContext.model_fields
    assert AssetContext.model_fields["downstream_assets"].annotation is not None

    @task
    def inside() -> tuple[str, set[str], set[str], dict[str, Any]]:
        version = VersionSummary(name="pinned", type="dataset", version="v0", digest="d")
        how = report_assets([version], ["upstream:v2"])
        ctx = AssetContext.get()
        assert ctx is not None
        return (
            how,
            {a.key for a in ctx.downstream_assets},
            {a.key for a in ctx.direct_asset_dependencies},
            ctx.materialization_metadata,
        )

    @flow
    def pin() -> Any:
        return inside()

    how, downstream, upstream, metadata = pin()
    assert how == "context"
    assert downstream == {"artiflow://pinned"}
    assert upstream == {"artiflow://upstream"}
    assert metadata["artiflow://pinned"]["artiflow"]["version"] == "v0"


def test_versions_become_materialised_assets_with_upstream(prefect_api: Any) -> None:
    source, report = _unique("asset-src"), _unique("asset-report")
    write, read = _writer(source), _reader(source, report)

    @flow
    def assets_flow() -> str:
        write()
        return read()

    state = assets_flow(return_state=True)
    assert state.result() == f"{report}:v0"
    flow_run_id = str(state.state_details.flow_run_id)

    events = prefect_api.events(asset_key(report), flow_run_id=flow_run_id)
    assert [e.event for e in events] == ["prefect.asset.materialization.succeeded"]
    event = events[0]
    related = {r.id: r.role for r in event.related}
    assert related[asset_key(source)] == "asset"
    assert related["artiflow"] == "asset-materialized-by"
    assert event.payload["artiflow"]["qualified_name"] == f"{report}:v0"
    registry = artiflow.Registry()
    try:
        assert event.payload["artiflow"]["digest"] == registry.artifact(f"{report}:v0").digest
    finally:
        registry.close()
    referenced = prefect_api.events(
        asset_key(source), prefix="prefect.asset.referenced", flow_run_id=flow_run_id
    )
    assert len(referenced) == 1
    produced = prefect_api.events(
        asset_key(source), prefix="prefect.asset.materialization", flow_run_id=flow_run_id
    )
    assert [e.payload["artiflow"]["version"] for e in produced] == ["v0"]


def test_a_failing_asset_report_does_not_fail_the_committed_task(
    prefect_api: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    name = _unique("asset-broken")
    write = _writer(name)

    def broken(self: Any, asset_key: str, metadata: dict[str, Any]) -> None:
        raise RuntimeError("Prefect's asset API changed")

    # the undocumented AssetContext surface report_assets relies on, broken
    monkeypatch.setattr(AssetContext, "add_asset_metadata", broken)

    @flow
    def committed_anyway() -> str:
        return write()

    caplog.set_level(logging.WARNING, logger="artiflow.prefect.mirror")
    state = committed_anyway(return_state=True)
    assert state.is_completed()
    assert state.result() == f"{name}:v0"
    registry = artiflow.Registry()
    try:
        assert registry.artifact(f"{name}:best").version == "v0"
    finally:
        registry.close()
    flow_run_id = str(state.state_details.flow_run_id)
    assert len(prefect_api.artifacts(artifact_key(name), flow_run_id)) == 1  # still mirrored
    assert f"could not report {name}:v0 as Prefect assets" in caplog.text


def test_outside_a_task_assets_are_emitted_directly(prefect_api: Any) -> None:
    name = _unique("asset-direct")

    @flow
    def direct() -> str:
        version = VersionSummary(name=name, type="model", version="v4", digest="f00d")
        return report_assets([version], ["features:v1"])

    state = direct(return_state=True)
    assert state.result() == "events"
    events = prefect_api.events(asset_key(name), flow_run_id=str(state.state_details.flow_run_id))
    assert [e.event for e in events] == ["prefect.asset.materialization.succeeded"]
    assert events[0].payload["artiflow"]["version"] == "v4"
    assert "artiflow://features" in {r.id for r in events[0].related}


def test_used_artifacts_flow_into_prefects_own_materialisations(prefect_api: Any) -> None:
    from prefect.assets import materialize

    from artiflow.prefect import use_artifact

    source = _unique("asset-used")
    target = f"file://exports/{_unique('export')}"
    write = _writer(source)

    @materialize(target)
    def export(path: Path) -> int:
        return len((path / "data.txt").read_text())

    @flow
    def interop() -> int:
        write()
        return export(use_artifact(f"{source}:latest"))

    state = interop(return_state=True)
    assert state.result() == len("hello")
    events = prefect_api.events(target, flow_run_id=str(state.state_details.flow_run_id))
    assert [e.event for e in events] == ["prefect.asset.materialization.succeeded"]
    assert asset_key(source) in {r.id for r in events[0].related}
