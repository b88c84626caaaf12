#!/usr/bin/env bash
# What it does: fills .gpu/ (git-ignored) with what scripts/gpu_checks.sh needs on a lent GPU
# machine, which can reach nothing: wheels (Python 3.12, manylinux x86-64) of the packages its
# image lacks or holds in another version than this checkout's .venv, the shared data files the
# GPU benchmarks read, and the MiniLM tokenizer files the tiny presets are built with.
#
# Run here (PyPI reachable), after `make test` has made .venv:
#   bash scripts/gpu_prepare.sh
# then on the GPU machine, carrying .gpu:  bash scripts/gpu_checks.sh [all|tests|score|train|serve]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA=${SHARED_DATA:-../shared/data}

rm -rf .gpu
mkdir -p .gpu/whl .gpu/data/hh-rlhf-helpful-base .gpu/minilm-tok

# The versions installed here, so the GPU run executes the code that was tested here.
# EXTRA adds more (e.g. EXTRA=pyarrow, about 40 MB, if the image's pyarrow is older than datasets needs).
pkgs="trl transformers datasets fastapi starlette uvicorn pydantic pydantic_core annotated-types
typing-inspection annotated-doc dill multiprocess peft ${EXTRA:-}"
specs=""
for p in $pkgs; do
    v=$("$PY" -m pip show "$p" 2>/dev/null | awk '/^Version:/{print $2}')
    [ -n "$v" ] || { echo "gpu_prepare: $p is not installed in .venv" >&2; exit 1; }
    specs="$specs $p==$v"
done
# shellcheck disable=SC2086
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/whl $specs

cp "$DATA/hh-rlhf-helpful-base/test.jsonl.gz" .gpu/data/hh-rlhf-helpful-base/
cp -r "$DATA/llmbar" .gpu/data/llmbar

tok=$("$PY" -c "from rewardlab.models.presets import resolve_model_path; print(resolve_model_path('minilm'))")
for f in config.json tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json; do
    [ -f "$tok/$f" ] && cp "$tok/$f" .gpu/minilm-tok/
done
du -sh .gpu
echo "gpu_prepare: ready; carry .gpu (the device tool's limit is 64 MiB with the working tree)"
