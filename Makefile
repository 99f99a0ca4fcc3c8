# Every target works on a fresh clone: each depends on the installed venv.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
PACKAGES := libs/contracts libs/platform libs/cli services/intake services/matching services/scheduling services/notification services/portal tools/bench tools/demo
# uv itself: on PATH, else the pip-installed module (wherever pip put its script).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: install test test-unit test-integration lint demo bench lock up clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --user --quiet uv
	$(UV) venv --allow-existing --python 3.11 $(VENV)
	$(UV) pip install --python $(PY) --require-hashes --no-deps --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(PY) --no-deps $(foreach p,$(PACKAGES),-e $(p))
	@# Bytecode at install: with PYTHONDONTWRITEBYTECODE set (as on the shared machine),
	@# every process compiled every module again at import; `eropaf up` starts four at once.
	$(PY) -m compileall -q $(foreach p,$(PACKAGES),$(p)/src) >/dev/null
	@touch $@

# Re-resolve and export the hashed lock (uv.lock itself stays out of git: it records the registry).
lock:
	$(UV) lock --python 3.11
	$(UV) export --format requirements-txt --no-emit-workspace --all-groups --no-header --python 3.11 -o requirements.lock
	$(UV) export --format requirements-txt --no-emit-workspace --no-dev --no-header --python 3.11 -o deploy/requirements.lock

test: install
	$(VENV)/bin/pytest

test-unit: install
	$(VENV)/bin/pytest -m "unit"

test-integration: install
	$(VENV)/bin/pytest -m "integration"

MODULES := eropaf_contracts eropaf_platform eropaf_cli eropaf_intake eropaf_matching eropaf_scheduling eropaf_notification eropaf_portal eropaf_bench eropaf_demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(foreach m,$(MODULES),-p $(m))
	@# test folders one by one: several have a conftest.py of their own
	@for d in $$(find libs/*/tests services/*/tests tools/*/tests tests -name '*.py' -printf '%h\n' 2>/dev/null | cut -d/ -f1-3 | sort -u); do \
	  $(VENV)/bin/mypy $$d || exit 1; done
	$(PY) -m eropaf_contracts.snapshots
	$(PY) -m eropaf_platform.asyncapi

up: install
	$(VENV)/bin/eropaf up --data-dir $(or $(DATA_DIR),data)

# One simulated month of the region against the local stack; DEMO_ARGS e.g. "--keep --seed 2".
demo: install
	$(PY) -m eropaf_demo $(DEMO_ARGS)

bench: install
	$(PY) -m eropaf_bench

clean:
	rm -rf $(VENV)
