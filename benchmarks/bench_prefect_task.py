"""Overhead of ``artifact_task`` over a plain Prefect ``@task`` that writes the same file.

Both tasks write ``--size`` bytes of fresh content per call (so every artifact call commits a
new version: no dedupe shortcut). The artifact task also opens an artiflow run, uploads and
commits the version, mirrors it into a Prefect markdown artifact and reports the asset.
Each variant runs ``--calls`` times sequentially inside one flow run, after a warm-up call; the
per-call wall time is the median. Target: overhead < 150 ms per task.

    .venv-prefect/bin/python benchmarks/bench_prefect_task.py [--calls 30] [--size 65536]

Runs in Prefect's ephemeral mode with a throwaway ``ARTIFLOW_HOME`` and ``PREFECT_HOME``.
The ephemeral server can take longer to start than Prefect's default timeout on a fresh
machine (it then fails with "Timed out while attempting to connect to ephemeral Prefect API
server"), so ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` defaults to 120 here.
Prints one JSON object. ``--smoke`` (2 calls of 1 KiB, ``ok`` not judged) is what
``make bench-smoke`` runs so the script keeps working.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_MS = 150.0
STARTUP_TIMEOUT_S = "120"
"""``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` unless set: the server's first start
on a fresh machine (database migrations, cold imports) exceeds Prefect's default."""


def _setup_env(root: Path) -> None:
    """Point artiflow and Prefect at ``root``; must run before ``prefect`` is imported (Prefect
    reads its settings then)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", STARTUP_TIMEOUT_S)
    os.environ["ARTIFLOW_HOME"] = str(root / "artiflow")
    os.environ["ARTIFLOW_CACHE_DIR"] = str(root / "cache")
    os.environ["ARTIFLOW_HASH_CACHE"] = str(root / "hash-cache.db")
    os.environ["PREFECT_HOME"] = str(root / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    os.environ.pop("PREFECT_API_URL", None)


def run(calls: int, size: int, root: Path) -> dict[str, Any]:
    """Time the three variants; returns per-call medians in milliseconds."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    import artiflow as af
    from artiflow.prefect import artifact_task

    out_dir = root / "plain"
    out_dir.mkdir(parents=True, exist_ok=True)

    def payload(i: int) -> bytes:
        head = f"call {i}\n".encode()
        return head + os.urandom(max(size - len(head), 0))

    @task(cache_policy=NO_CACHE)
    def plain(i: int) -> str:
        target = out_dir / f"data-{i}.bin"
        target.write_bytes(payload(i))
        return str(target)

    @artifact_task(outputs={"out": {"type": "dataset", "name": "bench-data"}})
    def with_artifact(i: int, out: af.Artifact) -> None:
        with out.new_file("data.bin", mode="wb") as f:
            f.write(payload(i))

    @artifact_task(
        outputs={"out": {"type": "dataset", "name": "bench-quiet"}}, mirror=False, assets=False
    )
    def without_mirror(i: int, out: af.Artifact) -> None:
        with out.new_file("data.bin", mode="wb") as f:
            f.write(payload(i))

    def timed(fn: Any, offset: int) -> list[float]:
        fn(offset - 1)  # warm-up: registry, engine, first API calls
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            fn(offset + i)
            samples.append((time.perf_counter() - start) * 1000)
        return samples

    @flow(name="bench-prefect-task")
    def bench() -> dict[str, list[float]]:
        return {
            "plain_task": timed(plain, 1_000),
            "artifact_task": timed(with_artifact, 2_000),
            "artifact_task_no_mirror": timed(without_mirror, 3_000),
        }

    samples = bench()
    medians = {k: round(statistics.median(v), 2) for k, v in samples.items()}
    overhead = round(medians["artifact_task"] - medians["plain_task"], 2)
    return {
        "calls": calls,
        "size_bytes": size,
        "median_ms": medians,
        "overhead_ms": overhead,
        "overhead_no_mirror_ms": round(
            medians["artifact_task_no_mirror"] - medians["plain_task"], 2
        ),
        "target_ms": TARGET_MS,
        "ok": overhead < TARGET_MS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.size = 2, 1024
    with tempfile.TemporaryDirectory(prefix="bench-prefect-") as tmp:
        _setup_env(Path(tmp))
        result = run(args.calls, args.size, Path(tmp))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
