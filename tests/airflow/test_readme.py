"""The README's Airflow snippet (tests/airflow/dags/readme_quickstart.py, verbatim) as a newcomer
runs it: ``airflow dags test`` in a shell, then ``artiflow lineage``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def _run(*command: str) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=os.environ.copy()
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.usefixtures("dagbag")
def test_the_readme_quickstart_runs_and_shows_lineage(registry: object) -> None:
    _run(str(BIN / "airflow"), "dags", "test", "artiflow_quickstart")
    lineage = _run(str(BIN / "artiflow"), "lineage", "total:latest")
    assert "total:v0" in lineage
    assert "numbers:v0" in lineage
    assert "artiflow_quickstart/summarise" in lineage
    assert "artiflow_quickstart/produce" in lineage
    shown = _run(str(BIN / "artiflow"), "show", "total:v0")
    assert "artiflow_quickstart" in shown
