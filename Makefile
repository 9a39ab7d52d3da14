# Slipway: two commands on a fresh machine.
#   make demo   - install everything, run the retraining DAG end to end on Fashion-MNIST
#   make test   - install everything, run the whole test suite
# Both are idempotent: installs are skipped when their inputs have not changed.

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON ?= python3
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
STAMPS := $(ROOT)/.stamps
APT_PACKAGES := dataset-fashion-mnist prometheus prometheus-pushgateway wrk chromium postgresql curl jq

# Airflow on the embedded defaults: metadata DB (SQLite) and logs inside the project folder.
export AIRFLOW_HOME := $(ROOT)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__EXECUTOR := LocalExecutor
export AIRFLOW__CORE__PARALLELISM := 4
export AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(ROOT)/.airflow/airflow.db
export AIRFLOW__API_AUTH__JWT_SECRET := slipway-local-only
# Airflow's own metrics over StatsD (InfluxDB-style tags become labels in statsd_exporter, see
# monitoring/statsd/mapping.yml); nothing listening on the port costs nothing (UDP).
export AIRFLOW__METRICS__STATSD_ON := True
export AIRFLOW__METRICS__STATSD_HOST ?= localhost
export AIRFLOW__METRICS__STATSD_PORT ?= 9125
export AIRFLOW__METRICS__STATSD_PREFIX := airflow
export AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED := True
export SLIPWAY_STORE_URL ?= file://$(ROOT)/.slipway/store
export SLIPWAY_METRICS_DIR ?= $(ROOT)/.slipway/metrics
export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONDONTWRITEBYTECODE := 1

AIRFLOW_PORT ?= 8080

.PHONY: demo test install apt venv airflow-db airflow lint static lock clean bench vendor-check monitor image-locks tools

demo: install airflow-db
	$(PY) -m scripts.demo

test: install
	$(MAKE) --no-print-directory static
	$(PY) -m pytest -q

install: apt venv tools

apt: $(STAMPS)/apt
$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: requirements.txt pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	rm -rf $(ROOT)/slipway.egg-info  # a second copy of the metadata on sys.path would load the plugin twice
	$(PY) -m pip check
	@touch $@

airflow-db: $(STAMPS)/airflow-db
$(STAMPS)/airflow-db: $(STAMPS)/venv
	@mkdir -p $(AIRFLOW_HOME)
	$(VENV)/bin/airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || { tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1; }
	@touch $@

# The Airflow UI and REST API on the same local state (scheduler, API server, triggerer, LocalExecutor).
# Login: admin, password in .airflow/simple_auth_manager_passwords.json.generated. Stop with Ctrl-C.
# `airflow standalone` starts its components by the bare name `airflow`: the venv's bin/ goes first
# on PATH so that works without an activated virtualenv (tests/airflow/test_make_airflow.py).
airflow: install airflow-db
	PATH="$(VENV)/bin:$$PATH" \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://localhost:$(AIRFLOW_PORT)/execution/ \
	AIRFLOW__API__WORKERS=1 \
	$(VENV)/bin/airflow standalone

# Prometheus (:9090) and a Pushgateway (:9091) on the project's local state; see README "Monitoring".
monitor: install
	$(PY) -m scripts.monitor

bench: install
	$(PY) bench/bench_validation.py
	$(PY) bench/bench_serving.py
	$(PY) bench/bench_training.py

# The vendored Data Docs assets equal their npm tarballs (needs npm and the registry).
vendor-check: install
	$(PY) -m scripts.vendor_assets

# Tools that cannot share the main lock (checkov pins its own boto3, networkx...): own venv.
TOOLS_VENV := $(ROOT)/.tools-venv
tools: $(STAMPS)/tools
$(STAMPS)/tools:
	@mkdir -p $(STAMPS)
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install -q checkov==3.3.30
	@touch $@

# One lock per image (docker/locks/), each a subset of requirements.txt; run after `make lock`.
image-locks: venv
	$(PY) -m scripts.image_locks

lint: install
	$(MAKE) --no-print-directory static

# Lint, format and type checks (boundaries too: ruff's banned imports, see ruff.toml files); also run by make test.
static:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Regenerate the lock after changing a top-level pin (keeps every package pinned).
lock:
	(echo "# Lock of the whole local environment (Airflow's constraints file cannot be fetched here)."; \
	 echo "# Regenerate with: make lock"; \
	 $(PY) -m pip freeze --exclude-editable | grep -vi "^slipway") > requirements.txt

clean:
	rm -rf $(STAMPS) $(ROOT)/.airflow $(ROOT)/.slipway
