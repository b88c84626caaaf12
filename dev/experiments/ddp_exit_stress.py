"""Stress the exit of two-process CPU training: how many ``torchrun`` launches hang at the end.

A gloo process group freed while one of its worker threads waits for the GIL deadlocks the
process at exit (see :func:`rewardlab.distributed.close_process_group`). The hang is a race, so
this script runs the 2-process DDP test's command many times, several launches at once pinned to
one CPU (load makes the race likelier), each with a time limit, and counts the launches that
finished and the ones that hung.

Run::

    python -m dev.experiments.ddp_exit_stress --dir /tmp/ddp-stress --runs 10 --concurrent 3 --cpu 0

It builds a tiny random LLaMA and 64 demo pairs in ``--dir`` (as the tests do), then prints one
line per launch and a JSON summary (``hung`` is the number that ran past ``--timeout``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def setup(root: Path) -> tuple[Path, Path]:
    """A tiny LLaMA (tokenizer trained on demo texts) and 64 demo pairs, built once into ``root``."""
    from rewardlab.data.demo import generate_demo
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    data, model = root / "small.jsonl", root / "llama"
    if data.exists() and (model / "config.json").exists():
        return model, data
    rows = generate_demo(600, seed=0)
    texts = [r[k] for r in rows for k in ("prompt", "chosen", "rejected")]
    tok = train_tokenizer(texts, root / "tok", style="llama")
    build_tiny_model("llama", tok, model)
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:64]))
    return model, data


def launch(model: Path, data: Path, out: Path, cpu: str, timeout: float) -> tuple[str, float]:
    """One ``torchrun --nproc_per_node 2 -m rewardlab train`` launch; ``ok``, ``failed`` or ``hung``."""
    cmd = ["taskset", "-c", cpu, sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", "2", "-m", "rewardlab", "train", "--model", str(model), "--data", str(data)]
    cmd += ["--out", str(out), "--max-length", "64", "--batch-size", "4", "--learning-rate", "0.001"]
    cmd += ["--eval-split", "0.25", "--logging-steps", "1", "--max-steps", "3", "--precision", "fp32"]
    cmd += ["--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.time()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hung", time.time() - start
    return ("ok" if done.returncode == 0 else "failed"), time.time() - start


def main() -> None:
    """Build the model and data, run the launches, print each result and the counts."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=10, help="launches per concurrent slot")
    ap.add_argument("--concurrent", type=int, default=3)
    ap.add_argument("--cpu", default="0", help="taskset CPU list for every launch")
    ap.add_argument("--timeout", type=float, default=150.0)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    model, data = setup(args.dir)

    def slot(k: int) -> list[str]:
        results = []
        for i in range(args.runs):
            status, secs = launch(model, data, args.dir / f"out-{k}-{i}", args.cpu, args.timeout)
            print(f"slot {k} run {i}: {status} {secs:.0f} s", flush=True)
            results.append(status)
        return results

    with ThreadPoolExecutor(args.concurrent) as pool:
        statuses = [s for r in pool.map(slot, range(args.concurrent)) for s in r]
    print(json.dumps({s: statuses.count(s) for s in ("ok", "failed", "hung")} | {"launches": len(statuses)}))


if __name__ == "__main__":
    main()
