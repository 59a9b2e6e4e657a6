"""Registry benchmark: log and download 10,000 x 1 KiB and 20 x 50 MiB on the embedded default.

For each data set it measures, in one process on a fresh registry:
- the first log (hash + upload + commit) and the bytes uploaded;
- a second version with 1 % of the files changed: bytes uploaded (target <= 2 % of the first);
- a cold download (empty local cache) and a warm download into a new folder (from the cache);
  the warm one runs with the store's blob folder moved away, proving it never touches the store;
- the cost of isolation: the warm download (each file the consumer's own: a reflink or a copy)
  against one with ``hard_link=True`` (files shared with the cache);
- re-downloading an already materialised folder;
- the peer: ``shutil.copytree`` of the same source tree (what any download must at least do).

    .venv/bin/python benchmarks/bench_registry.py [--small-count 10000] [--big-count 20]

``--smoke`` (100 x 1 KiB and 2 x 1 MiB, once) is what ``make bench-smoke`` runs so the script
keeps working; its numbers say nothing about the targets.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import artiflow as af


def _make(root: Path, count: int, size: int) -> Path:
    root.mkdir(parents=True)
    chunk = os.urandom(size)
    for i in range(count):
        sub = root / f"d{i % 100:02}"
        sub.mkdir(exist_ok=True)
        # Distinct content per file: a unique prefix on shared random bytes.
        (sub / f"f{i:06}.bin").write_bytes(f"{i:012}".encode() + chunk[12:])
    return root


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _bench(label: str, work: Path, count: int, size: int, repeats: int) -> None:
    src = _make(work / f"src-{label}", count, size)
    total = count * size
    print(f"\n== {label}: {count} files x {size:,} B = {total / 2**20:,.1f} MiB")
    first_log, second_log, cold, warm, linked, again, peer = [], [], [], [], [], [], []
    first_bytes = second_bytes = 0
    for r in range(repeats):
        home = work / f"home-{label}-{r}"
        os.environ["ARTIFLOW_HASH_CACHE"] = str(home / "hashes.db")
        reg = af.Registry(
            store=str(home / "store"),
            database=f"sqlite:///{home / 'registry.db'}",
            cache_dir=str(home / "cache"),
        )

        def log(reg: af.Registry = reg) -> af.Artifact:
            art = af.Artifact(f"bench-{label}", "dataset")
            art.add_dir(src)
            with reg.run(step="bench") as run:
                run.log_artifact(art)
            return art

        first_log.append(_timed(log))
        first_bytes = reg.uploaded_bytes
        changed = max(1, count // 100)
        for i in range(changed):
            path = src / f"d{i % 100:02}" / f"f{i:06}.bin"
            path.write_bytes(f"rep{r:05}".encode() + path.read_bytes()[8:])  # new per repeat
        second_log.append(_timed(log))
        second_bytes = reg.uploaded_bytes - first_bytes

        latest = reg.artifact(f"bench-{label}:latest")
        cold.append(_timed(lambda latest=latest, r=r: latest.download(work / f"cold-{label}-{r}")))
        blobs = Path(reg.store.root) / "blobs"
        away = blobs.with_name("blobs-away")
        blobs.rename(away)  # the warm download must not touch the store
        try:
            fresh = reg.artifact(f"bench-{label}:latest")
            warm.append(_timed(lambda f=fresh, r=r: f.download(work / f"warm-{label}-{r}")))
            again.append(_timed(lambda f=fresh, r=r: f.download(work / f"warm-{label}-{r}")))
            linked.append(
                _timed(lambda f=fresh, r=r: f.download(work / f"link-{label}-{r}", hard_link=True))
            )
        finally:
            away.rename(blobs)
        peer.append(_timed(lambda r=r: shutil.copytree(src, work / f"copy-{label}-{r}")))
        reg.close()
        for p in work.glob(f"*-{label}-{r}"):
            shutil.rmtree(p, ignore_errors=True)

    med = statistics.median
    print(f"first log            {med(first_log):8.3f} s   uploaded {first_bytes / 2**20:9.2f} MiB")
    changed = max(1, count // 100)
    print(
        f"second log           {med(second_log):8.3f} s   uploaded {second_bytes / 2**20:9.2f} MiB"
        f"   = {second_bytes / first_bytes:.2%} of the first with {changed} of {count} files"
        f" ({changed / count:.0%}) changed (target: <= 2% for 1% changed)"
    )
    print(f"download, cold cache {med(cold):8.3f} s")
    print(f"download, warm cache {med(warm):8.3f} s   (store moved away: no store access)")
    print(f"download, in place   {med(again):8.3f} s   (already materialised)")
    print(
        f"download, hard links {med(linked):8.3f} s   isolation costs "
        f"warm/hard-linked = {med(warm) / med(linked):.2f}x"
    )
    print(f"cold/copytree        {med(cold) / med(peer):8.2f}x")
    print(f"peer: copytree       {med(peer):8.3f} s   warm/copytree = {med(warm) / med(peer):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-count", type=int, default=10_000)
    parser.add_argument("--big-count", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: check it runs")
    args = parser.parse_args()
    big_size = 2**20 if args.smoke else 50 * 2**20
    if args.smoke:
        args.small_count, args.big_count, args.repeats = 100, 2, 1
    with tempfile.TemporaryDirectory(prefix="artiflow-bench-", dir=".") as tmp:
        work = Path(tmp)
        _bench("small", work, args.small_count, 1024, args.repeats)
        _bench("big", work, args.big_count, big_size, args.repeats)


if __name__ == "__main__":
    main()
