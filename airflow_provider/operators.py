"""Operators that log, use and finish artifact versions.

Every operator reaches the registry through :class:`~artiflow.airflow.hooks.ArtifactHook`
(``self.hook``), opens one registry run identified by the task instance, and returns a small
XCom value (plain strings and dicts). Produced artifacts are declared as outlets at parse time
(``Asset(uri="artiflow://<name>")``, or an AssetAlias when the name is templated), consumed ones
as inlets. Names, types, aliases and references are checked when the operator is built, and the
templated ones once rendered, before any file is read
(:func:`~artiflow.airflow.declarations.check_arguments`). The task log gets one line per input
used and per version logged, or that nothing was committed (:meth:`ArtifactHook.run`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

import artiflow
from artiflow.airflow.assets import declare_assets
from artiflow.airflow.declarations import check_arguments
from artiflow.airflow.hooks import ArtifactHook
from artiflow.airflow.lineage import ArtifactLineageMixin
from artiflow.errors import InvalidArgument

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["FinishArtifactOperator", "LogArtifactOperator", "UseArtifactOperator"]

log = logging.getLogger(__name__)

#: Files, directories or references: a list of sources, or a mapping entry name -> source.
Sources = Sequence[str] | Mapping[str, str]


def _pairs(sources: Sources | None, what: str) -> list[tuple[str | None, str]]:
    if not sources:
        return []
    if isinstance(sources, str):
        raise InvalidArgument(
            f"{what} must be a list of paths or a mapping name -> path, not a string"
        )
    if isinstance(sources, Mapping):
        return [(str(name), str(source)) for name, source in sources.items()]
    return [(None, str(source)) for source in sources]


class _ArtifactOperator(ArtifactLineageMixin, BaseOperator):
    """Shared plumbing: the hook and the connection id."""

    def __init__(
        self, *, artiflow_conn_id: str = ArtifactHook.default_conn_name, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.artiflow_conn_id = artiflow_conn_id

    @cached_property
    def hook(self) -> ArtifactHook:
        """The hook of ``artiflow_conn_id``."""
        return ArtifactHook(artiflow_conn_id=self.artiflow_conn_id)

    @property
    def described(self) -> str:
        """How errors name this task: ``LogArtifactOperator 'log_raw'``."""
        return f"{type(self).__name__} {self.task_id!r}"


class LogArtifactOperator(_ArtifactOperator):
    """Log local files and directories and remote references as a new artifact version.

    Returns the qualified name of the version (``"name:v3"``) through XCom; logging content
    identical to an existing version returns that version.

    .. code-block:: python

        LogArtifactOperator(
            task_id="log_raw",
            name="raw-data",
            type="dataset",
            files=["/data/{{ ds }}/orders.csv"],
            references={"customers.csv": "s3://bucket/customers.csv"},
            aliases=["{{ ds_nodash }}"],
        )

    :param name: the artifact name. (templated)
    :param type: the artifact type, e.g. ``dataset`` or ``model``. (templated)
    :param files: local files, as a list or a mapping entry name -> path. (templated)
    :param dirs: local directories, as a list or a mapping entry prefix -> path. (templated)
    :param references: URIs tracked by checksum without copying (``s3://``, ``gs://``,
        ``https://``...), as a list or a mapping entry name -> URI. (templated)
    :param metadata: JSON-safe metadata of the version. (templated)
    :param description: the version's description. (templated)
    :param aliases: aliases to point at the version. (templated)
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    """

    template_fields: Sequence[str] = (
        "name",
        "type",
        "files",
        "dirs",
        "references",
        "metadata",
        "description",
        "aliases",
    )
    template_fields_renderers = {"metadata": "json", "files": "json", "references": "json"}
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        name: str,
        type: str,
        files: Sources | None = None,
        dirs: Sources | None = None,
        references: Sources | None = None,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        aliases: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.type = type
        self.files = files
        self.dirs = dirs
        self.references = references
        self.metadata = metadata
        self.description = description
        self.aliases = aliases
        check_arguments(self.described, name=name, type=type, aliases=aliases)
        declare_assets(self, inputs=(), outputs=[name])

    def build_artifact(self) -> artiflow.Artifact:
        """The artifact described by the (rendered) arguments, not yet logged."""
        artifact = artiflow.Artifact(
            self.name, self.type, description=self.description, metadata=self.metadata
        )
        # references are read with the connection's options, as their downloads will be
        artifact.reference_options = self.hook.get_registry().reference_options
        for entry, path in _pairs(self.files, "files"):
            artifact.add_file(path, name=entry)
        for entry, path in _pairs(self.dirs, "dirs"):
            artifact.add_dir(path, name=entry)
        for entry, uri in _pairs(self.references, "references"):
            artifact.add_reference(uri, name=entry)
        return artifact

    def execute(self, context: Context) -> str:
        check_arguments(
            self.described, later=None, name=self.name, type=self.type, aliases=self.aliases
        )
        artifact = self.build_artifact()
        with self.hook.run(context) as run:
            self._artiflow_run = run
            run.log_artifact(artifact, aliases=list(self.aliases or []) or None)
        return str(artifact.qualified_name)


class UseArtifactOperator(_ArtifactOperator):
    """Resolve an artifact reference, record it as an input, and optionally download it.

    Returns a plain dict through XCom: ``{"ref": "name:v3", "name", "version", "type",
    "digest", "path"}`` where ``path`` is the local download directory (``None`` when
    ``download=False``). ``ti.xcom_pull(task_ids=..., key="ref")`` gives the pinned ``name:v3``.

    :param ref: ``name``, ``name:alias`` or ``name:vN``. (templated)
    :param type: the expected type; a different type fails the task. (templated)
    :param download: download (and verify) the files to a local directory.
    :param download_dir: where to download; default: artiflow's download cache. (templated)
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    """

    template_fields: Sequence[str] = ("ref", "type", "download_dir")
    ui_color = "#eaf0f8"

    def __init__(
        self,
        *,
        ref: str,
        type: str | None = None,
        download: bool = True,
        download_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ref = ref
        self.type = type
        self.download = download
        self.download_dir = download_dir
        check_arguments(self.described, ref=ref, type=type)
        declare_assets(self, inputs=[ref], outputs=())

    def execute(self, context: Context) -> dict[str, Any]:
        check_arguments(self.described, later=None, ref=self.ref, type=self.type)
        with self.hook.run(context) as run:
            self._artiflow_run = run
            artifact = run.use_artifact(self.ref, type=self.type)
            path: Path | None = None
            if self.download:
                path = artifact.download(self.download_dir)
        ref = str(artifact.qualified_name)
        result = {
            "ref": ref,
            "name": artifact.name,
            "version": artifact.version,
            "type": artifact.type,
            "digest": artifact.digest,
            "path": str(path) if path is not None else None,
        }
        context["ti"].xcom_push(key="ref", value=ref)
        if path is not None:
            self.log.info("Downloaded %s to %s", ref, path)
        return result


class FinishArtifactOperator(_ArtifactOperator):
    """Commit the parts of a distributed artifact as one version (after the parallel writers).

    Mapped ``@task.artifact`` writers with ``{"distributed": True}`` outputs (or
    :meth:`TaskRun.upsert_artifact`) add parts under an id derived from the DAG run and the
    name; this operator, placed downstream of them, finishes it. Returns ``"name:vN"``.

    :param name: the artifact name. (templated)
    :param type: the artifact type. (templated)
    :param distributed_id: the writers' id; default: derived from the DAG run and ``name``.
        (templated)
    :param aliases: aliases to point at the version. (templated)
    :param description: the version's description. (templated)
    :param metadata: JSON-safe metadata of the version. (templated)
    :param artiflow_conn_id: the ``artiflow`` connection (default ``artiflow_default``).
    """

    template_fields: Sequence[str] = (
        "name",
        "type",
        "distributed_id",
        "aliases",
        "description",
        "metadata",
    )
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        name: str,
        type: str,
        distributed_id: str | None = None,
        aliases: Sequence[str] | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.type = type
        self.distributed_id = distributed_id
        self.aliases = aliases
        self.description = description
        self.metadata = metadata
        check_arguments(self.described, name=name, type=type, aliases=aliases)
        declare_assets(self, inputs=(), outputs=[name])

    def execute(self, context: Context) -> str:
        check_arguments(
            self.described, later=None, name=self.name, type=self.type, aliases=self.aliases
        )
        artifact = artiflow.Artifact(
            self.name, self.type, description=self.description, metadata=self.metadata
        )
        with self.hook.run(context) as run:
            self._artiflow_run = run
            finished = run.finish_artifact(
                artifact,
                distributed_id=self.distributed_id or None,
                aliases=list(self.aliases or []) or None,
            )
        return str(finished.qualified_name)
