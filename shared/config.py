"""Where artiflow keeps things by default, read from the environment at call time."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["artifact_dir", "artiflow_home"]


def artiflow_home() -> Path:
    """``$ARTIFLOW_HOME``, default ``~/.artiflow``: the embedded registry lives here."""
    return Path(os.environ.get("ARTIFLOW_HOME") or Path.home() / ".artiflow").expanduser()


def artifact_dir() -> Path:
    """Where ``download()`` materialises versions by default: ``$ARTIFLOW_ARTIFACT_DIR``, else
    ``$ARTIFLOW_HOME/artifacts`` (not the working directory, which is arbitrary on workers)."""
    env = os.environ.get("ARTIFLOW_ARTIFACT_DIR")
    return Path(env).expanduser() if env else artiflow_home() / "artifacts"
