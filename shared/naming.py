"""Rules for names, types, aliases, metadata and entry paths (W&B's rules, enforced up front),
the one grammar of references (``name``, ``name:alias``, ``name:v3``) and the one
``artiflow://<name>`` URI that stands for an artifact in Airflow and Prefect assets."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .errors import InvalidMetadata, InvalidName, InvalidPath

__all__ = [
    "MAX_METADATA_KEYS",
    "MAX_NAME_LENGTH",
    "URI_SCHEME",
    "artifact_uri",
    "check_alias",
    "check_metadata",
    "check_name",
    "check_type",
    "entry_path",
    "name_from_uri",
    "parse_ref",
    "ref_name",
    "version_index",
]

MAX_NAME_LENGTH = 128
MAX_METADATA_KEYS = 100
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_RESERVED_ALIAS_RE = re.compile(r"v\d+|latest")
_VERSION_RE = re.compile(r"v(\d+)")
URI_SCHEME = "artiflow"
"""The scheme of :func:`artifact_uri`: ``artiflow://<name>`` names an artifact (all versions)."""
# Paths that certainly pass every check in entry_path (the common case, matched in one go):
# relative, no drive letter, no empty, "." or ".." segment, no backslash or control character.
_FAST_OK = re.compile(
    r"(?!/)(?![A-Za-z]:)(?:(?!\.\.?(?:/|$))[^/\\\x00-\x1f\x7f]+/)*(?!\.\.?/?$)[^/\\\x00-\x1f\x7f]+/?"
)


def _check(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidName(f"artifact {what} must be a string, got {value!r}")
    if not 1 <= len(value) <= MAX_NAME_LENGTH or not _NAME_RE.fullmatch(value):
        raise InvalidName(
            f"invalid artifact {what} {value!r}: use 1-{MAX_NAME_LENGTH} characters "
            "from letters, digits, '.', '_' and '-'"
        )
    return value


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid artifact name, else raise :class:`InvalidName`."""
    return _check(name, "name")


def check_type(type_: object) -> str:
    """Return ``type_`` if it is a valid artifact type, else raise :class:`InvalidName`."""
    return _check(type_, "type")


def check_alias(alias: object) -> str:
    """Return a user-settable alias; ``latest`` and ``v<digits>`` are reserved."""
    text = _check(alias, "alias")
    if _RESERVED_ALIAS_RE.fullmatch(text):
        raise InvalidName(
            f"alias {text!r} is reserved: 'latest' moves automatically and 'v<N>' names a version"
        )
    return text


def _reject_constant(token: str) -> Any:
    raise InvalidMetadata(f"metadata must not contain {token}: JSON has no NaN or infinity")


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a JSON-safe deep copy of ``metadata``, or raise :class:`InvalidMetadata`."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadata(f"metadata must be a mapping, got {type(metadata).__name__}")
    if len(metadata) > MAX_METADATA_KEYS:
        raise InvalidMetadata(
            f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed"
        )
    for key in metadata:
        if not isinstance(key, str):
            raise InvalidMetadata(f"metadata keys must be strings, got {key!r}")
    try:
        text = json.dumps(dict(metadata), allow_nan=False, sort_keys=True)
    except ValueError as err:
        raise InvalidMetadata(
            f"metadata must not contain NaN or infinity (JSON has neither): {err}"
        ) from err
    except TypeError as err:
        raise InvalidMetadata(f"metadata must be JSON-serialisable: {err}") from err
    copy: dict[str, Any] = json.loads(text, parse_constant=_reject_constant)
    return copy


def entry_path(path: object) -> str:
    """Normalise and validate an entry path: relative POSIX, no traversal, no surprises.

    One trailing slash is tolerated (``images/`` is ``images``); everything that could point
    outside the artifact's root or mean two things on two systems is refused: absolute paths,
    empty, ``.`` and ``..`` segments, backslashes, NUL and other control characters, drive
    letters, and the empty path.
    """
    if type(path) is str and _FAST_OK.fullmatch(path):
        return path[:-1] if path.endswith("/") else path
    if not isinstance(path, str):
        raise InvalidPath(f"entry path must be a string, got {path!r}")
    if path == "":
        raise InvalidPath("entry path must not be empty")
    if "\\" in path:
        raise InvalidPath(f"entry path {path!r} contains a backslash; use '/' between segments")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        raise InvalidPath(f"entry path {path!r} contains NUL or another control character")
    if path.startswith("/"):
        raise InvalidPath(f"entry path {path!r} is absolute; entry paths are relative")
    if re.match(r"[A-Za-z]:", path):
        raise InvalidPath(f"entry path {path!r} starts with a drive letter")
    segments = (path[:-1] if path.endswith("/") else path).split("/")
    for seg in segments:
        if seg in ("", ".", ".."):
            raise InvalidPath(
                f"entry path {path!r} has an empty, '.' or '..' segment; "
                "entry paths must stay inside the artifact"
            )
    return "/".join(segments)


def parse_ref(ref: object) -> tuple[str, str]:
    """Split ``name``, ``name:alias`` or ``name:v3`` into ``(name, alias-or-version)``.

    A bare name means ``latest``. Raises :class:`InvalidName` for anything else.
    """
    if not isinstance(ref, str):
        raise InvalidName(f"artifact reference must be a string, got {ref!r}")
    name, sep, tag = ref.partition(":")
    check_name(name)
    if not sep:
        return name, "latest"
    if not tag:
        raise InvalidName(f"artifact reference {ref!r} has an empty alias or version after ':'")
    if not (_VERSION_RE.fullmatch(tag) or tag == "latest"):
        check_alias(tag)
    return name, tag


def version_index(tag: str) -> int | None:
    """``3`` for the tag ``v3``; ``None`` for an alias."""
    match = _VERSION_RE.fullmatch(tag)
    return int(match.group(1)) if match else None


def ref_name(ref: object) -> str | None:
    """The artifact name of a valid reference (``"cats:v3"`` → ``"cats"``), else ``None``."""
    try:
        return parse_ref(ref)[0]
    except InvalidName:
        return None


def artifact_uri(name: str) -> str:
    """``artiflow://<name>``: the asset URI of an artifact (a reference's tag is dropped: an
    asset is the artifact, its versions are materialisations)."""
    base = name.partition(":")[0] if isinstance(name, str) else name
    return f"{URI_SCHEME}://{check_name(base)}"


def name_from_uri(uri: str) -> str:
    """The artifact name of ``artiflow://<name>``; :class:`InvalidName` for any other URI."""
    scheme, sep, rest = uri.partition("://") if isinstance(uri, str) else ("", "", "")
    if not sep or scheme.lower() != URI_SCHEME:
        raise InvalidName(f"{uri!r} is not an {URI_SCHEME}:// URI")
    if not rest or rest[0] in "/?#":
        raise InvalidName(f"an {URI_SCHEME} URI needs an artifact name: {URI_SCHEME}://<name>")
    if "/" in rest.rstrip("/") or "?" in rest or "#" in rest:
        raise InvalidName(
            f"an {URI_SCHEME} URI names an artifact, not a version or a file: "
            f"use {URI_SCHEME}://<name> (the version travels in the event)"
        )
    return check_name(rest.rstrip("/"))
