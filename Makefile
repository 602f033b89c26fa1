# The two commands a developer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench lint translations extract-messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-run

translations: $(VENV)/.installed-run
	$(BIN)/pybabel compile --statistics -d portal/translations

extract-messages: $(VENV)/.installed-run
	$(BIN)/pybabel extract --no-location --sort-output --width 110 -F babel.cfg -k _l -k lazy_gettext -k N_ -o portal/translations/messages.pot portal
	$(BIN)/pybabel update --width 110 -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching

run: translations
	$(FLASK) dev  # starts Redis, migrates, seeds the demo data, then the web portal and a worker

test: $(VENV)/.installed-test translations
	$(BIN)/pytest $(PYTEST_ARGS)

# Orders through webhooks → RQ → the e-conomic sandbox, against a no-op RQ job (not part of `make test`).
bench: $(VENV)/.installed-test translations
	$(BIN)/python -m tests.bench_pipeline $(BENCH_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check portal workers tests migrations wsgi.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
