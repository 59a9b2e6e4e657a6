"""Tabular objects an artifact can hold: ``Table`` and ``PartitionedTable``."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import EntryNotFound, InvalidArgument, InvalidMetadata
from .naming import entry_path

__all__ = [
    "PARTITIONED_SUFFIX",
    "TABLE_SUFFIX",
    "PartitionedTable",
    "Table",
    "load_table",
    "table_file",
]

TABLE_SUFFIX = ".table.json"
PARTITIONED_SUFFIX = ".partitioned-table.json"


@dataclass
class Table:
    """Rows under named columns, stored in an artifact as ``<name>.table.json``.

    The stored form is ``{"columns": [...], "data": [[...], ...]}``; every row has one value per
    column and every value is JSON (no NaN or infinity).
    """

    columns: list[str]
    data: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.columns = list(self.columns)
        self.data = [list(row) for row in self.data]
        if not all(isinstance(c, str) for c in self.columns):
            raise InvalidMetadata(f"table columns must be strings, got {self.columns!r}")
        if len(set(self.columns)) != len(self.columns):
            raise InvalidMetadata(f"table columns must be unique, got {self.columns!r}")
        for i, row in enumerate(self.data):
            if len(row) != len(self.columns):
                raise InvalidMetadata(
                    f"table row {i} has {len(row)} values for {len(self.columns)} columns"
                )

    def add_data(self, *values: Any) -> None:
        """Append one row."""
        if len(values) != len(self.columns):
            raise InvalidMetadata(
                f"table row has {len(values)} values for {len(self.columns)} columns"
            )
        self.data.append(list(values))

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "data": self.data}

    def to_bytes(self) -> bytes:
        try:
            return json.dumps(self.to_json(), allow_nan=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as err:
            raise InvalidMetadata(
                f"table data must be JSON without NaN or infinity: {err}"
            ) from err

    @classmethod
    def from_bytes(cls, raw: bytes) -> Table:
        data = json.loads(raw)
        return cls(columns=data["columns"], data=data["data"])

    def __iter__(self) -> Iterator[list[Any]]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class PartitionedTable:
    """A table made of every ``*.table.json`` part under ``parts_path`` in the same artifact.

    Parallel writers each add ``Table`` parts under one folder; the artifact then holds a
    ``PartitionedTable(parts_path)`` that reads them back as one table (parts in path order).
    """

    def __init__(self, parts_path: str) -> None:
        self.parts_path = entry_path(parts_path)
        self._loader: Callable[[], list[tuple[str, Table]]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"parts_path": self.parts_path}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(
        cls, raw: bytes, loader: Callable[[], list[tuple[str, Table]]]
    ) -> PartitionedTable:
        table = cls(json.loads(raw)["parts_path"])
        table._loader = loader
        return table

    @property
    def parts(self) -> list[tuple[str, Table]]:
        """``(entry path, Table)`` for every part, in path order (needs a logged artifact)."""
        if self._loader is None:
            return []
        return self._loader()

    @property
    def columns(self) -> list[str]:
        parts = self.parts
        return parts[0][1].columns if parts else []

    def __iter__(self) -> Iterator[list[Any]]:
        for _, part in self.parts:
            yield from part.data

    def to_table(self) -> Table:
        """All parts' rows in one :class:`Table` (parts must share their columns)."""
        parts = self.parts
        columns = parts[0][1].columns if parts else []
        rows: list[list[Any]] = []
        for path, part in parts:
            if part.columns != columns:
                raise InvalidMetadata(
                    f"partition {path!r} has columns {part.columns!r}, expected {columns!r}"
                )
            rows.extend(part.data)
        return Table(columns=columns, data=rows)

    def __repr__(self) -> str:
        return f"PartitionedTable({self.parts_path!r})"


def is_table_part(path: str, parts_path: str) -> bool:
    return path.startswith(parts_path + "/") and path.endswith(TABLE_SUFFIX)


def table_file(obj: object, name: str) -> tuple[str, bytes]:
    """The entry path and stored bytes of a :class:`Table` or :class:`PartitionedTable` added
    under ``name``."""
    if isinstance(obj, Table):
        return entry_path(name) + TABLE_SUFFIX, obj.to_bytes()
    if isinstance(obj, PartitionedTable):
        return entry_path(name) + PARTITIONED_SUFFIX, obj.to_bytes()
    raise InvalidArgument(f"add() takes a Table or PartitionedTable, got {type(obj).__name__}")


def load_table(
    name: str, paths: Collection[str], read: Callable[[str], bytes]
) -> Table | PartitionedTable:
    """The table stored under ``name`` among the entry ``paths``; ``read`` gives an entry's
    bytes. :class:`EntryNotFound` when there is none."""
    path = entry_path(name)
    if path + TABLE_SUFFIX in paths:
        return Table.from_bytes(read(path + TABLE_SUFFIX))
    if path + PARTITIONED_SUFFIX in paths:
        raw = read(path + PARTITIONED_SUFFIX)
        parts_path = PartitionedTable.from_bytes(raw, list).parts_path

        def load() -> list[tuple[str, Table]]:
            found = sorted(p for p in paths if is_table_part(p, parts_path))
            return [(p, Table.from_bytes(read(p))) for p in found]

        return PartitionedTable.from_bytes(raw, load)
    if path.endswith(TABLE_SUFFIX) and path in paths:
        return Table.from_bytes(read(path))
    raise EntryNotFound(f"no table {name!r}")
