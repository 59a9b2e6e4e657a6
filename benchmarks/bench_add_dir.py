"""Benchmark ``artiflow.Artifact.add_dir`` against ``wandb.Artifact.add_dir`` and serial MD5.

Two trees are generated once (and reused) under ``.bench/`` at the repository root:

(a) 10,000 files of 1 KiB (in 20 folders), (b) 20 files of 50 MiB.

For each tree, every repetition runs, in a rotating order:

- ``wandb``: ``wandb.Artifact(...).add_dir(tree)`` with wandb 0.31, offline, default policy, in
  its own virtualenv (a subprocess; the time is taken inside it, around ``add_dir`` only);
- ``serial-md5``: one thread, ``hashlib.md5`` over every file in 1 MiB reads;
- ``artiflow cold``: ``artiflow.Artifact(...).add_dir(tree)`` with an empty hash cache;
- ``artiflow warm``: the same tree added again, through the now-filled hash cache (the cache's
  connection is closed first, so the warm add reopens the database like a new process).

The page cache is warmed by reading every file once before the first repetition. Medians of
``--reps`` repetitions (default 5) and the ratios are printed with the targets:
(a) wandb / artiflow >= 10; (b) artiflow / serial-md5 <= 0.65;
warm re-add: (b) cold / warm >= 20, (a) cold / warm >= 2.

The wandb virtualenv (default ``/tmp/wandb-venv``) is created when missing::

    uv venv /tmp/wandb-venv --python python3.11
    uv pip install --python /tmp/wandb-venv 'wandb==0.31.*'

It finds ``uv`` on the ``PATH`` or where ``make`` installs it (``~/.local/bin/uv``).

Run: ``.venv/bin/python benchmarks/bench_add_dir.py [--reps 5] [--only a|b] [--no-wandb]``

``--smoke`` adds two tiny trees (200 x 1 KiB, 4 x 256 KiB) in a temporary folder, three times,
without wandb, and prints the ratios without judging them: ``make bench-smoke`` runs it so the
script keeps working.

The ratios are only meaningful on an otherwise idle machine: (b) needs both cores free.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".bench"
DEFAULT_WANDB_VENV = Path("/tmp/wandb-venv")

TREES: dict[str, dict[str, int | str]] = {
    "a": {"label": "10,000 x 1 KiB", "files": 10_000, "size": 1 << 10, "dirs": 20},
    "b": {"label": "20 x 50 MiB", "files": 20, "size": 50 << 20, "dirs": 1},
}
SMOKE_TREES: dict[str, dict[str, int | str]] = {
    "a": {"label": "200 x 1 KiB", "files": 200, "size": 1 << 10, "dirs": 4},
    "b": {"label": "4 x 256 KiB", "files": 4, "size": 256 << 10, "dirs": 1},
}

WANDB_SCRIPT = r"""
import json, sys, time
import wandb
path = sys.argv[1]
art = wandb.Artifact("bench", type="dataset")
t0 = time.perf_counter()
art.add_dir(path)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "entries": len(art.manifest.entries)}))
"""


# -- data ---------------------------------------------------------------------------------------
def generate(root: Path, spec: dict[str, int | str]) -> Path:
    """Create the tree once; a marker file records that it is complete."""
    files, size, dirs = int(spec["files"]), int(spec["size"]), int(spec["dirs"])
    tree = root / f"tree-{files}x{size}"
    marker = root / f".{tree.name}.complete"
    if marker.exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    print(f"generating {spec['label']} in {tree} ...", flush=True)
    per_dir = -(-files // dirs)
    for i in range(files):
        folder = tree / f"d{i // per_dir:03d}" if dirs > 1 else tree
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"f{i:05d}.bin", "wb") as fh:
            left = size
            while left:
                chunk = min(left, 1 << 20)
                fh.write(os.urandom(chunk))
                left -= chunk
    marker.write_text("ok\n")
    return tree


def file_list(tree: Path) -> list[str]:
    out: list[str] = []
    for folder, _dirs, names in os.walk(tree):
        out.extend(os.path.join(folder, n) for n in names)
    return sorted(out)


def warm_page_cache(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(8 << 20):
                pass


def settle(paths: list[str], window: float = 1.5) -> None:
    """Wait until every file is older than the hash cache's racy window, as in a real tree."""
    newest = max(os.stat(p).st_mtime for p in paths)
    wait = newest + window - time.time()
    if wait > 0:
        time.sleep(wait)


# -- contenders ---------------------------------------------------------------------------------
def serial_md5(paths: list[str]) -> float:
    t0 = time.perf_counter()
    for path in paths:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
        h.hexdigest()
    return time.perf_counter() - t0


def artiflow_cold_warm(tree: Path, scratch: Path, expected: int) -> tuple[float, float]:
    import artiflow
    from artiflow.hashing import default_hash_cache

    cache = scratch / f"hash-cache-{time.monotonic_ns()}.db"
    os.environ["ARTIFLOW_HASH_CACHE"] = str(cache)  # a new, empty cache
    default_hash_cache()

    t0 = time.perf_counter()
    art = artiflow.Artifact("bench", "dataset")
    art.add_dir(tree)
    cold = time.perf_counter() - t0
    if len(art.manifest) != expected:
        raise SystemExit(f"artiflow added {len(art.manifest)} entries, expected {expected}")

    default_hash_cache().close()  # the warm add opens the database again
    t0 = time.perf_counter()
    again = artiflow.Artifact("bench", "dataset")
    again.add_dir(tree)
    warm = time.perf_counter() - t0
    if again.digest != art.digest:
        raise SystemExit("warm add produced a different digest")
    default_hash_cache().close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(cache) + suffix).unlink(missing_ok=True)
    return cold, warm


def wandb_add_dir(python: Path, tree: Path, scratch: Path, expected: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="wandb-", dir=scratch))
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(work),
        "WANDB_DATA_DIR": str(work / "data"),
        "WANDB_CACHE_DIR": str(work / "cache"),
        "WANDB_CONFIG_DIR": str(work / "config"),
        "WANDB_ARTIFACT_DIR": str(work / "artifacts"),
    }
    try:
        proc = subprocess.run(
            [str(python), "-c", WANDB_SCRIPT, str(tree)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"wandb run failed:\n{proc.stderr}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["entries"] != expected:
            raise SystemExit(f"wandb added {result['entries']} entries, expected {expected}")
        return float(result["seconds"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def find_uv() -> str:
    """``uv`` on the ``PATH``, else where ``make`` installs it (``pip install --user uv``)."""
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    if found is None:
        raise SystemExit(
            "the wandb contender needs uv to create its virtualenv: run `make demo` (it installs "
            "uv) or `python3 -m pip install --user uv`, or pass --no-wandb"
        )
    return found


def ensure_wandb(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {venv} with wandb 0.31 ...", flush=True)
    uv = find_uv()
    subprocess.run([uv, "venv", str(venv), "--python", "python3.11"], check=True)
    subprocess.run([uv, "pip", "install", "--python", str(venv), "wandb==0.31.*"], check=True)
    return python


# -- driver -------------------------------------------------------------------------------------
def bench_tree(
    key: str, tree: Path, reps: int, wandb_python: Path | None, scratch: Path
) -> dict[str, float]:
    paths = file_list(tree)
    expected = len(paths)
    settle(paths)
    warm_page_cache(paths)
    times: dict[str, list[float]] = {"wandb": [], "serial-md5": [], "cold": [], "warm": []}

    def run_artiflow() -> None:
        cold, warm = artiflow_cold_warm(tree, scratch, expected)
        times["cold"].append(cold)
        times["warm"].append(warm)

    contenders: list[tuple[str, Callable[[], None]]] = [
        ("serial-md5", lambda: times["serial-md5"].append(serial_md5(paths))),
        ("artiflow", run_artiflow),
    ]
    if wandb_python is not None:
        python = wandb_python
        contenders.append(
            ("wandb", lambda: times["wandb"].append(wandb_add_dir(python, tree, scratch, expected)))
        )
    if reps < 3:
        raise SystemExit("use --reps 3 or more: the ratios are medians")
    for rep in range(reps):
        shift = rep % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        for _name, run in order:
            run()
        done = ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items() if v)
        print(f"  ({key}) rep {rep + 1}/{reps}: {done}", flush=True)
    return {k: statistics.median(v) for k, v in times.items() if v}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (median of them)")
    parser.add_argument("--only", choices=sorted(TREES))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--wandb-venv", type=Path, default=DEFAULT_WANDB_VENV)
    parser.add_argument("--no-wandb", action="store_true", help="skip the wandb contender")
    parser.add_argument("--smoke", action="store_true", help="tiny trees, no wandb: check it runs")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    trees = SMOKE_TREES if args.smoke else TREES
    if args.smoke:  # a throw-away data folder, nothing downloaded
        args.reps, args.no_wandb = 3, True
        args.data_dir = Path(tempfile.mkdtemp(prefix="artiflow-bench-smoke-"))
    wandb_python = None if args.no_wandb else ensure_wandb(args.wandb_venv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="artiflow-bench-", dir=args.data_dir))
    medians: dict[str, dict[str, float]] = {}
    try:
        for key in [args.only] if args.only else sorted(trees):
            tree = generate(args.data_dir, trees[key])
            print(f"({key}) {trees[key]['label']}: {args.reps} repetitions", flush=True)
            medians[key] = bench_tree(key, tree, args.reps, wandb_python, scratch)
    finally:
        shutil.rmtree(args.data_dir if args.smoke else scratch, ignore_errors=True)

    print(f"\nmedians of {args.reps} (seconds), {os.cpu_count()} CPUs:")
    for key, m in medians.items():
        row = "  ".join(f"{k} {v:.4f}" for k, v in m.items())
        print(f"  ({key}) {trees[key]['label']:>15}: {row}")
    checks: list[tuple[str, float, str, float]] = []
    a, b = medians.get("a"), medians.get("b")
    if a and "wandb" in a:
        checks.append(("(a) wandb / artiflow cold", a["wandb"] / a["cold"], ">=", 10))
    if b:
        checks.append(("(b) artiflow cold / serial-md5", b["cold"] / b["serial-md5"], "<=", 0.65))
        checks.append(("(b) cold / warm re-add", b["cold"] / b["warm"], ">=", 20))
    if a:
        checks.append(("(a) cold / warm re-add", a["cold"] / a["warm"], ">=", 2))
    if b and "wandb" in b:
        checks.append(("(b) wandb / artiflow cold (info)", b["wandb"] / b["cold"], ">=", 0))
    if a:
        checks.append(
            ("(a) artiflow cold / serial-md5 (info)", a["cold"] / a["serial-md5"], ">=", 0)
        )
    failed = False
    print("\nratios:" + (" (smoke: tiny trees, not judged)" if args.smoke else ""))
    for label, value, op, target in checks:
        ok = value >= target if op == ">=" else value <= target
        failed |= not ok
        goal = f"target {op} {target}" if target else "no target"
        print(f"  {label:<40} {value:8.2f}   {goal:<14} {'ok' if ok else 'MISSED'}")
    return 1 if failed and not args.smoke else 0


if __name__ == "__main__":
    raise SystemExit(main())
