"""The ``artiflow`` command line (click + rich).

Every command takes ``--store`` and ``--database`` (default: ``$ARTIFLOW_STORE`` /
``$ARTIFLOW_DATABASE``, else the embedded registry in ``$ARTIFLOW_HOME``, ``~/.artiflow``).
Exit codes: 0 success, 1 an artiflow error (one line on stderr, no traceback), 2 bad usage.

``download NAME:REF [DIR]`` records what it wrote in ``<DIR>.artiflow.json`` beside the directory
(not inside it, so the directory holds exactly the artifact's files); ``verify DIR`` reads that
record, or takes the version as ``verify DIR NAME:REF``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from . import config
from .cli_format import FORMATS, dumps, ls_json, ls_table, show_json, show_tables, size
from .errors import ArtiflowError, InvalidMetadata
from .registry import Registry
from .version import __version__

__all__ = ["main", "marker_path"]

F = TypeVar("F", bound=Callable[..., Any])
MARKER_SUFFIX = ".artiflow.json"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


class _Group(click.Group):
    """Turns every :class:`ArtiflowError` into a one-line message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArtiflowError as err:
            message = " ".join(str(err).split())
            raise click.ClickException(message) from err


def _registry_options(fn: F) -> F:
    fn = click.option(
        "--database",
        envvar="ARTIFLOW_DATABASE",
        metavar="URL",
        help="SQLAlchemy URL of the metadata database [env: ARTIFLOW_DATABASE; "
        "default: sqlite in $ARTIFLOW_HOME].",
    )(fn)
    fn = click.option(
        "--store",
        envvar="ARTIFLOW_STORE",
        metavar="URL",
        help="fsspec URL of the blob store [env: ARTIFLOW_STORE; default: $ARTIFLOW_HOME/store].",
    )(fn)
    return fn


def _open(store: str | None, database: str | None) -> Registry:
    return Registry(store=store or None, database=database or None, openlineage=False)


def _console(stderr: bool = False) -> Console:
    """Rich output; piped (not a terminal, no ``COLUMNS``) it is 120 columns wide, not 80."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=120 if wide else None)


def _parsesize(text: str) -> int:
    raw = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = raw[-1:] if raw[-1:] in _UNITS and raw[-1:] else ""
    number = raw[: -len(unit)] if unit else raw
    try:
        return int(float(number) * _UNITS[unit])
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size like 500M, 2G or 1048576") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="artiflow")
@click.option("-v", "--verbose", is_flag=True, help="Log what artiflow does to stderr.")
def main(verbose: bool) -> None:
    """Typed, versioned artifacts with automatic lineage.

    The registry is chosen by --store/--database, else ARTIFLOW_STORE/ARTIFLOW_DATABASE, else
    the embedded one in ARTIFLOW_HOME (~/.artiflow).
    """
    if verbose:  # otherwise warnings reach stderr through logging's last-resort handler
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------------- ls / show
def _format_option(fn: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people, json for programs.",
    )(fn)


@main.command("ls")
@click.argument("name", required=False)
@_format_option
@_registry_options
def ls_command(name: str | None, fmt: str, store: str | None, database: str | None) -> None:
    """List artifacts, or the versions of NAME (each with its producing runs and status)."""
    with _open(store, database) as reg:
        counts: dict[str, int] | None = None
        if name is None:
            names = reg.names()
            counts = {n: count for n, _, count in names}
            records = [reg.meta.find(n) for n, _, count in names if count]
        else:
            records = reg.meta.versions(name)
        made_by = reg.meta.producers([r.id for r in records])
        aliases = reg.meta.aliases_for([r.id for r in records])
        where = reg.meta.safe_url
    if fmt == "json":
        click.echo(dumps(ls_json(records, counts, made_by, aliases)), nl=False)
    elif not records:
        _console().print(f"no artifacts in {where}")
    else:
        _console().print(ls_table(records, counts, made_by, aliases))


@main.command("show")
@click.argument("ref", metavar="NAME:REF")
@click.option(
    "--entries", "limit", default=20, show_default=True, help="Manifest entries to list (0: all)."
)
@_format_option
@_registry_options
def show_command(ref: str, limit: int, fmt: str, store: str | None, database: str | None) -> None:
    """Show one version: metadata, producer, consumers (with their run status) and a manifest
    summary."""
    with _open(store, database) as reg:
        art = reg.artifact(ref)
        entries = list(art.manifest)
        producer, consumers = art.logged_by(), art.used_by()
        if fmt == "json":
            click.echo(dumps(show_json(art, producer, consumers, entries, limit)), nl=False)
            return
        console = _console()
        for part in show_tables(art, producer, consumers, entries, limit):
            console.print(part)


# ---------------------------------------------------------------------------------- lineage
@main.command("lineage")
@click.argument("ref", metavar="NAME:REF")
@click.option("--upstream", is_flag=True, help="Only what the version came from.")
@click.option("--downstream", is_flag=True, help="Only what used the version.")
@click.option("--depth", type=click.IntRange(min=0), help="Hops to follow (default: all).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "dot", "mermaid", "json"]),
    default="tree",
    show_default=True,
    help="Output format.",
)
@_registry_options
def lineage_command(
    ref: str,
    upstream: bool,
    downstream: bool,
    depth: int | None,
    fmt: str,
    store: str | None,
    database: str | None,
) -> None:
    """Show the lineage of a version (both directions unless one is chosen)."""
    direction = "both" if upstream == downstream else "upstream" if upstream else "downstream"
    with _open(store, database) as reg:
        graph = reg.lineage(ref, direction=direction, depth=depth)
    render = {"tree": graph.to_tree, "dot": graph.to_dot, "mermaid": graph.to_mermaid}
    click.echo(render[fmt]() if fmt in render else graph.to_json() + "\n", nl=False)


# ------------------------------------------------------------------------- download / verify
def marker_path(directory: str | os.PathLike[str]) -> Path:
    """Where ``download`` records what it put in ``directory``: ``<directory>.artiflow.json``."""
    path = Path(directory).resolve()
    return path.with_name(path.name + MARKER_SUFFIX)


@main.command("download")
@click.argument("ref", metavar="NAME:REF")
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path(file_okay=False))
@click.option(
    "--hard-link",
    is_flag=True,
    help="Link the cache's files instead of copying them (faster; edits then change the cache).",
)
@_registry_options
def download_command(
    ref: str, directory: str | None, hard_link: bool, store: str | None, database: str | None
) -> None:
    """Download a version into DIR (default: $ARTIFLOW_ARTIFACT_DIR/NAME/VERSION), verified.

    Each file is your own copy (a reflink where the file system has them) unless --hard-link."""
    with _open(store, database) as reg:
        art = reg.artifact(ref)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TimeRemainingColumn(),
        )
        console = _console(stderr=True)  # no bar when stderr is a pipe or a log file
        with Progress(
            *columns, console=console, transient=True, disable=not console.is_terminal
        ) as progress:
            task = progress.add_task(str(art.qualified_name), total=art.file_count)

            def advance(files_done: int, files_total: int) -> None:
                # Called from download worker threads; Progress.update takes the bar's own lock.
                progress.update(task, completed=files_done, total=files_total)

            root = art.download(directory, progress=advance, hard_link=hard_link)
        marker = {
            "artifact": art.qualified_name,
            "digest": art.digest,
            "files": art.file_count,
            "store": reg.store_url,
            "database": reg.meta.safe_url,
        }
        marker_path(root).write_text(json.dumps(marker, indent=2) + "\n")
    click.echo(f"{art.qualified_name}: {art.file_count} files, {size(art.size)} in {root}")


@main.command("verify")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.argument("ref", metavar="[NAME:REF]", required=False)
@_registry_options
def verify_command(
    directory: str, ref: str | None, store: str | None, database: str | None
) -> None:
    """Check that DIR holds exactly a version's files (the one `download` put there)."""
    marker: dict[str, Any] = {}
    if ref is None:
        path = marker_path(directory)
        try:
            marker = json.loads(path.read_text())
        except FileNotFoundError:
            raise click.UsageError(
                f"{directory} has no download record ({path.name}); name the version: "
                "artiflow verify DIR NAME:REF"
            ) from None
        except json.JSONDecodeError as err:
            raise InvalidMetadata(f"{path} is not a download record: {err}") from err
        ref = str(marker["artifact"])
    with _open(store, database) as reg:
        art = reg.artifact(ref)
        if marker and marker.get("digest") != art.digest:
            raise InvalidMetadata(
                f"{directory} was downloaded from a registry whose {ref} has digest "
                f"{marker.get('digest')}; this registry's has {art.digest}"
            )
        art.verify(directory)
    click.echo(f"{directory}: matches {art.qualified_name} ({art.file_count} files)")


# ---------------------------------------------------------------------------------- db / cache
@main.group("db", cls=_Group)
def db_group() -> None:
    """Database maintenance."""


@db_group.command("upgrade")
@_registry_options
def db_upgrade_command(store: str | None, database: str | None) -> None:
    """Migrate the metadata database to this artiflow's schema (back it up first)."""
    from .db import upgrade_database

    where, before, after = upgrade_database(database or config.database_url())
    if before == after:
        click.echo(f"{where}: already at schema revision {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'an empty database'} to {after}")


@main.group("cache", cls=_Group)
def cache_group() -> None:
    """The local download cache (shared by every registry)."""


@cache_group.command("prune")
@click.option(
    "--max-bytes",
    "max_bytes",
    metavar="SIZE",
    help="Keep at most SIZE (e.g. 500M, 2G; 0 empties it). Default: the cache's limit.",
)
@click.option(
    "--cache-dir",
    envvar="ARTIFLOW_CACHE_DIR",
    type=click.Path(file_okay=False),
    help="The cache directory [env: ARTIFLOW_CACHE_DIR].",
)
@_registry_options
def cache_prune_command(
    max_bytes: str | None, cache_dir: str | None, store: str | None, database: str | None
) -> None:
    """Evict least recently used files until the cache fits in SIZE.

    --store/--database are accepted for symmetry; the cache is local and shared.
    """
    from .storage import BlobCache

    cache = BlobCache(cache_dir)
    limit = _parsesize(max_bytes) if max_bytes is not None else cache.max_bytes
    removed, freed = cache.prune(limit)
    click.echo(
        f"{cache.root}: removed {removed} files ({size(freed)}); {size(cache.total_bytes())} left"
    )


# ---------------------------------------------------------------------------------- demo
@main.command("demo")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    help="Run against a registry in this directory instead of the default.",
)
@_registry_options
def demo_command(home: str | None, store: str | None, database: str | None) -> None:
    """Run a small ETL pipeline twice and print the model's lineage."""
    from .demo import MODEL, run_demo

    base = Path(home).resolve() if home else config.artiflow_home()
    if home:
        store = store or str(base / "store")
        database = database or f"sqlite:///{base / 'registry.db'}"
    with Registry(store=store or None, database=database or None) as reg:
        click.echo(f"registry: {reg.store_url} + {reg.meta.safe_url}")
        run_demo(reg, base / "demo", echo=click.echo)
        graph = reg.lineage(f"{MODEL}:production", direction="both")
    click.echo(f"\nlineage of {MODEL}:production\n{graph.to_tree()}")
    prefix = f"ARTIFLOW_HOME={base} " if home else ""
    click.echo(f"next: {prefix}artiflow ls, {prefix}artiflow lineage {MODEL}:production")


if __name__ == "__main__":  # pragma: no cover
    main()
