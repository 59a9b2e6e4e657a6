# The two commands a newcomer needs: `make demo` (the main job) and `make test` (every suite).
# uv builds three environments from uv.lock: the core (.venv), Airflow (.venv-airflow) and
# Prefect (.venv-prefect); Airflow 3 and Prefect 3 cannot share one (their fastapi pins clash).

SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
SYNC := $(UV) sync --frozen --python 3.11
export UV_PYTHON_DOWNLOADS ?= never
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT := false

# pytest exits 5 when a suite collects no test; that is not a failure of the suite.
PYTEST = rc=0; $(1)/bin/python -m pytest $(2) || rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

.PHONY: demo test test-core test-airflow test-prefect bench-smoke lint imports uv

uv:
	@test -x "$(UV)" || python3 -m pip install --user --quiet uv

.venv: uv pyproject.toml uv.lock
	$(SYNC) --extra dev
	@touch .venv

.venv-airflow: uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=.venv-airflow $(SYNC) --extra dev --extra airflow
	@touch .venv-airflow

.venv-prefect: uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=.venv-prefect $(SYNC) --extra dev --extra prefect --extra prefect-aws --extra prefect-gcp
	@touch .venv-prefect

demo: .venv
	.venv/bin/artiflow demo

lint: .venv imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/xenon --max-absolute C shared airflow_provider prefect_blocks

# import-linter reads the import graph from a copy of the tree laid out as the installed package
# (grimp cannot see through the package-dir mapping of an editable install).
imports: .venv
	@rm -rf build/lint && mkdir -p build/lint
	@cp -r shared build/lint/artiflow
	@cp -r airflow_provider build/lint/artiflow/airflow
	@cp -r prefect_blocks build/lint/artiflow/prefect
	PYTHONPATH=build/lint .venv/bin/lint-imports --no-cache

test-core: .venv
	@$(call PYTEST,.venv,tests/core)

test-airflow: .venv-airflow
	@$(call PYTEST,.venv-airflow,tests/airflow)

test-prefect: .venv-prefect
	@$(call PYTEST,.venv-prefect,tests/prefect)

# Every benchmark once in its tiny --smoke mode, so none of them rots: bench_airflow_* in
# .venv-airflow, bench_prefect_* in .venv-prefect (its ephemeral server may start slowly on a
# fresh machine), every other one in .venv. Each prints its ratio lines and how long it took.
bench-smoke: .venv .venv-airflow .venv-prefect
	@set -e; for script in benchmarks/bench_*.py; do \
	  case $$(basename $$script) in \
	    bench_airflow_*) venv=.venv-airflow ;; \
	    bench_prefect_*) venv=.venv-prefect ;; \
	    *) venv=.venv ;; \
	  esac; \
	  echo "== $$venv/bin/python $$script --smoke"; start=$$(date +%s); \
	  PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 $$venv/bin/python $$script --smoke; \
	  echo "== $$script: smoke run took $$(( $$(date +%s) - start )) s"; \
	done

test: lint test-core test-airflow test-prefect bench-smoke
