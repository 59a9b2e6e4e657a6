"""artiflow.orchestration, issue 10 items 20 and 21 on the core side: step specs checked when
they are parsed (what both integrations do when a task is declared), and the step's log lines
(inputs used, outputs logged or reused, nothing committed) written through ``StepRun.say``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow import errors
from artiflow.naming import check_name
from artiflow.orchestration import (
    Input,
    Output,
    StepCall,
    StepRun,
    open_step,
    parse_input,
    parse_output,
)
from artiflow.orchestration.specs import check_input, check_output, check_value
from artiflow.run import Run


# -- specs are checked when parsed ------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bad name", r"output 'm': invalid artifact type 'bad name'"),
        ({"type": "model", "name": "no good!"}, r"output 'm': invalid artifact name 'no good!'"),
        (Output("model", aliases=("latest",)), r"output 'm': alias 'latest' is reserved"),
        ({"type": "model", "aliases": ["v7"]}, r"output 'm': alias 'v7' is reserved"),
        ({"type": "model", "aliases": ["a b"]}, r"output 'm': invalid artifact alias 'a b'"),
        ({"type": "model", "aliases": [3]}, r"output 'm': artifact alias must be a string"),
    ],
)
def test_parse_output_refuses_bad_names_types_and_aliases(spec: Any, message: str) -> None:
    with pytest.raises(errors.InvalidName, match=message):
        parse_output("m", spec)


def test_an_output_without_a_name_is_named_after_its_parameter() -> None:
    assert parse_output("model", "model") == Output("model")
    with pytest.raises(errors.InvalidName, match=r"output 'modèle': invalid artifact name"):
        parse_output("modèle", "model")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("raw:", r"input 'raw': artifact reference 'raw:' has an empty alias"),
        ("bad name:v1", r"input 'raw': invalid artifact name 'bad name'"),
        (Input("raw:latest", type="a type"), r"input 'raw': invalid artifact type 'a type'"),
        ({"ref": "raw:v1", "type": ""}, r"input 'raw': invalid artifact type ''"),
    ],
)
def test_parse_input_refuses_bad_references_and_types(spec: Any, message: str) -> None:
    with pytest.raises(errors.InvalidName, match=message):
        parse_input("raw", spec)


def test_values_known_only_later_are_checked_when_known() -> None:
    def later(value: object) -> bool:
        return isinstance(value, str) and value.startswith("{{")

    templated = {"type": "{{ t }}", "name": "{{ n }}", "aliases": ["{{ a }}", "gold"]}
    assert parse_output("m", templated, later=later).name == "{{ n }}"
    with pytest.raises(errors.InvalidName, match="invalid artifact name"):
        parse_output("m", templated)  # once rendered, a template left as is is refused
    assert parse_input("raw", "{{ ref }}", later=later) == Input("{{ ref }}")
    with pytest.raises(errors.InvalidName, match="alias 'latest' is reserved"):
        parse_output("m", {**templated, "aliases": ["{{ a }}", "latest"]}, later=later)
    assert check_input("x", Input("x:v0"), later=later) == Input("x:v0")
    assert check_output("x", Output("dataset"), later=later) == Output("dataset")
    check_value("anything", check_name, None)  # None: nothing given


# -- the step's log lines ---------------------------------------------------------------------
class _Recording(StepRun):
    """A StepRun that keeps its lines, as an integration's task log would."""

    def __init__(self, run: Run, scope: Sequence[str] = ()) -> None:
        super().__init__(run, scope)
        self.lines: list[tuple[int, str]] = []

    def say(self, line: str, level: int = logging.INFO) -> None:
        self.lines.append((level, line))


def _file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content)
    return path


def test_a_step_says_what_it_used_and_logged(registry: af.Registry, tmp_path: Path) -> None:
    seed = af.Artifact("raw", "dataset")
    seed.add_file(_file(tmp_path, "raw.csv", "a,b\n"))
    with registry.run(step="seed") as run:
        run.log_artifact(seed)

    def step() -> list[tuple[int, str]]:
        with open_step(registry, {"step": "s"}, step=_Recording) as opened:
            call = StepCall(opened, {"raw": Input("raw:v0")}, {"clean": Output("dataset")})
            call.use_inputs({})
            call.commit(str(_file(tmp_path, "clean.csv", "a\n")))
        return opened.lines

    assert step() == [
        (logging.INFO, f"Used raw:v0 (1 file, 4 B, digest {seed.digest[:12]})"),
        (logging.INFO, "Logged clean:v0 (1 file, 2 B, new version)"),
    ]
    assert step()[1] == (logging.INFO, "Logged clean:v0 (1 file, 2 B, reused v0)")


def test_a_failed_step_says_nothing_was_committed(registry: af.Registry, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="the body failed"),
        open_step(registry, {"step": "fails"}, step=_Recording) as opened,
    ):
        StepCall(opened, {}, {"m": Output("model")}).commit(str(_file(tmp_path, "m", "m")))
        raise RuntimeError("the body failed")
    assert opened.lines == [
        (logging.WARNING, "Nothing committed: the step failed (RuntimeError: the body failed)")
    ]


def test_a_failed_step_names_the_parts_it_stored_at_once(
    registry: af.Registry, tmp_path: Path
) -> None:
    with (
        pytest.raises(RuntimeError, match="later"),
        open_step(registry, {"step": "w"}, ("dag", "run"), step=_Recording) as opened,
    ):
        call = StepCall(opened, {}, {"part": Output("dataset", name="f", distributed=True)})
        call.commit(str(_file(tmp_path, "p.txt", "part")))
        raise RuntimeError("later")
    did = opened.distributed_id("f")
    assert opened.lines == [
        (logging.INFO, f"Added a part of f under distributed id {did} (1 file, 4 B)"),
        (
            logging.WARNING,
            "The step failed (RuntimeError: later); the versions it logged were not committed, "
            f"but what it stored at once stays: a part of f ({did})",
        ),
    ]


def test_the_base_step_run_says_nothing(registry: af.Registry) -> None:
    with open_step(registry, {"step": "quiet"}) as opened:
        opened.say("goes nowhere")  # integrations override say(); the core writes no log
