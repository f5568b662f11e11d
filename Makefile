# Two entry points (see README): `make search` and `make test`. Both set everything up first and
# are fast the second time (set-up is redone only when pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
# On a GPU machine pass the build you want, e.g. `make setup TORCH=torch==2.13.0+cu128`.
TORCH  ?= torch==2.13.0
# The demo's budget, chosen by measurement (docs/lab/measured-default-budget.md): the harshest cut of
# SmolLM2-135M whose first winner keeps half the teacher's score on most tasks. BUDGET=70M: the 2x cut.
BUDGET ?= 110M
PY     := $(VENV)/bin/python

.PHONY: setup assets search test lint unit clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# Fetch, verify, convert and tokenize the embedded teacher and corpus (a no-op once cached).
assets: setup
	$(PY) -m minitron fetch

# The main job on the embedded default: the whole search (about half an hour on 2 CPU cores once the
# teacher's samples are cached; README, docs/lab/measured-mix.md).
search: assets
	$(PY) search.py --budget $(BUDGET) $(ARGS)

lint: setup
	$(PY) -m ruff check minitron search search.py bench tests
	$(PY) -m ruff format --check minitron search search.py bench tests
	$(PY) -m mypy

# Two pytest workers, each taking whole files (a file's module fixtures run once): much of a test's
# time is one process importing torch or starting Ray while the other core idles (docs/lab/measured-commands.md).
unit: assets
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15

test: lint unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
