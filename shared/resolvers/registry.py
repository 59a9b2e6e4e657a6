"""The protocol table: which resolver answers for a URI, loaded only when first needed.

In the manner of fsspec's ``known_implementations``: :data:`KNOWN_RESOLVERS` names each
built-in resolver by its class path, with the artiflow extra that installs its backend, so
``import artiflow`` imports no resolver module and no backend. Install hints live in this one
table. A protocol in neither table but known to fsspec goes through the generic resolver
(``info()``/``find()``). Adding a protocol is one call::

    register_resolver(["myproto"], MyResolver())
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import TypedDict

from ..errors import MissingDependency, UnsupportedScheme
from .base import Resolver

__all__ = [
    "KNOWN_RESOLVERS",
    "RESOLVERS",
    "import_backend",
    "install_hint",
    "register_resolver",
    "resolver_for",
]


class Known(TypedDict, total=False):
    """A row of :data:`KNOWN_RESOLVERS`."""

    cls: str  # the resolver's class, "package.module.Class"
    requires: str  # the module its backend needs
    extra: str  # the artiflow extra that installs it


_LOCAL: Known = {"cls": "artiflow.resolvers.local.LocalResolver"}
_HTTP: Known = {"cls": "artiflow.resolvers.http.HttpResolver"}
_S3: Known = {"cls": "artiflow.resolvers.cloud.S3Resolver", "requires": "s3fs", "extra": "s3"}
_GCS: Known = {"cls": "artiflow.resolvers.cloud.GCSResolver", "requires": "gcsfs", "extra": "gcs"}
_GENERIC: Known = {"cls": "artiflow.resolvers.local.FsspecResolver"}

KNOWN_RESOLVERS: dict[str, Known] = {
    "file": _LOCAL,
    "local": _LOCAL,
    "http": _HTTP,
    "https": _HTTP,
    "s3": _S3,
    "s3a": _S3,
    "gs": _GCS,
    "gcs": _GCS,
}
"""protocol → the built-in resolver for it (loaded on first use)."""

RESOLVERS: dict[str, Resolver] = {}
"""protocol → a resolver registered with :func:`register_resolver` (consulted first)."""

_loaded: dict[str, Resolver] = {}
_lock = threading.Lock()
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")


def install_hint(name: str) -> str:
    """How to install the backend of a protocol (``"s3"``) or module (``"s3fs"``)."""
    wanted = name.lower()
    for protocol, known in KNOWN_RESOLVERS.items():
        if wanted in (protocol, known.get("requires")) and "extra" in known:
            return f"pip install 'artiflow[{known['extra']}]'"
    return f"install the fsspec implementation of {name!r}"


def import_backend(module: str) -> ModuleType:
    """Import a resolver's optional backend, or raise :class:`MissingDependency` with the hint."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"{module} is needed here but is not installed; {install_hint(module)}"
        ) from err


def register_resolver(protocols: str | Iterable[str], resolver: Resolver) -> None:
    """Route URIs of these protocols (``"s3"``, ``["gs", "gcs"]``...) to ``resolver``."""
    for protocol in [protocols] if isinstance(protocols, str) else protocols:
        RESOLVERS[protocol.lower()] = resolver


def _load(known: Known) -> Resolver:
    path = known["cls"]
    with _lock:
        resolver = _loaded.get(path)
        if resolver is None:
            module, _, name = path.rpartition(".")
            resolver = _loaded[path] = getattr(importlib.import_module(module), name)()
        return resolver


def _fsspec_knows(protocol: str) -> bool:
    from fsspec.registry import known_implementations, registry

    return protocol in known_implementations or protocol in registry


def _protocol(uri: str) -> str:
    if "::" in uri.split("://", 1)[0]:  # an fsspec chain such as simplecache::s3://...
        return uri.split("::", 1)[0].lower()
    match = _SCHEME_RE.match(uri)
    return "file" if match is None else match.group(1).lower()


def resolver_for(uri: str) -> Resolver:
    """The resolver for a URI (a plain path is local); :class:`UnsupportedScheme` if none."""
    if not isinstance(uri, str) or not uri:
        raise UnsupportedScheme(f"a reference must be a non-empty path or URI, got {uri!r}")
    protocol = _protocol(uri)
    registered = RESOLVERS.get(protocol)
    if registered is not None:
        return registered
    known = KNOWN_RESOLVERS.get(protocol)
    if known is not None:
        return _load(known)
    if _fsspec_knows(protocol):
        return _load(_GENERIC)
    raise UnsupportedScheme(
        f"no resolver for {protocol!r} in {uri!r}: artiflow knows "
        f"{', '.join(sorted({*KNOWN_RESOLVERS, *RESOLVERS}))} and every protocol fsspec knows"
    )
