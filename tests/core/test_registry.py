"""The registry end to end: log, version, alias, dedupe, use, download, verify — on SQLite and
PostgreSQL (the ``registry`` fixture runs each test on both)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

import artiflow as af
from artiflow import errors
from artiflow.db import schema


def _dataset(src: Path, name: str = "cats", type_: str = "dataset") -> af.Artifact:
    art = af.Artifact(name, type_, description="cat pictures", metadata={"n": 2})
    art.add_dir(src)
    return art


def _counts(reg: af.Registry) -> dict[str, int]:
    with reg.meta.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (schema.artifacts, schema.versions, schema.aliases, schema.runs, schema.usage)
        }


def _store_files(reg: af.Registry) -> list[str]:
    root = Path(reg.store.root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_log_commits_v0_then_v1_with_latest_and_aliases(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a", "b/c.txt": "c"})
    with registry.run(pipeline="etl", step="extract") as run:
        first = run.log_artifact(_dataset(src), aliases=["best"])
        assert first.wait() is first
    assert first.version == "v0" and first.qualified_name == "cats:v0"
    assert first.aliases == ["latest", "best"]

    (src / "a.txt").write_text("a2")
    with registry.run(pipeline="etl", step="extract") as run:
        second = run.log_artifact(_dataset(src))
    assert second.version == "v1"
    assert second.aliases == ["latest"]
    assert registry.artifact("cats").version == "v1"
    assert registry.artifact("cats:latest").version == "v1"
    assert registry.artifact("cats:best").version == "v0"
    assert registry.artifact("cats:v0").digest == first.digest
    assert [a.version for a in registry.versions("cats")] == ["v0", "v1"]
    fetched = registry.artifact("cats:v1")
    assert fetched.type == "dataset" and fetched.description == "cat pictures"
    assert fetched.metadata == {"n": 2}
    assert sorted(fetched.manifest.entries) == ["a.txt", "b/c.txt"]
    assert fetched.size == 3 and fetched.file_count == 2


def test_identical_content_returns_existing_version_and_moves_aliases(
    registry, tmp_path, make_tree
):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        v0 = run.log_artifact(_dataset(src)).wait()
        (src / "a.txt").write_text("changed")
        v1 = run.log_artifact(_dataset(src)).wait()
        (src / "a.txt").write_text("a")
        again = run.log_artifact(_dataset(src), aliases=["prod"]).wait()
    assert (v0.version, v1.version, again.version) == ("v0", "v1", "v0")
    assert again.digest == v0.digest
    assert registry.artifact("cats:prod").version == "v0"
    assert registry.artifact("cats:latest").version == "v1"  # latest = the newest version
    assert len(registry.versions("cats")) == 2


def test_a_name_belongs_to_one_type_and_a_clash_writes_nothing(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        run.log_artifact(_dataset(src)).wait()
    before, files = _counts(registry), _store_files(registry)
    (src / "new.txt").write_text("new content")
    with registry.run() as run, pytest.raises(errors.TypeMismatch, match="dataset"):
        run.log_artifact(_dataset(src, type_="model"))
    assert _counts(registry) == before
    assert _store_files(registry) == files


@pytest.mark.parametrize("alias", ["latest", "v3", "bad/alias", "", "x" * 129])
def test_reserved_and_invalid_aliases_are_refused_before_anything_is_written(
    registry, tmp_path, make_tree, alias
):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run, pytest.raises(errors.InvalidName):
        run.log_artifact(_dataset(src), aliases=[alias])
    assert _counts(registry)["artiflow_versions"] == 0
    assert _store_files(registry) == []


@pytest.mark.parametrize("ref", ["nothing", "cats:v9", "cats:nope", "cats:", "bad name", ""])
def test_unknown_or_malformed_refs_raise_one_error(registry, tmp_path, make_tree, ref):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        run.log_artifact(_dataset(src))
    with pytest.raises(errors.ArtiflowError) as info:
        registry.artifact(ref)
    assert isinstance(info.value, KeyError | ValueError)


def test_missing_ref_is_a_key_error():
    assert issubclass(errors.ArtifactNotFound, KeyError)


def test_set_alias_moves_atomically(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        run.log_artifact(_dataset(src)).wait()
        (src / "a.txt").write_text("b")
        run.log_artifact(_dataset(src)).wait()
    registry.set_alias("cats:v0", "prod")
    assert registry.artifact("cats:prod").version == "v0"
    registry.set_alias("cats:v1", "prod")
    assert registry.artifact("cats:prod").version == "v1"
    assert registry.artifact("cats:v0").aliases == []
    with pytest.raises(errors.InvalidName):
        registry.set_alias("cats:v0", "latest")


def test_use_artifact_records_input_and_checks_type(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run(pipeline="etl", step="extract") as producer:
        produced = producer.log_artifact(_dataset(src)).wait()
    with registry.run(pipeline="etl", step="train", attempt=2) as consumer:
        used = consumer.use_artifact("cats:latest", type="dataset")
        with pytest.raises(errors.TypeMismatch, match="model"):
            consumer.use_artifact("cats:latest", type="model")
    assert used.qualified_name == "cats:v0"
    logged_by = produced.logged_by()
    assert logged_by is not None and logged_by.step == "extract" and logged_by.status == "finished"
    users = used.used_by()
    assert [(r.pipeline, r.step, r.attempt) for r in users] == [("etl", "train", 2)]


def test_a_failing_block_marks_the_run_failed(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with pytest.raises(RuntimeError), registry.run(step="boom") as run:
        run.use_artifact  # noqa: B018 - the run exists but has touched nothing yet
        run.log_artifact(_dataset(src)).wait()
        raise RuntimeError("step failed")
    assert registry.get_run(run.id).status == "failed"


def test_leaving_the_block_waits_and_surfaces_background_failures(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    art = _dataset(src)
    (src / "a.txt").write_text("changed after add")
    with pytest.raises(errors.SourceChanged), registry.run() as run:
        run.log_artifact(art)
    with pytest.raises(errors.SourceChanged, match="changed after it was added"):
        art.wait()
    assert _counts(registry)["artiflow_versions"] == 0


def test_a_file_changed_after_add_fails_the_log_and_stores_nothing(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "same size"})
    art = _dataset(src)
    (src / "a.txt").write_text("SAME SIZE")  # same size; a new mtime and content
    os.utime(src / "a.txt", ns=(1, 1))
    with registry.run() as run:
        run.log_artifact(art)
        with pytest.raises(errors.SourceChanged):
            art.wait()
    assert _counts(registry)["artiflow_versions"] == 0
    assert [f for f in _store_files(registry) if "blobs" in f] == []
    # The artifact is a draft again: re-adding the file and logging works.
    art.add_file(src / "a.txt", "a.txt", overwrite=True)
    with registry.run() as run:
        assert run.log_artifact(art).wait().version == "v0"


def test_artifact_is_frozen_once_logged(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        art = run.log_artifact(_dataset(src)).wait()
    with pytest.raises(errors.ArtifactStateError):
        art.add_file(src / "a.txt", "other.txt")
    with pytest.raises(errors.ArtifactStateError):
        registry.artifact("cats").remove("a.txt")


def test_a_run_cannot_log_after_it_finished(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        pass
    with pytest.raises(errors.ArtifactStateError):
        run.log_artifact(_dataset(src))


def test_download_verify_and_tables_round_trip(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a", "deep/er/b.bin": os.urandom(70_000)})
    art = _dataset(src)
    art.add(af.Table(columns=["x", "y"], data=[[1, "one"], [2, "two"]]), "tables/t")
    with art.new_file("notes.md") as fh:
        fh.write("# notes")
    with registry.run() as run:
        run.log_artifact(art).wait()
    got = registry.artifact("cats:v0")
    root = got.download(tmp_path / "out")
    assert root == tmp_path / "out"
    assert (root / "deep/er/b.bin").read_bytes() == (src / "deep/er/b.bin").read_bytes()
    assert (root / "notes.md").read_text() == "# notes"
    got.verify(root)
    table = got.get("tables/t")
    assert isinstance(table, af.Table) and table.data == [[1, "one"], [2, "two"]]

    (root / "a.txt").write_text("tampered")
    (root / "stray.txt").write_text("not in the manifest")
    with pytest.raises(errors.CorruptedBlob, match=r"changed: a\.txt.*unexpected: stray\.txt"):
        got.verify(root)
    got.download(root)  # repairs the changed file
    (root / "stray.txt").unlink()
    got.verify(root)


def test_warm_download_never_touches_the_store(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {f"f{i}.txt": f"content {i}" for i in range(20)})
    with registry.run() as run:
        run.log_artifact(_dataset(src)).wait()
    art = registry.artifact("cats:v0")
    art.manifest  # the manifest is cached on first read  # noqa: B018
    first = art.download(tmp_path / "one")
    blobs = Path(registry.store.root) / "blobs"
    hidden = blobs.with_name("blobs-away")
    blobs.rename(hidden)  # the store is gone: everything must come from the cache
    try:
        again = registry.artifact("cats:v0")
        assert again.download(first) == first
        second = again.download(tmp_path / "two")
        again.verify(second)
    finally:
        hidden.rename(blobs)


def test_corrupted_blob_raises_and_does_not_poison_the_cache(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "precious bytes"})
    with registry.run() as run:
        art = run.log_artifact(_dataset(src)).wait()
    digest = art.manifest.get("a.txt").digest
    blob = Path(registry.store.oid_to_path(digest))
    blob.chmod(0o644)
    blob.write_text("rotten bytes!!")
    fresh = registry.artifact("cats:v0")
    with pytest.raises(errors.CorruptedBlob, match=digest):
        fresh.download(tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()
    assert registry.cache.lookup(f"md5/{digest}") is None
    blob.write_text("precious bytes")
    assert (fresh.download(tmp_path / "out") / "a.txt").read_text() == "precious bytes"


def test_second_version_with_one_percent_changed_uploads_one_percent(
    local_registry, tmp_path, make_tree
):
    reg = local_registry
    src = make_tree(tmp_path / "src", {f"d/{i:03}.bin": os.urandom(1024) for i in range(200)})
    with reg.run() as run:
        run.log_artifact(_dataset(src)).wait()
    first = reg.uploaded_bytes
    for i in (7, 99):
        (src / f"d/{i:03}.bin").write_bytes(os.urandom(1024))
    with reg.run() as run:
        assert run.log_artifact(_dataset(src)).wait().version == "v1"
    assert first >= 200 * 1024
    assert reg.uploaded_bytes - first == 2 * 1024


def test_unreachable_store_fails_with_one_error_and_writes_nothing(tmp_path, sqlite_url, make_tree):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store's folder should be")
    reg = af.Registry(store=str(blocker / "store"), database=sqlite_url)
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    art = _dataset(src)
    with reg.run() as run:
        run.log_artifact(art)
        with pytest.raises(errors.ArtiflowError) as info:
            art.wait()
    assert isinstance(info.value, errors.StoreError)
    assert _counts(reg) == {
        "artiflow_artifacts": 0,
        "artiflow_versions": 0,
        "artiflow_aliases": 0,
        "artiflow_runs": 0,
        "artiflow_usage": 0,
    }


def test_unreachable_database_is_one_error(tmp_path):
    with pytest.raises(errors.DatabaseError):
        af.Registry(
            store=str(tmp_path / "s"),
            database="postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
        )


def test_references_are_verified_on_download(registry, tmp_path, make_tree):
    data = make_tree(tmp_path / "ext", {"ref.csv": "a,b\n1,2\n"})
    art = af.Artifact("refs", "dataset")
    art.add_reference((data / "ref.csv").as_uri())
    with registry.run() as run:
        run.log_artifact(art).wait()
    got = registry.artifact("refs:v0")
    root = got.download(tmp_path / "out")
    assert (root / "ref.csv").read_text() == "a,b\n1,2\n"
    got.verify(root)
    (data / "ref.csv").write_text("a,b\n9,9\n")  # the source changed after it was logged
    cached = registry.artifact("refs:v0").download(tmp_path / "from-cache")
    assert (cached / "ref.csv").read_text() == "a,b\n1,2\n"  # the verified copy, no network
    registry.cache.prune(max_bytes=0)
    with pytest.raises(errors.CorruptedBlob):
        registry.artifact("refs:v0").download(tmp_path / "third")
    assert not (tmp_path / "third" / "ref.csv").exists()


def test_env_vars_configure_the_default_registry(tmp_path, monkeypatch, make_tree):
    monkeypatch.setenv("ARTIFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ARTIFLOW_STORE", str(tmp_path / "team-store"))
    monkeypatch.setenv("ARTIFLOW_DATABASE", f"sqlite:///{tmp_path / 'team.db'}")
    reg = af.Registry()
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with reg.run() as run:
        run.log_artifact(_dataset(src)).wait()
    assert (tmp_path / "team.db").exists()
    assert list((tmp_path / "team-store" / "blobs" / "md5").rglob("*"))
    monkeypatch.delenv("ARTIFLOW_STORE")
    monkeypatch.delenv("ARTIFLOW_DATABASE")
    home = af.Registry()
    assert home.store_url == str(tmp_path / "home" / "store")
    assert home.database_url == f"sqlite:///{tmp_path / 'home' / 'registry.db'}"


def test_runs_are_listed_by_identity(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run(pipeline="etl", pipeline_run="r1", step="extract") as run:
        run.log_artifact(_dataset(src))
    with pytest.raises(RuntimeError), registry.run(pipeline="etl", pipeline_run="r2") as run:
        run.use_artifact("cats")
        raise RuntimeError("failed attempt")
    with registry.run(pipeline="etl", pipeline_run="r3"):
        pass  # touched nothing: leaves nothing behind
    assert [(r.pipeline_run, r.status) for r in registry.runs(pipeline="etl")] == [
        ("r1", "finished"),
        ("r2", "failed"),
    ]
    assert [r.step for r in registry.runs(pipeline_run="r1")] == ["extract"]
    with pytest.raises(errors.InvalidName):
        registry.runs(nonsense=1)


def test_check_probes_database_and_store(tmp_path, sqlite_url):
    af.Registry(store=str(tmp_path / "store"), database=sqlite_url).check()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.StoreError):
        af.Registry(store=str(blocker / "store"), database=sqlite_url).check()


def test_unverified_prefix_reference_downloads_as_a_folder(registry, tmp_path, make_tree):
    ext = make_tree(tmp_path / "ext", {"x/1.txt": "one", "x/2.txt": "two"})
    art = af.Artifact("loose", "dataset")
    (entry,) = art.add_reference((ext / "x").as_uri(), name="x", checksum=False)
    assert entry.extra == {"checksum": False} and entry.size is None
    with registry.run() as run:
        run.log_artifact(art)
    got = registry.artifact("loose:v0")
    root = got.download(tmp_path / "out")
    assert sorted(p.name for p in (root / "x").iterdir()) == ["1.txt", "2.txt"]
    assert got.download(root) == root  # present: nothing to compare, nothing fetched again


def test_a_handled_failure_is_not_raised_again_and_the_retry_counts(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    art = _dataset(src)
    (src / "a.txt").write_text("b")
    with registry.run() as run:
        run.log_artifact(art)
        with pytest.raises(errors.SourceChanged):
            art.wait()
        art.add_file(src / "a.txt", overwrite=True)  # the fix: add the new content
        run.log_artifact(art)
    assert art.version == "v0"
    assert registry.get_run(run.id).status == "finished"


def test_reused_tells_a_deduplicated_log_apart(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        first = run.log_artifact(_dataset(src)).wait()
        again = run.log_artifact(_dataset(src)).wait()
    assert (first.reused, again.reused) == (False, True)
    assert again.version == first.version == "v0"


def test_atomic_run_commits_all_versions_together_at_the_end(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run(atomic=True, step="two-outputs") as run:
        one = run.log_artifact(_dataset(src, "one"))
        two = run.log_artifact(_dataset(src, "two"), aliases=["fresh"])
        with pytest.raises(errors.ArtifactStateError, match="atomic"):
            one.wait()  # would wait for the end of this very block
        with pytest.raises(af.ArtifactNotFound):
            registry.artifact("one")  # nothing visible before the block exits
    assert (one.version, two.version) == ("v0", "v0")
    assert registry.artifact("two:fresh").logged_by().step == "two-outputs"


def test_atomic_run_that_fails_commits_nothing(registry, tmp_path, make_tree):
    src = make_tree(tmp_path / "src", {"a.txt": "a"})
    with registry.run() as run:
        run.log_artifact(_dataset(src, "taken", type_="model"))
    before = _counts(registry)
    with pytest.raises(RuntimeError), registry.run(atomic=True) as run:
        first = run.log_artifact(_dataset(src, "first"))
        raise RuntimeError("the step failed after logging")
    assert first.version is None and first.state == "draft"
    # A failed upload of one output keeps the others from committing too.
    src2 = make_tree(tmp_path / "src2", {"b.txt": "b"})
    second = _dataset(src2, "second")
    broken = _dataset(src2, "broken")
    (src2 / "b.txt").write_text("changed after add")
    os.utime(src2 / "b.txt", ns=(5, 5))
    with pytest.raises(errors.SourceChanged), registry.run(atomic=True) as run:
        run.log_artifact(second)
        run.log_artifact(broken)
    after = _counts(registry)
    assert after["artiflow_versions"] == before["artiflow_versions"]
    assert after["artiflow_aliases"] == before["artiflow_aliases"]
    for name in ("first", "second", "broken"):
        with pytest.raises(af.ArtifactNotFound):
            registry.artifact(name)
