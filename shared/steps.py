"""Artifact steps, whatever the orchestrator: the ``inputs``/``outputs`` specs.

The public name of :mod:`artiflow.orchestration.specs` (Airflow's ``@task.artifact`` and
Prefect's ``artifact_task`` take these)::

    from artiflow.steps import Input, Output
"""

from __future__ import annotations

from .errors import EmptyOutput, InvalidSpec
from .orchestration.specs import (
    Input,
    InputSpec,
    Output,
    OutputSpec,
    absorb_return,
    add_source,
    check_distinct,
    check_keys,
    draft_outputs,
    parse_input,
    parse_output,
    require_filled,
    wants_path,
)

__all__ = [
    "EmptyOutput",
    "Input",
    "InputSpec",
    "InvalidSpec",
    "Output",
    "OutputSpec",
    "absorb_return",
    "add_source",
    "check_distinct",
    "check_keys",
    "draft_outputs",
    "parse_input",
    "parse_output",
    "require_filled",
    "wants_path",
]
