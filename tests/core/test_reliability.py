"""Concurrent writers and crashes, with real processes on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import artiflow as af

pytestmark = pytest.mark.slow


_WRITER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import artiflow as af
    store, database, worker, logs, work = sys.argv[1:6]
    worker, logs = int(worker), int(logs)
    os.environ["ARTIFLOW_HASH_CACHE"] = os.path.join(work, f"hashes-{worker}.db")
    os.environ["ARTIFLOW_CACHE_DIR"] = os.path.join(work, f"cache-{worker}")
    reg = af.Registry(store=store, database=database)
    for i in range(logs):
        src = Path(work, f"w{worker}-{i}.txt")
        src.write_text(f"worker {worker} log {i}")
        art = af.Artifact("shared-name", "dataset", metadata={"worker": worker, "i": i})
        art.add_file(src, "data.txt")
        with reg.run(step=f"writer-{worker}") as run:
            run.log_artifact(art)
    reg.close()
    """
)


def _run_writers(store: str, database: str, workers: int, logs: int, work: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, store, database, str(w), str(logs), str(work)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err


def test_eight_processes_five_logs_each_get_v0_to_v39(tmp_path: Path, db_url: str) -> None:
    store = str(tmp_path / "store")
    _run_writers(store, db_url, 8, 5, tmp_path)
    reg = af.Registry(store=store, database=db_url)
    versions = reg.versions("shared-name")
    assert [v.version for v in versions] == [f"v{i}" for i in range(40)]
    assert len({v.digest for v in versions}) == 40
    assert sorted((v.metadata["worker"], v.metadata["i"]) for v in versions) == [
        (w, i) for w in range(8) for i in range(5)
    ]
    assert reg.artifact("shared-name:latest").version == "v39"
    for v in versions:
        assert (v.download(tmp_path / "dl" / v.version) / "data.txt").read_text() == (
            f"worker {v.metadata['worker']} log {v.metadata['i']}"
        )


def test_first_open_of_a_new_database_races_cleanly(tmp_path: Path, db_url: str) -> None:
    store = str(tmp_path / "store")
    _run_writers(store, db_url, 4, 1, tmp_path)
    reg = af.Registry(store=store, database=db_url)
    assert [v.version for v in reg.versions("shared-name")] == ["v0", "v1", "v2", "v3"]


_KILLED_WRITER = textwrap.dedent(
    """
    import os, sys
    import artiflow as af
    store, database, src = sys.argv[1:4]
    reg = af.Registry(store=store, database=database)
    art = af.Artifact("big", "model")
    art.add_dir(src)
    with reg.run(step="doomed") as run:
        run.log_artifact(art)
        print("logging", flush=True)
    print("finished", flush=True)
    """
)


def test_writer_killed_while_uploading_leaves_nothing_visible(tmp_path: Path, db_url: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"part-{i}.bin").write_bytes(os.urandom(64 * 1024 * 1024))
    store = tmp_path / "store"
    env = {**os.environ, "ARTIFLOW_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(store), db_url, str(src)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    blobs = store / "blobs" / "md5"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until some bytes are in flight, then kill
        if blobs.exists() and any(p.name.startswith(".tmp-") for p in blobs.rglob("*")):
            break
        time.sleep(0.005)
    else:
        proc.kill()
        pytest.fail("the writer never started uploading")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    reg = af.Registry(store=str(store), database=db_url)  # opens cleanly: no lock left behind
    with pytest.raises(af.errors.ArtifactNotFound):
        reg.artifact("big")
    art = af.Artifact("big", "model")
    art.add_dir(src)
    with reg.run(step="retry") as run:
        run.log_artifact(art)
    assert art.version == "v0"
    assert [v.version for v in reg.versions("big")] == ["v0"]
    art.verify(art.download(tmp_path / "out"))
