"""Artifact steps, whatever the orchestrator: the ``inputs``/``outputs`` specs.

The public name of :mod:`artiflow.orchestration.specs` (Airflow's ``@task.artifact`` and
Prefect's ``artifact_task`` take these)::

    from artiflow.steps import Input, Output
"""

from __future__ import annotations

from .orchestration import specs
from .orchestration.specs import *  # noqa: F403  (this module is that one's public name)

__all__ = specs.__all__
