# The two commands a developer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench bench-renewals bench-completeness bench-portal lint translations extract-messages upgrade clean

# Every install is exactly uv.lock (versions and hashes), with the uv pinned in requirements-uv.txt:
# a release upstream changes nothing until `make upgrade` has passed the suite and the lock is committed.
UV_DIR := .uv
UV := $(UV_DIR)/bin/uv
export UV_PYTHON_DOWNLOADS := never

$(UV): requirements-uv.txt
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install --quiet --require-hashes -r requirements-uv.txt
	touch $@

# `make run` keeps the test tools when they are there (--inexact); `make test` adds them.
$(VENV)/.installed-run: pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --frozen --inexact --python $(PYTHON)
	touch $@

$(VENV)/.installed-test: pyproject.toml uv.lock | $(UV)
	$(UV) sync --quiet --frozen --extra test --python $(PYTHON)
	touch $@ $(VENV)/.installed-run

# Re-resolve every dependency to its newest release within pyproject.toml's ranges, then run the suite.
# Commit uv.lock only when it passes.
upgrade: | $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
	$(MAKE) test

translations: $(VENV)/.installed-run
	$(BIN)/pybabel compile --statistics -d portal/translations

extract-messages: $(VENV)/.installed-run
	$(BIN)/pybabel extract --no-location --sort-output --width 110 -F babel.cfg -k _l -k lazy_gettext -k N_ -o portal/translations/messages.pot portal
	$(BIN)/pybabel update --width 110 -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching --ignore-obsolete

run: translations
	$(FLASK) dev  # starts Redis, migrates, seeds the demo data, then the web portal and a worker

# Two processes (one per core on the CI machine), each test file kept in one of them (fixtures per module).
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test translations
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Orders and Stripe renewals through webhooks → RQ → the e-conomic sandbox, against a no-op RQ job (not
# part of `make test`); then the completeness report of a month of BENCH_ORDERS orders (bench-completeness,
# also on its own).
bench: $(VENV)/.installed-test translations
	$(BIN)/python -m tests.bench_pipeline $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-completeness

# The renewals section alone (BENCH_ARGS="--renewals 300").
bench-renewals: $(VENV)/.installed-test translations
	$(BIN)/python -m tests.bench_pipeline --orders 0 $(BENCH_ARGS)

# The completeness report of a month of BENCH_ORDERS (10000) orders against the sandboxes: time, API calls.
bench-completeness: $(VENV)/.installed-test translations
	$(BIN)/pytest tests/bench_completeness.py -p no:xdist -p no:cacheprovider -q -s

# The portal's pages over N transfers in PostgreSQL (BENCH_ARGS="--transfers 1000000"): p50/p95 per page.
bench-portal: $(VENV)/.installed-test translations
	$(BIN)/python -m tests.bench_portal $(BENCH_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check portal workers tests migrations wsgi.py

clean:
	rm -rf $(VENV) $(UV_DIR) .pytest_cache .ruff_cache
