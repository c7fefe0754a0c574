# Two entry points: `make demo` and `make test`. Each sets itself up on a fresh
# machine: it uses the active virtual environment, or creates .venv here.
PYTHON ?= python3
ifdef VIRTUAL_ENV
PY := $(VIRTUAL_ENV)/bin/python
else
PY := .venv/bin/python
endif

.PHONY: demo test test-slow bench lint

$(PY):
	$(PYTHON) -m venv .venv

demo: $(PY)
	$(PY) -m pip install -q -e ".[plot]"
	$(PY) docs/examples/demo.py

test: $(PY)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pytest

test-slow: $(PY)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pytest -m slow

bench: $(PY)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_quality.py

lint: $(PY)
	$(PY) -m pip install -q ruff
	$(PY) -m ruff check .
