"""One contract for "a metadata store", run on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from artiflow import errors
from artiflow.db import MetaStore, VersionSpec, migrate, schema
from artiflow.naming import parse_ref


def _commit(
    store: MetaStore, name: str, digest: str, run_id: str, type_: str = "dataset", aliases=()
):
    spec = VersionSpec(
        name=name,
        type=type_,
        digest=digest,
        manifest_key=digest,
        size=len(digest),
        file_count=1,
        description=None,
        metadata={"k": [1, 2]},
        run_ids=(run_id,),
        aliases=tuple(aliases),
    )
    return store.commit_versions([spec])[0]


class MetaStoreContract:
    """Subclasses provide the ``url`` fixture."""

    @pytest.fixture
    def store(self, url: str):  # type: ignore[no-untyped-def]
        store = MetaStore(url)
        yield store
        store.close()

    def test_new_database_is_created_at_head(self, store: MetaStore) -> None:
        with store.engine.connect() as conn:
            assert migrate.current_revision(conn) == migrate.head_revision()

    def test_migrations_build_exactly_the_declared_schema(self, store: MetaStore) -> None:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": migrate.VERSION_TABLE})
            diff = [d for d in compare_metadata(ctx, schema.metadata)]
        assert diff == []

    def test_opening_twice_is_idempotent(self, store: MetaStore, url: str) -> None:
        MetaStore(url).close()

    def test_an_older_schema_is_refused_naming_the_upgrade_command(
        self, store: MetaStore, url: str
    ) -> None:
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0000'"))
        with pytest.raises(errors.SchemaOutOfDate, match="artiflow db upgrade"):
            MetaStore(url)

    def test_a_newer_schema_is_refused_naming_an_artiflow_upgrade(
        self, store: MetaStore, url: str
    ) -> None:
        with store.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999'"))
        with pytest.raises(errors.SchemaOutOfDate, match="newer than this artiflow"):
            MetaStore(url)

    def test_versions_count_up_and_dedupe(self, store: MetaStore) -> None:
        run = store.create_run({"pipeline": "p", "step": "s", "map_index": 3, "custom": "x"})
        assert run.extra == {"custom": "x"} and run.map_index == 3
        a, created_a = _commit(store, "cats", "a" * 32, run.id, aliases=["best"])
        b, created_b = _commit(store, "cats", "b" * 32, run.id)
        again, created_again = _commit(store, "cats", "a" * 32, run.id, aliases=["prod"])
        assert (a.index, b.index, again.index) == (0, 1, 0)
        assert (created_a, created_b, created_again) == (True, True, False)
        assert store.find("cats").index == 1
        assert store.find("cats:prod").index == 0
        assert store.aliases_of(a.id) == ["best", "prod"]
        assert store.aliases_of(b.id) == ["latest"]
        assert a.metadata == {"k": [1, 2]}
        assert a.created_at.tzinfo is not None
        assert [r.index for r in store.versions("cats")] == [0, 1]
        assert [r.id for r in store.runs_of(a.id, "output")] == [run.id]

    def test_type_is_fixed_per_name(self, store: MetaStore) -> None:
        run = store.create_run({})
        _commit(store, "cats", "a" * 32, run.id)
        with pytest.raises(errors.TypeMismatch):
            _commit(store, "cats", "b" * 32, run.id, type_="model")
        with pytest.raises(errors.TypeMismatch):
            store.check_type("cats", "model")
        assert [r.index for r in store.versions("cats")] == [0]

    def test_find_errors(self, store: MetaStore) -> None:
        run = store.create_run({})
        _commit(store, "cats", "a" * 32, run.id)
        with pytest.raises(errors.ArtifactNotFound, match="no artifact named 'dogs'"):
            store.find("dogs")
        with pytest.raises(errors.ArtifactNotFound, match="v7"):
            store.find("cats:v7")
        with pytest.raises(errors.InvalidName):
            store.find("cats:a/b")

    def test_inputs_and_runs(self, store: MetaStore) -> None:
        producer = store.create_run({"orchestrator": "airflow", "pipeline": "dag", "attempt": "2"})
        rec, _ = _commit(store, "cats", "a" * 32, producer.id)
        consumer = store.create_run({"step": "train"})
        store.record_input(consumer.id, rec.id)
        store.record_input(consumer.id, rec.id)  # idempotent
        store.finish_run(consumer.id, "finished")
        assert [r.step for r in store.runs_of(rec.id, "input")] == ["train"]
        got = store.get_run(consumer.id)
        assert got.status == "finished" and got.finished_at is not None
        assert store.get_run(producer.id).attempt == 2

    def test_concurrent_threads_get_gap_free_numbers(self, store: MetaStore) -> None:
        run = store.create_run({})

        def commit(i: int) -> int:
            return _commit(store, "many", f"{i:032x}", run.id)[0].index

        with ThreadPoolExecutor(8) as pool:
            indexes = sorted(pool.map(commit, range(40)))
        assert indexes == list(range(40))


class TestSQLiteMetaStore(MetaStoreContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


class TestPostgresMetaStore(MetaStoreContract):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url


def test_head_constant_matches_the_shipped_migrations() -> None:
    assert migrate.head_revision() == migrate.HEAD


def test_in_memory_sqlite_works() -> None:
    store = MetaStore("sqlite://")
    run = store.create_run({})
    assert _commit(store, "mem", "a" * 32, run.id)[0].index == 0
    assert store.find("mem").index == 0


def test_parse_ref() -> None:
    assert parse_ref("cats") == ("cats", "latest")
    assert parse_ref("cats:v3") == ("cats", "v3")
    assert parse_ref("cats:best") == ("cats", "best")
