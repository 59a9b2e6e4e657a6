"""artiflow: typed, versioned artifacts with automatic lineage for Airflow DAGs and Prefect flows.

>>> import artiflow as af
>>> reg = af.Registry()                                   # doctest: +SKIP
>>> with reg.run(pipeline="etl", step="train") as run:    # doctest: +SKIP
...     data = run.use_artifact("cats:latest", type="dataset")
...     model = af.Artifact("cat-model", "model")
...     model.add_file("model.pt")
...     run.log_artifact(model, aliases=["best"])
"""

from __future__ import annotations

from . import errors
from .artifact import Artifact
from .errors import ArtifactNotFound, ArtiflowError
from .manifest import Manifest, ManifestEntry
from .records import RunInfo
from .registry import Registry
from .run import Run
from .tables import PartitionedTable, Table
from .version import __version__

__all__ = [
    "Artifact",
    "ArtifactNotFound",
    "ArtiflowError",
    "Manifest",
    "ManifestEntry",
    "PartitionedTable",
    "Registry",
    "Run",
    "RunInfo",
    "Table",
    "__version__",
    "errors",
]
