# Two commands do everything on a fresh machine:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: demo test install bench-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/selfrestore demo

test: install
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest

bench-deps: install
	$(PIP) -e '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info
