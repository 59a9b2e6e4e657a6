"""Settings read from the environment at call time, and the one list of what is read.

Every default artiflow takes from the environment is here, so that a process-wide cache of
registries (:mod:`artiflow.orchestration.shared`) can key on exactly what a registry depends on.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from .errors import InvalidMetadata

__all__ = [
    "DEFAULT_CACHE_MAX_BYTES",
    "ENVIRONMENT",
    "artifact_dir",
    "artiflow_home",
    "cache_dir",
    "cache_max_bytes",
    "database_url",
    "environment",
    "hash_cache_path",
    "redact_database_url",
    "redact_url",
    "storage_options",
    "store_url",
]

ENVIRONMENT = (
    "ARTIFLOW_HOME",
    "ARTIFLOW_STORE",
    "ARTIFLOW_DATABASE",
    "ARTIFLOW_STORAGE_OPTIONS",
    "ARTIFLOW_CACHE_DIR",
    "ARTIFLOW_CACHE_MAX_BYTES",
    "ARTIFLOW_HASH_CACHE",
    "ARTIFLOW_ARTIFACT_DIR",
)
"""Every environment variable that changes what a :class:`~artiflow.Registry` does."""

DEFAULT_CACHE_MAX_BYTES = 20 * 1024**3


def environment() -> dict[str, str | None]:
    """The current value of every variable in :data:`ENVIRONMENT` (``None`` when unset)."""
    return {name: os.environ.get(name) for name in ENVIRONMENT}


def artiflow_home() -> Path:
    """``$ARTIFLOW_HOME``, default ``~/.artiflow``: the embedded registry lives here."""
    return Path(os.environ.get("ARTIFLOW_HOME") or Path.home() / ".artiflow").expanduser()


def store_url() -> str:
    """``$ARTIFLOW_STORE``, else ``$ARTIFLOW_HOME/store``."""
    return os.environ.get("ARTIFLOW_STORE") or str(artiflow_home() / "store")


def database_url() -> str:
    """``$ARTIFLOW_DATABASE``, else SQLite at ``$ARTIFLOW_HOME/registry.db``."""
    return os.environ.get("ARTIFLOW_DATABASE") or f"sqlite:///{artiflow_home() / 'registry.db'}"


def storage_options() -> dict[str, Any]:
    """``$ARTIFLOW_STORAGE_OPTIONS`` (a JSON object of fsspec options), else ``{}``."""
    raw = os.environ.get("ARTIFLOW_STORAGE_OPTIONS")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InvalidMetadata(f"ARTIFLOW_STORAGE_OPTIONS is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise InvalidMetadata("ARTIFLOW_STORAGE_OPTIONS must be a JSON object")
    return value


def artifact_dir() -> Path:
    """Where ``download()`` materialises versions by default: ``$ARTIFLOW_ARTIFACT_DIR``, else
    ``$ARTIFLOW_HOME/artifacts`` (not the working directory, which is arbitrary on workers)."""
    env = os.environ.get("ARTIFLOW_ARTIFACT_DIR")
    return Path(env).expanduser() if env else artiflow_home() / "artifacts"


def _user_cache_dir() -> str:
    import platformdirs

    return platformdirs.user_cache_dir("artiflow")


def cache_dir() -> str:
    """The download cache: ``$ARTIFLOW_CACHE_DIR``, else ``blobs`` in the user cache folder."""
    return os.environ.get("ARTIFLOW_CACHE_DIR") or os.path.join(_user_cache_dir(), "blobs")


def cache_max_bytes() -> int:
    """The download cache's bound: ``$ARTIFLOW_CACHE_MAX_BYTES``, else 20 GiB."""
    value = os.environ.get("ARTIFLOW_CACHE_MAX_BYTES")
    if not value:
        return DEFAULT_CACHE_MAX_BYTES
    try:
        return int(value)
    except ValueError as err:
        raise InvalidMetadata(
            f"ARTIFLOW_CACHE_MAX_BYTES must be a number of bytes, got {value!r}"
        ) from err


def hash_cache_path() -> str:
    """The hash cache: ``$ARTIFLOW_HASH_CACHE``, else ``hashes.db`` in the user cache folder."""
    return os.environ.get("ARTIFLOW_HASH_CACHE") or os.path.join(_user_cache_dir(), "hashes.db")


def redact_url(url: str) -> str:
    """``url`` without credentials (``scheme://user:secret@host/x`` → ``scheme://host/x``) and
    without a query string, safe to log or to publish as a lineage namespace."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_database_url(url: str) -> str:
    """A SQLAlchemy URL with its password masked (``***``), safe to log."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
