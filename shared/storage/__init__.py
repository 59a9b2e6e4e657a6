"""Where bytes live: the content-addressed blob store and the local download cache."""

from __future__ import annotations

from .blobstore import BlobStore, open_store
from .cache import BlobCache, CacheRow

__all__ = ["BlobCache", "BlobStore", "CacheRow", "open_store"]
