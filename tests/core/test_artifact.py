"""Constructing artifacts: every call on the seed's page, its rules and its error paths."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import artiflow as af
from artiflow import errors


@pytest.fixture
def project(tmp_path: Path, make_tree):  # type: ignore[no-untyped-def]
    """The seed page's example project: images/, checkpoints/, model.h5."""
    return make_tree(
        tmp_path / "project",
        {
            "images/cat.png": b"\x89PNG cat",
            "images/dog.png": b"\x89PNG dog",
            "checkpoints/model.h5": b"checkpoint",
            "model.h5": b"final model",
            "path/file.txt": "file",
        },
    )


@pytest.mark.parametrize("name", ["cats", "a", "A.b_c-9", "x" * 128])
def test_valid_names(name: str) -> None:
    assert af.Artifact(name, "dataset").name == name


@pytest.mark.parametrize("name", ["", "x" * 129, "cats/dogs", "cats:v0", "ca ts", "ça", None, 3])
def test_invalid_names_name_the_value_and_the_rule(name: object) -> None:
    with pytest.raises(errors.InvalidName) as info:
        af.Artifact(name, "dataset")  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize("type_", ["", "data set", "x" * 129, None])
def test_invalid_types(type_: object) -> None:
    with pytest.raises(errors.InvalidName, match="type"):
        af.Artifact("cats", type_)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "metadata, fragment",
    [
        ({"x": math.nan}, "NaN"),
        ({"x": [math.inf]}, "NaN or infinity"),
        ({f"k{i}": i for i in range(101)}, "at most 100"),
        ({"x": object()}, "JSON"),
        ({1: "int key"}, "strings"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_metadata(metadata: object, fragment: str) -> None:
    with pytest.raises(errors.InvalidMetadata, match=fragment) as info:
        af.Artifact("cats", "dataset", metadata=metadata)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_metadata_is_copied_and_hundred_keys_are_fine() -> None:
    meta = {f"k{i}": {"nested": [i]} for i in range(100)}
    art = af.Artifact("cats", "dataset", metadata=meta)
    meta["k0"]["nested"].append("changed later")
    assert art.metadata["k0"] == {"nested": [0]}


def test_add_file_default_and_custom_names(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    entry = art.add_file(project / "path/file.txt")
    assert entry.path == "file.txt" and entry.size == 4 and entry.ref is None
    assert entry.digest == "8c7dd922ad47494fc02c388e12c00eac"  # md5("file")
    art.add_file(project / "model.h5", name="models/mymodel.h5")
    assert list(art.manifest.entries) == ["file.txt", "models/mymodel.h5"]
    assert art.get_entry("models/mymodel.h5").size == len(b"final model")


def test_add_dir_with_and_without_prefix(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    art.add_dir(project / "images", name="images")
    assert list(art.manifest.entries) == ["images/cat.png", "images/dog.png"]
    flat = af.Artifact("flat", "dataset")
    flat.add_dir(project / "images")
    assert list(flat.manifest.entries) == ["cat.png", "dog.png"]


def test_entries_are_sorted_and_digest_is_order_independent(project: Path) -> None:
    one, two = af.Artifact("a", "t"), af.Artifact("b", "t")
    one.add_file(project / "model.h5")
    one.add_dir(project / "images", "images")
    two.add_dir(project / "images", "images")
    two.add_file(project / "model.h5")
    assert list(one.manifest.entries) == sorted(one.manifest.entries)
    assert one.digest == two.digest
    two.add_file(project / "model.h5", "extra.h5")
    assert one.digest != two.digest


def test_same_path_twice(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    art.add_file(project / "model.h5")
    art.add_file(project / "model.h5")  # same content: fine
    before = art.digest
    with pytest.raises(errors.EntryConflict, match="overwrite=True"):
        art.add_file(project / "checkpoints/model.h5")
    assert art.digest == before
    art.add_file(project / "checkpoints/model.h5", overwrite=True)
    assert art.get_entry("model.h5").size == len(b"checkpoint")


def test_a_failing_add_dir_changes_nothing(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    art.add_file(project / "images/cat.png", "images/dog.png")  # will clash with the dir's dog
    before = dict(art.manifest.entries)
    with pytest.raises(errors.EntryConflict):
        art.add_dir(project / "images", "images")
    assert dict(art.manifest.entries) == before


@pytest.mark.parametrize(
    "bad", ["../x", "/abs", "a/../b", "a//b", "./a", "a\\b", "a\x00b", "", "C:/x"]
)
def test_traversal_and_malformed_entry_names_are_refused(project: Path, bad: str) -> None:
    art = af.Artifact("cats", "dataset")
    with pytest.raises(errors.InvalidPath):
        art.add_file(project / "model.h5", name=bad)
    with pytest.raises(errors.InvalidPath):
        art.add_dir(project / "images", name=bad or "..")
    assert len(art.manifest) == 0


def test_missing_sources_are_one_clear_error(tmp_path: Path) -> None:
    art = af.Artifact("cats", "dataset")
    with pytest.raises(errors.SourceNotFound, match="no such file"):
        art.add_file(tmp_path / "nope.txt")
    with pytest.raises(errors.SourceNotFound, match="no such directory"):
        art.add_dir(tmp_path / "nope")
    assert len(art.manifest) == 0


def test_new_file_and_remove(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    with art.new_file("notes/readme.txt") as fh:
        fh.write("hello")
    with art.new_file("blob.bin", mode="wb") as fh:
        fh.write(b"\x00\x01")
    assert art.get_entry("notes/readme.txt").size == 5
    with pytest.raises(errors.EntryConflict), art.new_file("blob.bin"):
        pass
    art.add_dir(project / "images", "images")
    removed = art.remove("images")  # a directory prefix removes everything under it
    assert [e.path for e in removed] == ["images/cat.png", "images/dog.png"]
    art.remove("blob.bin")
    assert list(art.manifest.entries) == ["notes/readme.txt"]
    with pytest.raises(errors.EntryNotFound):
        art.remove("images")
    with pytest.raises(errors.EntryNotFound):
        art.get_entry("blob.bin")


def test_a_failed_new_file_block_adds_nothing() -> None:
    art = af.Artifact("cats", "dataset")
    with pytest.raises(RuntimeError), art.new_file("x.txt") as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert len(art.manifest) == 0


def test_tables(tmp_path: Path) -> None:
    art = af.Artifact("cats", "dataset")
    table = af.Table(columns=["a", "b"], data=[[1, 2]])
    table.add_data(3, 4)
    entry = art.add(table, "tables/t")
    assert entry.path == "tables/t.table.json"
    back = art.get("tables/t")
    assert isinstance(back, af.Table)
    assert back.columns == ["a", "b"] and back.data == [[1, 2], [3, 4]]
    import json

    raw = json.loads(Path(art.local_sources["tables/t.table.json"].path).read_bytes())
    assert raw == {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}
    with pytest.raises(errors.InvalidMetadata):
        af.Table(columns=["a"], data=[[1, 2]])
    with pytest.raises(errors.InvalidMetadata):
        art.add(af.Table(columns=["a"], data=[[math.nan]]), "bad")
    with pytest.raises(TypeError):
        art.add("not a table", "x")  # type: ignore[arg-type]
    with pytest.raises(errors.EntryNotFound):
        art.get("missing")


def test_partitioned_table_reads_every_part() -> None:
    art = af.Artifact("parallel-artifact", "dataset")
    for i in range(3):
        art.add(af.Table(columns=["a", "b", "c"], data=[[i, i * 2, 2**i]]), f"parts/table_{i}")
    art.add(af.PartitionedTable("parts"), "distributed_table")
    table = art.get("distributed_table")
    assert isinstance(table, af.PartitionedTable)
    assert [p for p, _ in table.parts] == [f"parts/table_{i}.table.json" for i in range(3)]
    assert list(table) == [[0, 0, 1], [1, 2, 2], [2, 4, 4]]
    assert table.to_table().columns == ["a", "b", "c"]


def test_nothing_is_staged(project: Path, tmp_path: Path) -> None:
    art = af.Artifact("cats", "dataset")
    art.add_dir(project)
    assert all(
        Path(s.path).is_relative_to(project) for s in art.local_sources.values()
    )  # hashed in place, never copied


def test_unlogged_artifact_has_no_version() -> None:
    art = af.Artifact("cats", "dataset")
    assert art.version is None and art.qualified_name is None and art.aliases == []
    with pytest.raises(errors.ArtifactStateError):
        art.wait()
    with pytest.raises(errors.ArtifactStateError):
        art.download()


def test_a_path_cannot_be_both_a_file_and_a_folder(project: Path) -> None:
    art = af.Artifact("cats", "dataset")
    art.add_file(project / "model.h5", "a")
    with pytest.raises(errors.EntryConflict, match="both a file and the folder"):
        art.add_file(project / "model.h5", "a/b")
    art.add_dir(project / "images", "imgs")
    with pytest.raises(errors.EntryConflict, match="both a file and the folder"):
        art.add_file(project / "model.h5", "imgs")
    with pytest.raises(errors.EntryConflict):
        with art.new_file("x/y/z.txt") as fh:
            fh.write("fine")
        art.add_file(project / "model.h5", "x/y")
    assert sorted(art.manifest.entries) == ["a", "imgs/cat.png", "imgs/dog.png", "x/y/z.txt"]
    art.remove("imgs")  # once the folder is gone, the name is free for a file
    art.add_file(project / "model.h5", "imgs")
