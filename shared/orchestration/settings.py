"""Registry settings as an orchestrator stores them, and the registry they open.

An Airflow connection and a Prefect block both hold the same three things: the blob store URL,
the database URL (its credentials kept apart) and fsspec options. Each integration turns its
own form into :class:`RegistrySettings`; everything after that is here: merging credentials into
the database URL, describing the settings without secrets, and the process-wide registry they
name (:meth:`artiflow.Registry.shared`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypedDict

from ..config import redact_database_url, redact_url
from ..db import with_credentials
from ..errors import InvalidArgument
from ..registry import Registry

__all__ = [
    "RegistrySettings",
    "describe",
    "make_settings",
    "shared_registry",
    "storage_options_from",
    "with_credentials",
]

log = logging.getLogger(__name__)


class RegistrySettings(TypedDict):
    """Keyword arguments of :class:`artiflow.Registry`; ``None`` falls back to the environment
    (``$ARTIFLOW_STORE``, ``$ARTIFLOW_DATABASE``, ``$ARTIFLOW_STORAGE_OPTIONS``, then
    ``$ARTIFLOW_HOME``)."""

    store: str | None
    database: str | None
    storage_options: dict[str, Any] | None


def storage_options_from(value: object, where: str) -> dict[str, Any] | None:
    """fsspec options given as a mapping or a JSON object string; ``None`` when empty."""
    if not value:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise InvalidArgument(f"{where}: storage_options must be a JSON object") from err
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"{where}: storage_options must be a JSON object")
    return dict(value)


def make_settings(
    store: str | None = None,
    database: str | None = None,
    storage_options: object = None,
    *,
    login: str | None = None,
    password: str | None = None,
    where: str = "registry settings",
) -> RegistrySettings:
    """Settings from an orchestrator's fields: empty values are ``None``, credentials go into
    the database URL, ``storage_options`` may be JSON text (``where`` names the source in
    errors)."""
    if database and (login or password):
        database = with_credentials(database, login, password)
    return RegistrySettings(
        store=store or None,
        database=database or None,
        storage_options=storage_options_from(storage_options, where),
    )


def describe(settings: RegistrySettings) -> str:
    """The settings without secrets, for logs: URLs redacted, option names only."""
    store, database = settings["store"], settings["database"]
    return (
        f"store={redact_url(store) if store else '<default>'} "
        f"database={redact_database_url(database) if database else '<default>'} "
        f"storage options={sorted(settings['storage_options'] or {})}"
    )


def shared_registry(settings: RegistrySettings | None = None, **options: Any) -> Registry:
    """The process-wide registry for ``settings`` (the environment's when ``None``).

    ``options`` go to :class:`artiflow.Registry` too (``openlineage=False`` inside Airflow,
    whose own provider reports lineage).
    """
    chosen = settings or RegistrySettings(store=None, database=None, storage_options=None)
    return Registry.shared(
        chosen["store"], chosen["database"], chosen["storage_options"], **options
    )
