"""The fine-tuning arm of issue 18's mixed-kinds question: single-kind, pooled and kind-tagged models.

``rewardlab bench mixed`` answers "does one head on frozen embeddings hold several kinds of
preference data?" This script asks the same of full fine-tuning (MiniLM, the default recipe): per
kind a model trained on that kind alone (``single-KIND``), one model on all kinds pooled
(``pooled``), and one on the pooled data with the kind written into the prompt (``tagged``: the
prompt ends with ``[kind: KIND]``, and so do the test prompts; the text form of the bench's
``mixed-conditioned`` arm, which needs no new option: a deployed model gets the tag from the request).

Split: the bench's own, ``load_kinds`` and ``kind_folds`` (5 folds by prompt within each kind,
seed 42), so test fold 0 of each kind is the bench's fold 0. Training pairs: up to
``--train-pairs`` per kind, sampled (seed 42) from the other folds; no prompt of a test fold is
trained on. Each run is one plain ``rewardlab train`` command (printed and stored in the JSON),
with ``--eval-split 0`` (the test folds are only scored after training, by ``rewardlab eval``).

Run::

    python -m dev.experiments.mixed_finetune prepare --dir /tmp/mixft \
        --data hh-helpful=../shared/data/hh-rlhf-helpful-base/test.jsonl.gz \
        --data pandalm=../shared/data/pandalm/testset-v1.json --data llmbar=../shared/data/llmbar
    python -m dev.experiments.mixed_finetune run --dir /tmp/mixft
    python -m dev.experiments.mixed_finetune evaluate --dir /tmp/mixft
    python -m dev.experiments.mixed_finetune collect --dir /tmp/mixft --out docs/bench/mixed-finetune.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dev.experiments.mixed_kinds import kind_folds, load_kinds
from dev.experiments.sweep_finetune import child_meta, run_jobs
from rewardlab.data.split import write_pairs
from rewardlab.data.tags import tag_pairs


def prepare(args: argparse.Namespace) -> dict:
    """Write every run's training file and every kind's test file (plain and tagged)."""
    d = Path(args.dir)
    left_out: dict[str, dict[str, int]] = {}
    by_kind = load_kinds(args.data, False, None, args.seed, left_out)
    folds = kind_folds(by_kind, args.folds, args.seed)
    record: dict[str, Any] = {"seed": args.seed, "folds": args.folds, "test_fold": args.fold, "kinds": {}}
    pooled, pooled_tagged, start = [], [], 0
    for kind, pairs in by_kind.items():
        fold = folds[start : start + len(pairs)]
        start += len(pairs)
        test = [p for p, f in zip(pairs, fold, strict=True) if f == args.fold]
        rest = [p for p, f in zip(pairs, fold, strict=True) if f != args.fold]
        train = random.Random(args.seed).sample(rest, min(args.train_pairs, len(rest)))
        write_pairs(train, d / f"train-single-{kind}.jsonl")
        write_pairs(test, d / f"test-{kind}.jsonl")
        write_pairs(tag_pairs(test, kind), d / f"test-{kind}-tagged.jsonl")
        pooled += train
        pooled_tagged += tag_pairs(train, kind)
        record["kinds"][kind] = {"pairs": len(pairs), "train": len(train), "test": len(test)}
    write_pairs(random.Random(args.seed).sample(pooled, len(pooled)), d / "train-pooled.jsonl")
    write_pairs(random.Random(args.seed).sample(pooled_tagged, len(pooled_tagged)), d / "train-tagged.jsonl")
    record["left_out"] = left_out
    (d / "prepare.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    return record


def run_names(d: Path) -> list[str]:
    """The runs: every ``train-NAME.jsonl``, the longest (pooled) first."""
    files = sorted(d.glob("train-*.jsonl"), key=lambda f: -f.stat().st_size)
    return [f.name.removeprefix("train-").removesuffix(".jsonl") for f in files]


def command(d: Path, name: str, args: argparse.Namespace) -> list[str]:
    """The ``rewardlab train`` command of one run (the default recipe for the model's size)."""
    data, out = str(d / f"train-{name}.jsonl"), str(d / "runs" / name)
    return ["rewardlab", "train", "--model", args.model, "--data", data, "--eval-split", "0", "--out", out,
            "--max-length", str(args.max_length), "--save-steps", "100000", "--norm-samples", "64",
            "--seed", str(args.seed), "--overwrite"]  # fmt: skip


def run(args: argparse.Namespace) -> None:
    """Train every run not yet done, ``--parallel`` at a time with one thread each (wall time, peak RSS)."""
    d = Path(args.dir)
    pending = [n for n in run_names(d) if not (d / "runs" / f"{n}.meta.json").exists()]
    run_jobs([(n, command(d, n, args)) for n in pending], d / "runs", args.parallel)


def evaluate(args: argparse.Namespace) -> dict:
    """``rewardlab eval``: each single model on its kind, pooled on every kind, tagged on tagged tests."""
    d = Path(args.dir)
    kinds = list(json.loads((d / "prepare.json").read_text())["kinds"])
    jobs = {f"single-{k}": [f"{k}={d / f'test-{k}.jsonl'}"] for k in kinds}
    jobs["pooled"] = [f"{k}={d / f'test-{k}.jsonl'}" for k in kinds]
    jobs["tagged"] = [f"{k}={d / f'test-{k}-tagged.jsonl'}" for k in kinds]
    metas = {}
    for name, data in jobs.items():
        cmd = ["rewardlab", "eval", f"--model={name}={d / 'runs' / name}", *[f"--data={x}" for x in data],
               "--out", str(d / "evals" / name), "--check-pairs", "0"]  # fmt: skip
        start = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "rewardlab", *cmd[1:]])
        _, status, usage = os.wait4(proc.pid, 0)
        metas[name] = child_meta(cmd, start, status, usage, threads="")
    (d / "evals.json").write_text(json.dumps(metas, indent=2))
    return metas


KEPT = ("n_pairs", "accuracy", "accuracy_ci", "length_baseline_accuracy", "accuracy_chosen_longer",
        "accuracy_chosen_shorter")  # fmt: skip


def collect(args: argparse.Namespace) -> dict:
    """Per kind: each arm's test accuracy (and its change against ``single``), with every command and cost."""
    d = Path(args.dir)
    prepared = json.loads((d / "prepare.json").read_text())
    table: dict[str, dict[str, Any]] = {}
    for name in ("pooled", "tagged", *[f"single-{k}" for k in prepared["kinds"]]):
        results = json.loads((d / "evals" / name / "metrics.json").read_text())["results"]
        for kind, by_model in results.items():
            table.setdefault(kind, {})["single" if name.startswith("single-") else name] = {
                k: by_model[name].get(k) for k in KEPT
            }
    for row in table.values():
        for arm in ("pooled", "tagged"):
            row[arm]["change_vs_single"] = row[arm]["accuracy"] - row["single"]["accuracy"]
    runs = {n: json.loads((d / "runs" / f"{n}.meta.json").read_text()) for n in run_names(d)}
    report = {"prepare": prepared, "runs": runs, "evals": json.loads((d / "evals.json").read_text()),
              "by_kind": table}  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    """Command line: prepare, run, evaluate, collect."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dir", required=True)
    p.add_argument("--data", action="append", required=True, help="KIND=PATH, one per kind.")
    p.add_argument("--train-pairs", type=int, default=320)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold", type=int, default=0, help="The test fold.")
    p.add_argument("--seed", type=int, default=42)
    r = sub.add_parser("run")
    r.add_argument("--dir", required=True)
    r.add_argument("--model", default="minilm")
    r.add_argument("--max-length", type=int, default=256)
    r.add_argument("--seed", type=int, default=42)
    r.add_argument("--parallel", type=int, default=2)
    e = sub.add_parser("evaluate")
    e.add_argument("--dir", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--dir", required=True)
    c.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "prepare":
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    {"prepare": prepare, "run": run, "evaluate": evaluate, "collect": collect}[args.cmd](args)


if __name__ == "__main__":
    main()
