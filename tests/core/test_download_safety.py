"""Downloads on a busy worker: many threads and processes, one folder, one cache, hostile targets.

Every race here runs real threads and real processes against a real registry on SQLite and on
PostgreSQL; the disk-full test mounts a real (tiny) tmpfs.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow.checkout import is_temp
from artiflow.errors import StoreError, TargetConflict
from artiflow.storage import BlobCache

pytestmark = pytest.mark.slow

THREADS = PROCESSES = 8


def _tree(root: Path, files: int, size: int = 1024) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        sub = root / f"d{i % 7}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:04d}.bin").write_bytes(os.urandom(size))
    return root


def _logged(reg: af.Registry, src: Path, name: str = "x") -> af.Artifact:
    art = af.Artifact(name, "dataset")
    art.add_dir(src)
    with reg.run(step="produce") as run:
        run.log_artifact(art)
    return reg.artifact(f"{name}:latest")


def _temps(root: Path) -> list[str]:
    found = os.walk(root)
    return [os.path.join(top, n) for top, dirs, files in found for n in files + dirs if is_temp(n)]


def _all_at_once(fn: Callable[[], object], n: int) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as err:  # collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """One worker's environment: a registry, its download cache and its artifact folder."""
    values = {
        "ARTIFLOW_STORE": str(tmp_path / "store"),
        "ARTIFLOW_DATABASE": db_url,
        "ARTIFLOW_CACHE_DIR": str(tmp_path / "cache"),
        "ARTIFLOW_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "ARTIFLOW_HASH_CACHE": str(tmp_path / "hashes.db"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_threads_download_one_version_into_the_default_folder(
    tmp_path: Path, env: dict[str, str], warm: bool
) -> None:
    reg = af.Registry()
    art = _logged(reg, _tree(tmp_path / "src", 60))
    if warm:  # the cache holds every blob; the folder does not exist yet
        art.download(tmp_path / "elsewhere")
    errors = _all_at_once(lambda: reg.artifact("x:v0").download(), THREADS)
    assert errors == []
    root = Path(env["ARTIFLOW_ARTIFACT_DIR"]) / "x" / "v0"
    art.verify(root)
    assert _temps(root) == []


def _spawn(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _child(job: Callable[[], object], barrier: Any, failures: str, timeout: float) -> None:
    faulthandler.dump_traceback_later(timeout - 10, exit=True)  # a hang shows where
    try:
        barrier.wait()
        job()
    except BaseException:
        Path(failures, str(os.getpid())).write_text(traceback.format_exc())
        raise


def _in_processes(
    jobs: list[Callable[[], object]], timeout: float = 240, start: str = "spawn"
) -> None:
    """Run each job (picklable) in its own process, all released at the same moment; every
    one must succeed (a failure's traceback is shown). Spawned (fresh) processes by default:
    a fork of this multi-threaded test process could inherit a lock held mid-operation."""
    context = multiprocessing.get_context(start)
    barrier = context.Barrier(len(jobs))
    failures = tempfile.mkdtemp(prefix="artiflow-failures-")
    procs = [context.Process(target=_child, args=(job, barrier, failures, timeout)) for job in jobs]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout)
    hung = [proc.pid for proc in procs if proc.exitcode is None]
    for proc in procs:
        proc.kill()
    assert hung == [], f"processes {hung} still running after {timeout} s"
    reports = {p.pid: Path(failures, str(p.pid)) for p in procs}
    problems = [
        f"process {p.pid} exited with {p.exitcode}: "
        + (reports[p.pid].read_text() if reports[p.pid].exists() else "")
        for p in procs
        if p.exitcode != 0
    ]
    shutil.rmtree(failures)
    assert problems == [], "\n".join(problems)


def _download_and_verify(root: Path) -> None:
    art = af.Registry().artifact("x:v0")
    art.download(root)
    art.verify(root)


def test_processes_download_one_version_into_one_folder(
    tmp_path: Path, env: dict[str, str]
) -> None:
    reg = af.Registry()
    art = _logged(reg, _tree(tmp_path / "src", 200))
    root = tmp_path / "shared-root"
    _in_processes([functools.partial(_download_and_verify, root)] * PROCESSES)
    art.verify(root)
    assert _temps(root) == []


def _write(work: Path, worker: int, logs: int) -> None:
    reg = af.Registry()
    for i in range(logs):
        src = work / f"src-{worker}-{i}"
        src.mkdir()
        for j in range(12):
            (src / f"f{j}.bin").write_bytes(os.urandom(2048))
        (src / "same.txt").write_text("shared by every version")
        art = af.Artifact("busy", "dataset")
        art.add_dir(src)
        with reg.run(step=f"writer-{worker}") as run:
            run.log_artifact(art)
    (work / f"writer-{worker}-done").touch()


def _read(work: Path, writers: int) -> None:
    reg = af.Registry()
    rounds = 0
    while rounds < 3 or not all((work / f"writer-{w}-done").exists() for w in range(writers)):
        try:
            art = reg.artifact("busy:latest")
        except af.ArtifactNotFound:
            time.sleep(0.02)
            continue
        art.verify(art.download())
        rounds += 1


def test_downloads_share_a_cache_with_concurrent_writers(
    tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFLOW_CACHE_MAX_BYTES", str(64 * 1024))  # evictions all the time
    writers = [functools.partial(_write, tmp_path, w, 20) for w in range(2)]
    readers = [functools.partial(_read, tmp_path, 2)] * 4
    _in_processes([*writers, *readers])
    reg = af.Registry()
    assert len(reg.versions("busy")) == 40
    latest = reg.artifact("busy:latest")
    latest.verify(latest.download())


def _open_cache(root: Path) -> None:
    BlobCache(str(root)).total_bytes()


def test_processes_open_a_fresh_cache_folder_at_once(tmp_path: Path) -> None:
    for round_ in range(40):  # forked: the children only open a cache, quickly and often
        root = tmp_path / f"cache-{round_}"
        _in_processes([functools.partial(_open_cache, root)] * PROCESSES, start="fork")


def test_a_locked_cache_is_not_blamed_on_permissions(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "cache"
    BlobCache(str(root)).close()
    holder = sqlite3.connect(root / "index.db")
    holder.execute("PRAGMA journal_mode=DELETE")  # leave WAL, so opening must switch back
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as info:
            BlobCache(str(root), timeout=0.5)
    finally:
        holder.rollback()
        holder.close()
    assert "locked" in str(info.value)
    assert "writable" not in str(info.value)


_KILLED_DOWNLOAD = textwrap.dedent(
    """
    import os, signal, sys
    import artiflow as af
    root, after = sys.argv[1], int(sys.argv[2])
    art = af.Registry().artifact("x:v0")

    def progress(done, total):
        if done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    art.download(root, progress=progress)
    """
)


def test_a_download_after_a_killed_one_leaves_the_folder_as_the_manifest_says(
    tmp_path: Path, env: dict[str, str]
) -> None:
    reg = af.Registry()
    art = _logged(reg, _tree(tmp_path / "src", 300))
    root = tmp_path / "root"
    proc = _spawn(_KILLED_DOWNLOAD, str(root), "120")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    # What a download killed at the wrong moment leaves (this and older releases' names):
    for sub in ("d1", "d2"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "d1" / ".artiflow-tmp-31517-0a1b2c3d4e5f").write_bytes(b"half")
    (root / "d2" / ".f0480.bin.artiflow-tmp-31517").write_bytes(b"half")
    art.download(root)
    art.verify(root)
    assert _temps(root) == []


def test_a_file_name_near_the_limit_downloads(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    name = "n" * 250 + ".bin"  # 254 bytes: the longest many file systems allow is 255
    (src / name).write_bytes(b"long name")
    art = _logged(af.Registry(), src)
    root = art.download(tmp_path / "root")
    assert (root / name).read_bytes() == b"long name"
    art.verify(root)


def test_a_download_never_follows_a_symlinked_folder(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    art = _logged(af.Registry(), src)
    outside, root = tmp_path / "outside", tmp_path / "root"
    outside.mkdir()
    root.mkdir()
    os.symlink(outside, root / "sub")
    with pytest.raises(TargetConflict, match="symbolic link"):
        art.download(root)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["sub"]  # nothing half-written


@pytest.mark.parametrize(
    "setup, match",
    [
        (lambda root: (root / "a.txt").mkdir(parents=True), "is a folder"),
        (lambda root: (root.mkdir(), (root / "sub").write_text("in the way")), "is a file"),
        (lambda root: root.write_text("not a folder"), "it is a file"),
    ],
    ids=["folder-where-a-file-goes", "file-where-a-folder-goes", "root-is-a-file"],
)
def test_conflicting_targets_get_one_clear_error_and_nothing_written(
    tmp_path: Path, env: dict[str, str], setup: Callable[[Path], object], match: str
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    art = _logged(af.Registry(), src)
    root = tmp_path / "root"
    setup(root)
    before = sorted(str(p) for p in root.rglob("*")) if root.is_dir() else None
    with pytest.raises(TargetConflict, match=match):
        art.download(root)
    after = sorted(str(p) for p in root.rglob("*")) if root.is_dir() else None
    assert before == after


def test_consumers_are_isolated_from_each_other_and_from_the_cache(
    tmp_path: Path, env: dict[str, str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"original weights")
    art = _logged(af.Registry(), src)
    first = art.download(tmp_path / "first") / "weights.bin"
    second = art.download(tmp_path / "second") / "weights.bin"
    assert os.stat(first).st_ino != os.stat(second).st_ino
    # A consumer edits its copy in place and restores the mtime (as root could, through any
    # permission bit): nobody else sees it, and the next warm download is the original.
    st = os.stat(first)
    os.chmod(first, 0o644)
    with open(first, "r+b") as f:
        f.write(b"EDITED__")
    os.utime(first, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert second.read_bytes() == b"original weights"
    third = art.download(tmp_path / "third") / "weights.bin"
    assert third.read_bytes() == b"original weights"
    art.verify(tmp_path / "third")


def test_hard_links_only_when_asked(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights.bin").write_bytes(b"original weights")
    art = _logged(af.Registry(), src)
    one = art.download(tmp_path / "one", hard_link=True) / "weights.bin"
    two = art.download(tmp_path / "two", hard_link=True) / "weights.bin"
    assert os.stat(one).st_ino == os.stat(two).st_ino
    assert os.stat(one).st_nlink >= 3  # the cache's file and both downloads
    art.verify(tmp_path / "two")
    # Linking again onto the same inode leaves no temporary link behind.
    os.unlink(one)
    os.link(two, one)
    art.download(tmp_path / "one", hard_link=True)
    assert _temps(tmp_path / "one") == []


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    """A real 256 KiB tmpfs; skipped (visibly) where this process may not mount one."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill a disk: {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize("full", ["download-folder", "cache"])
def test_a_full_disk_names_the_local_path(
    tmp_path: Path, env: dict[str, str], tiny_disk: Path, full: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(1024 * 1024))
    art = _logged(af.Registry(), src)
    root = tiny_disk / "root" if full == "download-folder" else tmp_path / "root"
    if full == "cache":
        monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tiny_disk / "cache"))
        art = af.Registry().artifact("x:v0")
    with pytest.raises(StoreError) as info:
        art.download(root)
    message = str(info.value)
    assert "No space left on device" in message
    assert str(tiny_disk) in message
    assert "cannot read" not in message
