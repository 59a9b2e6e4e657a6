"""Airflow test harness: a throw-away AIRFLOW_HOME with SQLite, the example DAGs, OpenLineage.

Airflow reads its configuration when it is first imported, so the environment is prepared when
this conftest is imported, before any test module imports airflow. The DAGs folder holds links
to ``example_dags/airflow_*.py`` and ``tests/airflow/dags/*.py`` (DAGs must live in the DAGs
folder: ``dag.test()`` only runs DAGs it can serialise from their file). OpenLineage events go
to a JSON-lines file through the file transport.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="artiflow-airflow-home-"))
DAGS_FOLDER = AIRFLOW_HOME / "dags"
OPENLINEAGE_EVENTS = AIRFLOW_HOME / "openlineage.jsonl"


def _prepare() -> None:
    DAGS_FOLDER.mkdir()
    sources = sorted((REPO / "example_dags").glob("airflow_*.py"))
    sources += sorted((Path(__file__).parent / "dags").glob("*.py"))
    for source in sources:
        (DAGS_FOLDER / source.name).symlink_to(source)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(OPENLINEAGE_EVENTS), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "artiflow-tests",
        }
    )
    atexit.register(shutil.rmtree, AIRFLOW_HOME, ignore_errors=True)


_prepare()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh Airflow metadata database (SQLite), once per session."""
    from airflow.utils import db

    db.resetdb()


@pytest.fixture(scope="session")
def dagbag(airflow_db: None) -> Any:
    """Every DAG in the DAGs folder, parsed the way the DAG processor parses them."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


@pytest.fixture(autouse=True)
def _fresh_hook_lineage_collector() -> Iterator[None]:
    """dag.test() runs every task in this process: start each test with an empty collector."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    get_hook_lineage_collector.cache_clear()
    yield
    get_hook_lineage_collector.cache_clear()


@pytest.fixture(autouse=True)
def _isolated_artiflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ``artiflow_default`` connection (the environment's registry, under the per-test
    ``ARTIFLOW_HOME``), and downloads and the blob cache under the test's tmp dir; the
    process-wide registries the hooks opened for this test are closed after it."""
    import artiflow

    monkeypatch.delenv("AIRFLOW_CONN_ARTIFLOW_DEFAULT", raising=False)
    monkeypatch.setenv("ARTIFLOW_ARTIFACT_DIR", str(tmp_path / "downloads"))
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    yield
    artiflow.Registry.close_shared()


@pytest.fixture
def registry() -> Any:
    """The registry the DAGs write to when no connection is defined (the environment's)."""
    import artiflow

    return artiflow.Registry()


@pytest.fixture
def seed(registry: Any, tmp_path: Path) -> Any:
    """``seed(name, type, filename, content)``: log a one-file artifact, as an upstream step
    outside the DAG would; returns the committed artifact."""
    import artiflow

    def log(name: str, type_: str, filename: str, content: str | bytes) -> Any:
        source = tmp_path / "seed" / name / filename
        source.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            source.write_bytes(content)
        else:
            source.write_text(content)
        art = artiflow.Artifact(name, type_)
        art.add_file(str(source))
        with registry.run(pipeline="seed", step="seed") as run:
            run.log_artifact(art)
        return art

    return log


@pytest.fixture
def run_dag(dagbag: Any) -> Any:
    """``run_dag(dag_id, **conf)``: one DAG run in-process with ``dag.test()``; the DagRun."""

    def run(dag_id: str, **conf: Any) -> Any:
        dag = dagbag.get_dag(dag_id)
        if dag is None:
            raise KeyError(f"no DAG {dag_id!r} in {DAGS_FOLDER}")
        return dag.test(run_conf=conf or None)

    return run


@pytest.fixture
def task_states() -> Any:
    """``task_states(dag_run)``: ``{(task_id, map_index): state}`` of a finished DagRun."""
    from airflow.utils.session import create_session

    def states(dag_run: Any) -> dict[tuple[str, int], str]:
        with create_session() as session:
            return {
                (ti.task_id, ti.map_index): str(ti.state)
                for ti in dag_run.get_task_instances(session=session)
            }

    return states


@pytest.fixture
def openlineage_events() -> Any:
    """``openlineage_events(run_id=None)``: events the file transport wrote (for one run)."""

    def events(run_id: str | None = None) -> list[dict[str, Any]]:
        if not OPENLINEAGE_EVENTS.exists():
            return []
        lines = OPENLINEAGE_EVENTS.read_text().splitlines()
        found = [json.loads(line) for line in lines if line.strip()]
        if run_id is None:
            return found
        return [e for e in found if _airflow_run_id(e) == run_id]

    return events


def _airflow_run_id(event: dict[str, Any]) -> str | None:
    facets = event.get("run", {}).get("facets", {})
    airflow = facets.get("airflow", {})
    dag_run = airflow.get("dagRun", {})
    return dag_run.get("run_id") or airflow.get("taskInstance", {}).get("run_id")


@pytest.fixture
def xcom() -> Any:
    """``xcom(dag_run, task_id, key="return_value", map_index=-1)``: a pushed XCom value."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def value(dag_run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        with create_session() as session:
            row = session.scalars(
                XComModel.get_many(
                    run_id=dag_run.run_id,
                    dag_ids=dag_run.dag_id,
                    task_ids=task_id,
                    key=key,
                    map_indexes=map_index,
                )
            ).first()
            if row is None:
                raise KeyError(f"no XCom {key!r} from {task_id!r} in {dag_run.run_id}")
            return XComModel.deserialize_value(row)

    return value


@pytest.fixture
def asset_events() -> Any:
    """``asset_events(uri, run_id)``: ``[(extra, source task id, source alias names)]``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    def events(uri: str, run_id: str) -> list[tuple[dict[str, Any], str, list[str]]]:
        with create_session() as session:
            rows = session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
                .where(AssetModel.uri == uri, AssetEvent.source_run_id == run_id)
                .order_by(AssetEvent.id)
            ).all()
            return [
                (dict(e.extra), str(e.source_task_id), [a.name for a in e.source_aliases])
                for e in rows
            ]

    return events
