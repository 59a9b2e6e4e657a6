"""Where artiflow keeps things by default, read from the environment at call time."""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

__all__ = ["artifact_dir", "artiflow_home", "redact_url"]


def artiflow_home() -> Path:
    """``$ARTIFLOW_HOME``, default ``~/.artiflow``: the embedded registry lives here."""
    return Path(os.environ.get("ARTIFLOW_HOME") or Path.home() / ".artiflow").expanduser()


def artifact_dir() -> Path:
    """Where ``download()`` materialises versions by default: ``$ARTIFLOW_ARTIFACT_DIR``, else
    ``$ARTIFLOW_HOME/artifacts`` (not the working directory, which is arbitrary on workers)."""
    env = os.environ.get("ARTIFLOW_ARTIFACT_DIR")
    return Path(env).expanduser() if env else artiflow_home() / "artifacts"


def redact_url(url: str) -> str:
    """``url`` without credentials (``scheme://user:secret@host/x`` → ``scheme://host/x``) and
    without a query string, safe to log or to publish as a lineage namespace."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
