#!/usr/bin/env bash
# What it does: the GPU checks of issues 4 and 7 in one run on a lent GPU machine (run by the
# device tool with `carry: [".gpu"]`, after scripts/gpu_prepare.sh here):
#   tests  pytest -m gpu: FlexAttention gradients through packed rows, scoring and embedding on
#          the GPU against the CPU, a short FlexAttention training run;
#   score  rewardlab bench score on HH-RLHF (256 responses) on cuda in float32 and bfloat16, and
#          bfloat16 with FlexAttention;
#   train  rewardlab bench train, native vs TRL, HH-RLHF at batch 8 and 32 (the HH rows of the table
#          in docs/benchmarks.md, in one command), and native with FlexAttention at batch 8;
#   serve  rewardlab bench serve with 16 clients on cuda;
#   fsdp   one-GPU FSDP2 through accelerate launch against a plain run: the distributed record and
#          the largest weight difference (printed to the log);
#   export rewardlab export of a short tiny-llama-30m run, scored by vLLM against rewardlab
#          (scripts/check_export_vllm.py; skipped when the image has no vllm).
# Results go to $OUT (at most 8 files come back): log.txt and one JSON per benchmark.
#
# Run: bash scripts/gpu_checks.sh [all|tests|score|train|serve|fsdp ...]   (default: all)
# A dry run of the plumbing on a CPU machine (no wheels, small sizes):
#   PY=.venv/bin/python SKIP_INSTALL=1 DEVICE=cpu N=16 REQUESTS=32 OUT=/tmp/gpu bash scripts/gpu_checks.sh score serve
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
N=${N:-256}
REQUESTS=${REQUESTS:-320}
export PYTHONUNBUFFERED=1 REWARDLAB_CACHE=/tmp/rewardlab-cache TOKENIZERS_PARALLELISM=false
parts=${*:-all}
want() { [[ " $parts " == *" all "* || " $parts " == *" $1 "* ]]; }

{
    if [ -z "${SKIP_INSTALL:-}" ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .gpu/whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
    # the image's own versions of what the carried wheels rely on (for diagnosing an import error)
    "$PY" -m pip list 2>/dev/null | grep -i -E \
        "^(pyarrow|fsspec|regex|tokenizers|huggingface.hub|accelerate|safetensors|numpy|pandas|typer|rich) "
    "$PY" -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'trl', trl.__version__, 'cuda', torch.cuda.is_available())"
    # the tiny-llama-30m preset, built as here (seeded) from the carried MiniLM tokenizer
    "$PY" -c "
import os
from pathlib import Path
from rewardlab.models.tiny import PRESET_SPECS, build_tiny_model
arch, size = PRESET_SPECS['tiny-llama-30m']
root = Path(os.environ['REWARDLAB_CACHE']) / 'presets' / 'tiny-llama-30m'
if not (root / 'config.json').exists():
    build_tiny_model(arch, Path('.gpu/minilm-tok'), root, **size)
print('preset', root)"
    HH=.gpu/data/hh-rlhf-helpful-base/test.jsonl.gz
    RL="$PY -m rewardlab"
    if want tests; then
        "$PY" -m pytest -q -m gpu tests/integration/test_gpu.py -p no:cacheprovider
    fi
    if want score; then
        for dt in float32 bfloat16; do
            $RL bench score --model tiny-llama-30m --data $HH --n "$N" --device "$DEVICE" --dtype $dt \
                --out "$OUT/score-$DEVICE-$dt.json"
        done
        if [ "$DEVICE" = cuda ]; then  # packed rows through FlexAttention block masks
            $RL bench score --model tiny-llama-30m --data $HH --n "$N" --device cuda --dtype bfloat16 \
                --attn-implementation flex_attention --out "$OUT/score-cuda-bfloat16-flex.json"
        fi
    fi
    if want train; then
        $RL bench train --model tiny-llama-30m --data $HH --batch-size 8,32 --pairs 64,128 \
            --max-length 1024 --engines native,trl --out "$OUT/train-table.json"
        $RL bench train --model tiny-llama-30m --data $HH --pairs 64 --batch-size 8 --max-length 1024 \
            --engines native --attn-implementation flex_attention --out /tmp/train-hh-b8-flex.json \
            && cp /tmp/train-hh-b8-flex.json "$OUT/"  # its .md stays behind: at most 8 files come back
    fi
    if want serve; then
        $RL bench serve --model tiny-llama-30m --data $HH --clients 16 --requests "$REQUESTS" --items 2 \
            --device "$DEVICE" --out "$OUT/serve-$DEVICE.json"
    fi
    if want fsdp; then
        $RL data demo --out /tmp/fsdp-demo.jsonl --n 64
        cat > /tmp/fsdp.yaml <<'YAML'
compute_environment: LOCAL_MACHINE
distributed_type: FSDP
num_machines: 1
num_processes: 1
mixed_precision: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_reshard_after_forward: true
YAML
        common="train --model tiny-llama-30m --data /tmp/fsdp-demo.jsonl --max-steps 3 --batch-size 8 \
            --max-length 256 --precision fp32 --learning-rate 1e-3 --save-steps 100000"
        $RL $common --out /tmp/plain-run
        "$PY" -m accelerate.commands.launch --config_file /tmp/fsdp.yaml -m rewardlab $common --out /tmp/fsdp-run
        "$PY" -c "
import json
from safetensors.torch import load_file
a, b = load_file('/tmp/plain-run/model.safetensors'), load_file('/tmp/fsdp-run/model.safetensors')
print('fsdp distributed:', json.load(open('/tmp/fsdp-run/train_summary.json'))['distributed'])
print('fsdp vs plain: same keys', a.keys() == b.keys(), 'max weight difference',
      max((a[k].float() - b[k].float()).abs().max().item() for k in a))"
    fi
    if want export; then
        $RL data demo --out /tmp/export-demo.jsonl --n 64
        $RL train --model tiny-llama-30m --data /tmp/export-demo.jsonl --out /tmp/export-run --max-steps 2 \
            --max-length 256 --eval-split 0 --save-steps 100000
        $RL export --model /tmp/export-run --out /tmp/export-dir --overwrite --check /tmp/export-demo.jsonl
        "$PY" scripts/check_export_vllm.py /tmp/export-dir /tmp/export-demo.jsonl
    fi
} 2>&1 | tee "$LOG"
