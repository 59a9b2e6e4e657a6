"""artiflow.steps and artiflow.formatting: the orchestrator-neutral part of artifact steps."""

from __future__ import annotations

import ast
import pathlib
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow.errors import ArtiflowError
from artiflow.formatting import SHORT_UNITS, format_size
from artiflow.steps import (
    EmptyOutput,
    Input,
    InvalidSpec,
    Output,
    absorb_return,
    add_source,
    draft_outputs,
    parse_input,
    parse_output,
    require_filled,
    wants_path,
)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A directory ``data/`` with ``a.csv`` and ``sub/b.csv``, and a file ``one.txt`` beside it."""
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.csv").write_text("a\n1\n")
    (tmp_path / "data" / "sub" / "b.csv").write_text("b\n2\n")
    (tmp_path / "one.txt").write_text("one")
    return tmp_path


def _paths(artifact: af.Artifact) -> list[str]:
    return sorted(entry.path for entry in artifact.manifest)


# ------------------------------------------------------------------------------- errors
def test_spec_errors_are_artiflow_errors_and_the_builtin_that_fits() -> None:
    assert issubclass(InvalidSpec, ArtiflowError) and issubclass(InvalidSpec, TypeError)
    assert issubclass(EmptyOutput, ArtiflowError) and issubclass(EmptyOutput, ValueError)


# -------------------------------------------------------------------------------- inputs
def test_parse_input_short_and_long_forms() -> None:
    assert parse_input("raw", "raw-data:latest") == Input("raw-data:latest")
    assert parse_input("raw", {"ref": "raw-data:v3", "type": "dataset", "download": True}) == (
        Input("raw-data:v3", type="dataset", download=True)
    )
    given = Input("raw-data:best")
    assert parse_input("raw", given) is given


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"ref": "raw:v0", "typo": 1}, r"input 'raw': unknown keys \['typo'\]"),
        ({"type": "dataset"}, "reference must be a string"),
        ({"ref": None}, "reference must be a string"),
        (42, "must be a reference string"),
        (["raw:v0"], "must be a reference string"),
    ],
)
def test_parse_input_rejects_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse_input("raw", spec)


# ------------------------------------------------------------------------------- outputs
def test_parse_output_short_and_long_forms() -> None:
    assert parse_output("clean", "dataset") == Output("dataset")
    long = parse_output(
        "clean",
        {
            "type": "dataset",
            "name": "clean-data",
            "aliases": ["best", "prod"],
            "description": "tidy",
            "metadata": {"rows": 2},
            "distributed": True,
            "distributed_id": "run-1",
        },
    )
    assert long == Output(
        "dataset",
        name="clean-data",
        aliases=("best", "prod"),
        description="tidy",
        metadata={"rows": 2},
        distributed=True,
        distributed_id="run-1",
    )
    given = Output("model", name="m")
    assert parse_output("clean", given) is given


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "dataset", "typo": 1}, r"output 'clean': unknown keys \['typo'\]"),
        ({"name": "clean"}, "must be a type string"),
        ({"type": 3}, "must be a type string"),
        (None, "must be a type string"),
        ({"type": "dataset", "aliases": "best"}, "aliases must be a list"),
        (Output("dataset", aliases="best"), "aliases must be a list"),  # type: ignore[arg-type]
        ({"type": "dataset", "distributed": "yes"}, "distributed must be"),
        ({"type": "dataset", "distributed": 1}, "distributed must be"),
    ],
)
def test_parse_output_rejects_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        parse_output("clean", spec)


@pytest.mark.parametrize(
    ("distributed", "mode"),
    [(None, "log"), (False, "log"), (True, "upsert"), ("upsert", "upsert"), ("finish", "finish")],
)
def test_output_mode(distributed: Any, mode: str) -> None:
    assert parse_output("x", {"type": "dataset", "distributed": distributed}).mode == mode


def test_draft_outputs_are_empty_and_named_after_the_parameter_by_default() -> None:
    drafts = draft_outputs(
        {
            "clean": Output("dataset"),
            "model": Output("model", name="cat-model", description="d", metadata={"k": 1}),
        }
    )
    assert (drafts["clean"].name, drafts["clean"].type) == ("clean", "dataset")
    assert (drafts["model"].name, drafts["model"].type) == ("cat-model", "model")
    assert drafts["model"].description == "d" and drafts["model"].metadata == {"k": 1}
    assert all(not len(d.manifest) for d in drafts.values())


# ---------------------------------------------------------------------------- wants_path
def _annotated(raw: Path, art: af.Artifact, plain, text: str) -> None: ...  # type: ignore[no-untyped-def]


def _qualified(raw: pathlib.Path) -> None: ...


def _unresolvable(raw: Path, other: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821


def _unresolvable_qualified(raw: pathlib.Path, other: Undefined) -> None: ...  # type: ignore[name-defined]  # noqa: F821


def test_wants_path_follows_the_annotation() -> None:
    assert wants_path(_annotated, "raw")
    assert not wants_path(_annotated, "art")
    assert not wants_path(_annotated, "plain")
    assert not wants_path(_annotated, "text")
    assert not wants_path(_annotated, "missing")
    assert wants_path(_qualified, "raw")


def test_wants_path_judges_unresolvable_annotations_by_their_text() -> None:
    assert wants_path(_unresolvable, "raw")
    assert wants_path(_unresolvable_qualified, "raw")
    assert not wants_path(_unresolvable, "other")


# ------------------------------------------------------------------ filling from returns
def test_add_source_adds_a_file_a_directory_or_a_reference(data: Path) -> None:
    file, folder, uri = (af.Artifact(name, "dataset") for name in ("file", "folder", "uri"))
    add_source(file, data / "one.txt")
    add_source(folder, str(data / "data"))
    add_source(uri, (data / "data" / "a.csv").as_uri())
    assert _paths(file) == ["one.txt"] and not file.manifest.get("one.txt").is_reference
    assert _paths(folder) == ["a.csv", "sub/b.csv"]
    assert _paths(uri) == ["a.csv"] and uri.manifest.get("a.csv").is_reference


def test_absorb_none_uses_it_up_and_fills_nothing() -> None:
    drafts = draft_outputs({"out": Output("dataset")})
    assert absorb_return(None, drafts) is True
    assert not len(drafts["out"].manifest)


def test_absorb_a_path_fills_the_single_empty_output(data: Path) -> None:
    drafts = draft_outputs({"filled": Output("dataset"), "empty": Output("dataset")})
    drafts["filled"].add_file(data / "one.txt")
    assert absorb_return(data / "data", drafts) is True
    assert _paths(drafts["empty"]) == ["a.csv", "sub/b.csv"]
    assert _paths(drafts["filled"]) == ["one.txt"]


def test_absorb_a_path_is_passed_on_when_the_target_is_ambiguous(data: Path) -> None:
    drafts = draft_outputs({"a": Output("dataset"), "b": Output("dataset")})
    assert absorb_return(str(data / "one.txt"), drafts) is False
    assert absorb_return("just a string", {}) is False
    assert all(not len(d.manifest) for d in drafts.values())


def test_absorb_a_dict_of_paths_fills_those_outputs(data: Path) -> None:
    drafts = draft_outputs({"a": Output("dataset"), "b": Output("dataset")})
    assert absorb_return({"a": data / "one.txt", "b": str(data / "data")}, drafts) is True
    assert _paths(drafts["a"]) == ["one.txt"]
    assert _paths(drafts["b"]) == ["a.csv", "sub/b.csv"]


@pytest.mark.parametrize(
    "returned",
    [42, {"a": 1}, {"other": "x.txt"}, {}, ["x.txt"], {"a": "x.txt", "b": 2}],
)
def test_absorb_anything_else_is_left_for_the_caller(returned: Any) -> None:
    drafts = draft_outputs({"a": Output("dataset"), "b": Output("dataset")})
    assert absorb_return(returned, drafts) is False
    assert all(not len(d.manifest) for d in drafts.values())


def test_require_filled_names_the_empty_output(data: Path) -> None:
    outputs = {"a": Output("dataset"), "b": Output("dataset", name="bee")}
    drafts = draft_outputs(outputs)
    drafts["a"].add_file(data / "one.txt")
    with pytest.raises(EmptyOutput, match=r"output 'b' \(bee\) is empty"):
        require_filled(drafts, outputs)
    drafts["b"].add_file(data / "one.txt")
    require_filled(drafts, outputs)


def test_require_filled_lets_a_finishing_output_be_empty() -> None:
    outputs = {"all": Output("dataset", distributed="finish")}
    require_filled(draft_outputs(outputs), outputs)


# ---------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(
    ("size", "text", "short"),
    [
        (None, "?", "?"),
        (0, "0 B", "0 B"),
        (1023, "1023 B", "1023 B"),
        (1024, "1.0 KiB", "1.0 KB"),
        (2048, "2.0 KiB", "2.0 KB"),
        (1536 * 1024, "1.5 MiB", "1.5 MB"),
        (3 * 1024**3, "3.0 GiB", "3.0 GB"),
        (5 * 1024**5, "5120.0 TiB", "5120.0 TB"),
    ],
)
def test_format_size(size: int | None, text: str, short: str) -> None:
    assert format_size(size) == text
    assert format_size(size, SHORT_UNITS) == short


def test_the_step_modules_import_no_orchestrator() -> None:
    """What they import beyond this is what ``import artiflow`` imports (see test_package)."""
    import artiflow.formatting
    import artiflow.steps

    for module in (artiflow.steps, artiflow.formatting):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {name.split(".")[0] for name in names} & {"airflow", "prefect"}
