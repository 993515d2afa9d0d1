# obs-platform: `make up` starts everything, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
HUDI_BUNDLE := org.apache.hudi:hudi-spark3.5-bundle_2.12:1.2.0
JARS := .cache/jars
BUNDLE_JAR := $(JARS)/hudi-spark3.5-bundle_2.12-1.2.0.jar
PSTEST := emulator/pstest/bin/pstest-emulator
FAKEGCS := emulator/fakegcs/bin/fake-gcs-server
JAVA17 := $(firstword $(wildcard /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/temurin-17-jdk-amd64))
export JAVA_HOME ?= $(JAVA17)
export PYSPARK_PYTHON := $(CURDIR)/$(VENV)/bin/python
# dagster.yaml is at the repo root; it keeps the instance under $OBS_HOME/dagster (scripts/up.py derives the
# same from OBS_HOME; these are for `dagster` commands run by hand through make)
export DAGSTER_HOME := $(CURDIR)
export OBS_DAGSTER_DIR ?= $(abspath $(or $(OBS_HOME),$(CURDIR)/var))/dagster
export OBS_DAGSTER_COMPUTE_LOGS ?= $(OBS_DAGSTER_DIR)/logs
PROGRESS := scripts/with_progress.sh

.PHONY: help deps test-deps test-fast chromium python jars sqlendpoint-deps emulator frontend up test lint clean metastore hive-sync thrift-server metastore-stop

help:
	@echo "make up     install what is missing, start the whole platform on 127.0.0.1, print the URLs"
	@echo "make test   install what is missing, run every test (Spark, Pub/Sub emulator, BFF, dashboard)"
	@echo "make test-fast  the tests without Spark, a browser or a whole-platform start (edit-test loop)"
	@echo "make deps   only install (Python env, Hudi bundle, Pub/Sub fallback, frontend build)"
	@echo "make lint   ruff"

deps: python jars sqlendpoint-deps emulator frontend

# --- Python environment (re-installed when pyproject.toml changes) --------------------------------------
python: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	@echo "==> Python environment ($(VENV)) from pyproject.toml"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PROGRESS) "pip install" $(VENV)/lib -- $(PY) -m pip install --progress-bar off -e ".[dev]" \
	  | grep --line-buffered -E "^(Collecting|Successfully|ERROR)" | sed -u 's/^/   /' || true
	@$(PY) -c "import pyspark, dagster, hudi, fastavro, fastapi" && touch $@

# --- Hudi's Spark bundle from Maven Central --------------------------------------------------------------
jars: $(BUNDLE_JAR)
$(BUNDLE_JAR):
	@echo "==> Hudi Spark bundle $(HUDI_BUNDLE) (Maven Central, ~80 MB)"
	@mkdir -p $(JARS)
	@$(PROGRESS) "Maven download" $(HOME)/.m2/repository/org/apache/hudi -- \
	  mvn -q -B dependency:copy -Dartifact=$(HUDI_BUNDLE) -DoutputDirectory=$(JARS) -Dmdep.overWriteIfNewer=true
	@test -s $@

# --- SQL endpoint: PostgreSQL server binaries (Debian) and the JDBC driver (Maven Central) ----------------
sqlendpoint-deps: python
	@PY=$(PY) JARS=$(JARS) scripts/sqlendpoint_deps.sh

metastore: python jars sqlendpoint-deps
	@$(PY) -m obs_platform.sqlendpoint metastore
hive-sync: python jars sqlendpoint-deps
	@$(PY) -m obs_platform.sqlendpoint hive-sync
thrift-server: python jars sqlendpoint-deps
	@$(PY) -m obs_platform.sqlendpoint thrift-server
metastore-stop:
	@$(PY) -m obs_platform.sqlendpoint stop

# --- Pub/Sub: gcloud's emulator when installed; the Go pstest fallback is built either way (it is tested) -
emulator: $(PSTEST) $(FAKEGCS)
# Cloud Storage stand-in (fake-gcs-server, Go) for the storage layer's gs:// tests and the cluster profile
$(FAKEGCS): emulator/fakegcs/go.mod emulator/fakegcs/go.sum
	@echo "==> Cloud Storage stand-in (Go, fake-gcs-server) -> $(FAKEGCS)"
	@if command -v go >/dev/null; then cd emulator/fakegcs && $(abspath $(PROGRESS)) "go build" $$(go env GOMODCACHE) -- \
	  go build -o bin/fake-gcs-server github.com/fsouza/fake-gcs-server ; \
	  else echo "   go not found: skipping fake-gcs-server (the gs:// tests will be skipped)"; fi
$(PSTEST): emulator/pstest/main.go emulator/pstest/go.mod emulator/pstest/go.sum
	@echo "==> Pub/Sub fallback emulator (Go, pstest) -> $(PSTEST)"
	@if command -v go >/dev/null; then cd emulator/pstest && go build -o bin/pstest-emulator . ; \
	  else echo "   go not found: skipping the pstest fallback (gcloud's emulator will be used)"; fi

# --- Dashboard ---------------------------------------------------------------------------------------------
frontend: frontend/node_modules/.package-lock.json frontend/.built
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	@echo "==> dashboard npm packages"
	@$(PROGRESS) "npm ci" frontend/node_modules -- bash -c 'cd frontend && npm ci --no-audit --no-fund --loglevel=error'
frontend/.built: frontend/node_modules/.package-lock.json $(shell find frontend/src -type f 2>/dev/null) frontend/package.json
	@echo "==> dashboard build"
	@cd frontend && npm run --silent build >/dev/null && touch .built

# --- Browser tests: Debian's Chromium (browsers cannot be downloaded by test tools here) ----------------------
chromium:
	@if [ ! -x /usr/bin/chromium ]; then echo "==> Debian chromium (browser tests)"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi

test-deps: deps chromium

# --- The two commands --------------------------------------------------------------------------------------
up: deps
	@$(PY) scripts/up.py

test: test-deps
	@echo "==> lint (ruff)"
	@$(VENV)/bin/ruff check obs_platform bff obs_platform_tests scripts $(wildcard bench)
	@echo "==> dashboard types (tsc --noEmit)"
	@cd frontend && npm run --silent typecheck
	@echo "==> Pub/Sub fallback (go test)"
	@if command -v go >/dev/null; then cd emulator/pstest && go test ./... ; fi
	@echo "==> tests"
	@$(PY) -m pytest

# The edit-test loop: no Spark, no browser, no whole-platform start (about a minute)
test-fast: python emulator
	@$(VENV)/bin/ruff check obs_platform bff obs_platform_tests scripts $(wildcard bench)
	@$(PY) -m pytest -m "not spark and not browser and not e2e"

lint: python
	@$(VENV)/bin/ruff check obs_platform bff obs_platform_tests scripts $(wildcard bench)

clean:
	-@$(PY) -m obs_platform.sqlendpoint stop 2>/dev/null
	rm -rf var .pytest_cache frontend/.built
