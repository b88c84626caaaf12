r"""``--debias-length`` with MiniLM full fine-tuning on confounded demo data, with ODIN's penalty weight λ.

The setting of the lab log, dev/LOG.md ("``--debias-length`` with full fine-tuning (MiniLM, demo
data)"): 600 demo training pairs with 90 % chosen-longer (data seed S), ``--model minilm``, full
fine-tuning, learning rate 5e-5, 2 epochs (150 steps), batch 8, max length 128, no evaluation
split; scored with ``RewardModel.score`` on balanced demo pairs (``--longer-chosen 0.5``): 400 of
seed 11 to choose λ (validation), 400 of seed 7 for the final numbers only (test). Each run sets
the config's ``length_corr_weight`` (``--length-corr-weight``) to λ (ODIN's ``λ |corr(r, log_len)|``
over the batch's responses, added to the loss); ``--lam off`` trains without ``--debias-length``.

Every run is added to the JSON ``--out`` (a run of the same λ, data seed and evaluation set
replaces the old one): overall accuracy, accuracy on chosen-longer and chosen-shorter pairs, the
gap (longer minus shorter), the learnt length coefficient and the wall time of training and
scoring; the file also holds per-λ means over the data seeds of each evaluation set.

Run (one thread; a training took 40-95 s and scoring 400 pairs about 8 s on a loaded 2-core CPU).
First λ on the validation pairs, then the test pairs, reusing the models of seeds 0 and 1::

    OMP_NUM_THREADS=1 python -m dev.experiments.debias_finetune --lam off --lam 0 --lam 0.1 --lam 1 --lam 10 \
        --seeds 0 1 --eval-seed 11 --dir /tmp/debias-ft --out docs/bench/debias-finetune.json
    OMP_NUM_THREADS=1 python -m dev.experiments.debias_finetune --lam off --lam 0 --lam 0.1 --seeds 0 1 2 3 \
        --eval-seed 7 --reuse --dir /tmp/debias-ft --out docs/bench/debias-finetune.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from rewardlab.data import load_preferences
from rewardlab.data.demo import write_demo
from rewardlab.data.schema import text_chars
from rewardlab.metrics import length_bias, pairwise_accuracy
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

#: The table's training setting (dev/LOG.md).
SETTING = {
    "model": "minilm",
    "max_length": 128,
    "batch_size": 8,
    "learning_rate": 5e-5,
    "epochs": 2.0,
    "eval_split": 0.0,
}
TRAIN_PAIRS, TRAIN_LONGER, EVAL_PAIRS = 600, 0.9, 400
#: Training responses scored for the normalisation (not used by the accuracies; few to save time).
NORM_SAMPLES = 64


def evaluate(model_dir: Path, data: Path) -> dict:
    """Accuracy, chosen-longer / chosen-shorter accuracy and their gap of ``model_dir`` on ``data``."""
    pairs = load_preferences(str(data)).pairs
    rm = RewardModel.from_pretrained(model_dir, device="cpu")
    prompts = [p.prompt for p in pairs]
    chosen = rm.score(prompts, [p.chosen for p in pairs])
    rejected = rm.score(prompts, [p.rejected for p in pairs])
    lengths = [(text_chars(p.chosen), text_chars(p.rejected)) for p in pairs]
    bias = length_bias(chosen, rejected, [c for c, _ in lengths], [r for _, r in lengths])
    longer, shorter = bias["accuracy_chosen_longer"], bias["accuracy_chosen_shorter"]
    return {
        "accuracy": pairwise_accuracy([c - r for c, r in zip(chosen, rejected, strict=True)]),
        "accuracy_chosen_longer": longer,
        "accuracy_chosen_shorter": shorter,
        "gap": round(longer - shorter, 4),
        "pairs": len(pairs),
    }


def train_once(lam: float | None, seed: int, workdir: Path, reuse: bool) -> tuple[Path, dict]:
    """Train with ``lam`` (``None``: without ``--debias-length``) on data seed ``seed``.

    With ``reuse``, a model this script already trained with the same λ and seed is kept (its
    ``run_meta.json`` says so) and scored again, e.g. on the test set once λ is chosen.
    """
    out = workdir / "runs" / f"lam{'off' if lam is None else f'{lam:g}'}-s{seed}"
    meta_path = out / "run_meta.json"
    if reuse and meta_path.is_file():
        return out, json.loads(meta_path.read_text())
    train_data = write_demo(workdir / f"train-s{seed}.jsonl", TRAIN_PAIRS, seed, TRAIN_LONGER)
    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(
        data=str(train_data),
        out=str(out),
        debias_length=lam is not None,
        length_corr_weight=lam or 0.0,
        norm_samples=NORM_SAMPLES,
        **SETTING,
    )
    start = time.time()
    summary = train(cfg).summary
    record = summary.get("debias_length") or {}
    meta = {
        "lambda": lam,
        "debias_length": lam is not None,
        "data_seed": seed,
        "length_coef": record.get("length_coef"),
        "steps": summary.get("steps"),
        "train_s": round(time.time() - start, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return out, meta


def means(runs: list[dict]) -> list[dict]:
    """Mean accuracy and gap per (evaluation set, λ) over the data seeds."""
    keys = sorted({(r["eval_set"], str(r["lambda"])) for r in runs})
    rows = []
    for eval_set, lam in keys:
        sel = [r for r in runs if (r["eval_set"], str(r["lambda"])) == (eval_set, lam)]
        rows.append(
            {
                "eval_set": eval_set,
                "lambda": sel[0]["lambda"],
                "data_seeds": sorted(r["data_seed"] for r in sel),
                "accuracy": round(statistics.mean(r["accuracy"] for r in sel), 4),
                "gap": round(statistics.mean(r["gap"] for r in sel), 4),
            }
        )
    return rows


def save(path: Path, new: dict) -> None:
    """Add ``new`` to the runs in ``path`` (replacing the same λ, data seed and evaluation set)."""
    old = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    key = (str(new["lambda"]), new["data_seed"], new["eval_set"])
    runs = [r for r in old["runs"] if (str(r["lambda"]), r["data_seed"], r["eval_set"]) != key] + [new]
    record = {
        "setting": {**SETTING, "train_pairs": TRAIN_PAIRS, "train_longer_chosen": TRAIN_LONGER},
        "eval_pairs": EVAL_PAIRS,
        "penalty": "lambda * |pearson(reward, log(1 + chars))| over each batch's responses (ODIN)",
        "runs": sorted(runs, key=lambda r: (r["eval_set"], str(r["lambda"]), r["data_seed"])),
        "means": means(runs),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def parse_lam(text: str) -> float | None:
    """A λ, or ``off`` (no ``--debias-length``)."""
    return None if text == "off" else float(text)


def main() -> None:
    """Train (or reuse) every (λ, data seed) in turn, score it on each set, write each result as it comes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lam", action="append", type=parse_lam, required=True, help="λ, or off")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="training data seeds")
    ap.add_argument("--eval-seed", type=int, nargs="+", required=True, help="11: validation, 7: test")
    ap.add_argument("--dir", type=Path, required=True, help="work folder (data, models)")
    ap.add_argument("--out", type=Path, required=True, help="result JSON")
    ap.add_argument("--reuse", action="store_true", help="score models already trained in --dir again")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for lam in args.lam:
            model_dir, meta = train_once(lam, seed, args.dir, args.reuse)
            for eval_seed in args.eval_seed:
                data = write_demo(args.dir / f"eval-s{eval_seed}.jsonl", EVAL_PAIRS, eval_seed, 0.5)
                start = time.time()
                run = {**meta, **evaluate(model_dir, data), "eval_set": eval_name(eval_seed)}
                run["score_s"] = round(time.time() - start, 1)
                save(args.out, run)
                print(json.dumps(run), flush=True)


def eval_name(seed: int) -> str:
    """How the JSON names an evaluation set."""
    return f"demo seed {seed}, {EVAL_PAIRS} pairs, longer-chosen 0.5"


if __name__ == "__main__":
    main()
