"""Package promises: a sorted public API, no optional backend imported by `import artiflow`."""

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
        "{'s3fs','gcsfs','psycopg','airflow','prefect','openlineage','boto3','botocore','alembic'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_import_artiflow_loads_no_resolver_until_one_is_used() -> None:
    """The protocol table is lazy: a resolver module is imported when its protocol is used."""
    code = (
        "import sys, json, artiflow; from artiflow.resolvers import resolver_for; "
        "before = sorted(m for m in sys.modules if m.startswith('artiflow.resolvers.')); "
        "resolver_for('s3://bucket/key'); "
        "after = sorted(m for m in sys.modules if m.startswith('artiflow.resolvers.')); "
        "print(json.dumps([before, after]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    assert before == ["artiflow.resolvers.base", "artiflow.resolvers.registry"]
    assert "artiflow.resolvers.cloud" in after and "s3fs" not in out.stdout


def test_readme_snippets_are_the_tested_files() -> None:
    """The README's Airflow DAG and Prefect flow are the files the orchestrator suites run."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), re.S)
    for path in ("tests/airflow/dags/readme_quickstart.py", "tests/prefect/readme_etl_flow.py"):
        assert (root / path).read_text() in blocks, f"README snippet differs from {path}"
    setup = re.search(r"## Set up\n.*?```bash\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert setup is not None
    commands = [line.split("#")[0].strip() for line in setup.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (root / ".ci" / "run").read_text()


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """pyproject lists packages by hand (the package-dir mapping): a new sub-package must be
    added there, or wheels ship without it."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set()
    for prefix, folder in config["package-dir"].items():
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder).parts
            found.add(".".join((prefix, *rel)))
    assert found == set(config["packages"])
