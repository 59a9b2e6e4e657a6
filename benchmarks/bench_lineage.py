"""Lineage benchmark: upstream closure of the last version of a 10,000-version chain on SQLite.

The chain is ``run_i`` consumes ``chain:v{i-1}`` and produces ``chain:v{i}``; its rows are
inserted in bulk straight into the tables (setup is not what is measured). What is timed is what
a caller gets: ``Registry.lineage("chain:v9999", direction="upstream")`` (one recursive CTE, its
rows turned into 20,000 nodes and 19,999 edges) with every node and edge read once through
``graph.nodes`` and ``graph.edges``. For scale, the recursive query alone (rows read, nothing
built); and separately ``lineage().to_dict()``. Each result is dropped only after its clock
stops; the garbage collector runs as it would for a caller.
Target: under 50 ms.

    .venv/bin/python benchmarks/bench_lineage.py [--versions 10000] [--repeat 15]

``--smoke`` runs a 200-version chain three times (what ``make bench-smoke`` does, so the script
keeps working); its numbers say nothing about the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from artiflow import Registry
from artiflow.db import schema as t
from artiflow.db.lineage import closure
from artiflow.lineage import LineageGraph

TARGET_MS = 50.0


def build_chain(registry: Registry, n: int) -> None:
    now = datetime.now(UTC)
    run_ids = [uuid.uuid4().hex for _ in range(n)]
    with registry.meta.engine.begin() as conn:
        artifact_id = conn.execute(
            sa.insert(t.artifacts)
            .values(name="chain", type="dataset", created_at=now)
            .returning(t.artifacts.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(t.runs),
            [
                {
                    "id": run_ids[i],
                    "orchestrator": "python",
                    "pipeline": "chain",
                    "step": f"step-{i}",
                    "status": "finished",
                    "extra": {},
                    "started_at": now,
                }
                for i in range(n)
            ],
        )
        conn.execute(
            sa.insert(t.versions),
            [
                {
                    "id": i + 1,
                    "artifact_id": artifact_id,
                    "index": i,
                    "digest": f"{i:032x}",
                    "manifest_key": f"{i:032x}",
                    "size": 0,
                    "file_count": 0,
                    "metadata": {},
                    "created_at": now,
                    "created_by": run_ids[i],
                }
                for i in range(n)
            ],
        )
        usage = [
            {"run_id": run_ids[i], "version_id": i + 1, "role": "output", "created_at": now}
            for i in range(n)
        ]
        usage += [
            {"run_id": run_ids[i], "version_id": i, "role": "input", "created_at": now}
            for i in range(1, n)
        ]
        conn.execute(sa.insert(t.usage), usage)
        conn.execute(
            sa.insert(t.aliases).values(artifact_id=artifact_id, alias="latest", version_id=n)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    args = parser.parse_args()
    if args.smoke:
        args.versions, args.repeat = 200, 3
    n = args.versions
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "registry.db"
        with Registry(
            store=Path(tmp) / "store", database=f"sqlite:///{db}", openlineage=False
        ) as reg:
            start = time.perf_counter()
            build_chain(reg, n)
            print(
                f"setup: {n} versions, {n} runs, {2 * n - 1} usage rows "
                f"in {time.perf_counter() - start:.2f} s"
            )
            ref = f"chain:v{n - 1}"
            graph = reg.lineage(ref, direction="upstream")  # warm-up and shape check
            if len(graph.nodes) != 2 * n or len(graph.edges) != 2 * n - 1:
                raise SystemExit(
                    f"unexpected graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges"
                )
            timings = [
                ("lineage() + read .nodes, .edges", lambda: _read_all(reg, ref)),
                ("  of which the SQL query alone", lambda: _query_only(reg, ref)),
                ("lineage().to_dict()", lambda: reg.lineage(ref, direction="upstream").to_dict()),
            ]
            results = [(label, *_time(fn, args.repeat)) for label, fn in timings]
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
            print(
                f"upstream closure of {ref} ({len(graph.nodes)} nodes, {len(graph.edges)} edges), "
                f"median of {args.repeat} (load per CPU {load:.1f}):"
            )
            for i, (label, wall, cpu) in enumerate(results):
                verdict = "met" if wall < TARGET_MS else "MISSED"
                target = f"  (target < {TARGET_MS:.0f} ms: {verdict})" if i == 0 else ""
                print(f"  {label:32} {wall:6.1f} ms wall {cpu:6.1f} ms CPU{target}")


def _read_all(reg: Registry, ref: str) -> LineageGraph:
    """What a caller gets: the graph, with every node and edge read once."""
    graph = reg.lineage(ref, direction="upstream")
    for _ in graph.nodes:
        pass
    for _ in graph.edges:
        pass
    return graph


def _query_only(reg: Registry, ref: str) -> None:
    """The recursive query of :func:`artiflow.lineage.lineage`, rows read and dropped."""
    with reg.meta.read() as conn:
        for _ in conn.execute(closure(reg.meta.find(ref).id, "upstream")):
            pass


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``fn`` (CPU time is less disturbed by other
    processes on a busy machine; SQLite runs in this process, so it counts the query too)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        del result  # freeing it is not part of the call
    return statistics.median(wall), statistics.median(cpu)


if __name__ == "__main__":
    main()
