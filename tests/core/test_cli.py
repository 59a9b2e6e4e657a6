"""The ``artiflow`` command line: every command, its options and environment, and exit codes.

Most tests drive the click app in process (``CliRunner``); the last ones run the installed
``artiflow`` script in a real subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import artiflow as af
from artiflow.cli import main, marker_path
from artiflow.storage import BlobCache

MODEL = "demo-rain-model"


@dataclass(frozen=True)
class Home:
    """A registry filled by ``artiflow demo --home`` (shared by the read-only tests)."""

    path: Path
    env: dict[str, str]

    @property
    def args(self) -> list[str]:
        return ["--store", str(self.path / "store"), "--database", self.database]

    @property
    def database(self) -> str:
        return f"sqlite:///{self.path / 'registry.db'}"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, Result]:
    base = tmp_path_factory.mktemp("cli")
    env = {
        "ARTIFLOW_CACHE_DIR": str(base / "cache"),
        "ARTIFLOW_HASH_CACHE": str(base / "hashes.db"),
        "ARTIFLOW_HOME": str(base / "unused-home"),
    }
    home = Home(base / "home", env)
    result = invoke("demo", "--home", str(home.path), env=env)
    assert result.exit_code == 0, result.output
    return home, result


@pytest.fixture
def home(demo: tuple[Home, Result], monkeypatch: pytest.MonkeyPatch) -> Home:
    for key, value in demo[0].env.items():
        monkeypatch.setenv(key, value)
    return demo[0]


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# ------------------------------------------------------------------------------ demo
def test_demo_shows_versions_dedupe_aliases_and_lineage(demo: tuple[Home, Result]) -> None:
    home, result = demo
    out = result.stdout
    assert "demo-raw-readings:v0 (new version)" in out
    assert "demo-raw-readings:v0 (same content: existing version reused)" in out
    assert "demo-clean-readings:v0 (same content: existing version reused)" in out
    assert "demo-rain-model:v1 (new version)" in out
    assert "demo-rain-model:v1 is now demo-rain-model:production" in out
    assert "lineage of demo-rain-model:production" in out
    tree = out.split("lineage of demo-rain-model:production", 1)[1]
    for line in (
        "demo-rain-model:v1  model",
        "├── upstream",
        "run artiflow-demo/train  pass-2",
        "demo-clean-readings:v0  dataset",
        "demo-raw-readings:v0  dataset",
        "run artiflow-demo/extract  pass-1",
        "└── downstream",
        "demo-eval-report:v1  report",
    ):
        assert line in tree, line
    reg = af.Registry(store=home.path / "store", database=home.database, openlineage=False)
    try:
        assert [a.version for a in reg.versions(MODEL)] == ["v0", "v1"]
        assert [a.version for a in reg.versions("demo-raw-readings")] == ["v0"]
        assert reg.artifact(f"{MODEL}:production").version == "v1"
        assert reg.artifact("demo-raw-readings:v0").get_entry("stations.csv").ref is not None
        assert reg.artifact("demo-clean-readings:v0").get("readings").columns[:2] == [  # type: ignore[union-attr]
            "time",
            "station",
        ]
    finally:
        reg.close()


def test_demo_again_reuses_everything(tmp_path: Path) -> None:
    for _ in range(2):
        result = invoke("demo", "--home", str(tmp_path / "h"))
        assert result.exit_code == 0, result.output
    assert "(new version)" not in result.stdout  # second invocation: nothing new to store
    assert "demo-rain-model:v1 is now" not in result.stdout


def test_demo_on_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFLOW_HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "default-home" / "registry.db").is_file()
    assert (tmp_path / "default-home" / "demo" / "source" / "stations.csv").is_file()


# ------------------------------------------------------------------------------ ls / show
def test_ls(home: Home) -> None:
    result = invoke("ls", *home.args)
    assert result.exit_code == 0, result.output
    for name in ("demo-raw-readings", "demo-clean-readings", MODEL, "demo-eval-report"):
        assert name in result.stdout
    assert "artiflow-demo/train" in result.stdout
    versions = invoke("ls", MODEL, *home.args)
    assert versions.exit_code == 0
    rows = [line for line in versions.stdout.splitlines() if "│ v" in line]
    assert len(rows) == 2 and "production" in rows[1] and "latest" in rows[1]


def test_ls_of_an_empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    result = invoke("ls")
    assert result.exit_code == 0 and "no artifacts" in result.stdout


def test_show(home: Home) -> None:
    result = invoke("show", f"{MODEL}:production", *home.args)
    assert result.exit_code == 0, result.output
    with af.Registry(store=home.path / "store", database=home.database) as reg:
        art_digest = reg.artifact(f"{MODEL}:v1").digest
    for text in (
        f"{MODEL}:v1 (model)",
        "latest, candidate, production",
        art_digest,
        "model.json",
        "artiflow-demo/train",
        "artiflow-demo/evaluate",
        '"epochs": 300',
    ):
        assert text in result.stdout, text
    raw = invoke("show", "demo-raw-readings:v0", "--entries", "2", *home.args)
    assert "stations.csv" not in raw.stdout and "and 2 more" in raw.stdout
    assert "(1 references)" in raw.stdout


def test_missing_artifacts_are_one_line_errors(home: Home) -> None:
    assert "no artifact named 'nope'" in one_line_error(invoke("show", "nope:v0", *home.args))
    assert "no artifact named 'nope'" in one_line_error(invoke("ls", "nope", *home.args))
    lineage = invoke("lineage", f"{MODEL}:v9", *home.args)
    assert "has no version or alias 'v9'" in one_line_error(lineage)
    assert "invalid artifact name" in one_line_error(invoke("download", "bad name!", *home.args))


# ------------------------------------------------------------------------------ lineage
def test_lineage_tree_directions(home: Home) -> None:
    up = invoke("lineage", f"{MODEL}:v1", "--upstream", *home.args).stdout
    assert "run artiflow-demo/train" in up and "demo-eval-report" not in up
    assert "── upstream" not in up
    down = invoke("lineage", f"{MODEL}:v1", "--downstream", *home.args).stdout
    assert "demo-eval-report:v1" in down and "demo-clean-readings" not in down
    both = invoke("lineage", f"{MODEL}:v1", *home.args).stdout
    assert "├── upstream" in both and "└── downstream" in both
    shallow = invoke("lineage", f"{MODEL}:v1", "--upstream", "--depth", "1", *home.args).stdout
    assert "run artiflow-demo/train" in shallow and "demo-clean-readings" not in shallow


def test_lineage_formats(home: Home) -> None:
    data = json.loads(invoke("lineage", f"{MODEL}:v1", "--format", "json", *home.args).stdout)
    assert set(data) == {"nodes", "edges"}
    assert data["nodes"][0]["label"] == f"{MODEL}:v1"
    labels = {n["label"] for n in data["nodes"]}
    assert {"demo-clean-readings:v0", "demo-raw-readings:v0", "demo-eval-report:v1"} <= labels
    dot = invoke("lineage", f"{MODEL}:v1", "--format", "dot", *home.args).stdout
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == len(data["edges"])
    mermaid = invoke("lineage", f"{MODEL}:v1", "--format", "mermaid", *home.args).stdout
    assert mermaid.startswith("flowchart LR") and mermaid.count(" --> ") == len(data["edges"])
    upstream = json.loads(
        invoke("lineage", f"{MODEL}:v1", "--upstream", "--format", "json", *home.args).stdout
    )
    assert len(upstream["edges"]) < len(data["edges"])


def test_usage_errors_exit_2(home: Home) -> None:
    for args in (
        ["lineage", f"{MODEL}:v1", "--format", "png"],
        ["lineage"],
        ["lineage", f"{MODEL}:v1", "--depth", "-1"],
        ["frobnicate"],
        ["show"],
        ["cache", "prune", "--max-bytes", "lots"],
    ):
        result = invoke(*args, *home.args) if args[0] != "frobnicate" else invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


# ------------------------------------------------------------------------------ download / verify
def test_download_and_verify(home: Home, tmp_path: Path) -> None:
    target = tmp_path / "raw"
    result = invoke("download", "demo-raw-readings:v0", str(target), *home.args)
    assert result.exit_code == 0, result.output
    assert "demo-raw-readings:v0: 4 files" in result.stdout
    assert sorted(p.name for p in (target / "readings").iterdir()) == [
        "2024-06-01.csv",
        "2024-06-02.csv",
        "2024-06-03.csv",
    ]
    assert (target / "stations.csv").read_text().startswith("station,elevation_m")
    record = json.loads(marker_path(target).read_text())
    assert record["artifact"] == "demo-raw-readings:v0" and record["files"] == 4
    assert not any(p.name.endswith(".artiflow.json") for p in target.rglob("*"))

    ok = invoke("verify", str(target), *home.args)
    assert ok.exit_code == 0 and "matches demo-raw-readings:v0" in ok.stdout
    explicit = invoke("verify", str(target), "demo-raw-readings:v0", *home.args)
    assert explicit.exit_code == 0
    wrong = invoke("verify", str(target), "demo-clean-readings:v0", *home.args)
    assert "does not match" in one_line_error(wrong)

    (target / "extra.txt").write_text("not part of it")
    assert "unexpected: extra.txt" in one_line_error(invoke("verify", str(target), *home.args))
    (target / "extra.txt").unlink()
    day = target / "readings" / "2024-06-02.csv"
    day.chmod(0o644)
    day.write_text("tampered")
    assert "changed: readings/2024-06-02.csv" in one_line_error(
        invoke("verify", str(target), *home.args)
    )


def test_download_to_the_default_dir(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTIFLOW_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    result = invoke("download", f"{MODEL}:production", *home.args)
    assert result.exit_code == 0, result.output
    target = tmp_path / "artifacts" / MODEL / "v1"
    assert (target / "model.json").is_file()
    assert invoke("verify", str(target), *home.args).exit_code == 0


def test_download_copies_unless_asked_to_hard_link(home: Home, tmp_path: Path) -> None:
    for folder, flags in (("copied", ()), ("linked", ("--hard-link",))):
        result = invoke(
            "download", "demo-raw-readings:v0", str(tmp_path / folder), *flags, *home.args
        )
        assert result.exit_code == 0, result.output
    assert os.stat(tmp_path / "copied" / "stations.csv").st_nlink == 1
    assert os.stat(tmp_path / "linked" / "stations.csv").st_nlink >= 2  # shares the cache's file


def test_download_shows_file_progress_on_a_terminal(home: Home, tmp_path: Path) -> None:
    result = invoke(
        "download",
        "demo-raw-readings:v0",
        str(tmp_path / "raw"),
        *home.args,
        env={"TTY_COMPATIBLE": "1", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.output
    assert "demo-raw-readings:v0" in result.stderr and "4/4 files" in result.stderr
    assert "demo-raw-readings:v0: 4 files" in result.stdout
    plain = invoke("download", "demo-raw-readings:v0", str(tmp_path / "raw2"), *home.args)
    assert plain.exit_code == 0 and plain.stderr == ""  # no bar into a pipe or a log


@pytest.fixture
def loose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A registry whose ``loose:v0`` is one folder reference added with ``checksum=False``;
    returns the folder and the registry options."""
    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARTIFLOW_HASH_CACHE", str(tmp_path / "hashes.db"))
    source = tmp_path / "source"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("bb")
    database = f"sqlite:///{tmp_path / 'registry.db'}"
    art = af.Artifact("loose", "dataset")
    art.add_reference(source.as_uri(), name="x", checksum=False)
    with (
        af.Registry(store=tmp_path / "store", database=database, openlineage=False) as reg,
        reg.run() as run,
    ):
        run.log_artifact(art).wait()
    return source, ["--store", str(tmp_path / "store"), "--database", database]


def test_download_of_an_unverified_folder_reference(
    loose: tuple[Path, list[str]], tmp_path: Path
) -> None:
    _, args = loose
    target = tmp_path / "out"
    for _ in range(2):  # the second download finds it in place
        result = invoke("download", "loose:v0", str(target), *args)
        assert result.exit_code == 0, result.output
        assert "loose:v0: 1 files" in result.stdout
    assert (target / "x" / "a.txt").read_text() == "a"
    assert (target / "x" / "sub" / "b.txt").read_text() == "bb"
    ok = invoke("verify", str(target), *args)
    assert ok.exit_code == 0 and "matches loose:v0" in ok.stdout


def test_a_failed_download_is_a_one_line_error(
    loose: tuple[Path, list[str]], tmp_path: Path
) -> None:
    source, args = loose
    shutil.rmtree(source)
    result = invoke("download", "loose:v0", str(tmp_path / "out"), *args)
    assert "no such object or prefix" in one_line_error(result)
    assert not (tmp_path / "out" / "x").exists()


def test_verify_without_a_record(tmp_path: Path, home: Home) -> None:
    (tmp_path / "plain").mkdir()
    result = invoke("verify", str(tmp_path / "plain"), *home.args)
    assert result.exit_code == 2 and "artiflow verify DIR NAME:REF" in result.output


def test_verify_checks_the_record_against_the_registry(tmp_path: Path, home: Home) -> None:
    target = tmp_path / "model"
    assert invoke("download", f"{MODEL}:v0", str(target), *home.args).exit_code == 0
    record = json.loads(marker_path(target).read_text())
    marker_path(target).write_text(json.dumps({**record, "digest": "0" * 32}))
    assert "downloaded from a registry whose" in one_line_error(
        invoke("verify", str(target), *home.args)
    )
    marker_path(target).write_text("{not json")
    assert "not a download record" in one_line_error(invoke("verify", str(target), *home.args))


# ------------------------------------------------------------------------------ db / cache
def test_db_upgrade(tmp_path: Path, home: Home) -> None:
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    first = invoke("db", "upgrade", "--database", fresh)
    assert first.exit_code == 0 and "upgraded from an empty database to" in first.stdout
    again = invoke("db", "upgrade", "--database", fresh)
    assert again.exit_code == 0 and "already at schema revision" in again.stdout
    assert "already at" in invoke("db", "upgrade", *home.args).stdout
    bad = invoke(
        "db", "upgrade", "--database", "postgresql+psycopg://u@127.0.0.1:1/x?connect_timeout=2"
    )
    one_line_error(bad)


def test_cache_prune(home: Home, tmp_path: Path) -> None:
    invoke("download", "demo-clean-readings:v0", str(tmp_path / "c"), *home.args)
    cache = home.env["ARTIFLOW_CACHE_DIR"]
    before = BlobCache(cache).total_bytes()
    assert before > 0
    result = invoke("cache", "prune", "--max-bytes", "1K")
    assert result.exit_code == 0 and "removed" in result.stdout
    assert BlobCache(cache).total_bytes() <= 1024
    emptied = invoke("cache", "prune", "--max-bytes", "0", "--cache-dir", cache)
    assert emptied.exit_code == 0 and "0 B left" in emptied.stdout


# ------------------------------------------------------------------------------ options and env
@pytest.mark.parametrize(
    "command",
    [
        ["ls"],
        ["show"],
        ["lineage"],
        ["download"],
        ["verify"],
        ["db", "upgrade"],
        ["cache", "prune"],
        ["demo"],
    ],
)
def test_every_command_takes_store_and_database(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "--store URL" in result.stdout and "--database URL" in result.stdout


def test_environment_variables_choose_the_registry(home: Home) -> None:
    env = {"ARTIFLOW_STORE": str(home.path / "store"), "ARTIFLOW_DATABASE": home.database}
    result = invoke("ls", MODEL, env=env)
    assert result.exit_code == 0 and "production" in result.stdout
    via_home = invoke("ls", MODEL, env={"ARTIFLOW_HOME": str(home.path)})
    assert via_home.exit_code == 0 and "production" in via_home.stdout


def test_a_broken_database_url_is_a_one_line_error() -> None:
    result = invoke("ls", "--database", "notadb://x")
    assert "database" in one_line_error(result).lower()


# ---------------------------------------------------------------------- the installed script
def _script() -> str:
    found = shutil.which("artiflow", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("the artiflow console script is not installed next to this Python")
    return found


def test_installed_script(home: Home) -> None:
    script = _script()
    env = {**os.environ, **home.env}
    version = subprocess.run(
        [script, "--version"], capture_output=True, text=True, env=env, timeout=60
    )
    assert version.returncode == 0 and af.__version__ in version.stdout
    graph = subprocess.run(
        [script, "lineage", f"{MODEL}:production", "--upstream", "--format", "json", *home.args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert graph.returncode == 0, graph.stderr
    assert json.loads(graph.stdout)["nodes"][0]["label"] == f"{MODEL}:v1"
    missing = subprocess.run(
        [script, "show", "nope:v0", *home.args], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: no artifact named 'nope'"
    usage = subprocess.run([script, "lineage"], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
