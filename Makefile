# Two entry points: `make demo` and `make test`. Each sets itself up on a fresh
# machine: it uses the active virtual environment, or creates .venv here.
PYTHON ?= python3
ifdef VIRTUAL_ENV
PY := $(VIRTUAL_ENV)/bin/python
else
PY := .venv/bin/python
endif

.PHONY: demo test examples docs bench lint

$(PY):
	$(PYTHON) -m venv .venv

demo: $(PY)
	$(PY) -m pip install -q -e ".[plot]"
	$(PY) docs/examples/demo.py

test: $(PY)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pytest

# The use-case scripts of docs/examples (MNIST from SKAE_DATA_HOME); each
# rewrites its PNG in docs/images. The bench extra brings umap-learn, which
# neighbor_map compares with; the onnx extra serves onnx_export.
EXAMPLES := mnist_embedding mnist_reconstructions conv_vs_dense denoising_digits neighbor_map \
	compare_with_pca onnx_export \
	vae_samples features_gridsearch mnist_loadings tabular_loadings

examples: $(PY)
	$(PY) -m pip install -q -e ".[plot,bench,onnx]"
	set -e; for name in $(EXAMPLES); do $(PY) docs/examples/$$name.py; done

# The documentation site, into docs/_build/html, from scratch (what Sphinx and
# the gallery generate is removed first, as in a fresh clone): it runs every gallery example
# (the MNIST ones need SKAE_DATA_HOME, else they are shown without output),
# fails on any warning, then checks the built site (links, images, search,
# gallery output; headless Chromium when installed). DOCS_CHECK=--strict
# makes a missing browser, or MNIST examples that could not run, errors (CI).
docs: $(PY)
	$(PY) -m pip install -q -e ".[docs]"
	rm -rf docs/_build docs/auto_examples docs/generated docs/benchmarks/results docs/sg_execution_times.rst
	$(PY) -m sphinx -b html -W --keep-going docs docs/_build/html
	$(PY) docs/check_site.py $(DOCS_CHECK)

bench: $(PY)
	$(PY) -m pip install -q -e ".[bench]"
	$(PY) benchmarks/bench_speed.py
	$(PY) benchmarks/bench_quality.py

# The ruff that .pre-commit-config.yaml pins: formatting differs between releases.
lint: $(PY)
	$(PY) -m pip install -q ruff==0.17.6
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
