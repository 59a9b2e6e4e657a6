"""One shared :class:`artiflow.Registry` per configuration and process, and block loading.

A registry holds a database engine and upload thread pools, so tasks share one per distinct
configuration (the block's settings and the ``ARTIFLOW_*`` environment) rather than building one
per call. ``artiflow.Registry`` is thread-safe, which makes the cache safe under Prefect's
thread-pool task runner; each process of a process-pool runner builds its own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import threading
from typing import TYPE_CHECKING, cast

from prefect.blocks.core import Block

from .blocks import ArtifactRegistry, _registry_env

if TYPE_CHECKING:
    import artiflow

__all__ = [
    "aload_registry_block",
    "close_shared_registries",
    "load_registry_block",
    "shared_registry",
]

logger = logging.getLogger(__name__)

# Block types defined in modules that need an extra; imported when a name refers to them.
_LAZY_BLOCK_MODULES = {
    "artiflow-s3-registry": "artiflow.prefect.aws",
    "artiflow-gcs-registry": "artiflow.prefect.gcp",
}

_lock = threading.Lock()
_registries: dict[str, artiflow.Registry] = {}


def _split_block_name(name: str) -> tuple[type[Block], str]:
    if "/" not in name:
        return ArtifactRegistry, name
    slug, _, _document = name.partition("/")
    if module := _LAZY_BLOCK_MODULES.get(slug):
        importlib.import_module(module)
    return Block, name


def _checked(block: Block, name: str) -> ArtifactRegistry:
    if not isinstance(block, ArtifactRegistry):
        raise TypeError(f"block {name!r} is a {type(block).__name__}, not an ArtifactRegistry")
    return block


def load_registry_block(name: str) -> ArtifactRegistry:
    """Load a saved registry block by name, synchronously even inside async code.

    Args:
        name: ``"my-registry"`` for an ``ArtifactRegistry`` document, or
            ``"<block-type-slug>/<name>"`` for any registry block type (the S3 and GCS
            subclasses included).

    Returns:
        The loaded block.
    """
    cls, ref = _split_block_name(name)
    block = cast(Block, cls.load(ref, _sync=True))  # type: ignore[call-arg]
    return _checked(block, name)


async def aload_registry_block(name: str) -> ArtifactRegistry:
    """Load a saved registry block by name; the async twin of :func:`load_registry_block`.

    Args:
        name: As for :func:`load_registry_block`.

    Returns:
        The loaded block.
    """
    cls, ref = _split_block_name(name)
    return _checked(await cls.aload(ref), name)


def _default_key() -> str:
    text = json.dumps({"default": _registry_env()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def shared_registry(
    source: ArtifactRegistry | artiflow.Registry | None = None,
) -> artiflow.Registry:
    """Return the process-wide registry for a block (or artiflow's defaults when ``None``).

    Args:
        source: A registry block, an existing ``artiflow.Registry`` (returned as is), or
            ``None`` for ``artiflow.Registry()`` built from the environment.

    Returns:
        A registry shared by every task in this process with the same configuration.
    """
    import artiflow

    if isinstance(source, artiflow.Registry):
        return source
    key = _default_key() if source is None else source.cache_key()
    with _lock:
        registry = _registries.get(key)
        if registry is None:
            registry = artiflow.Registry() if source is None else source.registry()
            _registries[key] = registry
            logger.debug("built %r", registry)
        return registry


def close_shared_registries() -> None:
    """Close and forget every shared registry of this process.

    For long-lived processes that rotate credentials, and for test suites that point
    ``$ARTIFLOW_HOME`` somewhere new for each test. Call it only when no task is running.
    """
    with _lock:
        registries = list(_registries.values())
        _registries.clear()
    for registry in registries:
        registry.close()
