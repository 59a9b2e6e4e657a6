"""A private scratch folder for files an artifact writes itself (``new_file``, tables).

Created on first use and removed when its owner is garbage-collected; the files in it are
hashed in place like any other added file, so they must live as long as the artifact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from .errors import InvalidArgument

__all__ = ["Scratch"]


class Scratch:
    """Temporary files for one owner object."""

    def __init__(self, owner: object) -> None:
        self._owner = weakref.ref(owner)
        self._folder: str | None = None

    def _path(self) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="artiflow-new-")
            owner = self._owner()
            if owner is not None:
                weakref.finalize(owner, shutil.rmtree, self._folder, True)
        fd, path = tempfile.mkstemp(dir=self._folder)
        os.close(fd)
        return path

    def write(self, data: bytes) -> str:
        """A new file holding ``data``; returns its path."""
        path = self._path()
        with open(path, "wb") as fh:
            fh.write(data)
        return path

    @contextmanager
    def open(self, mode: str, encoding: str | None = None) -> Iterator[tuple[IO[Any], str]]:
        """A new file open for writing (``w`` or ``wb``), and its path."""
        if mode not in ("w", "wb", "x", "xb"):
            raise InvalidArgument(f"new_file mode must be 'w' or 'wb', got {mode!r}")
        path = self._path()
        binary = "b" in mode
        with open(path, "wb" if binary else "w", encoding=None if binary else encoding) as fh:
            yield fh, path
