"""Loading saved registry blocks, and the process-wide registry a block names.

A registry holds a database engine and upload thread pools, so tasks share one per distinct
configuration and process: :func:`shared_registry` is the core's
:func:`artiflow.orchestration.shared_registry` (keyed on the block's settings and the
``ARTIFLOW_*`` environment) for a block. ``artiflow.Registry`` is thread-safe, which makes that
safe under Prefect's thread-pool task runner; each process of a process-pool runner builds its own.
"""

from __future__ import annotations

import importlib
from typing import TypeAlias, cast

from prefect.blocks.core import Block

from artiflow import Registry, orchestration
from artiflow.errors import InvalidArgument

from .blocks import ArtifactRegistry

__all__ = [
    "RegistrySource",
    "aload_registry_block",
    "close_shared_registries",
    "load_registry_block",
    "load_source",
    "shared_registry",
]

RegistrySource: TypeAlias = ArtifactRegistry | str | Registry | None
"""What a task takes as its registry: a block, a saved block's name, a registry, or ``None``."""

# Block types defined in modules that need an extra; imported when a name refers to them.
_LAZY_BLOCK_MODULES = {
    "artiflow-s3-registry": "artiflow.prefect.aws",
    "artiflow-gcs-registry": "artiflow.prefect.gcp",
}


def _split_block_name(name: str) -> tuple[type[Block], str]:
    if "/" not in name:
        return ArtifactRegistry, name
    slug, _, _document = name.partition("/")
    if module := _LAZY_BLOCK_MODULES.get(slug):
        importlib.import_module(module)
    return Block, name


def _checked(block: Block, name: str) -> ArtifactRegistry:
    if not isinstance(block, ArtifactRegistry):
        raise InvalidArgument(
            f"block {name!r} is a {type(block).__name__}, not an ArtifactRegistry"
        )
    return block


def load_registry_block(name: str) -> ArtifactRegistry:
    """Load a saved registry block by name, synchronously even inside async code.

    Args:
        name: ``"my-registry"`` for an ``ArtifactRegistry`` document, or
            ``"<block-type-slug>/<name>"`` for any registry block type (the S3 and GCS
            subclasses included).

    Returns:
        The loaded block.

    Raises:
        artiflow.errors.InvalidArgument: The saved block is not a registry block (also a
            ``TypeError``).
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


def load_source(source: RegistrySource) -> ArtifactRegistry | Registry | None:
    """``source`` with a saved block's name replaced by the loaded block (blocking I/O).

    Args:
        source: A registry block, a saved block's name, an ``artiflow.Registry`` or ``None``.

    Returns:
        What :func:`shared_registry` takes.
    """
    return load_registry_block(source) if isinstance(source, str) else source


def shared_registry(source: ArtifactRegistry | Registry | None = None) -> Registry:
    """Return the process-wide registry for a block (or artiflow's defaults when ``None``).

    Args:
        source: A registry block, an existing ``artiflow.Registry`` (returned as is), or
            ``None`` for the registry artiflow's environment describes.

    Returns:
        A registry shared by every task in this process with the same configuration.
    """
    if isinstance(source, Registry):
        return source
    return orchestration.shared_registry(None if source is None else source.registry_settings())


def close_shared_registries() -> None:
    """Close and forget every shared registry of this process.

    For long-lived processes that rotate credentials, and for test suites that point
    ``$ARTIFLOW_HOME`` somewhere new for each test. Call it only when no task is running.
    """
    Registry.close_shared()
