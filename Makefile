# Quick start: `make demo` and `make test`. Both create .venv and install into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_OUT ?= runs/demo

.PHONY: demo test test-slow lint clean

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
	$(BIN)/rewardlab data demo --n 2000 --seed 0 --out $(DEMO_OUT)/demo.jsonl
	$(BIN)/rewardlab data summarize $(DEMO_OUT)/demo.jsonl --tokenizer minilm --max-length 64 --out $(DEMO_OUT)/summary
	rm -rf $(DEMO_OUT)/model
	$(BIN)/rewardlab train --model tiny-llama --data $(DEMO_OUT)/demo.jsonl --out $(DEMO_OUT)/model \
		--max-length 64 --batch-size 16 --epochs 2 --learning-rate 1e-3 --logging-steps 10
	@echo "Open $(DEMO_OUT)/summary/data_summary.md first, then $(DEMO_OUT)/model/train_summary.json."

test: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests
	$(BIN)/python -m pytest

test-slow: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -m slow

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check rewardlab tests
	$(BIN)/ruff format --check rewardlab tests

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
