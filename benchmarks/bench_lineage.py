"""Lineage benchmark: upstream closure of the last version of a 10,000-version chain on SQLite.

The chain is ``run_i`` consumes ``chain:v{i-1}`` and produces ``chain:v{i}``; its rows are
inserted in bulk straight into the tables (setup is not what is measured). The timed call is the
public ``Registry.lineage("chain:v9999", direction="upstream")``: one recursive CTE plus turning
the rows into the graph object; ``to_dict()`` (timed separately) then builds all 20,000 node
and 19,999 edge records. Target: under 50 ms.

    .venv/bin/python benchmarks/bench_lineage.py [--versions 10000] [--repeat 15]
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
from artiflow import schema as t

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
    args = parser.parse_args()
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
            closure, closure_cpu = _time(
                lambda: reg.lineage(ref, direction="upstream"), args.repeat
            )
            full, full_cpu = _time(
                lambda: reg.lineage(ref, direction="upstream").to_dict(), args.repeat
            )
            load = os.getloadavg()[0] / (os.cpu_count() or 1)
            print(
                f"upstream closure of {ref} ({len(graph.nodes)} nodes, {len(graph.edges)} edges), "
                f"median of {args.repeat} (load per CPU {load:.1f}):"
            )
            verdict = "met" if closure < TARGET_MS else "MISSED"
            print(
                f"  Registry.lineage()            {closure:6.1f} ms wall {closure_cpu:6.1f} ms CPU"
                f"  (target < {TARGET_MS:.0f} ms: {verdict})"
            )
            print(f"  Registry.lineage().to_dict()  {full:6.1f} ms wall {full_cpu:6.1f} ms CPU")


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds of ``fn`` (CPU time is less disturbed by other
    processes on a busy machine; SQLite runs in this process, so it counts the query too)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


if __name__ == "__main__":
    main()
