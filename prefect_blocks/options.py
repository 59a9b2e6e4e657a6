"""Storage options as a registry block keeps them: credentials apart from everything else.

A block shows its plain fields in its repr, its REST document and ``prefect block inspect``;
only its secret fields (``SecretDict``) are encrypted and masked. fsspec options mix both kinds
(``endpoint_url`` beside ``key`` and ``secret``), so :func:`split_secrets` takes every
credential-like option (:func:`is_secret_option`, at any depth: ``client_kwargs`` included) out
of the plain ones, for the block to keep in its secret field; :func:`merge_options` puts them
back together, deeply, when the registry is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["SECRET_WORDS", "is_secret_option", "merge_options", "option_paths", "split_secrets"]

SECRET_WORDS = (
    "auth",
    "bearer",
    "connection_string",
    "cookie",
    "credential",
    "key",
    "passphrase",
    "passw",
    "private",
    "pwd",
    "sas",
    "secret",
    "signature",
    "token",
)
"""An option whose name contains one of these (any case) is treated as a credential. Erring
on the side of secrecy only hides a value; the other way round it is printed."""


def is_secret_option(name: object) -> bool:
    """Whether an fsspec option of this name may hold a credential (``key``, ``secret``,
    ``token``, ``aws_secret_access_key``, ``account_key``, ``Authorization``, ...)."""
    lowered = str(name).lower()
    return any(word in lowered for word in SECRET_WORDS)


def split_secrets(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split fsspec options into ``(plain, secret)``.

    A credential-like option goes to ``secret`` whole (a dict value included); a plain option
    whose value is a dict (``client_kwargs``, ``headers``) is split in turn, its credentials
    landing under the same key in ``secret``. ``merge_options(plain, secret)`` gives the
    options back.
    """
    plain: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for name, value in options.items():
        if is_secret_option(name):
            secret[name] = value
        elif isinstance(value, Mapping):
            plain[name], inner = split_secrets(value)
            if inner:
                secret[name] = inner
        else:
            plain[name] = value
    return plain, secret


def merge_options(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """Merge option dicts, later sources winning; dicts found under the same key on both sides
    are merged the same way, at any depth (so ``client_kwargs`` from several sources combine)."""
    merged: dict[str, Any] = {}
    for source in sources:
        for key, value in source.items():
            current = merged.get(key)
            if isinstance(value, Mapping) and isinstance(current, Mapping):
                merged[key] = merge_options(current, value)
            else:
                merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def option_paths(options: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted names of the leaves of ``options`` (``client_kwargs.aws_secret_access_key``),
    sorted: what a log line may say about secret options without their values."""
    paths: list[str] = []
    for key, value in options.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not is_secret_option(key):
            paths.extend(option_paths(value, f"{path}."))
        else:
            paths.append(path)
    return sorted(paths)
