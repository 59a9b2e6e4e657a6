"""The metadata database: its schema and migrations, and every SQL statement artiflow runs."""

from __future__ import annotations

from .commits import VersionSpec
from .distributed import Part
from .engine import create_engine, upgrade_database, utcnow, with_credentials
from .metastore import MetaStore

__all__ = [
    "MetaStore",
    "Part",
    "VersionSpec",
    "create_engine",
    "upgrade_database",
    "utcnow",
    "with_credentials",
]
