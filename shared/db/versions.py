"""Reading committed versions: by reference, by name, their aliases; moving an alias."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import ArtifactNotFound, TypeMismatch
from ..naming import check_alias, check_name, parse_ref, version_index
from ..records import VersionRecord
from . import schema as t
from .engine import Database
from .rows import version_query, version_record

__all__ = ["VersionQueries", "type_mismatch"]


def type_mismatch(name: str, owned: str, wanted: str) -> TypeMismatch:
    return TypeMismatch(
        f"artifact {name!r} has type {owned!r}; it cannot be logged as {wanted!r} "
        "(a name belongs to one type forever)"
    )


def _by_alias_first(aliases: list[str]) -> list[str]:
    return sorted(aliases, key=lambda a: (a != "latest", a))


class VersionQueries(Database):
    """Committed versions and their aliases."""

    def find(self, ref: str) -> VersionRecord:
        """The committed version a reference names; :class:`ArtifactNotFound` if none."""
        name, tag = parse_ref(ref)
        query = version_query().where(t.artifacts.c.name == name)
        index = version_index(tag)
        if index is not None:
            query = query.where(t.versions.c.index == index)
        else:
            query = query.join(
                t.aliases,
                (t.aliases.c.version_id == t.versions.c.id) & (t.aliases.c.alias == tag),
            )
        with self.read() as conn:
            row = conn.execute(query).mappings().first()
            exists = row is not None or self._artifact_exists(conn, name)
        if row is None:
            if not exists:
                raise ArtifactNotFound(f"no artifact named {name!r}")
            raise ArtifactNotFound(f"artifact {name!r} has no version or alias {tag!r}")
        return version_record(row)

    @staticmethod
    def _artifact_exists(conn: Connection, name: str) -> bool:
        query = sa.select(t.artifacts.c.id).where(t.artifacts.c.name == name)
        return conn.execute(query).first() is not None

    def versions(self, name: str) -> list[VersionRecord]:
        check_name(name)
        query = version_query().where(t.artifacts.c.name == name).order_by(t.versions.c.index)
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
        if not rows:
            raise ArtifactNotFound(f"no artifact named {name!r}")
        return [version_record(r) for r in rows]

    def get_version(self, version_id: int) -> VersionRecord:
        with self.read() as conn:
            query = version_query().where(t.versions.c.id == version_id)
            return version_record(conn.execute(query).mappings().one())

    def artifact_names(self) -> list[tuple[str, str, int]]:
        """``(name, type, version count)`` for every artifact, by name."""
        query = (
            sa.select(t.artifacts.c.name, t.artifacts.c.type, sa.func.count(t.versions.c.id))
            .select_from(t.artifacts.outerjoin(t.versions))
            .group_by(t.artifacts.c.id, t.artifacts.c.name, t.artifacts.c.type)
            .order_by(t.artifacts.c.name)
        )
        with self.read() as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query)]

    def check_type(self, name: str, type_: str) -> None:
        """Raise :class:`TypeMismatch` early if ``name`` exists with another type."""
        query = sa.select(t.artifacts.c.type).where(t.artifacts.c.name == name)
        with self.read() as conn:
            row = conn.execute(query).first()
        if row is not None and row.type != type_:
            raise type_mismatch(name, row.type, type_)

    def aliases_of(self, version_id: int) -> list[str]:
        """The version's aliases, ``latest`` first."""
        return self.aliases_for([version_id])[version_id]

    def aliases_for(self, version_ids: Sequence[int]) -> dict[int, list[str]]:
        """Each version's aliases, ``latest`` first."""
        out: dict[int, list[str]] = {v: [] for v in version_ids}
        if not version_ids:
            return out
        query = sa.select(t.aliases.c.version_id, t.aliases.c.alias).where(
            t.aliases.c.version_id.in_(list(version_ids))
        )
        with self.read() as conn:
            for vid, alias in conn.execute(query):
                out[vid].append(alias)
        return {vid: _by_alias_first(names) for vid, names in out.items()}

    def set_alias(self, ref: str, alias: str) -> VersionRecord:
        """Point a custom alias at the version ``ref`` names (moving it atomically)."""
        check_alias(alias)
        record = self.find(ref)

        def txn(conn: Connection) -> None:
            conn.execute(
                sa.delete(t.aliases).where(
                    t.aliases.c.artifact_id == record.artifact_id, t.aliases.c.alias == alias
                )
            )
            conn.execute(
                sa.insert(t.aliases).values(
                    artifact_id=record.artifact_id, alias=alias, version_id=record.id
                )
            )

        self.write(txn)
        return record
