"""Settings read from the environment at call time, and the one list of what is read.

Every default artiflow takes from the environment is here, so that a process-wide cache of
registries (:mod:`artiflow.orchestration.shared`) can key on exactly what a registry depends on.
"""

from __future__ import annotations

import json
import math
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ArtiflowError, InvalidArgument, InvalidMetadata

__all__ = [
    "DEFAULT_CACHE_MAX_BYTES",
    "DEFAULT_HEARTBEAT_SECONDS",
    "ENVIRONMENT",
    "artifact_dir",
    "artiflow_home",
    "cache_dir",
    "cache_max_bytes",
    "check_reference_options",
    "database_url",
    "environment",
    "hash_cache_path",
    "heartbeat_seconds",
    "options_by_protocol",
    "options_for",
    "protocol_of",
    "redact_database_url",
    "redact_url",
    "reference_options",
    "storage_options",
    "store_url",
]

ENVIRONMENT = (
    "ARTIFLOW_HOME",
    "ARTIFLOW_STORE",
    "ARTIFLOW_DATABASE",
    "ARTIFLOW_STORAGE_OPTIONS",
    "ARTIFLOW_REFERENCE_OPTIONS",
    "ARTIFLOW_CACHE_DIR",
    "ARTIFLOW_CACHE_MAX_BYTES",
    "ARTIFLOW_HASH_CACHE",
    "ARTIFLOW_ARTIFACT_DIR",
    "ARTIFLOW_HEARTBEAT_SECONDS",
)
"""Every environment variable that changes what a :class:`~artiflow.Registry` does."""

DEFAULT_CACHE_MAX_BYTES = 20 * 1024**3
DEFAULT_HEARTBEAT_SECONDS = 30.0


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


# other spellings of one protocol: reference options are keyed by the first
_PROTOCOL_ALIASES = {"s3a": "s3", "gcs": "gs", "local": "file"}


def protocol_of(url: str) -> str:
    """The protocol reference options are keyed by: ``s3`` for ``s3://b/k`` (and ``s3a://``),
    ``gs`` for ``gs://`` (and ``gcs://``), ``file`` for a local path; the last link of a
    chained URL (``simplecache::s3://b/k`` → ``s3``)."""
    last = url.rsplit("::", 1)[-1]
    protocol = last.split("://", 1)[0].lower() if "://" in last else "file"
    return _PROTOCOL_ALIASES.get(protocol, protocol)


def check_reference_options(
    value: object, where: str = "reference_options", error: type[ArtiflowError] = InvalidArgument
) -> dict[str, dict[str, Any]]:
    """``value`` as fsspec options by protocol (``{"s3": {"endpoint_url": ...}, "gs": {...}}``,
    or its JSON text), protocols normalised (:func:`protocol_of`); ``{}`` when empty.

    Raises ``error`` (naming ``where``) unless it is an object of objects.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except json.JSONDecodeError as err:
            raise error(f"{where} is not JSON: {err}") from err
    if not value:
        return {}
    shape = f'{where} must map protocols to fsspec options, e.g. {{"s3": {{"anon": true}}}}'
    if not isinstance(value, Mapping):
        raise error(shape)
    checked: dict[str, dict[str, Any]] = {}
    for protocol, options in value.items():
        if not isinstance(protocol, str) or not protocol or not isinstance(options, Mapping):
            raise error(f"{shape}; got {protocol!r}: {type(options).__name__}")
        checked[protocol_of(f"{protocol.removesuffix('://')}://")] = dict(options)
    return checked


def reference_options() -> dict[str, dict[str, Any]]:
    """``$ARTIFLOW_REFERENCE_OPTIONS``: a JSON object of fsspec options by protocol for the
    references artifacts add and download (``{"s3": {...}, "gs": {...}}``), else ``{}``."""
    raw = os.environ.get("ARTIFLOW_REFERENCE_OPTIONS")
    return check_reference_options(raw, "ARTIFLOW_REFERENCE_OPTIONS", InvalidMetadata)


def options_by_protocol(
    store: str | None = None,
    store_options: Mapping[str, Any] | None = None,
    configured: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The fsspec options references are added and downloaded with, by protocol: the store's
    own options for the store's protocol, then ``configured`` per protocol (which wins).

    Arguments left ``None`` come from the environment (:func:`store_url`,
    :func:`storage_options`, :func:`reference_options`): what ``Registry()`` would use.
    """
    own = dict(store_options if store_options is not None else storage_options())
    mapping = {protocol_of(store if store is not None else store_url()): own} if own else {}
    mapping.update(
        reference_options() if configured is None else check_reference_options(configured)
    )
    return mapping


def options_for(
    uri: str, by_protocol: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The options of ``by_protocol`` (:func:`options_by_protocol`; ``None``: the environment's)
    for ``uri``'s protocol, or ``None`` (fsspec's defaults: its config and the environment)."""
    found = (options_by_protocol() if by_protocol is None else by_protocol).get(protocol_of(uri))
    return None if found is None else dict(found)


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


def heartbeat_seconds() -> float:
    """How often an open run renews its lease: ``$ARTIFLOW_HEARTBEAT_SECONDS``, else 30.

    A running run whose lease was not renewed for three intervals reads as ``lost``.
    """
    value = os.environ.get("ARTIFLOW_HEARTBEAT_SECONDS")
    if not value:
        return DEFAULT_HEARTBEAT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidMetadata(
            f"ARTIFLOW_HEARTBEAT_SECONDS must be a positive number of seconds, got {value!r}"
        )
    return seconds


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
