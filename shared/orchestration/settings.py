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
from typing import Any, NotRequired, TypedDict

from ..config import check_reference_options, redact_database_url, redact_url
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
    ``$ARTIFLOW_HOME``; ``$ARTIFLOW_REFERENCE_OPTIONS`` when ``reference_options`` is absent).
    ``reference_options``: fsspec options by protocol for the references its artifacts add and
    download (``{"s3": {...}, "gs": {...}}``), present only when configured."""

    store: str | None
    database: str | None
    storage_options: dict[str, Any] | None
    reference_options: NotRequired[dict[str, dict[str, Any]]]


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
    reference_options: object = None,
    where: str = "registry settings",
) -> RegistrySettings:
    """Settings from an orchestrator's fields: empty values are ``None``, credentials go into
    the database URL, ``storage_options`` and ``reference_options`` (options by protocol) may
    be JSON text (``where`` names the source in errors)."""
    if database and (login or password):
        database = with_credentials(database, login, password)
    settings = RegistrySettings(
        store=store or None,
        database=database or None,
        storage_options=storage_options_from(storage_options, where),
    )
    by_protocol = check_reference_options(reference_options, f"{where}: reference_options")
    if by_protocol:
        settings["reference_options"] = by_protocol
    return settings


def describe(settings: RegistrySettings) -> str:
    """The settings without secrets, for logs: URLs redacted, option names only."""
    store, database = settings["store"], settings["database"]
    refs = settings.get("reference_options")
    return (
        f"store={redact_url(store) if store else '<default>'} "
        f"database={redact_database_url(database) if database else '<default>'} "
        f"storage options={sorted(settings['storage_options'] or {})}"
        + (f" reference options for {sorted(refs)}" if refs else "")
    )


def shared_registry(settings: RegistrySettings | None = None, **options: Any) -> Registry:
    """The process-wide registry for ``settings`` (the environment's when ``None``).

    ``options`` go to :class:`artiflow.Registry` too (``openlineage=False`` inside Airflow,
    whose own provider reports lineage).
    """
    chosen = settings or RegistrySettings(store=None, database=None, storage_options=None)
    if "reference_options" in chosen:
        options["reference_options"] = chosen["reference_options"]
    return Registry.shared(
        chosen["store"], chosen["database"], chosen["storage_options"], **options
    )
