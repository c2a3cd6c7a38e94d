# The README's contract: `make demo` and `make test` work on a fresh machine from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT := false

.PHONY: install demo demo-docker test test-fast lint docs bench docker-up docker-down clean fuzz fuzz-cli fuzz-kedro fuzz-config

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e '.[dev,mlflow]'
	$(PY) -m pip install -q --no-deps 'google-cloud-pipeline-components==2.22.0'  # the [parity] extra
	touch $@

demo: install
	$(PY) -m pip install -q -e examples/spaceflights_lite
	cd examples/spaceflights_lite && ../../$(VENV)/bin/kedro-vertex-ci run-local

lint: install
	$(VENV)/bin/ruff check kedro_vertex_ci tests action bench
	$(VENV)/bin/mypy

docs: install
	$(PY) -m kedro_vertex_ci.docs_gen > docs/configuration.md

# The example end to end in containers: run-local builds examples/spaceflights_lite/Dockerfile with the local
# engine and runs every step in it. Offline machines have no Docker Hub, so the Dockerfile's BASE_IMAGE is
# swapped (a build argument, nothing else) for an image holding the example's dependencies, built from wheels.
DEMO_DEPS_IMAGE := kvc-demo/spaceflights-lite-deps:latest
demo-docker: install docker-up
	$(PY) -m pip install -q -e examples/spaceflights_lite
	eval "$$(bash scripts/docker-engine.sh up)" \
	  && bash scripts/build-project-image.sh examples/spaceflights_lite $(DEMO_DEPS_IMAGE) >/dev/null \
	  && cd examples/spaceflights_lite \
	  && ../../$(VENV)/bin/kedro-vertex-ci run-local --runner docker --build-arg BASE_IMAGE=$(DEMO_DEPS_IMAGE)

docker-up:
	bash scripts/docker-engine.sh up

docker-down:
	bash scripts/docker-engine.sh down

test: install lint docker-up
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -m "not slow and not docker"

# Longer fuzz tiers (make test runs each at scale 1). `fuzz` runs them all.
fuzz: fuzz-cli fuzz-kedro fuzz-config

fuzz-config: install
	KVC_FUZZ_SCALE=10 $(PY) -m pytest -q -p no:cacheprovider --timeout=0 tests/core/test_config_fuzz.py

fuzz-cli: install docker-up
	KVC_FUZZ_SCALE=10 KVC_DOCKERIGNORE_CASES=40 $(PY) -m pytest -q -p no:cacheprovider --timeout=0 \
		tests/cli/test_fuzz_cli.py tests/docker/test_dockerignore_oracle.py

bench: install
	$(PY) bench/run_all.py

# Kedro as the oracle: 3,000 generated cases' step DAGs, 1,000 cases run end to end by kedro run and run-local
# with every grouping. FUZZ_SEED replays a run (default: the time).
FUZZ_SEED ?=
fuzz-kedro: install
	$(PY) -m tests.equivalence.fuzz_kedro $(if $(FUZZ_SEED),--seed $(FUZZ_SEED))

clean:
	rm -rf $(VENV) .kedro-vertex-ci .pytest_cache .mypy_cache .ruff_cache
