"""Issue 10, the Airflow items: names checked when declared (templated ones once rendered,
before the body runs); task logs that say what each step used, logged or did not commit, and
an XCom line that shows the XCom; asset events from a plain ``@task`` using the hook; the run
identity the README documents."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DagRunState, dag, task

from artiflow.airflow import FinishArtifactOperator, LogArtifactOperator, UseArtifactOperator
from artiflow.errors import InvalidArgument, InvalidName
from artiflow.steps import Output

REPO = Path(__file__).resolve().parents[2]
STEP_LINE = re.compile(r"Used |Logged |Added a part |Nothing committed: |The step failed ")


def _step_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The step lines (inputs used, outputs logged, nothing committed) the tasks logged."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("artiflow.airflow") and STEP_LINE.match(r.getMessage())
    ]


@pytest.fixture
def step_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="artiflow")
    return caplog


# -- 20: invalid names, types, aliases and references fail when the task is declared ----------


def test_invalid_names_fail_when_the_dag_is_parsed() -> None:
    def body(**_: Any) -> None:
        raise AssertionError("never runs")

    @dag(dag_id="artiflow_invalid_declarations", schedule=None)
    def invalid() -> None:
        with pytest.raises(InvalidName, match=r"output 'm': invalid artifact name 'bad name'"):
            task.artifact(outputs={"m": {"type": "model", "name": "bad name"}})(body)()
        with pytest.raises(InvalidName, match=r"output 'm': invalid artifact type 'my model'"):
            task.artifact(outputs={"m": "my model"})(body)()
        with pytest.raises(InvalidName, match=r"output 'm': alias 'latest' is reserved"):
            task.artifact(outputs={"m": Output("model", aliases=("latest",))})(body)()
        with pytest.raises(InvalidName, match=r"output 'm': invalid artifact alias 'no good'"):
            task.artifact(outputs={"m": {"type": "model", "aliases": ["no good"]}})(body)()
        with pytest.raises(InvalidName, match=r"input 'd': artifact reference 'd:' has an empty"):
            task.artifact(inputs={"d": "d:"})(body)()
        with pytest.raises(InvalidName, match=r"input 'd': invalid artifact type 'a b'"):
            task.artifact(inputs={"d": {"type": "a b"}})(body)(d="d:v0")
        with pytest.raises(InvalidName, match=r"input 'd': invalid artifact name 'no good!'"):
            task.artifact(inputs={"d": {"type": "dataset"}})(body)(d="no good!")
        with pytest.raises(InvalidName, match=r"output 'm': invalid artifact name 'bad name'"):
            task.artifact(outputs={"m": {"type": "model", "name": "bad name"}})(body).expand(
                x=[1, 2]
            )
        with pytest.raises(InvalidName, match=r"LogArtifactOperator 'l1': invalid artifact name"):
            LogArtifactOperator(task_id="l1", name="bad name", type="dataset")
        with pytest.raises(InvalidName, match=r"LogArtifactOperator 'l2': alias 'v3' is reserved"):
            LogArtifactOperator(task_id="l2", name="ok", type="dataset", aliases=["v3"])
        with pytest.raises(InvalidArgument, match=r"aliases must be a list of strings"):
            LogArtifactOperator(task_id="l3", name="ok", type="dataset", aliases="best")
        with pytest.raises(InvalidName, match=r"UseArtifactOperator 'u': artifact reference"):
            UseArtifactOperator(task_id="u", ref="x:")
        with pytest.raises(InvalidName, match=r"FinishArtifactOperator 'f': invalid artifact type"):
            FinishArtifactOperator(task_id="f", name="ok", type="bad type")

        # templates and XComs are checked once rendered
        task.artifact(
            outputs={"m": {"type": "model", "name": "{{ params.n }}", "aliases": ["{{ ds }}"]}}
        )(body)()
        LogArtifactOperator(
            task_id="templated", name="{{ params.n }}", type="{{ params.t }}", aliases=["{{ ds }}"]
        )
        UseArtifactOperator(task_id="from_xcom", ref="{{ ti.xcom_pull(task_ids='templated') }}")

    invalid()


def test_the_sensor_checks_its_reference_when_built() -> None:
    from artiflow.airflow import ArtifactSensor

    with pytest.raises(InvalidName, match=r"ArtifactSensor 'wait': invalid artifact name"):
        ArtifactSensor(task_id="wait", ref="not a valid name")
    ArtifactSensor(task_id="templated", ref="{{ params.ref }}")  # checked once rendered


def test_templated_values_are_checked_once_rendered_before_the_body_runs(
    run_dag: Any, registry: Any, task_states: Any, tmp_path: Path
) -> None:
    source = tmp_path / "source.txt"
    source.write_text("source")
    marker = tmp_path / "the-body-ran"

    refused = run_dag(
        "artiflow_test_rendered_checks", alias="latest", marker=str(marker), source=str(source)
    )
    assert refused.state == DagRunState.FAILED
    assert task_states(refused) == {
        ("body_after_checks", -1): "failed",
        ("log_checked", -1): "failed",
    }
    assert not marker.exists(), "the function ran although its alias was invalid"
    assert registry.runs(pipeline="artiflow_test_rendered_checks") == []  # nothing written
    assert registry.names() == []

    accepted = run_dag(
        "artiflow_test_rendered_checks", alias="good", marker=str(marker), source=str(source)
    )
    assert accepted.state == DagRunState.SUCCESS
    assert marker.exists()
    assert registry.artifact("checked:good").version == "v0"
    assert registry.artifact("checked-op:good").version == "v0"


# -- 21: task logs say what each step used and logged, or that nothing was committed ----------


def test_decorated_tasks_log_their_inputs_outputs_and_the_real_xcom(
    run_dag: Any, registry: Any, step_log: pytest.LogCaptureFixture, capsys: Any
) -> None:
    assert run_dag("artiflow_quickstart").state == DagRunState.SUCCESS
    numbers = registry.artifact("numbers:v0")
    assert _step_lines(step_log) == [
        "Logged numbers:v0 (1 file, 19 B, new version)",
        f"Used numbers:v0 (1 file, 19 B, digest {numbers.digest[:12]})",
        "Logged total:v0 (1 file, 2 B, new version)",
    ]
    out = capsys.readouterr().out
    assert "Done. Returned value was: numbers:v0" in out  # what the XCom is
    assert "Done. Returned value was: total:v0" in out
    assert "Returned value was: None" not in out

    step_log.clear()
    assert run_dag("artiflow_quickstart").state == DagRunState.SUCCESS
    assert _step_lines(step_log) == [
        "Logged numbers:v0 (1 file, 19 B, reused v0)",
        f"Used numbers:v0 (1 file, 19 B, digest {numbers.digest[:12]})",
        "Logged total:v0 (1 file, 2 B, reused v0)",
    ]


def test_a_failed_try_logs_that_nothing_was_committed(
    run_dag: Any, step_log: pytest.LogCaptureFixture
) -> None:
    assert run_dag("artiflow_test_retry").state == DagRunState.SUCCESS
    assert _step_lines(step_log) == [
        "Nothing committed: the step failed (RuntimeError: transient failure on the first try)",
        "Logged flaky:v0 (1 file, 25 B, new version)",
    ]
    (failed,) = [r for r in step_log.records if r.getMessage().startswith("Nothing committed")]
    assert failed.levelno == logging.WARNING

    step_log.clear()
    assert run_dag("artiflow_test_failure").state == DagRunState.FAILED
    assert _step_lines(step_log) == [
        "Nothing committed: the step failed (RuntimeError: the task body failed)"
    ]


def test_operators_log_what_they_used_and_logged(
    run_dag: Any,
    seed: Any,
    registry: Any,
    http_server: Any,
    tmp_path: Path,
    step_log: pytest.LogCaptureFixture,
) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("a")
    (data / "sub" / "b.txt").write_text("b")
    url = http_server.put("operators/remote.csv", b"x,y\n1,2\n")
    dag_run = run_dag("artiflow_test_operators", data_dir=str(data), name="op-data", reference=url)
    assert dag_run.state == DagRunState.SUCCESS
    logged = registry.artifact("op-data:v0")
    assert _step_lines(step_log) == [
        "Logged op-data:v0 (3 files, 10 B, new version)",
        f"Used op-data:v0 (3 files, 10 B, digest {logged.digest[:12]})",
    ]

    step_log.clear()
    seed("taken-name", "model", "weights.bin", b"w")
    source = tmp_path / "refused.txt"
    source.write_text("refused")
    refused = run_dag("artiflow_test_operator_failure", source=str(source))
    assert refused.state == DagRunState.FAILED
    (line,) = _step_lines(step_log)
    assert line.startswith("Nothing committed: the step failed (TypeMismatch: ")


def test_the_hooks_run_logs_what_a_plain_task_used_and_logged(
    run_dag: Any, seed: Any, step_log: pytest.LogCaptureFixture
) -> None:
    used = seed("plain-input", "dataset", "in.txt", "hello")
    assert run_dag("artiflow_test_plain_task").state == DagRunState.SUCCESS
    assert _step_lines(step_log) == [
        f"Used plain-input:v0 (1 file, 5 B, digest {used.digest[:12]})",
        "Logged plain-output:v0 (1 file, 5 B, new version)",
    ]

    step_log.clear()
    assert run_dag("artiflow_test_hook_failure").state == DagRunState.FAILED
    assert _step_lines(step_log) == [
        "Nothing committed: the step failed (RuntimeError: the task body failed after logging)"
    ]


# -- 22: a plain @task using the hook emits asset events without declaring outlets ------------


def test_a_plain_task_using_the_hook_emits_its_asset_events(
    run_dag: Any, seed: Any, registry: Any, asset_events: Any, dagbag: Any
) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    plain = dagbag.get_dag("artiflow_test_plain_task").get_task("plain_task_with_hook")
    assert plain.outlets == []  # nothing declared
    consumer = "artiflow_test_plain_consumer"
    with create_session() as session:
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.target_dag_id == consumer))
    seed("plain-input", "dataset", "in.txt", "hello")

    dag_run = run_dag("artiflow_test_plain_task")
    assert dag_run.state == DagRunState.SUCCESS
    output = registry.artifact("plain-output:v0")
    assert asset_events("artiflow://plain-output", dag_run.run_id) == [
        (
            {"version": "v0", "digest": output.digest, "type": "dataset"},
            "plain_task_with_hook",
            ["artiflow:artiflow_test_plain_task.plain_task_with_hook"],
        )
    ]
    with create_session() as session:
        queued = session.scalars(
            select(AssetModel.uri)
            .join(AssetDagRunQueue, AssetDagRunQueue.asset_id == AssetModel.id)
            .where(AssetDagRunQueue.target_dag_id == consumer)
        ).all()
    assert queued == ["artiflow://plain-output"], "the scheduler would now start the consumer"
    assert plain.outlets == []  # the alias was added to the running copy only

    again = run_dag("artiflow_test_plain_task")  # same content: no new data, no event
    assert again.state == DagRunState.SUCCESS
    assert asset_events("artiflow://plain-output", again.run_id) == []


# -- 23: the README's run identity table is what logged_by() returns --------------------------


def _identity_table() -> dict[str, str]:
    """``RunInfo`` field -> the Airflow cell of the README's "Who logged a version" table."""
    readme = (REPO / "README.md").read_text()
    assert "\n## Who logged a version\n" in readme, "the README documents no run identity"
    section = readme.split("\n## Who logged a version\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    return {field.strip().strip("`"): airflow.strip() for field, airflow, *_ in rows}


def test_the_readme_maps_run_identity_onto_the_task_instance(run_dag: Any, registry: Any) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag_run = run_dag("artiflow_test_retry")  # succeeds on its second try
    assert dag_run.state == DagRunState.SUCCESS
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
            )
        ).one()
        native = {
            '"airflow"': "airflow",
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "ti.id": str(ti.id),
            "map_index": ti.map_index,
            "try_number": ti.try_number,
        }
    assert native["try_number"] == 2
    producer = registry.artifact("flaky:v0").logged_by()

    table = _identity_table()
    fields = {"orchestrator", "pipeline", "pipeline_run", "step", "step_run", "map_index"}
    assert fields | {"attempt"} <= table.keys()
    for field, cell in table.items():
        documented = re.match(r"`([^`]+)`", cell)
        if documented is None:  # nothing from Airflow (extra)
            continue
        assert getattr(producer, field) == native[documented.group(1)], (field, cell)
