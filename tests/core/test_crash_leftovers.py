"""What a writer killed with SIGKILL leaves behind, with real processes (issue 10, item 25).

Its run must read ``lost`` (at once from the same host, through its expired lease from anywhere),
on SQLite and on PostgreSQL; its scratch folder must be reclaimed by the next process that needs
one, while a live owner's folder is never touched. A database at schema 0001 is upgraded when
opened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import artiflow as af
from artiflow import errors
from artiflow.cli import main
from artiflow.db import MetaStore, create_engine, migrate, schema
from artiflow.scratch import PREFIX

pytestmark = pytest.mark.slow

BEAT = 0.5  # seconds between heartbeats in the writers: a lease of 1.5 s

# Logs one version (its file written through new_file, so into a scratch folder), prints the
# run id, then waits inside the open run until it is killed.
_WRITER = textwrap.dedent(
    """
    import sys, time
    import artiflow as af
    store, database, name = sys.argv[1:4]
    reg = af.Registry(store=store, database=database)
    art = af.Artifact(name, "dataset")
    with art.new_file("notes.txt") as f:
        f.write(f"written by {name}")
    run = reg.run(pipeline="etl", pipeline_run="r1", step=name)
    run.__enter__()
    run.log_artifact(art).wait()
    print(run.id, flush=True)
    time.sleep(600)
    """
)


class Writers:
    """Starts writer processes and kills whatever is left of them at the end."""

    def __init__(self, tmp_path: Path, database: str) -> None:
        self.store = str(tmp_path / "store")
        self.database = database
        self.tmpdir = tmp_path / "tmp"
        self.tmpdir.mkdir()
        self.env = {
            **os.environ,
            "TMPDIR": str(self.tmpdir),
            "ARTIFLOW_HEARTBEAT_SECONDS": str(BEAT),
            "ARTIFLOW_CACHE_DIR": str(tmp_path / "cache"),
            "ARTIFLOW_HASH_CACHE": str(tmp_path / "hashes.db"),
        }
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, name: str, script: str = "") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", script or _WRITER, self.store, self.database, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        self.procs.append(proc)
        return proc

    def ready(self, proc: subprocess.Popen[str]) -> str:
        """The first line the writer prints (its run id), once it printed it."""
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line:
            raise AssertionError(f"writer {proc.args}: {proc.communicate(timeout=60)[1]}")
        return line

    def start(self, name: str, script: str = "") -> tuple[subprocess.Popen[str], str]:
        """A writer that has logged ``name:v0`` and is still inside its run: (process, run)."""
        proc = self.spawn(name, script)
        return proc, self.ready(proc)

    def kill(self, proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    def scratch(self) -> list[str]:
        return sorted(p.name for p in self.tmpdir.iterdir() if p.name.startswith(PREFIX))

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)


@pytest.fixture
def writers(tmp_path: Path, db_url: str) -> Iterator[Writers]:
    w = Writers(tmp_path, db_url)
    yield w
    w.close()


def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# ------------------------------------------------------------------------------ dead runs
def test_a_killed_writer_s_run_reads_lost_everywhere(writers: Writers, tmp_path: Path) -> None:
    proc, run_id = writers.start("train")
    with af.Registry(store=writers.store, database=writers.database) as reg:
        assert reg.get_run(run_id).status == "running"
        writers.kill(proc)
        # Same host: the dead pid is seen at once, well before the lease (1.5 s) runs out.
        lost = reg.get_run(run_id)
        assert lost.status == "lost" and lost.pid == proc.pid and lost.finished_at is None
        assert [r.id for r in reg.runs(status="lost")] == [run_id]
        assert reg.runs(status="running") == []
        assert reg.artifact("train:v0").logged_by().status == "lost"  # type: ignore[union-attr]
        graph = reg.lineage("train:v0")
        assert [n.status for n in graph.nodes if n.kind == "run"] == ["lost"]
        assert "run etl/train  r1 (lost)" in graph.to_tree()
    where = ["--store", writers.store, "--database", writers.database]
    shown = CliRunner().invoke(main, ["show", "train:v0", *where], catch_exceptions=False)
    assert f"etl/train r1 (lost, run {run_id}" in shown.stdout
    listed = CliRunner().invoke(main, ["ls", "train", *where], catch_exceptions=False)
    assert "etl/train (lost)" in listed.stdout


def test_the_lease_decides_while_the_process_cannot_answer(writers: Writers) -> None:
    """A stopped writer (alive, but not renewing) goes ``lost`` when its lease runs out and
    comes back ``running`` when it resumes; its lease is renewed for as long as it runs."""
    proc, run_id = writers.start("stall")
    with af.Registry(store=writers.store, database=writers.database) as reg:
        first = reg.get_run(run_id).heartbeat_at
        time.sleep(BEAT * 4)  # longer than the lease: only renewals keep it running
        alive = reg.get_run(run_id)
        assert alive.status == "running"
        assert first is not None and alive.heartbeat_at is not None
        assert alive.heartbeat_at > first
        proc.send_signal(signal.SIGSTOP)
        try:
            assert _eventually(lambda: reg.get_run(run_id).status == "lost")
        finally:
            proc.send_signal(signal.SIGCONT)
        assert _eventually(lambda: reg.get_run(run_id).status == "running")
        writers.kill(proc)
        assert reg.get_run(run_id).status == "lost"


def test_a_run_on_another_host_is_judged_by_its_lease(db_url: str) -> None:
    store = MetaStore(db_url)
    try:
        run = store.create_run({"step": "remote"}, lease_seconds=60)
        legacy = store.create_run({"step": "old"})  # no lease: as recorded before schema 0002

        def move(run_id: str, **values: object) -> None:
            with store.engine.begin() as conn:
                conn.execute(
                    sa.update(schema.runs).where(schema.runs.c.id == run_id).values(values)
                )

        # Another machine's pid says nothing here: only the lease counts.
        move(run.id, host="worker-elsewhere", pid=1)
        move(legacy.id, host="worker-elsewhere", pid=1)
        assert store.get_run(run.id).status == "running"
        move(run.id, lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        assert store.get_run(run.id).status == "lost"
        assert store.get_run(legacy.id).status == "running"
        assert store.renew_lease(run.id, 60) is True  # it came back
        assert store.get_run(run.id).status == "running"
        store.finish_run(run.id, "finished")
        assert store.renew_lease(run.id, 60) is False
        assert store.get_run(run.id).status == "finished"
    finally:
        store.close()


def test_a_finished_run_stops_its_heartbeat(registry: af.Registry, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("a")
    art = af.Artifact("a", "dataset")
    art.add_file(src)
    with registry.run(step="quick") as run:
        run.log_artifact(art)
    assert registry.get_run(run.id).status == "finished"
    names = [t.name for t in threading.enumerate()]
    assert f"artiflow-heartbeat-{run.id[:8]}" not in names


def test_a_bad_heartbeat_setting_is_one_clear_error(
    registry: af.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFLOW_HEARTBEAT_SECONDS", "-1")
    with (
        pytest.raises(errors.InvalidMetadata, match="ARTIFLOW_HEARTBEAT_SECONDS"),
        registry.run(step="x") as run,
    ):
        run.id  # noqa: B018 - the run's row is written on first use
    assert registry.runs() == []  # nothing written


# ------------------------------------------------------------------------------ schema 0002
_OPEN = "import sys; from artiflow.db import MetaStore; MetaStore(sys.argv[1]).close()"


def test_a_database_at_schema_0001_is_upgraded_when_opened(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        migrate.upgrade(engine, "0001")
        with engine.begin() as conn:  # a run recorded by an artiflow of schema 0001
            conn.execute(
                sa.insert(schema.runs).values(
                    id="rx",
                    orchestrator="python",
                    status="running",
                    host="old-host",
                    extra={},
                    started_at=datetime.now(UTC),
                )
            )
    finally:
        engine.dispose()
    # Four processes open it at once: one upgrades, the others wait for it.
    procs = [
        subprocess.Popen([sys.executable, "-c", _OPEN, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.communicate()[1]
    store = MetaStore(db_url)
    try:
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.HEAD == "0002"
        old = store.get_run("rx")
        assert (old.status, old.host, old.pid, old.heartbeat_at) == (
            "running",
            "old-host",
            None,
            None,
        )
    finally:
        store.close()


# ------------------------------------------------------------------------------ scratch
_TABLE = "import artiflow as af; af.Artifact('x', 'dataset').add(af.Table(['a'], [[1]]), 't')"
# A writer filling a draft through new_file (its scratch folder), killed before it logs.
_DRAFT = textwrap.dedent(
    """
    import sys, time
    import artiflow as af
    art = af.Artifact("draft", "dataset")
    with art.new_file("notes.txt") as f:
        f.write("not logged yet")
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_killed_writers_scratch_folders_are_reclaimed_by_the_next_start(tmp_path: Path) -> None:
    writers = Writers(tmp_path, "")
    try:
        _killed_writers_leave_one_folder(writers)
    finally:
        writers.close()


def _killed_writers_leave_one_folder(writers: Writers) -> None:
    killed = [writers.spawn(f"killed-{i}", _DRAFT) for i in range(10)]
    for proc in killed:
        writers.ready(proc)
    for proc in killed:
        writers.kill(proc)
    left = writers.scratch()  # one folder per dead writer, named after its pid
    assert sorted(int(name.split("-")[2]) for name in left) == sorted(p.pid for p in killed)
    live, _ = writers.start("live", _DRAFT)  # reclaims every dead writer's folder, keeps its own
    (mine,) = writers.scratch()
    assert mine.startswith(f"{PREFIX}{live.pid}-")
    # A live owner is never robbed: another process starting meanwhile leaves its folder.
    other = subprocess.run(
        [sys.executable, "-c", "import artiflow.scratch as s; print(s.reclaim())"],
        env=writers.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert other.stdout.strip() == "0" and writers.scratch() == [mine]
    writers.kill(live)
    clean = subprocess.run(
        [sys.executable, "-c", _TABLE], env=writers.env, capture_output=True, text=True, timeout=60
    )
    assert clean.returncode == 0, clean.stderr
    assert writers.scratch() == []  # the dead one reclaimed, its own removed at exit


def test_an_in_memory_registry_s_runs_hold_no_lease(tmp_path: Path) -> None:
    """Only this process sees an in-memory database: no heartbeat shares its one connection."""
    with af.Registry(store=str(tmp_path / "store"), database="sqlite://") as reg:
        with reg.run(step="mem") as run:
            assert run.info.status == "running"
            assert f"artiflow-heartbeat-{run.id[:8]}" not in [t.name for t in threading.enumerate()]
        assert reg.get_run(run.id).status == "finished"
