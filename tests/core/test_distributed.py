"""Distributed artifacts: parallel writers upsert parts, one finishes a single version.

Multi-process tests start writers with ``multiprocessing`` (spawn) against the same store and
database, on SQLite and on PostgreSQL (``registry`` fixture; PostgreSQL needs
``ARTIFLOW_TEST_POSTGRES_URL``).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import pytest

import artiflow as af
from artiflow.errors import DistributedError, InvalidName, TypeMismatch

ROOT = Path(__file__).resolve().parents[2]  # spawned children import this module from here


def part(i: int, rows: int = 2, parts_path: str = "parts") -> af.Artifact:
    art = af.Artifact("parallel", "dataset")
    art.add(af.Table(["writer", "n"], [[i, n] for n in range(rows)]), f"{parts_path}/table_{i}")
    return art


def finisher(table: bool = True) -> af.Artifact:
    art = af.Artifact("parallel", "dataset", description="all parts", metadata={"parts": "many"})
    if table:
        art.add(af.PartitionedTable("parts"), "distributed_table")
    return art


def upsert_parts(reg: af.Registry, group: str, writers: int) -> list[str]:
    run_ids = []
    for i in range(writers):
        with reg.run(pipeline="par", step="write", map_index=i) as run:
            run.upsert_artifact(part(i), distributed_id=group)
            run_ids.append(run.id)
    return run_ids


def test_parts_become_one_version(registry: af.Registry) -> None:
    writers = upsert_parts(registry, "g1", 3)
    with registry.run(pipeline="par", step="finish") as run:
        art = run.finish_artifact(finisher(), distributed_id="g1", aliases=["merged"])
        finishing = run.id
    assert art.version == "v0" and art.qualified_name == "parallel:v0"
    assert sorted(art.manifest.entries) == [
        "distributed_table.partitioned-table.json",
        "parts/table_0.table.json",
        "parts/table_1.table.json",
        "parts/table_2.table.json",
    ]
    fetched = registry.artifact("parallel:merged")
    assert fetched.digest == art.digest and fetched.aliases == ["latest", "merged"]
    assert fetched.description == "all parts" and fetched.metadata == {"parts": "many"}
    table = fetched.get("distributed_table")
    assert isinstance(table, af.PartitionedTable)
    assert sorted(map(tuple, table)) == [(w, n) for w in range(3) for n in range(2)]
    assert table.to_table().columns == ["writer", "n"]
    # every contributing run is a producer; the finisher made the version
    graph = registry.lineage("parallel:v0", direction="upstream")
    producers = {e.source for e in graph.edges if e.target == graph.root}
    assert producers == {f"run:{r}" for r in [*writers, finishing]}
    producer = fetched.logged_by()  # the run that committed it
    assert producer is not None and producer.id == finishing and producer.step == "finish"
    root = fetched.download(registry.cache.root + "-dl")
    assert (root / "parts" / "table_2.table.json").is_file()
    fetched.verify(root)


def test_writers_can_share_identical_entries(registry: af.Registry) -> None:
    for i in range(2):
        with registry.run(step=f"w{i}") as run:
            art = part(i)
            with art.new_file("schema.json") as fh:
                fh.write('{"columns": ["writer", "n"]}')
            run.upsert_artifact(art, "shared")
    with registry.run() as run:
        art = run.finish_artifact(finisher(table=False), "shared")
    assert "schema.json" in art.manifest.entries and len(art.manifest) == 3


def test_same_path_different_content_names_both_runs(registry: af.Registry) -> None:
    with registry.run(pipeline="par", step="a") as run:
        run.upsert_artifact(part(0, rows=1), "clash")
        first = run.id
    with registry.run(pipeline="par", step="b") as run:
        run.upsert_artifact(part(0, rows=5), "clash")  # same path parts/table_0, other rows
        second = run.id
    with registry.run() as run, pytest.raises(DistributedError) as info:
        run.finish_artifact(finisher(), "clash")
    message = str(info.value)
    assert first in message and second in message and "parts/table_0.table.json" in message
    assert "par/a" in message and "par/b" in message
    with pytest.raises(af.ArtifactNotFound):
        registry.artifact("parallel")  # nothing was committed
    with registry.run() as run:  # the failed finish reopened it: parts can still be added
        run.upsert_artifact(part(1), "clash")


def file_part(path: str, text: str = "x") -> af.Artifact:
    art = af.Artifact("parallel", "dataset")
    with art.new_file(path) as fh:
        fh.write(text)
    return art


@pytest.mark.parametrize("nested", ["out/part-0.csv", "out/deeper/part-0.csv"])
def test_a_file_that_is_also_a_folder_names_both_runs(registry: af.Registry, nested: str) -> None:
    """Part one writes the file ``out``, part two ``out/...``: no version could hold both (it
    could never be downloaded), so finishing is refused."""
    with registry.run(pipeline="par", step="file") as run:
        run.upsert_artifact(file_part("out"), "nest")
        file_run = run.id
    with registry.run(pipeline="par", step="folder") as run:
        run.upsert_artifact(file_part(nested), "nest")
        folder_run = run.id
    with registry.run() as run, pytest.raises(DistributedError) as info:
        run.finish_artifact(finisher(table=False), "nest")
    message = str(info.value)
    assert file_run in message and folder_run in message
    assert "par/file" in message and "par/folder" in message
    assert "'out' is a file" in message and repr(nested) in message
    with pytest.raises(af.ArtifactNotFound):
        registry.artifact("parallel")  # nothing was committed


def test_the_finishers_file_over_a_parts_folder_is_refused(registry: af.Registry) -> None:
    upsert_parts(registry, "g", 1)  # parts/table_0.table.json
    with registry.run(step="fin") as run, pytest.raises(DistributedError) as info:
        run.finish_artifact(file_part("parts"), "g")
    assert "'parts' is a file" in str(info.value) and "fin" in str(info.value)
    assert "par/write[0]" in str(info.value)


def test_a_crashed_finish_is_resumed(registry: af.Registry) -> None:
    """A finisher that died after closing leaves the row ``closing``: upserts are refused and
    the next finish completes it."""
    import sqlalchemy as sa

    from artiflow.db import schema

    upsert_parts(registry, "crashed", 2)
    with registry.meta.engine.begin() as conn:  # the state a finisher leaves when it dies
        conn.execute(sa.update(schema.distributed).values(state="closing"))
    with registry.run() as run:
        with pytest.raises(DistributedError, match="being committed"):
            run.upsert_artifact(part(5), "crashed")
        art = run.finish_artifact(finisher(), "crashed")
    assert art.version == "v0" and len(art.manifest) == 3


def test_finisher_entries_conflicting_with_a_part(registry: af.Registry) -> None:
    upsert_parts(registry, "g", 1)
    mine = finisher(table=False)
    mine.add(af.Table(["x"], [[1]]), "parts/table_0")
    with registry.run(step="fin") as run, pytest.raises(DistributedError, match="fin"):
        run.finish_artifact(mine, "g")
    assert mine.state == "draft"  # a failed finish leaves the artifact usable


def test_upsert_after_finish_and_finish_twice_are_refused(registry: af.Registry) -> None:
    upsert_parts(registry, "done", 2)
    with registry.run() as run:
        run.finish_artifact(finisher(), "done")
    with registry.run() as run:
        with pytest.raises(DistributedError, match="already finished"):
            run.upsert_artifact(part(7), "done")
        with pytest.raises(DistributedError, match="already finished"):
            run.finish_artifact(finisher(), "done")
    assert [a.version for a in registry.versions("parallel")] == ["v0"]


def test_finish_without_parts_is_refused(registry: af.Registry) -> None:
    with registry.run() as run, pytest.raises(DistributedError, match="no parts"):
        run.finish_artifact(finisher(), "never-upserted")


def test_empty_part_and_bad_ids_are_refused(registry: af.Registry) -> None:
    with registry.run() as run:
        with pytest.raises(DistributedError, match="nothing to upsert"):
            run.upsert_artifact(af.Artifact("parallel", "dataset"), "g")
        for bad in ("", "x" * 251, "tab\there", 42):
            with pytest.raises(InvalidName):
                run.upsert_artifact(part(0), bad)  # type: ignore[arg-type]


def test_type_mismatch(registry: af.Registry) -> None:
    upsert_parts(registry, "typed", 1)
    wrong = af.Artifact("parallel", "model")
    with wrong.new_file("w.bin") as fh:
        fh.write("x")
    with registry.run() as run:
        with pytest.raises(TypeMismatch):
            run.upsert_artifact(wrong, "typed")
        with pytest.raises(TypeMismatch):
            run.finish_artifact(af.Artifact("parallel", "model"), "typed")
    with registry.run() as run:  # a name that already belongs to another type
        model = af.Artifact("weights", "model")
        with model.new_file("w.bin") as fh:
            fh.write("x")
        run.log_artifact(model).wait()
        other = af.Artifact("weights", "dataset")
        with other.new_file("d.txt") as fh:
            fh.write("d")
        with pytest.raises(TypeMismatch):
            run.upsert_artifact(other, "w")


def test_identical_merge_reuses_the_existing_version(registry: af.Registry) -> None:
    upsert_parts(registry, "first", 2)
    with registry.run() as run:
        v0 = run.finish_artifact(finisher(), "first")
    upsert_parts(registry, "second", 2)
    with registry.run() as run:
        again = run.finish_artifact(finisher(), "second", aliases=["again"])
    assert again.version == v0.version == "v0"
    assert "again" in registry.artifact("parallel:v0").aliases
    with registry.run() as run, pytest.raises(DistributedError):
        run.upsert_artifact(part(3), "second")  # finished, even though it reused v0


def test_distributed_ids_are_per_name(registry: af.Registry) -> None:
    with registry.run() as run:
        run.upsert_artifact(part(0), "same-id")
        other = af.Artifact("other", "dataset")
        other.add(af.Table(["a"], [[1]]), "parts/t")
        run.upsert_artifact(other, "same-id")
        assert run.finish_artifact(finisher(), "same-id").version == "v0"
        other_fin = run.finish_artifact(af.Artifact("other", "dataset"), "same-id")
        assert list(other_fin.manifest.entries) == ["parts/t.table.json"]


# ------------------------------------------------------------------------------ processes
def _writer(store: str, database: str, group: str, i: int, start: Any) -> None:
    """Upserts one part once every writer is ready (``start``: a barrier for all of them)."""
    reg = af.Registry(store=store, database=database, openlineage=False)
    try:
        start.wait(60)  # a writer that never arrives breaks the barrier: the others fail
        with reg.run(pipeline="par", step="write", map_index=i) as run:
            run.upsert_artifact(part(i, rows=3), distributed_id=group)
    finally:
        reg.close()


def _clashing_writer(store: str, database: str, i: int, start: Any) -> None:
    reg = af.Registry(store=store, database=database, openlineage=False)
    try:
        start.wait(60)
        with reg.run(pipeline="clash", step=f"writer{i}") as run:
            run.upsert_artifact(part(0, rows=i + 1), distributed_id="clash")
    finally:
        reg.close()


def _busy_writer(store: str, database: str, i: int, ready: Any, results: Any) -> None:
    """Upserts parts until they are refused; reports the accepted ones and whether it was."""
    reg = af.Registry(store=store, database=database, openlineage=False)
    accepted: list[str] = []
    refused = False
    try:
        deadline = time.monotonic() + 60
        with reg.run(step=f"busy{i}") as run:
            n = 0
            while not refused and time.monotonic() < deadline:
                art = af.Artifact("parallel", "dataset")
                art.add(af.Table(["w", "n"], [[i, n]]), f"parts/w{i}-{n:04d}")
                try:
                    run.upsert_artifact(art, "busy")
                except DistributedError:
                    refused = True
                else:
                    accepted.append(f"parts/w{i}-{n:04d}.table.json")
                    if n == 0:
                        ready.wait(120)  # the finisher starts once every writer is writing
                n += 1
    finally:
        results.put((i, accepted, refused))
        reg.close()


def _finisher(store: str, database: str, ready: Any) -> None:
    reg = af.Registry(store=store, database=database, openlineage=False)
    try:
        ready.wait(120)
        time.sleep(0.3)
        with reg.run(step="finisher") as run:
            run.finish_artifact(finisher(), "busy")
    finally:
        reg.close()


def _spawn(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(ROOT))  # spawned children import this test module by name
    return mp.get_context("spawn")


def _run_all(procs: list[Any], timeout: float = 120) -> None:
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _urls(registry: af.Registry) -> tuple[str, str]:
    return registry.store_url, registry.database_url


def test_writers_in_separate_processes(
    registry: af.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _spawn(monkeypatch)
    start = ctx.Barrier(4)  # each writer opens its registry, then all four upsert at once
    store, database = _urls(registry)
    writers = [
        ctx.Process(target=_writer, args=(store, database, "mp", i, start)) for i in range(4)
    ]
    _run_all(writers)
    with registry.run(step="finish") as run:
        art = run.finish_artifact(finisher(), "mp")
    table = registry.artifact("parallel:latest").get("distributed_table")
    assert isinstance(table, af.PartitionedTable)
    assert sorted(map(tuple, table)) == [(w, n) for w in range(4) for n in range(3)]
    graph = registry.lineage(str(art.qualified_name))
    assert sum(n.kind == "run" for n in graph.nodes) == 5  # four writers and the finisher


def test_clash_across_processes_names_both_runs(
    registry: af.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = _spawn(monkeypatch)
    start = ctx.Barrier(2)  # both writers upsert at once
    store, database = _urls(registry)
    procs = [
        ctx.Process(target=_clashing_writer, args=(store, database, i, start)) for i in range(2)
    ]
    _run_all(procs)
    with registry.run() as run, pytest.raises(DistributedError) as info:
        run.finish_artifact(finisher(), "clash")
    assert "clash/writer0" in str(info.value) and "clash/writer1" in str(info.value)


@pytest.mark.slow
def test_finish_while_writers_upsert(
    registry: af.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every upsert either lands in the finished version or is refused: none is lost."""
    ctx = _spawn(monkeypatch)
    ready, results = ctx.Barrier(4), ctx.Queue()
    store, database = _urls(registry)
    with registry.run(step="seed") as run:  # the distributed row exists before the race
        run.upsert_artifact(part(99), "busy")
    procs: list[Any] = [
        ctx.Process(target=_busy_writer, args=(store, database, i, ready, results))
        for i in range(3)
    ]
    procs.append(ctx.Process(target=_finisher, args=(store, database, ready)))
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=180) for _ in range(3)]
    for proc in procs:
        proc.join(180)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert all(refused for _, _, refused in reports)  # every writer was still writing
    entries = set(registry.artifact("parallel:v0").manifest.entries)
    expected = {e for _, parts, _ in reports for e in parts}
    expected |= {"parts/table_99.table.json", "distributed_table.partitioned-table.json"}
    assert entries == expected
    assert all(parts for _, parts, _ in reports)


def test_part_files_reach_the_store_before_the_database(registry: af.Registry) -> None:
    """A part is visible only once its blobs and manifest are stored: another registry on the
    same store and database (another machine) can finish it."""
    upsert_parts(registry, "remote", 2)
    other = af.Registry(
        store=registry.store_url,
        database=registry.database_url,
        cache_dir=str(Path(registry.cache.root) / "other"),
    )
    try:
        with other.run() as run:
            art = run.finish_artifact(finisher(), "remote")
        root = art.download(Path(registry.cache.root).parent / "remote-dl")
        assert sorted(p.name for p in (root / "parts").iterdir()) == [
            "table_0.table.json",
            "table_1.table.json",
        ]
    finally:
        other.close()


def test_a_distributed_id_that_is_not_utf8_is_refused_before_upload(
    registry: af.Registry,
) -> None:
    from artiflow.errors import InvalidArgument

    with registry.run(step="w") as run, pytest.raises(InvalidArgument, match="UTF-8"):
        run.upsert_artifact(part(0), distributed_id="bad-\udcff")
    assert registry.uploaded_blobs == 0
