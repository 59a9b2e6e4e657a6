"""Hostile inputs (issue 10, items 10-13 and 26): symlink loops and names that are not UTF-8 in
added trees, a draft's metadata changed in place, secrets in reference URIs, and inputs that
one database would accept and the other refuse. Each is refused (or handled) identically on
SQLite and PostgreSQL, with one error from ``artiflow.errors``, before anything is written."""

from __future__ import annotations

import copy
import logging
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import artiflow as af
from artiflow import errors
from artiflow.db import schema
from artiflow.hashing import HashCache, default_hash_cache, hash_files
from artiflow.resolvers import resolve_reference

BAD_NAME = b"bad-\xff\xfe.bin"
SECRET = "hunter2"


def _counts(reg: af.Registry) -> dict[str, int]:
    with reg.meta.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (schema.artifacts, schema.versions, schema.runs, schema.usage)
        }


def _store_files(reg: af.Registry) -> list[Path]:
    root = Path(reg.store.root)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _nothing_written(reg: af.Registry) -> None:
    assert set(_counts(reg).values()) == {0}
    assert _store_files(reg) == []
    assert reg.uploaded_blobs == 0


# -- item 10: symlink loops are skipped like dangling links ------------------------------------
def _tree_with_loops(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "ok.txt").write_text("ok")
    (root / "sub" / "deep.txt").write_text("deep")
    os.symlink("loop", root / "loop")  # loop -> loop
    os.symlink("b", root / "sub" / "a")  # a -> b -> a
    os.symlink("a", root / "sub" / "b")
    os.symlink("nowhere", root / "dangling")
    return root


def test_add_dir_skips_symlink_loops_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _tree_with_loops(tmp_path / "src")
    art = af.Artifact("looped", "dataset")
    with caplog.at_level(logging.WARNING, logger="artiflow.hashing.walk"):
        added = art.add_dir(src)
    assert [e.path for e in added] == ["ok.txt", "sub/deep.txt"]
    assert "skipped 4 entries" in caplog.text and "looping" in caplog.text


def test_a_reference_to_a_tree_with_symlink_loops_skips_them(tmp_path: Path) -> None:
    src = _tree_with_loops(tmp_path / "src")
    entries = resolve_reference(str(src))
    assert [e.path for e in entries] == ["src/ok.txt", "src/sub/deep.txt"]


# -- item 11: a file name that is not UTF-8 ---------------------------------------------------
def _bad_file(folder: Path) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    path = os.path.join(os.fsencode(folder), BAD_NAME)
    with open(path, "wb") as fh:
        fh.write(b"bytes")
    return path


def test_add_dir_refuses_a_name_that_is_not_utf8_and_keeps_the_hash_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "src"
    _bad_file(src)
    (src / "good.txt").write_text("good")
    art = af.Artifact("names", "dataset")
    with (
        caplog.at_level(logging.WARNING, logger="artiflow.hashing.cache"),
        pytest.raises(errors.InvalidPath) as info,
    ):
        art.add_dir(src)
    assert r"bad-\xff\xfe.bin" in str(info.value)  # named, escaped
    assert len(art.manifest) == 0
    good = tmp_path / "good"
    good.mkdir()
    (good / "g.txt").write_text("g")
    art.add_dir(good)  # the hash cache was left usable: no nested transaction
    assert default_hash_cache().enabled
    assert "unusable" not in caplog.text


def test_add_file_refuses_a_name_that_is_not_utf8_but_takes_one_given(
    registry: af.Registry, tmp_path: Path
) -> None:
    path = os.fsdecode(_bad_file(tmp_path / "src"))
    art = af.Artifact("names", "dataset")
    with pytest.raises(errors.InvalidPath, match=r"bad-\\udcff\\udcfe\.bin"):
        art.add_file(path)
    entry = art.add_file(path, name="renamed.bin")  # the source path itself is fine
    assert entry.path == "renamed.bin" and entry.size == 5
    assert default_hash_cache().enabled
    with registry.run() as run:
        run.log_artifact(art).wait()
    root = registry.artifact("names:v0").download(tmp_path / "out")
    assert (root / "renamed.bin").read_bytes() == b"bytes"


class _Boom(BaseException):
    pass


class _Keys(list[tuple[int, int, int]]):
    """Stat keys that fail half-way through a lookup (inside its transaction)."""

    def __getitem__(self, index: Any) -> Any:
        if index == 1:
            raise _Boom("interrupted")
        return super().__getitem__(index)


def test_hash_cache_rolls_back_on_any_exception(tmp_path: Path) -> None:
    cache = HashCache(tmp_path / "hashes.db")
    files = []
    for n in range(3):
        f = tmp_path / f"f{n}.txt"
        f.write_text(str(n))
        os.utime(f, ns=(1_000_000_000, 1_000_000_000))  # settled: the hashes are cached
        files.append(str(f))
    hashed = hash_files(files, cache=cache)
    keys = [h.stat_key for h in hashed]
    with pytest.raises(_Boom):
        cache.get_many(files, _Keys(keys))
    # A path that is not UTF-8 and a key SQLite cannot bind miss; nothing is left half-done.
    odd = os.fsdecode(os.path.join(os.fsencode(tmp_path), BAD_NAME))
    assert cache.get_many([odd, *files], [(1, 1, 1), *keys]) == [None, *[h.digest for h in hashed]]
    assert cache.get_many(files[:1], [(2**64, 1, 1)]) == [None]
    cache.put_many([(odd, 1, 1, 1, "0" * 32), (files[0], 2**64, 1, 1, "0" * 32)])
    assert cache.enabled
    assert cache.get_many(files, keys) == [h.digest for h in hashed]
    cache.put_many([(files[0], 5, 5, 5, "1" * 32)])
    assert cache.get(files[0], 5, 5, 5) == "1" * 32
    cache.close()


# -- item 12: a draft's metadata changes in place ---------------------------------------------
def test_draft_metadata_changes_in_place_and_is_logged(
    registry: af.Registry, tmp_path: Path
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    art = af.Artifact("model", "model", metadata={"epochs": 1})
    art.add_file(src)
    art.metadata["accuracy"] = 0.9
    art.metadata["epochs"] += 1
    art.metadata.update({"nested": {"a": [1]}})
    art.metadata["nested"]["a"].append(2)
    assert art.metadata == {"accuracy": 0.9, "epochs": 2, "nested": {"a": [1, 2]}}
    with registry.run() as run:
        run.log_artifact(art).wait()
    expected = {"accuracy": 0.9, "epochs": 2, "nested": {"a": [1, 2]}}
    assert registry.artifact("model:v0").metadata == expected
    assert art.metadata == expected


def test_logged_metadata_is_read_only(registry: af.Registry, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    art = af.Artifact("model", "model", metadata={"k": 1, "nested": {"a": [1]}})
    art.add_file(src)
    with registry.run() as run:
        run.log_artifact(art).wait()
    for logged in (art, registry.artifact("model:v0")):
        with pytest.raises(errors.ArtifactStateError):
            logged.metadata["k"] = 2
        with pytest.raises(errors.ArtifactStateError):
            logged.metadata.update(k=2)
        with pytest.raises(errors.ArtifactStateError):
            logged.metadata["nested"]["a"].append(2)
        with pytest.raises(errors.ArtifactStateError):
            del logged.metadata["k"]
        with pytest.raises(errors.ArtifactStateError):
            logged.metadata = {"k": 2}
        assert logged.metadata == {"k": 1, "nested": {"a": [1]}}
        mine = copy.deepcopy(logged.metadata)  # a copy is the caller's to change
        mine["nested"]["a"].append(2)
        assert pickle.loads(pickle.dumps(logged.metadata)) == logged.metadata
        assert dict(logged.metadata) | {"x": 1} == {"k": 1, "nested": {"a": [1]}, "x": 1}


def test_invalid_metadata_set_in_place_is_refused_before_upload(
    registry: af.Registry, tmp_path: Path
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    art = af.Artifact("model", "model")
    art.add_file(src)
    art.metadata["loss"] = math.nan
    with registry.run() as run, pytest.raises(errors.InvalidMetadata):
        run.log_artifact(art)
    assert art.state == "draft"
    _nothing_written(registry)
    art.metadata["loss"] = 0.5  # fixed, it logs
    with registry.run() as run:
        run.log_artifact(art).wait()
    assert registry.artifact("model:v0").metadata == {"loss": 0.5}


# -- item 13: no secret in any reference URI, nor in the error about it -----------------------
UNSAFE = [
    f"simplecache::http://user:{SECRET}@example.com/x",
    f"simplecache::s3://KEY:{SECRET}@bucket/key",
    f"zip://inner.csv::s3://KEY:{SECRET}@bucket/a.zip",
    f"ftp://user:{SECRET}@example.com/x",
    f"s3://KEY:{SECRET}@bucket/key",
    f"s3://KEY:{SECRET}/with/slashes@bucket/key",
    f"sftp://user:{SECRET}@example.com/x",
    f"gs://user:{SECRET}@bucket/key",
    f"memory://user:{SECRET}@x/y",
    f"file://user:{SECRET}@localhost/tmp/x",
    f"webdav+http://user:{SECRET}@example.com/x",
    f"https://user:{SECRET}@example.com/x",
    f"https://example.com/x?X-Amz-Signature%3D{SECRET}",
    f"https://example.com/x%3FX-Amz-Signature%3D{SECRET}",
    f"https://example.com/x?a=1%26X-Amz-Signature%253D{SECRET}",
    f"https://example.com/x;X-Amz-Signature={SECRET}",
    f"https://example.com/x?sessionid={SECRET}",
    f"https://example.com/x?JSESSIONID={SECRET}",
    f"s3://bucket/key?token={SECRET}",
    f"gs://bucket/key?X-Goog-Signature={SECRET}",
    f"memory://x/y#access_token={SECRET}",
    f"simplecache::https://example.com/x?sig={SECRET}",
]


@pytest.mark.parametrize("uri", UNSAFE)
@pytest.mark.parametrize("checksum", [True, False])
def test_unsafe_reference_refused_without_echoing_it(uri: str, checksum: bool) -> None:
    with pytest.raises(errors.UnsafeReference) as info:
        resolve_reference(uri, checksum=checksum)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    art = af.Artifact("refs", "dataset")
    with pytest.raises(errors.UnsafeReference):
        art.add_reference(uri, checksum=checksum)
    assert len(art.manifest) == 0


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket/user@example.com/data.csv",
        "s3://bucket/date=2024-01-01/part.parquet",
        "https://example.com/@team/file.csv",
        "https://example.com:8443/x.csv?format=csv&download=1",
        "http://[::1]:8080/a@b.csv",
        "simplecache::s3://bucket/key",
    ],
)
def test_safe_references_still_pass(uri: str) -> None:
    (entry,) = resolve_reference(uri, checksum=False)
    assert entry.ref == uri


def test_unsafe_reference_writes_nothing(registry: af.Registry) -> None:
    art = af.Artifact("refs", "dataset")
    with registry.run(step="refs"):
        with pytest.raises(errors.UnsafeReference):
            art.add_reference(f"ftp://user:{SECRET}@example.com/x", checksum=False)
        with pytest.raises(errors.UnsafeReference):
            art.add_reference(f"s3://KEY:{SECRET}@bucket/key")
    assert len(art.manifest) == 0
    _nothing_written(registry)


# -- item 26: both databases accept or refuse alike, before anything is written ---------------
@pytest.mark.parametrize(
    "identity",
    [
        {"step": "s" * 251},
        {"pipeline": "p" * 251},
        {"job_type": "j" * 129},
        {"orchestrator": "o" * 33},
        {"step": "a\x00b"},
        {"pipeline_run": "run-\udcff"},
        {"map_index": math.nan},
        {"map_index": 2.5},
        {"map_index": True},
        {"attempt": 2**31},
        {"attempt": "many"},
        {"step": object()},
        {"step": 1.5},
        {"note": object()},
        {"note": math.nan},
        {"note": {"x": math.inf}},
    ],
    ids=lambda identity: "-".join(identity),
)
def test_bad_run_identity_refused_before_anything_written(
    registry: af.Registry, tmp_path: Path, identity: dict[str, Any]
) -> None:
    with pytest.raises(errors.InvalidArgument):
        registry.run(**identity)
    _nothing_written(registry)


def test_run_identity_at_its_limits_is_stored_alike(registry: af.Registry, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    art = af.Artifact("edge", "dataset")
    art.add_file(src)
    identity = {
        "pipeline": "p" * 250,
        "step": "é" * 250,
        "orchestrator": "o" * 32,
        "map_index": "3",
        "attempt": 2**31 - 1,
        "step_run": 12345,
        "note": {"nested": [1, "two"]},
    }
    with registry.run(**identity) as run:
        run.log_artifact(art).wait()
    info = registry.artifact("edge:v0").logged_by()
    assert info is not None
    assert (info.pipeline, info.step, info.orchestrator) == ("p" * 250, "é" * 250, "o" * 32)
    assert (info.map_index, info.attempt, info.step_run) == (3, 2**31 - 1, "12345")
    assert info.extra == {"note": {"nested": [1, "two"]}}


@pytest.mark.parametrize("description", [12345, b"bytes", "a\x00b", "not utf-8 \udcff"])
def test_bad_description_refused_when_set(
    registry: af.Registry, tmp_path: Path, description: object
) -> None:
    with pytest.raises(errors.InvalidArgument):
        af.Artifact("described", "dataset", description=description)  # type: ignore[arg-type]
    art = af.Artifact("described", "dataset", description="fine\nmultiline é")
    with pytest.raises(errors.InvalidArgument):
        art.description = description  # type: ignore[assignment]
    assert art.description == "fine\nmultiline é"
    _nothing_written(registry)
    src = tmp_path / "f.txt"
    src.write_text("x")
    art.add_file(src)
    with registry.run() as run:
        run.log_artifact(art).wait()
    assert registry.artifact("described:v0").description == "fine\nmultiline é"


def test_version_refs_beyond_the_maximum_or_zero_padded(
    registry: af.Registry, tmp_path: Path
) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    art = af.Artifact("num", "dataset")
    art.add_file(src)
    with registry.run() as run:
        run.log_artifact(art).wait()
    for ref in (
        "num:v2147483647",
        "num:v2147483648",
        "num:v99999999999999999999",
        "num:v" + "9" * 5000,
    ):
        with pytest.raises(errors.ArtifactNotFound):
            registry.artifact(ref)
        with registry.run() as run, pytest.raises(errors.ArtifactNotFound):
            run.use_artifact(ref)
    for ref in ("num:v01", "num:v00", "num:v0001"):
        with pytest.raises(errors.InvalidName, match="leading zeros"):
            registry.artifact(ref)
        with pytest.raises(errors.InvalidName):
            registry.set_alias(ref, "best")
    assert registry.artifact("num:v0").version == "v0"
    with pytest.raises(errors.ArtifactNotFound):
        registry.lineage("num:v2147483648")


@pytest.mark.parametrize(
    "filters",
    [{"step": "a\x00"}, {"pipeline": "run-\udcff"}, {"map_index": 2**40}, {"attempt": "x"}],
    ids=lambda filters: "-".join(filters),
)
def test_run_filters_refused_alike(registry: af.Registry, filters: dict[str, Any]) -> None:
    with pytest.raises(errors.InvalidArgument):
        registry.runs(**filters)


def test_run_filters_that_match_nothing_return_nothing_alike(registry: af.Registry) -> None:
    assert registry.runs(step="s" * 300) == []
    assert registry.runs(map_index="3", attempt=2**31 - 1) == []
