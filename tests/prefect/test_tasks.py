"""``artifact_task`` and the explicit tasks in real flows, asserting on the registry."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from prefect import flow, task
from prefect.states import State

import artiflow
from artiflow.errors import ArtifactNotFound, DistributedError, InvalidSpec, TypeMismatch
from artiflow.orchestration import default_distributed_id
from artiflow.prefect import (
    ArtifactRegistry,
    Input,
    Output,
    artifact_task,
    distributed_id_for,
    log_artifact,
    prefect_identity,
    use_artifact,
)

# --------------------------------------------------------------------------- tasks under test
CALLS: list[str] = []


@artifact_task(outputs={"raw": Output("dataset", name="raw-data")})
def make_raw(raw: artiflow.Artifact, text: str = "a,b\n1,2\n") -> None:
    with raw.new_file("data.csv") as f:
        f.write(text)


@artifact_task(
    inputs={"raw": Input("raw-data:latest", type="dataset")},
    outputs={"clean": "dataset"},
)
def clean_up(raw: artiflow.Artifact, clean: artiflow.Artifact) -> None:
    text = (raw.download() / "data.csv").read_text()
    with clean.new_file("data.csv") as f:
        f.write(text.upper())


@flow
def two_steps(text: str = "a,b\n1,2\n") -> tuple[str, str]:
    raw = make_raw(text=text)
    return raw, clean_up(raw=raw)


def _run(flow_fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str, State]:
    """Run a flow; return its result (or None when it failed), flow run id and state."""
    state: State = flow_fn(*args, return_state=True, **kwargs)
    flow_run_id = str(state.state_details.flow_run_id)
    result = state.result() if state.is_completed() else None
    return result, flow_run_id, state


# ------------------------------------------------------------------------------- end to end
def test_versions_and_lineage_carry_the_prefect_identity(
    registry: artiflow.Registry, prefect_api: Any
) -> None:
    (raw_ref, clean_ref), flow_run_id, _ = _run(two_steps)

    assert (raw_ref, clean_ref) == ("raw-data:v0", "clean:v0")
    assert (registry.artifact("clean:latest").download() / "data.csv").read_text() == "A,B\n1,2\n"

    task_runs = prefect_api.task_runs(flow_run_id)
    producer = registry.artifact("clean:v0").logged_by()
    assert producer is not None
    assert producer.orchestrator == "prefect"
    assert producer.pipeline == "two-steps"
    assert producer.pipeline_run == flow_run_id
    assert producer.step == "clean_up"
    assert producer.step_run in task_runs
    assert task_runs[producer.step_run].name.startswith("clean_up")
    assert producer.attempt == 1
    assert producer.status == "finished"

    consumers = registry.artifact("raw-data:v0").used_by()
    assert [(r.step, r.step_run) for r in consumers] == [("clean_up", producer.step_run)]
    raw_producer = registry.artifact("raw-data:v0").logged_by()
    assert raw_producer is not None and raw_producer.step == "make_raw"
    assert raw_producer.step_run != producer.step_run

    graph = registry.lineage("clean:v0", direction="upstream").to_dict()
    labels = {n["label"] for n in graph["nodes"] if n["kind"] == "artifact"}
    assert labels == {"clean:v0", "raw-data:v0"}
    assert sum(1 for n in graph["nodes"] if n["kind"] == "run") == 2


def test_unchanged_content_is_deduplicated(registry: artiflow.Registry) -> None:
    first, _, _ = _run(two_steps)
    second, _, _ = _run(two_steps)
    third, _, _ = _run(two_steps, text="a,b\n3,4\n")

    assert first == second == ("raw-data:v0", "clean:v0")
    assert third == ("raw-data:v1", "clean:v1")
    assert [a.version for a in registry.versions("clean")] == ["v0", "v1"]


@artifact_task(outputs={"out": Output("dataset", name="never")})
def fails_after_writing(out: artiflow.Artifact) -> None:
    with out.new_file("partial.txt") as f:
        f.write("half done")
    raise RuntimeError("boom")


@flow
def failing_flow() -> None:
    make_raw()
    fails_after_writing()


def test_a_failed_task_commits_nothing(registry: artiflow.Registry, prefect_api: Any) -> None:
    _, flow_run_id, state = _run(failing_flow)

    assert state.is_failed()
    with pytest.raises(ArtifactNotFound):
        registry.artifact("never")
    assert prefect_api.artifacts("never", flow_run_id) == []


@artifact_task(
    outputs={
        "first": Output("dataset", name="partial-first"),
        "second": Output("dataset", name="taken-by-a-model"),
    }
)
def second_output_refused(first: artiflow.Artifact, second: artiflow.Artifact) -> None:
    with first.new_file("first.txt") as f:
        f.write("accepted on its own, but its task fails")
    with second.new_file("second.txt") as f:
        f.write("refused: the name belongs to a model")


@flow
def partial_outputs_flow() -> None:
    second_output_refused()


def test_a_refused_second_output_commits_neither(
    registry: artiflow.Registry, tmp_path: Path
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w")
    taken = artiflow.Artifact("taken-by-a-model", "model")
    taken.add_file(str(tmp_path / "weights.bin"))
    with registry.run(pipeline="seed", step="seed") as run:
        run.log_artifact(taken)

    _, flow_run_id, state = _run(partial_outputs_flow)

    assert state.is_failed()
    with pytest.raises(TypeMismatch):
        state.result()
    # "first" was logged before "second" was refused: it must not be committed either
    with pytest.raises(ArtifactNotFound):
        registry.artifact("partial-first")
    assert [a.version for a in registry.versions("taken-by-a-model")] == ["v0"]
    (failed,) = registry.runs(pipeline_run=flow_run_id)
    assert (failed.step, failed.status) == ("second_output_refused", "failed")


@artifact_task(outputs={"out": Output("dataset", name="declared-never")}, run_param="run")
def logs_through_the_run_then_fails(out: artiflow.Artifact, run: artiflow.Run) -> None:
    extra = artiflow.Artifact("logged-never", "dataset")
    with extra.new_file("extra.txt") as f:
        f.write("logged through the run, then the function failed")
    run.log_artifact(extra)
    with out.new_file("out.txt") as f:
        f.write("never logged")
    raise RuntimeError("the function failed after logging")


@flow
def logs_then_fails_flow() -> None:
    logs_through_the_run_then_fails()


def test_a_function_failing_after_logging_through_the_run_commits_nothing(
    registry: artiflow.Registry,
) -> None:
    _, flow_run_id, state = _run(logs_then_fails_flow)

    assert state.is_failed()
    for name in ("logged-never", "declared-never"):
        with pytest.raises(ArtifactNotFound):
            registry.artifact(name)
    (failed,) = registry.runs(pipeline_run=flow_run_id)
    assert failed.status == "failed"


@artifact_task(
    inputs={"raw": "raw-data:latest"},
    outputs={"model": Output("model", name="flaky-model")},
    retries=1,
    retry_delay_seconds=0,
)
def flaky_train(raw: artiflow.Artifact, model: artiflow.Artifact) -> None:
    from prefect.runtime import task_run

    with model.new_file("weights.txt") as f:
        f.write(f"trained on {raw.qualified_name}")
    if task_run.run_count == 1:
        raise RuntimeError("transient failure")


@flow
def retrying_flow() -> str:
    return flaky_train(raw=make_raw())


def test_retry_commits_once_under_the_second_attempt(registry: artiflow.Registry) -> None:
    ref, _, state = _run(retrying_flow)

    assert state.is_completed()
    assert ref == "flaky-model:v0"
    assert [a.version for a in registry.versions("flaky-model")] == ["v0"]
    producer = registry.artifact("flaky-model:v0").logged_by()
    assert producer is not None
    assert (producer.attempt, producer.status) == (2, "finished")
    attempts = {
        (r.attempt, r.status)
        for r in registry.artifact("raw-data:v0").used_by()
        if r.step == "flaky_train"
    }
    assert attempts == {(1, "failed"), (2, "finished")}
    # both attempts belong to the same task run
    steps = {r.step_run for r in registry.artifact("raw-data:v0").used_by()}
    assert len(steps) == 1


@artifact_task(inputs={"raw": Input("raw-data:latest", type="model")})
def wrong_type(raw: artiflow.Artifact) -> None:
    CALLS.append("wrong_type ran")


@flow
def wrong_type_flow() -> None:
    make_raw()
    wrong_type()


def test_a_type_mismatch_fails_before_the_function_runs() -> None:
    CALLS.clear()
    _, _, state = _run(wrong_type_flow)

    assert state.is_failed()
    with pytest.raises(TypeMismatch):
        state.result()
    assert CALLS == []


# ------------------------------------------------------------------------- the signature
def test_the_task_signature_shows_references_not_artifacts() -> None:
    sig = inspect.signature(clean_up.fn)
    assert list(sig.parameters) == ["raw", "artiflow_map_index"]  # .map() fills the index
    assert sig.parameters["artiflow_map_index"].default is None
    assert sig.parameters["raw"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["raw"].default == "raw-data:latest"
    assert clean_up.fn.__wrapped__ is clean_up.fn.__prefect_task_source__
    assert clean_up.name == "clean_up"
    assert clean_up.task_key != make_raw.task_key
    assert clean_up.task_key.startswith("clean_up-")


def test_wrapped_tasks_pickle_for_process_pools() -> None:
    restored = cloudpickle.loads(cloudpickle.dumps(clean_up))
    assert restored.name == "clean_up"
    assert inspect.signature(restored.fn).parameters["raw"].default == "raw-data:latest"


def test_undeclared_parameters_are_rejected() -> None:
    def no_params() -> None:
        return None

    with pytest.raises(TypeError, match="run"):
        artifact_task(run_param="run")(no_params)
    with pytest.raises(TypeError, match="declared twice"):
        artifact_task(inputs={"x": "a:latest"}, outputs={"x": "dataset"})(no_params)


def test_a_parameter_the_wrapper_cannot_fill_is_an_invalid_spec() -> None:
    def positional_only(out: Any, /) -> None:
        return None

    with pytest.raises(InvalidSpec, match="must accept a keyword argument"):
        artifact_task(outputs={"out": "dataset"})(positional_only)


# ------------------------------------------------------------------- inputs and outputs
@artifact_task(inputs={"data": "raw-data:latest", "copy": Input("raw-data:v0", download=True)})
def reads_paths(data: Path, copy: Any) -> str:
    return f"{(data / 'data.csv').read_text()}|{(copy / 'data.csv').read_text()}"


@artifact_task(outputs={"report": {"type": "report", "name": "path-report", "aliases": ["best"]}})
def returns_a_path(tmp: str) -> str:
    target = Path(tmp) / "report.txt"
    target.write_text("written elsewhere")
    return str(target)


@artifact_task(outputs={"left": "dataset", "right": "dataset"})
def two_outputs(left: artiflow.Artifact, right: artiflow.Artifact) -> None:
    with left.new_file("l.txt") as f:
        f.write("L")
    with right.new_file("r.txt") as f:
        f.write("R")


@artifact_task(inputs={"raw": "raw-data:latest"}, run_param="run")
def logs_through_the_run(raw: artiflow.Artifact, run: artiflow.Run) -> str:
    extra = artiflow.Artifact("side-output", "dataset")
    with extra.new_file("side.txt") as f:
        f.write(raw.qualified_name or "")
    run.log_artifact(extra)
    return "done"


@flow
def shapes_flow(tmp: str) -> dict[str, Any]:
    raw = make_raw()
    make_raw(text="x\n")  # raw-data:v1, so latest and v0 differ
    return {
        "paths": reads_paths(),
        "path": returns_a_path(tmp),
        "two": two_outputs(),
        "run": logs_through_the_run(raw=raw),
    }


def test_input_and_output_shapes(registry: artiflow.Registry, tmp_path: Path) -> None:
    result, _, state = _run(shapes_flow, str(tmp_path))

    assert state.is_completed()
    assert result["paths"] == "x\n|a,b\n1,2\n"  # Path annotation and download=True
    assert result["path"] == "path-report:v0"
    report = registry.artifact("path-report:best")
    assert (report.download() / "report.txt").read_text() == "written elsewhere"
    assert result["two"] == {"left": "left:v0", "right": "right:v0"}
    assert result["run"] == "done"
    side = registry.artifact("side-output:v0").logged_by()
    assert side is not None and side.step == "logs_through_the_run"
    used = registry.artifact("raw-data:v0").used_by()
    assert side.id in {r.id for r in used}


@artifact_task(outputs={"empty": "dataset"})
def leaves_output_empty(empty: artiflow.Artifact) -> None:
    return None


@flow
def empty_flow() -> None:
    leaves_output_empty()


def test_an_empty_output_fails_the_task(registry: artiflow.Registry) -> None:
    _, _, state = _run(empty_flow)
    assert state.is_failed()
    with pytest.raises(ValueError, match="empty"):
        state.result()
    with pytest.raises(ArtifactNotFound):
        registry.artifact("empty")


# ----------------------------------------------------------------------- runners and async
@artifact_task(outputs={"out": Output("dataset", name="concurrent")})
def write_value(value: int, out: artiflow.Artifact) -> None:
    with out.new_file("value.txt") as f:
        f.write(str(value))


@flow
def submitted(n: int = 6) -> list[str]:
    futures = [write_value.submit(i) for i in range(n)]
    return [f.result() for f in futures]


def test_submit_writers_get_gap_free_versions(registry: artiflow.Registry) -> None:
    refs, _, state = _run(submitted)

    assert state.is_completed()
    assert sorted(refs) == [f"concurrent:v{i}" for i in range(6)]
    versions = registry.versions("concurrent")
    assert [v.version for v in versions] == [f"v{i}" for i in range(6)]
    steps = {v.logged_by().step_run for v in versions}  # type: ignore[union-attr]
    assert len(steps) == 6


@artifact_task(
    inputs={"raw": "raw-data:latest"}, outputs={"out": Output("dataset", name="async-out")}
)
async def async_step(raw: artiflow.Artifact, out: artiflow.Artifact) -> None:
    await asyncio.sleep(0)
    with out.new_file("copy.txt") as f:
        f.write(raw.qualified_name or "")


@flow
async def async_flow() -> str:
    make_raw()  # a sync artifact task called from async code
    return await async_step()


def test_async_tasks_in_an_async_flow(registry: artiflow.Registry) -> None:
    state = asyncio.run(async_flow(return_state=True))

    assert state.is_completed()
    assert state.result() == "async-out:v0"
    producer = registry.artifact("async-out:v0").logged_by()
    assert producer is not None
    assert (producer.orchestrator, producer.step, producer.attempt) == ("prefect", "async_step", 1)
    assert (registry.artifact("async-out:v0").download() / "copy.txt").read_text() == "raw-data:v0"


def test_async_tasks_load_a_saved_block_by_name(tmp_path: Path) -> None:
    block = ArtifactRegistry(
        store=str(tmp_path / "async-store"), database=f"sqlite:///{tmp_path / 'async.db'}"
    )
    block.save("async-team-registry", overwrite=True)

    @artifact_task(
        outputs={"out": Output("dataset", name="async-by-name")}, registry="async-team-registry"
    )
    async def with_async_name(out: artiflow.Artifact) -> None:
        await asyncio.sleep(0)
        with out.new_file("z.txt") as f:
            f.write("async block")

    @flow
    async def async_block_flow() -> str:
        return await with_async_name()

    assert asyncio.run(async_block_flow()) == "async-by-name:v0"
    team = block.registry()
    try:
        producer = team.artifact("async-by-name:v0").logged_by()
        assert producer is not None and producer.step == "with_async_name"
    finally:
        team.close()


def test_distributed_ids_are_the_cores_default_within_a_flow_run() -> None:
    assert distributed_id_for("features", "run-1") == default_distributed_id("features", "run-1")
    with pytest.raises(DistributedError, match="needs a flow run"):
        distributed_id_for("features")

    @flow
    def inside() -> str:
        return distributed_id_for("features")

    state = inside(return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    assert state.result() == default_distributed_id("features", flow_run_id)


@artifact_task(outputs={"part": {"type": "dataset", "name": "parts", "distributed": True}})
def upsert_part(index: int, part: artiflow.Artifact) -> None:
    with part.new_file(f"part-{index}.txt") as f:
        f.write(str(index))


@artifact_task(outputs={"parts": {"type": "dataset", "distributed": "finish"}})
def finish_parts(parts: artiflow.Artifact) -> None:
    return None


@flow
def parts_flow() -> tuple[list[str], str]:
    ids = upsert_part.map([0, 1])
    return [f.result() for f in ids], finish_parts(wait_for=ids)


def test_distributed_writers_share_the_flow_runs_id(registry: artiflow.Registry) -> None:
    (ids, finished), flow_run_id, _ = _run(parts_flow)

    assert ids == [distributed_id_for("parts", flow_run_id)] * 2
    assert finished == "parts:v0"
    assert sorted(registry.artifact("parts:v0").manifest.entries) == ["part-0.txt", "part-1.txt"]


# ------------------------------------------------------------------------- blocks and tasks
def test_tasks_use_the_given_block_and_saved_block_names(tmp_path: Path) -> None:
    block = ArtifactRegistry(
        store=str(tmp_path / "team-store"), database=f"sqlite:///{tmp_path / 'team.db'}"
    )
    block.save("team-registry", overwrite=True)

    @artifact_task(outputs={"out": Output("dataset", name="by-block")}, registry=block)
    def with_block(out: artiflow.Artifact) -> None:
        with out.new_file("x.txt") as f:
            f.write("block")

    @artifact_task(
        inputs={"src": "by-block:latest"},
        outputs={"out": Output("dataset", name="by-name")},
        registry="team-registry",
    )
    def with_name(src: artiflow.Artifact, out: artiflow.Artifact) -> None:
        with out.new_file("y.txt") as f:
            f.write(src.qualified_name or "")

    @flow
    def block_flow() -> tuple[str, str]:
        return with_block(), with_name()

    assert block_flow() == ("by-block:v0", "by-name:v0")
    team = block.registry()
    try:
        assert team.artifact("by-name:v0").logged_by().step == "with_name"  # type: ignore[union-attr]
    finally:
        team.close()
    with pytest.raises(ArtifactNotFound):
        artiflow.Registry().artifact("by-block")  # nothing went to the default registry


def test_explicit_log_and_use_tasks(registry: artiflow.Registry, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("A")
    (tmp_path / "single.txt").write_text("S")

    @flow
    def explicit() -> tuple[str, str]:
        ref = log_artifact(
            "explicit-data",
            "dataset",
            paths=[tmp_path / "in", tmp_path / "single.txt"],
            aliases=["golden"],
            metadata={"rows": 1},
        )
        root = use_artifact(ref, type="dataset")
        return ref, (Path(root) / "in" / "a.txt").read_text()

    ref, text = explicit()
    assert (ref, text) == ("explicit-data:v0", "A")
    art = registry.artifact("explicit-data:golden")
    assert sorted(art.manifest.entries) == ["in/a.txt", "single.txt"]  # a folder keeps its name
    assert art.logged_by().step == "log_artifact"  # type: ignore[union-attr]
    assert [r.step for r in art.used_by()] == ["use_artifact"]


def test_identity_outside_prefect_is_plain_python() -> None:
    identity = prefect_identity()
    assert identity["orchestrator"] == "python"
    assert identity["pipeline_run"] is None and identity["step_run"] is None

    @task
    def inside() -> dict[str, Any]:
        return prefect_identity()

    @flow(name="identity-flow")
    def outer() -> dict[str, Any]:
        return inside()

    seen = outer()
    assert seen["orchestrator"] == "prefect"
    assert seen["pipeline"] == "identity-flow"
    assert seen["step"] == "inside"
    assert seen["attempt"] == 1
    assert seen["pipeline_run"] and seen["step_run"]
