"""What every orchestrator integration shares: step specs, the step protocol, registry settings
and reporting payloads. ``artiflow.airflow`` and ``artiflow.prefect`` sit on this and add only
their run identity and their reporting; a third orchestrator would be a small package too.

- :mod:`.specs`: the ``inputs``/``outputs`` of a step (:class:`Input`, :class:`Output`).
- :mod:`.step`: one atomic run per step (:func:`open_step`, :class:`StepRun`), one call of a
  decorated function (:class:`StepCall`), the default distributed id.
- :mod:`.settings`: an orchestrator's stored settings → the process-wide registry.
- :mod:`.report`: the payloads orchestrators publish for a committed version.
"""

from __future__ import annotations

from .report import VersionSummary, event_extra
from .settings import (
    RegistrySettings,
    describe,
    make_settings,
    shared_registry,
    storage_options_from,
    with_credentials,
)
from .specs import (
    Input,
    InputSpec,
    Output,
    OutputSpec,
    add_source,
    check_distinct,
    check_keys,
    parse_input,
    parse_output,
    wants_path,
)
from .step import StepCall, StepRun, default_distributed_id, open_step, ref_of

__all__ = [
    "Input",
    "InputSpec",
    "Output",
    "OutputSpec",
    "RegistrySettings",
    "StepCall",
    "StepRun",
    "VersionSummary",
    "add_source",
    "check_distinct",
    "check_keys",
    "default_distributed_id",
    "describe",
    "event_extra",
    "make_settings",
    "open_step",
    "parse_input",
    "parse_output",
    "ref_of",
    "shared_registry",
    "storage_options_from",
    "wants_path",
    "with_credentials",
]
