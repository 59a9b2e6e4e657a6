"""Prefect suite harness: one test server for the session, isolated Prefect and artiflow dirs.

Prefect reads its settings when it is first imported, so the environment is set here, before
anything below imports it: ``PREFECT_HOME`` in a temp dir, analytics off (avoids a "database is
locked" at startup), warnings-only logging. ``tests/conftest.py`` points ``ARTIFLOW_HOME`` and
``ARTIFLOW_HASH_CACHE`` at a temp dir per test; the download cache follows here.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

_PREFECT_HOME = tempfile.mkdtemp(prefix="artiflow-prefect-home-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_TEST_MODE", None)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "example_dags"


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[str]:
    """One Prefect test server (SQLite in a temp dir) for the whole session; yields its API URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(autouse=True)
def _isolated_registries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh download cache per test; shared registries closed when the test ends."""
    from artiflow.prefect import close_shared_registries

    monkeypatch.setenv("ARTIFLOW_CACHE_DIR", str(tmp_path / "artiflow-cache"))
    yield
    close_shared_registries()


@pytest.fixture
def registry() -> Iterator[object]:
    """The registry the tasks use by default (``$ARTIFLOW_HOME``), for assertions."""
    import artiflow

    reg = artiflow.Registry()
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def load_example() -> Callable[[str], ModuleType]:
    """Return a loader of ``example_dags/<name>.py`` modules (see :func:`_load_example`)."""
    return _load_example


def _load_example(name: str) -> ModuleType:
    """Import ``example_dags/<name>.py`` as a module that process-pool workers can unpickle.

    Example files are not a package; their functions are registered with cloudpickle by value
    so a spawned worker does not need to import the module by name.
    """
    import cloudpickle

    module_name = f"artiflow_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load example {name!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    return module


class PrefectReader:
    """Reads back what flows left in the Prefect API: task runs, artifacts, events."""

    def task_runs(self, flow_run_id: str) -> dict[str, Any]:
        """Task runs of a flow run, by task run id."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
            )
        return {str(r.id): r for r in runs}

    def artifacts(self, key: str, flow_run_id: str | None = None) -> list[Any]:
        """Prefect artifacts with ``key`` (of one flow run, when given)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterFlowRunId,
            ArtifactFilterKey,
        )

        flt = ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        if flow_run_id is not None:
            flt.flow_run_id = ArtifactFilterFlowRunId(any_=[UUID(flow_run_id)])
        with get_client(sync_client=True) as client:
            return list(client.read_artifacts(artifact_filter=flt))

    def events(
        self,
        resource_id: str,
        *,
        prefix: str = "prefect.asset.",
        flow_run_id: str | None = None,
        expect: int = 1,
        timeout: float = 30.0,
    ) -> list[Any]:
        """Events about ``resource_id`` stored by the server; waits until ``expect`` arrive."""
        from prefect.client.orchestration import get_client
        from prefect.events.filters import (
            EventFilter,
            EventNameFilter,
            EventRelatedFilter,
            EventResourceFilter,
        )

        flt = EventFilter(
            event=EventNameFilter(prefix=[prefix]),
            resource=EventResourceFilter(id=[resource_id]),
        )
        if flow_run_id is not None:
            flt.related = EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"])
        deadline = time.monotonic() + timeout
        while True:
            with get_client(sync_client=True) as client:
                events = list(client.read_events(filter=flt, limit=50).events)
            if len(events) >= expect or time.monotonic() > deadline:
                return events
            time.sleep(0.5)


@pytest.fixture
def prefect_api() -> PrefectReader:
    """Read task runs, artifacts and events back through the Prefect API."""
    return PrefectReader()
