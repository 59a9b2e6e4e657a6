"""Local hashing, directory walking and the persistent hash cache."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from artiflow import hashing
from artiflow.config import hash_cache_path as default_cache_path
from artiflow.errors import SourceNotFound
from artiflow.hashing import (
    HashedFile,
    file_changed,
    hash_files,
    hash_tree,
    md5_file,
    stat_key,
    walk_files,
)
from artiflow.hashing.cache import HashCache, default_hash_cache


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write(path: Path, data: bytes, *, age: float = 3600.0) -> Path:
    """Write a file whose mtime lies ``age`` seconds back (past the racy window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


@pytest.fixture
def cache(tmp_path: Path) -> HashCache:
    return HashCache(tmp_path / "cache" / "hashes.db")


# -- hash_files -----------------------------------------------------------------------------
def test_hash_files_in_input_order_with_stat_identity(tmp_path: Path, cache: HashCache) -> None:
    sizes = [0, 1, 1024, 20 << 10, 70 << 10, 3 << 20, 9 << 20, 5]  # tiny, batched, single-task
    paths = [write(tmp_path / f"f{i}", os.urandom(n)) for i, n in enumerate(sizes)]
    paths.reverse()
    out = hash_files(paths, cache=cache)
    assert [h.path for h in out] == [str(p) for p in paths]
    for path, hashed in zip(paths, out, strict=True):
        st = path.stat()
        assert hashed == HashedFile(
            str(path), md5(path.read_bytes()), st.st_size, st.st_mtime_ns, st.st_ino
        )
        assert hashed.stat_key == stat_key(path)


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that takes no disk space (and no time) to create."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


def _md5_of_zeros(size: int) -> str:
    h = hashlib.md5()
    block = bytes(1 << 20)
    for start in range(0, size, len(block)):
        h.update(block[: min(len(block), size - start)])
    return h.hexdigest()


@pytest.mark.parametrize(
    ("cpus", "sizes"),
    [
        (None, [64 << 20]),  # one pool task: no pool, whatever the host
        (1, [64 << 20, 12 << 20, 3 << 20, 100 << 10, 10]),  # a 1-CPU host
        (None, [64 << 20, 12 << 20, 3 << 20, 100 << 10, 10]),  # the pool
    ],
)
def test_large_files_are_streamed_never_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: int | None, sizes: list[int]
) -> None:
    import tracemalloc

    if cpus is not None:
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    paths = [_sparse(tmp_path / f"f{i}.bin", n) for i, n in enumerate(sizes)]
    tracemalloc.start()
    try:
        out = hash_files(paths, cache=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [h.digest for h in out] == [_md5_of_zeros(n) for n in sizes]
    # Each hashing thread holds one CHUNK_SIZE buffer; nothing near a file's size is allocated.
    assert peak < 8 * hashing.digest.CHUNK_SIZE, f"peak {peak >> 20} MiB while hashing"


def test_hash_files_many_small_files_match_hashlib(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"d{i % 7}" / f"{i}.bin", os.urandom(i % 300)) for i in range(600)]
    out = hash_files(paths, cache=None)
    assert [h.digest for h in out] == [md5(p.read_bytes()) for p in paths]


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rel.txt", b"r")
    monkeypatch.chdir(tmp_path)
    (hashed,) = hash_files(["./rel.txt"], cache=None)
    assert hashed.path == str(tmp_path / "rel.txt")


def test_missing_and_directory_paths_raise(tmp_path: Path, cache: HashCache) -> None:
    write(tmp_path / "ok", b"ok")
    with pytest.raises(SourceNotFound, match="no such file"):
        hash_files([tmp_path / "ok", tmp_path / "missing"], cache=cache)
    with pytest.raises(SourceNotFound, match="directory"):
        hash_files([tmp_path], cache=cache)
    with pytest.raises(SourceNotFound):
        hash_files([tmp_path / "ok" / "below-a-file"], cache=cache)
    assert len(cache) == 0  # a failed call records nothing


def test_symlinked_file_is_followed(tmp_path: Path) -> None:
    target = write(tmp_path / "target", b"content")
    (tmp_path / "link").symlink_to(target)
    (hashed,) = hash_files([tmp_path / "link"], cache=None)
    assert hashed.digest == md5(b"content")
    assert hashed.path == str(tmp_path / "link")


def test_empty_input() -> None:
    assert hash_files([]) == []


# -- the cache ------------------------------------------------------------------------------
def test_second_hash_is_served_from_the_cache(tmp_path: Path, cache: HashCache) -> None:
    f = write(tmp_path / "a.bin", b"real")
    (first,) = hash_files([f], cache=cache)
    assert cache.get(*_key(first)) == md5(b"real")
    # Prove the lookup is used: plant a different digest under the same key.
    cache.put_many([(*_key(first), "f" * 32)])
    (second,) = hash_files([f], cache=cache)
    assert second.digest == "f" * 32
    assert hash_files([f], cache=None)[0].digest == md5(b"real")


def _key(h: HashedFile) -> tuple[str, int, int, int]:
    return (h.path, h.inode, h.size, h.mtime_ns)


def test_get_many_matches_the_whole_key(tmp_path: Path, cache: HashCache) -> None:
    cache.put_many([("/a", 1, 2, 3, "a" * 32), ("/b", 1, 2, 3, "b" * 32)])
    got = cache.get_many(["/a", "/b", "/c", "/a"], [(1, 2, 3), (1, 2, 4), (1, 2, 3), (9, 2, 3)])
    assert got == ["a" * 32, None, None, None]
    assert cache.get_many([], []) == []


def test_changed_file_same_size_new_mtime_is_rehashed(tmp_path: Path, cache: HashCache) -> None:
    f = write(tmp_path / "a.txt", b"aaaa", age=7200)
    (before,) = hash_files([f], cache=cache)
    write(f, b"bbbb", age=3600)
    (after,) = hash_files([f], cache=cache)
    assert after.size == before.size and after.mtime_ns != before.mtime_ns
    assert after.digest == md5(b"bbbb")
    assert cache.get(*_key(after)) == md5(b"bbbb")
    assert cache.get(*_key(before)) is None  # the row was replaced, not duplicated
    assert len(cache) == 1


def test_recently_modified_file_is_not_cached(tmp_path: Path, cache: HashCache) -> None:
    fresh = write(tmp_path / "fresh", b"just written", age=0)
    settled = write(tmp_path / "settled", b"old")
    out = hash_files([fresh, settled], cache=cache)
    assert cache.get(*_key(out[0])) is None
    assert cache.get(*_key(out[1])) == md5(b"old")


def test_cache_none_creates_no_database(tmp_path: Path) -> None:
    f = write(tmp_path / "a", b"a")
    hash_files([f], cache=None)
    assert not Path(default_cache_path()).exists()
    hash_files([f])  # the default cache
    assert Path(default_cache_path()).exists()


def test_bulk_lookup_beyond_one_query(tmp_path: Path, cache: HashCache) -> None:
    paths = [write(tmp_path / f"{i}.txt", str(i).encode()) for i in range(1234)]
    first = hash_files(paths, cache=cache)
    assert len(cache) == 1234
    cache.put_many([(*_key(h), "0" * 32) for h in first])
    assert {h.digest for h in hash_files(paths, cache=cache)} == {"0" * 32}


def test_corrupt_cache_degrades_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "corrupt.db"
    db.write_bytes(b"this is not a sqlite database" * 100)
    bad = HashCache(db)
    f = write(tmp_path / "a", b"a")
    with caplog.at_level(logging.WARNING, logger="artiflow.hashing.cache"):
        (hashed,) = hash_files([f], cache=bad)
    assert hashed.digest == md5(b"a")
    assert not bad.enabled
    assert "hashing without a cache" in caplog.text
    assert hash_files([f], cache=bad)[0].digest == md5(b"a")  # still fine, no new warning


def test_unwritable_cache_location_degrades(tmp_path: Path) -> None:
    blocker = write(tmp_path / "a-file", b"x")
    unusable = HashCache(blocker / "sub" / "hashes.db")  # parent is a regular file
    f = write(tmp_path / "b", b"b")
    assert hash_files([f], cache=unusable)[0].digest == md5(b"b")
    assert not unusable.enabled
    assert len(unusable) == 0


def test_default_cache_follows_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = default_hash_cache()
    assert first is default_hash_cache()
    assert first.path == os.environ["ARTIFLOW_HASH_CACHE"]
    monkeypatch.setenv("ARTIFLOW_HASH_CACHE", str(tmp_path / "other.db"))
    second = default_hash_cache()
    assert second is not first and second.path == str(tmp_path / "other.db")
    monkeypatch.delenv("ARTIFLOW_HASH_CACHE")
    assert default_cache_path().endswith(os.path.join("artiflow", "hashes.db"))


def test_cache_is_safe_across_threads(tmp_path: Path, cache: HashCache) -> None:
    groups = [
        [write(tmp_path / f"t{t}" / f"{i}", f"{t}-{i}".encode()) for i in range(200)]
        for t in range(6)
    ]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda ps: hash_files(ps, cache=cache), groups * 2))
    for paths, out in zip(groups * 2, results, strict=True):
        assert [h.digest for h in out] == [md5(p.read_bytes()) for p in paths]
    assert len(cache) == 1200


_WORKER = """
import sys
from pathlib import Path
from artiflow.hashing.cache import HashCache
from artiflow.hashing import hash_files
root, db = Path(sys.argv[1]), sys.argv[2]
files = sorted(root.glob("*.txt"))
for _ in range(5):
    HashCache(db).clear()
    out = hash_files(files, cache=HashCache(db))
    assert len(out) == len(files)
print("ok")
"""


def test_cache_is_safe_across_processes(tmp_path: Path) -> None:
    for i in range(300):
        write(tmp_path / "files" / f"{i}.txt", str(i).encode())
    db = str(tmp_path / "shared.db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path / "files"), db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
        assert "unusable" not in err
    assert len(HashCache(db)) == 300


def test_cache_survives_fork(tmp_path: Path, cache: HashCache) -> None:
    f = write(tmp_path / "a", b"a")
    hash_files([f], cache=cache)
    pid = os.fork()
    if pid == 0:  # the child must open its own connection
        code = 0 if hash_files([f], cache=cache)[0].digest == md5(b"a") else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get(*_key(hash_files([f], cache=cache)[0])) == md5(b"a")


def test_clear(tmp_path: Path, cache: HashCache) -> None:
    a, b = write(tmp_path / "a", b"a"), write(tmp_path / "b", b"b")
    hash_files([a, b], cache=cache)
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0
    cache.close()
    assert "enabled" in repr(cache)


# -- walk_files ---------------------------------------------------------------------------------
def test_walk_files_sorted_relative_posix(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "root"
    for rel in ("b.txt", "a/z.txt", "a/b/c.txt", "a.txt", "A.txt"):
        write(root / rel, rel.encode(), age=0)
    (root / "empty-dir").mkdir()
    (root / "link.txt").symlink_to(root / "b.txt")
    (root / "linked-dir").symlink_to(root / "a", target_is_directory=True)
    (root / "broken").symlink_to(root / "nowhere")
    with caplog.at_level(logging.WARNING, logger="artiflow.walk"):
        files = walk_files(root)
    rels = [rel for _, rel in files]
    assert rels == sorted(rels)
    assert set(rels) == {"A.txt", "a.txt", "a/b/c.txt", "a/z.txt", "b.txt", "link.txt"}
    assert all(abs_path == str(root / rel) for abs_path, rel in files)
    assert "skipped 2 entries" in caplog.text


def test_walk_files_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="no such directory"):
        walk_files(tmp_path / "missing")
    write(tmp_path / "file", b"x")
    with pytest.raises(SourceNotFound, match="not a directory"):
        walk_files(tmp_path / "file")
    assert walk_files(tmp_path / ".." / tmp_path.name)[0][0] == str(tmp_path / "file")


# -- helpers -----------------------------------------------------------------------------------
def test_md5_file_and_stat_helpers(tmp_path: Path) -> None:
    f = write(tmp_path / "x", b"x" * (3 << 20))
    assert md5_file(f) == md5(f.read_bytes())
    with pytest.raises(SourceNotFound):
        md5_file(tmp_path / "missing")
    with pytest.raises(SourceNotFound):
        stat_key(tmp_path / "missing")
    (hashed,) = hash_files([f], cache=None)
    assert not file_changed(hashed)
    os.utime(f, ns=(hashed.mtime_ns + 1, hashed.mtime_ns + 1))
    assert file_changed(hashed)
    f.unlink()
    assert file_changed(hashed)


def test_module_exports() -> None:
    for name in hashing.__all__:
        assert hasattr(hashing, name)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_content_that_disagrees_with_stat_is_refused() -> None:
    from artiflow.errors import SourceChanged

    # /proc files are regular files whose stat size (0) is not their content's size.
    with pytest.raises(SourceChanged, match="changed while it was being hashed"):
        hash_files(["/proc/self/status"], cache=None)


def test_gc_paused_nests_and_restores() -> None:
    import gc

    from artiflow.hashing import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector the caller disabled stays disabled
    finally:
        gc.enable()
    with pytest.raises(SourceNotFound), gc_paused():
        hash_files(["/nonexistent/file"], cache=None)
    assert gc.isenabled()


def test_hash_tree_is_walk_plus_hash(tmp_path: Path, cache: HashCache) -> None:
    root = tmp_path / "tree"
    for rel, size in (("b.bin", 10), ("a/x.bin", 40 << 10), ("a/y/z.bin", 2 << 20), ("c", 0)):
        write(root / rel, os.urandom(size))
    (root / "link").symlink_to(root / "c")
    (root / "dirlink").symlink_to(root / "a", target_is_directory=True)
    pairs = hash_tree(root, cache=cache)
    walked = walk_files(root)
    assert [rel for rel, _ in pairs] == [rel for _, rel in walked]
    assert [h for _, h in pairs] == hash_files([p for p, _ in walked], cache=None)
    assert len(cache) == 5
    assert hash_tree(root, cache=cache) == pairs  # from the cache this time
    with pytest.raises(SourceNotFound, match="no such directory"):
        hash_tree(tmp_path / "missing")
    with pytest.raises(SourceNotFound, match="not a directory"):
        hash_tree(root / "b.bin")
    (tmp_path / "void").mkdir()
    assert hash_tree(tmp_path / "void", cache=cache) == []
