"""Learning-rate × epochs sweep of full fine-tuning on HH-RLHF helpful, chosen on validation only.

Issue 18, item 2. The data are split by prompt with the project's own rules: ``rewardlab data split
--folds 5 --seed 42`` (the folds of ``rewardlab bench embedding``); test fold 0 is held out and never
used to choose. From fold 0's training folds, the prompts are shuffled with
:func:`rewardlab.data.split.shuffled_keys` (seed 42) and dealt to a validation set (the first
prompts, up to ``--val-pairs`` pairs) and a sweep training set (the next prompts, up to
``--train-pairs`` pairs), so no prompt is in both.

Each config is one plain ``rewardlab train`` command (printed, and stored in the result JSON); a
3-epoch run with ``--eval-steps`` = one epoch's steps gives the 1-, 2- and 3-epoch validation
accuracies. At most ``--parallel`` runs at a time, each with ``OMP_NUM_THREADS=1``; wall time and
peak RSS are measured per run (``os.wait4``).

Run::

    python -m dev.experiments.sweep_finetune prepare \
        --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz \
        --dir /tmp/sweep --train-pairs 320 --val-pairs 240
    python -m dev.experiments.sweep_finetune run --dir /tmp/sweep --lr 1e-4 --lr 1e-5 --epochs 3
    python -m dev.experiments.sweep_finetune run --dir /tmp/sweep --lr 1e-3 --lora --epochs 3 --parallel 1
    python -m dev.experiments.sweep_finetune evaluate --dir /tmp/sweep --name winner \
        --model full-lr3e-05-ep3 --data hh-fold0=/tmp/sweep/folds/fold0/test.jsonl
    python -m dev.experiments.sweep_finetune collect --dir /tmp/sweep --out docs/bench/minilm-sweep.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rewardlab.data import load_preferences
from rewardlab.data.schema import text_key
from rewardlab.data.split import shuffled_keys, write_pairs


def prepare(data: str, out: Path, train_pairs: int, val_pairs: int, seed: int, fold: int = 0) -> dict:
    """Folds by prompt (``fold`` held out), then validation and sweep-training sets from its train."""
    split = ["data", "split", data, "--out", str(out / "folds"), "--folds", "5", "--seed", str(seed)]
    subprocess.run([sys.executable, "-m", "rewardlab", *split], check=True)
    pairs = load_preferences(str(out / "folds" / f"fold{fold}" / "train.jsonl")).pairs
    by_prompt: dict[str, list] = {}
    for p in pairs:
        by_prompt.setdefault(text_key(p.prompt), []).append(p)
    val: list = []
    train: list = []
    for key in shuffled_keys(by_prompt, seed):
        if len(val) < val_pairs:
            val.extend(by_prompt[key])
        elif len(train) < train_pairs:
            train.extend(by_prompt[key])
    write_pairs(val, out / "val.jsonl")
    write_pairs(train, out / "train.jsonl")
    record = {
        "fold": fold,
        "fold_train_pairs": len(pairs),
        "val_pairs": len(val),
        "train_pairs": len(train),
        "seed": seed,
    }
    (out / "prepare.json").write_text(json.dumps(record, indent=2))
    return record


def command(d: Path, name: str, lr: float, epochs: int, lora: bool, args: argparse.Namespace) -> list[str]:
    """The ``rewardlab train`` command of one config."""
    steps_per_epoch = -(-json.loads((d / "prepare.json").read_text())["train_pairs"] // args.batch_size)
    cmd = ["rewardlab", "train", "--model", args.model, "--data", str(d / "train.jsonl"),
           "--eval-data", str(d / "val.jsonl"), "--out", str(d / "runs" / name), "--max-length",
           str(args.max_length), "--batch-size", str(args.batch_size), "--learning-rate", str(lr),
           "--epochs", str(epochs), "--eval-steps", str(steps_per_epoch), "--save-steps", "100000",
           "--norm-samples", "64", "--seed", str(args.seed), "--overwrite"]  # fmt: skip
    if args.head_init != "model":
        cmd += ["--head-init", args.head_init]
    return [*cmd, "--lora", "--lora-r", "16"] if lora else cmd


def child_meta(
    cmd: list[str], start: float, status: int, usage: object, threads: str = "OMP_NUM_THREADS=1 "
) -> dict:
    """The command (after ``threads``), wall time, peak RSS and exit code of a finished child process."""
    return {
        "command": threads + " ".join(cmd),
        "wall_s": round(time.time() - start, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "exit": os.waitstatus_to_exitcode(status),
    }


def write_meta(path: Path, cmd: list[str], start: float, status: int, usage: object) -> dict:
    """:func:`child_meta`, written to ``path``."""
    meta = child_meta(cmd, start, status, usage)
    path.write_text(json.dumps(meta, indent=2))
    return meta


def run_jobs(jobs: list[tuple[str, list[str]]], runs: Path, parallel: int) -> None:
    """Run each (NAME, ``rewardlab ...`` command), ``parallel`` at a time with one thread each.

    The output goes to ``runs/NAME.log``; wall time, peak RSS and exit code to ``runs/NAME.meta.json``.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    pending, running = list(jobs), {}
    runs.mkdir(parents=True, exist_ok=True)
    while pending or running:
        while pending and len(running) < parallel:
            name, cmd = pending.pop(0)
            log = (runs / f"{name}.log").open("w")
            exe = [sys.executable, "-m", "rewardlab", *cmd[1:]]
            proc = subprocess.Popen(exe, env=env, stdout=log, stderr=subprocess.STDOUT)
            running[proc.pid] = (name, cmd, time.time())
            print("started", " ".join(cmd), flush=True)
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        name, cmd, start = running.pop(pid)
        meta = write_meta(runs / f"{name}.meta.json", cmd, start, status, usage)
        print("done", name, meta, flush=True)


def run(args: argparse.Namespace) -> None:
    """Run every config (``--parallel`` at a time), recording wall time and peak RSS."""
    d = Path(args.dir)
    tail = (f"-h{args.head_init}" if args.head_init != "model" else "") + (
        f"-s{args.seed}" if args.seed != 42 else ""
    )
    names = [(f"{'lora' if args.lora else 'full'}-lr{lr}-ep{args.epochs}{tail}", lr) for lr in args.lr]
    jobs = [(name, command(d, name, lr, args.epochs, args.lora, args)) for name, lr in names]
    run_jobs(jobs, d / "runs", args.parallel)


def evaluate(d: Path, name: str, models: list[str], data: list[str]) -> dict:
    """``rewardlab eval`` of sweep models (``NAME=runs/NAME``) on ``data``, with wall time and peak RSS."""
    named = [f"--model={m}={d / 'runs' / m}" for m in models] + [f"--data={x}" for x in data]
    cmd = ["rewardlab", "eval", *named, "--out", str(d / "evals" / name), "--check-pairs", "0"]
    start = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rewardlab", *cmd[1:]], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    return write_meta(d / "evals" / f"{name}.meta.json", cmd, start, status, usage)


KEPT = ("n_pairs", "accuracy", "accuracy_ci", "mean_margin", "length_baseline_accuracy",
        "accuracy_chosen_longer", "accuracy_chosen_shorter")  # fmt: skip


def paired(scores: Path) -> dict:
    """Per data set, with two models A, B: pairs only A gets right, only B, and the exact McNemar p."""
    import math

    right: dict[str, dict[str, list[bool]]] = {}
    for line in scores.read_text().splitlines():
        row = json.loads(line)
        for model, r in row["rewards"].items():
            right.setdefault(row["dataset"], {}).setdefault(model, []).append(r["chosen"] > r["rejected"])
    out = {}
    for data, by_model in right.items():
        if len(by_model) != 2:
            continue
        (a, ra), (b, rb) = by_model.items()
        only_a = sum(x and not y for x, y in zip(ra, rb, strict=True))
        only_b = sum(y and not x for x, y in zip(ra, rb, strict=True))
        n, k = only_a + only_b, min(only_a, only_b)
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
        out[data] = {f"only {a}": only_a, f"only {b}": only_b, "mcnemar_exact_p": p}
    return out


def collect_evals(d: Path) -> dict:
    """The kept metrics of every ``evaluate`` run, by evaluation and model."""
    out = {}
    for meta_file in sorted((d / "evals").glob("*.meta.json")):
        name = meta_file.name.removesuffix(".meta.json")
        results = json.loads((d / "evals" / name / "metrics.json").read_text())["results"]
        out[name] = {
            **json.loads(meta_file.read_text()),
            "results": {
                data: {model: {k: m.get(k) for k in KEPT} for model, m in by_model.items()}
                for data, by_model in results.items()
            },
            "paired": paired(d / "evals" / name / "scores.jsonl"),
        }
    return out


def collect(d: Path) -> dict:
    """Validation accuracy per evaluation step of every finished run, with its cost."""
    rows = []
    for meta_file in sorted((d / "runs").glob("*.meta.json")):
        name = meta_file.name.removesuffix(".meta.json")
        log = [json.loads(x) for x in (d / "runs" / name / "train_log.jsonl").read_text().splitlines()]
        evals = [r for r in log if "eval_accuracy" in r]
        curve = {}
        for r in evals:  # the end-of-run evaluation repeats the last periodic one
            curve[str(round(r.get("epoch", 0), 2))] = {
                "step": r.get("step"),
                "val_accuracy": r["eval_accuracy"],
                "val_loss": r.get("eval_loss"),
                "val_margin_mean": r.get("eval_margin_mean", r.get("eval_margin")),
            }
        rows.append({"name": name, **json.loads(meta_file.read_text()), "val_by_epoch": curve})
    prepared = json.loads((d / "prepare.json").read_text())
    return {"prepare": prepared, "runs": rows, "evals": collect_evals(d) if (d / "evals").exists() else {}}


def main() -> None:
    """Command line: prepare, run, collect."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--train-pairs", type=int, default=320)
    p.add_argument("--val-pairs", type=int, default=240)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--fold", type=int, default=0, help="The held-out test fold.")
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--lr", type=float, action="append", required=True)
    r.add_argument("--epochs", type=int, default=3)
    r.add_argument("--lora", action="store_true")
    r.add_argument("--model", default="minilm")
    r.add_argument("--max-length", type=int, default=256)
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--parallel", type=int, default=2)
    r.add_argument("--head-init", default="model", help="rewardlab train --head-init (model, zero, probe).")
    e = sub.add_parser("evaluate")
    e.add_argument("--dir", required=True)
    e.add_argument("--name", required=True)
    e.add_argument("--model", action="append", required=True)
    e.add_argument("--data", action="append", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--dir", required=True)
    c.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "prepare":
        print(prepare(a.data, Path(a.dir), a.train_pairs, a.val_pairs, a.seed, a.fold))
    elif a.cmd == "run":
        run(a)
    elif a.cmd == "evaluate":
        (Path(a.dir) / "evals").mkdir(parents=True, exist_ok=True)
        print(evaluate(Path(a.dir), a.name, a.model, a.data))
    else:
        Path(a.out).write_text(json.dumps(collect(Path(a.dir)), indent=2) + "\n")


if __name__ == "__main__":
    main()
