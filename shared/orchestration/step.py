"""The step protocol both orchestrators run, written once.

An orchestrator step is one atomic artiflow run (:func:`open_step`): every version it logs is
committed in one transaction when the step's function succeeded, none when anything fails, so
a failed try commits nothing. :class:`StepRun` records what the step used and produced (what
the orchestrator then reports) and knows the default distributed id its parallel writers share.
It also writes the step's log lines (:mod:`.report`): one per input used, one per output
committed (new version or reused), and one saying that nothing was committed when the step
fails; each integration sends them to its task log by overriding :meth:`StepRun.say`.
:class:`StepCall` is one call of a decorated function: resolve the inputs, draft the outputs,
absorb the function's return, log/upsert/finish the outputs, and give back the references.

Each integration adds only its run identity and its reporting (Airflow: XCom, asset events,
OpenLineage; Prefect: UI artifacts and asset events).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..artifact import Artifact
from ..errors import DistributedError, InvalidSpec
from ..formatting import format_size
from ..registry import Registry
from ..run import Run
from .report import input_line, nothing_committed_line, output_line
from .specs import Input, Output, absorb_return, draft_outputs, require_filled

__all__ = ["StepCall", "StepRun", "default_distributed_id", "open_step", "ref_of"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_distributed_id(name: str, *scope: str) -> str:
    """The distributed id every writer of ``name`` within one pipeline run shares.

    ``scope`` names the pipeline run (Airflow: dag id and run id; Prefect: the flow run id).
    Readable (``<scope>.<name>`` with unsafe characters replaced) and unique (a hash of the
    exact values is appended, so two scopes that sanitise alike never collide).
    """
    values = [*scope, name]
    digest = hashlib.md5("\x00".join(values).encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{_UNSAFE.sub('_', '.'.join(values))[:100]}-{digest}"


def ref_of(value: object, param: str) -> str:
    """An input's value as a reference: a string, a committed artifact, or an upstream
    step's result (``{output: "name:v3"}``) holding one under the input's name."""
    if isinstance(value, str):
        return value
    if isinstance(value, Artifact) and value.qualified_name:
        return value.qualified_name
    if isinstance(value, Mapping) and param in value:
        return ref_of(value[param], param)
    raise InvalidSpec(
        f"input {param!r} needs an artifact reference such as 'name:latest', got {value!r}"
    )


class StepRun:
    """An artiflow run opened for one orchestrator step; use it like :class:`artiflow.Run`.

    :param run: the atomic run (see :func:`open_step`).
    :param scope: what names the pipeline run, for :func:`default_distributed_id`; empty when
        the step runs outside one (distributed outputs then need an explicit id).
    """

    def __init__(self, run: Run, scope: Sequence[str] = ()) -> None:
        self.run = run
        self.scope = tuple(scope)
        self.used: list[Artifact] = []
        self.produced: list[Artifact] = []
        self.stored_at_once: list[str] = []

    @property
    def id(self) -> str:
        """The artiflow run id."""
        return self.run.id

    def say(self, line: str, level: int = logging.INFO) -> None:
        """Write one line to the step's log. The base class writes nowhere: an integration
        overrides it to reach its orchestrator's task log (Airflow: the task's log)."""

    def failure_line(self, error: BaseException) -> str:
        """The log line of a failed step: nothing committed, or (when distributed parts or
        versions were stored at once, before the failure) what stays."""
        if not self.stored_at_once:
            return nothing_committed_line(error)
        return (
            f"The step failed ({type(error).__name__}: {error}); the versions it logged were not "
            f"committed, but what it stored at once stays: {', '.join(self.stored_at_once)}"
        )

    def use_artifact(self, ref: str, type: str | None = None) -> Artifact:
        """Resolve ``ref`` and record it as an input of this step (logged: :meth:`say`)."""
        artifact = self.run.use_artifact(ref, type=type)
        self.used.append(artifact)
        self.say(input_line(artifact))
        return artifact

    def log_artifact(self, artifact: Artifact, aliases: Sequence[str] | None = None) -> Artifact:
        """Log ``artifact`` as an output; it is committed with the step's other versions when
        the step's block exits cleanly (``artifact.wait()`` inside the block raises)."""
        self.run.log_artifact(artifact, aliases=aliases)
        self.produced.append(artifact)
        return artifact

    def distributed_id(self, name: str) -> str:
        """The default distributed id for parts of ``name`` written in this pipeline run."""
        if not self.scope:
            raise DistributedError(
                f"distributed output {name!r} needs a pipeline run (or an explicit distributed_id)"
            )
        return default_distributed_id(name, *self.scope)

    def upsert_artifact(self, artifact: Artifact, distributed_id: str | None = None) -> Artifact:
        """Add ``artifact`` as one part of a distributed artifact, now (not deferred to the end
        of the step); the id defaults to :meth:`distributed_id`."""
        did = distributed_id or self.distributed_id(artifact.name)
        part = self.run.upsert_artifact(artifact, distributed_id=did)
        self.stored_at_once.append(f"a part of {artifact.name} ({did})")
        files = artifact.file_count
        self.say(
            f"Added a part of {artifact.name} under distributed id {did} "
            f"({files} {'file' if files == 1 else 'files'}, {format_size(artifact.size)})"
        )
        return part

    def finish_artifact(
        self,
        artifact: Artifact,
        distributed_id: str | None = None,
        aliases: Sequence[str] | None = None,
    ) -> Artifact:
        """Commit every part upserted under the distributed id as one version, now."""
        did = distributed_id or self.distributed_id(artifact.name)
        finished = self.run.finish_artifact(artifact, distributed_id=did, aliases=aliases)
        self.produced.append(finished)
        self.stored_at_once.append(str(finished.qualified_name))
        return finished

    def committed(self) -> list[Artifact]:
        """The produced artifacts, once the step's block has exited (their versions are set)."""
        for artifact in self.produced:
            artifact.wait()
        return list(self.produced)


S = TypeVar("S", bound=StepRun)


@contextmanager
def open_step(
    registry: Registry,
    identity: Mapping[str, Any],
    scope: Sequence[str] = (),
    *,
    step: Callable[[Run, Sequence[str]], S] = StepRun,  # type: ignore[assignment]
) -> Iterator[S]:
    """An atomic run for one step (see the module docstring); ``identity`` holds the run
    identity keys of :meth:`artiflow.Registry.run` (``None`` values are left out). ``step``
    builds what the block receives from the run and the scope: an integration passes its
    :class:`StepRun` subclass (or a factory of one) to add its own reporting.

    The step's log (:meth:`StepRun.say`) gets one line per committed output once the block
    exits cleanly, or the :meth:`StepRun.failure_line` when anything in it, or the commit,
    fails (the error is re-raised)."""
    keys = {k: v for k, v in identity.items() if v is not None}
    opened: S | None = None
    try:
        with registry.run(atomic=True, **keys) as run:
            opened = step(run, scope)
            yield opened
    except BaseException as err:
        if opened is not None and not isinstance(err, GeneratorExit):
            opened.say(opened.failure_line(err), logging.WARNING)
        raise
    if opened is not None:
        for artifact in opened.committed():
            opened.say(output_line(artifact))


class StepCall:
    """One call of a decorated step function, on an open :class:`StepRun`.

    ``use_inputs`` → (the function runs with the inputs and :attr:`drafts`) → ``commit`` with
    what it returned → (the run's block exits: the versions commit) → ``result``.
    """

    def __init__(
        self, run: StepRun, inputs: Mapping[str, Input], outputs: Mapping[str, Output]
    ) -> None:
        self.run = run
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.drafts = draft_outputs(self.outputs)
        for draft in self.drafts.values():  # references are added as the registry reads them
            draft.reference_options = run.run.registry.reference_options
        self.absorbed = False
        self._parts: dict[str, str] = {}

    def use_inputs(
        self, refs: Mapping[str, object], downloads: Collection[str] = ()
    ) -> dict[str, Artifact | Path]:
        """Use every input (recording the lineage edge): ``refs`` overrides an input's
        declared reference (an upstream step's result); inputs in ``downloads`` give their
        verified download directory instead of the artifact."""
        values: dict[str, Artifact | Path] = {}
        for param, spec in self.inputs.items():
            artifact = self.run.use_artifact(ref_of(refs.get(param, spec.ref), param), spec.type)
            values[param] = artifact.download() if param in downloads else artifact
        return values

    def commit(self, returned: Any) -> None:
        """After the function succeeded: fill outputs from its return value, then log them.

        Versions are logged first (each is checked against the registry when logged; they
        commit together when the run's block exits), then distributed parts and finishes,
        which the registry commits at once: a refused output fails the step before any of
        those is stored.
        """
        self.absorbed = absorb_return(returned, self.drafts)
        require_filled(self.drafts, self.outputs)
        for param, out in self.outputs.items():
            if out.mode == "log":
                self.run.log_artifact(self.drafts[param], aliases=list(out.aliases) or None)
        for param, out in self.outputs.items():
            artifact = self.drafts[param]
            if out.mode == "upsert":
                did = out.distributed_id or self.run.distributed_id(artifact.name)
                self.run.upsert_artifact(artifact, distributed_id=did)
                self._parts[param] = did
            elif out.mode == "finish":
                self.run.finish_artifact(
                    artifact, distributed_id=out.distributed_id, aliases=list(out.aliases) or None
                )

    def refs(self) -> dict[str, str]:
        """Output → ``"name:vN"`` (the distributed id for an upserted part), once committed."""
        return {
            param: self._parts.get(param) or str(self.drafts[param].qualified_name)
            for param in self.outputs
        }

    def result(self, returned: Any) -> Any:
        """What the step returns: the function's own value when the outputs did not absorb
        it, else the reference of its one output, ``{output: reference}`` for several, or
        ``None`` without outputs."""
        if not self.absorbed:
            return returned
        refs = self.refs()
        if len(refs) == 1:
            return next(iter(refs.values()))
        return refs or None
