"""Package-level promises: a sorted public API, no optional backend imported by `import artiflow`."""

from __future__ import annotations

import json
import subprocess
import sys

import artiflow
from artiflow import errors


def test_all_is_sorted_and_complete() -> None:
    assert artiflow.__all__ == sorted(artiflow.__all__)
    for name in artiflow.__all__:
        assert hasattr(artiflow, name)
    assert errors.__all__ == sorted(errors.__all__)


def test_every_error_is_an_artiflow_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.ArtiflowError)
    assert issubclass(errors.ArtifactNotFound, KeyError)
    assert issubclass(errors.InvalidName, ValueError)
    assert str(errors.ArtifactNotFound("no artifact 'x'")) == "no artifact 'x'"


def test_import_artiflow_imports_no_optional_backend() -> None:
    code = (
        "import sys, json, artiflow, artiflow.errors; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'s3fs','gcsfs','psycopg','airflow','prefect','openlineage','boto3','botocore'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
