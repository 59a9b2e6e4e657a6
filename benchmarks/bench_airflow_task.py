"""Overhead of ``@task.artifact`` over a plain ``@task`` writing the same file, in one DAG run.

The DAG alternates plain tasks and artifact tasks (``plain_0 >> artifact_0 >> plain_1 >> ...``).
Every task writes the same amount of fresh data to a file; the plain task stops there, the
artifact task hands the file to artiflow (hash, upload to the local store, commit, lineage, asset
event). Durations are the task instances' own (start to end, as Airflow records them), so the
difference of the medians is what artiflow adds to a task. One warm-up run is discarded (first-
task imports), then ``--runs`` DAG runs are measured, each with new content (no dedupe).

Usage::

    .venv-airflow/bin/python benchmarks/bench_airflow_task.py [--tasks 10] [--size-kb 256]

Target: under 150 ms per task. Runs on a throw-away AIRFLOW_HOME (SQLite) and ARTIFLOW_HOME.

``--smoke`` runs one task pair of 4 KiB once after the warm-up and prints the overhead without
judging it: ``make bench-smoke`` runs it so the script keeps working.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

TARGET_MS = 150.0

DAG_SOURCE = """
from __future__ import annotations

import os
import tempfile

import pendulum
from airflow.sdk import dag, task

TASKS = {tasks}
SIZE = {size}


def _write(index: int, nonce: str) -> str:
    path = os.path.join(tempfile.mkdtemp(prefix="bench-"), "data.bin")
    seed = f"{{nonce}}-{{index}}".encode()
    block = (seed * (1024 // len(seed) + 1))[:1024]
    with open(path, "wb") as f:
        for _ in range(SIZE // 1024):
            f.write(block)
    return path


@task
def plain(index: int, params=None) -> str:
    return _write(index, params["nonce"])


@task.artifact(outputs={{"data": "dataset"}})
def artifact(index: int, params=None) -> str:
    return _write(index, params["nonce"])


@dag(
    dag_id="bench_airflow_task",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={{"nonce": "x"}},
)
def bench_airflow_task():
    previous = None
    for i in range(TASKS):
        p = plain.override(task_id=f"plain_{{i}}")(i)
        output = {{"type": "dataset", "name": f"bench-{{i}}"}}
        a = artifact.override(task_id=f"artifact_{{i}}", outputs={{"data": output}})(i)
        if previous is not None:
            previous >> p
        p >> a
        previous = a


bench_airflow_task()
"""


def _prepare(home: Path, tasks: int, size: int, openlineage: bool) -> Path:
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "bench_airflow_task.py").write_text(
        textwrap.dedent(DAG_SOURCE.format(tasks=tasks, size=size))
    )
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AIRFLOW__OPENLINEAGE__DISABLED": "False" if openlineage else "True",
            "ARTIFLOW_HOME": str(home / "artiflow"),
            "ARTIFLOW_CACHE_DIR": str(home / "artiflow-cache"),
            "ARTIFLOW_HASH_CACHE": str(home / "artiflow-hashes.db"),
        }
    )
    if openlineage:
        os.environ["AIRFLOW__OPENLINEAGE__TRANSPORT"] = (
            f'{{"type": "file", "log_file_path": "{home / "ol.jsonl"}", "append": true}}'
        )
    return dags


def _durations(dag_run: Any) -> tuple[list[float], list[float]]:
    from airflow.utils.session import create_session

    plain: list[float] = []
    artifact: list[float] = []
    with create_session() as session:
        for ti in dag_run.get_task_instances(session=session):
            seconds = (ti.end_date - ti.start_date).total_seconds()
            (plain if ti.task_id.startswith("plain_") else artifact).append(seconds)
    return plain, artifact


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10, help="task pairs per DAG run")
    parser.add_argument("--size-kb", type=int, default=256, help="file size each task writes")
    parser.add_argument("--runs", type=int, default=2, help="measured DAG runs (after warm-up)")
    parser.add_argument("--openlineage", action="store_true", help="emit OpenLineage events")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.size_kb, args.runs = 1, 4, 1

    home = Path(tempfile.mkdtemp(prefix="artiflow-bench-airflow-"))
    try:
        dags = _prepare(home, args.tasks, args.size_kb * 1024, args.openlineage)

        from airflow.dag_processing.dagbag import DagBag
        from airflow.sdk import DagRunState
        from airflow.utils import db

        db.resetdb()
        dag = DagBag(dag_folder=str(dags)).get_dag("bench_airflow_task")
        plain: list[float] = []
        artifact: list[float] = []
        for run in range(args.runs + 1):
            started = time.perf_counter()
            dag_run = dag.test(run_conf={"nonce": f"run-{run}-{time.time_ns()}"})
            wall = time.perf_counter() - started
            if dag_run.state != DagRunState.SUCCESS:
                print(f"DAG run {run} failed", file=sys.stderr)
                return 1
            if run == 0:
                print(f"warm-up run: {wall:.1f} s (discarded)")
                continue
            p, a = _durations(dag_run)
            plain += p
            artifact += a
            print(f"run {run}: {wall:.1f} s wall for {2 * args.tasks} tasks")

        plain_ms = statistics.median(plain) * 1000
        artifact_ms = statistics.median(artifact) * 1000
        overhead = artifact_ms - plain_ms
        mean_overhead = (statistics.mean(artifact) - statistics.mean(plain)) * 1000
        print(
            f"plain @task          median {plain_ms:7.1f} ms  ({len(plain)} task instances)\n"
            f"@task.artifact       median {artifact_ms:7.1f} ms  ({len(artifact)} task instances)\n"
            f"overhead per task    median {overhead:7.1f} ms, mean {mean_overhead:.1f} ms "
            f"({args.size_kb} KiB file, OpenLineage {'on' if args.openlineage else 'off'}); "
            f"target < {TARGET_MS:.0f} ms: {'PASS' if overhead < TARGET_MS else 'FAIL'}"
            + (" (smoke: not judged)" if args.smoke else "")
        )
        return 0 if overhead < TARGET_MS or args.smoke else 1
    finally:
        if args.openlineage:  # let the DAG-run event workers finish before the DB goes away
            from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

            get_openlineage_listener().before_stopping(None)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
