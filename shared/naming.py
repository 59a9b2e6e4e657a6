"""Rules for names, types, aliases, metadata and entry paths (W&B's rules, enforced up front),
the one grammar of references (``name``, ``name:alias``, ``name:v3``), the one
``artiflow://<name>`` URI that stands for an artifact in Airflow and Prefect assets, and the
checks that make any text or run identity storable alike on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from .errors import (
    ArtifactNotFound,
    ArtiflowError,
    InvalidArgument,
    InvalidMetadata,
    InvalidName,
    InvalidPath,
)

__all__ = [
    "MAX_INTEGER",
    "MAX_METADATA_KEYS",
    "MAX_NAME_LENGTH",
    "MAX_VERSION_INDEX",
    "URI_SCHEME",
    "artifact_uri",
    "check_alias",
    "check_description",
    "check_json",
    "check_metadata",
    "check_name",
    "check_run_identity",
    "check_text",
    "check_type",
    "entry_path",
    "name_from_uri",
    "parse_ref",
    "ref_name",
    "version_index",
]

MAX_NAME_LENGTH = 128
MAX_METADATA_KEYS = 100
MAX_INTEGER = 2**31 - 1
"""The largest integer column value both databases store (PostgreSQL ``integer``)."""
MAX_VERSION_INDEX = MAX_INTEGER
"""The largest version number: ``name:v2147483648`` names no version on any database."""
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_RESERVED_ALIAS_RE = re.compile(r"v[0-9]+|latest")
_VERSION_RE = re.compile(r"v(0|[1-9][0-9]*)")  # v0, v1, v12; never v01
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")  # what a name that is not UTF-8 decodes to
URI_SCHEME = "artiflow"
"""The scheme of :func:`artifact_uri`: ``artiflow://<name>`` names an artifact (all versions)."""
# Paths that certainly pass every check in entry_path (the common case, matched in one go):
# relative, no drive letter, no empty, "." or ".." segment, no backslash or control character.
_FAST_OK = re.compile(
    r"(?!/)(?![A-Za-z]:)(?:(?!\.\.?(?:/|$))[^/\\\x00-\x1f\x7f\ud800-\udfff]+/)*"
    r"(?!\.\.?/?$)[^/\\\x00-\x1f\x7f\ud800-\udfff]+/?"
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
    copy: dict[str, Any] = check_json(dict(metadata), "metadata", InvalidMetadata)
    return copy


def check_json(value: object, what: str, error: type[ArtiflowError] = InvalidArgument) -> Any:
    """A deep copy of ``value`` through JSON (what both databases store alike), or ``error``
    for anything JSON cannot hold: NaN, infinity, objects of other types."""
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except ValueError as err:
        raise error(f"{what} must not contain NaN or infinity (JSON has neither): {err}") from err
    except TypeError as err:
        raise error(f"{what} must be JSON-serialisable: {err}") from err
    return json.loads(text, parse_constant=_reject_constant)


def check_text(value: str, what: str, max_length: int | None = None) -> str:
    """Return ``value`` if both databases store it unchanged: no NUL (PostgreSQL text cannot
    hold it), no lone surrogate (a name decoded from bytes that are not UTF-8), and at most
    ``max_length`` characters; else raise :class:`InvalidArgument` (the value is not echoed
    when it is too long)."""
    if max_length is not None and len(value) > max_length:
        raise InvalidArgument(
            f"{what} is {len(value)} characters long; at most {max_length} are stored"
        )
    if "\x00" in value:
        raise InvalidArgument(f"{what} ({value!r}) contains NUL, which databases cannot store")
    if not value.isascii() and _SURROGATE_RE.search(value):
        raise InvalidArgument(f"{what} ({value!r}) is not valid UTF-8 text")
    return value


def check_description(description: object) -> str | None:
    """Return a storable description (a string, or None), else raise :class:`InvalidArgument`."""
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidArgument(
            f"description must be a string or None, got {type(description).__name__}"
        )
    return check_text(description, "description")


def _identity_int(key: str, value: object) -> int:
    """``map_index`` or ``attempt``: an int (or its decimal text) that fits an integer column."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,10}", value.strip()):
        number = int(value)
    if number is None or not -MAX_INTEGER - 1 <= number <= MAX_INTEGER:
        raise InvalidArgument(
            f"run identity {key!r} must be an integer between {-MAX_INTEGER - 1} and "
            f"{MAX_INTEGER}, got {value!r}"
        )
    return number


def _identity_text(key: str, value: object, max_length: int | None) -> str:
    if isinstance(value, int | uuid.UUID) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidArgument(
            f"run identity {key!r} must be a string, got {type(value).__name__} {value!r}"
        )
    return check_text(value, f"run identity {key!r}", max_length)


def check_run_identity(
    identity: Mapping[str, Any],
    text_columns: Mapping[str, int | None],
    int_columns: Collection[str],
) -> dict[str, Any]:
    """A run's identity as both databases store it, checked before anything is written.

    ``text_columns`` maps the keys stored in a text column to its length (strings; ints and
    UUIDs become strings), ``int_columns`` names the integer ones; every other key is kept as
    extra, which must be JSON-safe. ``None`` stays ``None``. Raises :class:`InvalidArgument`.
    """
    out: dict[str, Any] = {}
    for key, value in identity.items():
        if not isinstance(key, str):
            raise InvalidArgument(f"run identity keys must be strings, got {key!r}")
        if value is None:
            out[key] = None
        elif key in int_columns:
            out[key] = _identity_int(key, value)
        elif key in text_columns:
            out[key] = _identity_text(key, value, text_columns[key])
        else:
            out[key] = check_json(value, f"run identity {key!r}")
    return out


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
    if _SURROGATE_RE.search(path):
        raise InvalidPath(
            f"entry path {path!r} is not valid UTF-8 text (a file name in another encoding?); "
            "rename the file, or give the entry a name"
        )
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
    if tag != "latest" and not _VERSION_RE.fullmatch(tag):
        if _RESERVED_ALIAS_RE.fullmatch(tag):
            raise InvalidName(
                f"artifact reference {ref!r}: a version number has no leading zeros "
                f"(write v{tag[1:].lstrip('0') or '0'})"
            )
        check_alias(tag)
    return name, tag


def version_index(tag: str) -> int | None:
    """``3`` for the tag ``v3``; ``None`` for an alias. A number past
    :data:`MAX_VERSION_INDEX` names no version: :class:`ArtifactNotFound`."""
    match = _VERSION_RE.fullmatch(tag)
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) > len(str(MAX_VERSION_INDEX)) or int(digits) > MAX_VERSION_INDEX:
        raise ArtifactNotFound(
            f"there is no version {tag[:24]!r}: version numbers stop at v{MAX_VERSION_INDEX}"
        )
    return int(digits)


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
