"""``rewardlab demo``: the main job on built-in defaults, end to end, on a CPU with nothing but PyPI.

Generates the demo dataset (2,000 rule-scored pairs, seed 0), summarises it with the bundled
MiniLM tokenizer, holds out 10 % of the prompts, trains an embedding reward model (5-head ensemble
on frozen MiniLM embeddings) on the rest, evaluates it on the held-out pairs with
``rewardlab eval`` (report.html, metrics.json), stress-tests it with ``rewardlab diagnose`` against
the demo's gold reward (diagnostics.html), and prints where everything is and what to look at
first.
Run: ``rewardlab demo --out runs/demo`` (or ``make demo``). It replaces its own earlier outputs in OUT.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from rewardlab.config import opt
from rewardlab.io_utils import check_out_folder

console = Console()


@dataclass(kw_only=True)
class DemoConfig:
    """Options of ``rewardlab demo``."""

    out: Path = opt(Path("runs/demo"), help="Output folder (its earlier demo outputs are replaced).")
    n: int = opt(2000, help="Demo pairs.")
    seed: int = opt(0, help="Seed of the data and the training.")
    ensemble: int = opt(5, help="Heads in the embedding ensemble.")

    def __post_init__(self) -> None:
        check_out_folder(self.out)


def run_demo(out: str | Path, n: int = 2000, seed: int = 0, ensemble: int = 5) -> dict:
    """Run the demo into ``out``; return the evaluation's metrics.json."""
    from rewardlab.data import load_preferences
    from rewardlab.data.demo import write_demo
    from rewardlab.data.split import split_by_prompt, write_pairs
    from rewardlab.data.summary import summarize, write_summary
    from rewardlab.diagnostics.config import DiagnoseConfig
    from rewardlab.diagnostics.diagnose import diagnose
    from rewardlab.evaluation.config import EvalConfig
    from rewardlab.evaluation.evaluate import evaluate
    from rewardlab.models.presets import load_tokenizer
    from rewardlab.runtime import quiet_transformers
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = Path(out)
    quiet_transformers()
    data_file = write_demo(out / "demo.jsonl", n=n, seed=seed)
    data = load_preferences(data_file)
    train_part, held_part = split_by_prompt(data, 0.1, seed)
    train_file = write_pairs(train_part.pairs, out / "train.jsonl")
    held_file = write_pairs(held_part.pairs, out / "heldout.jsonl")
    console.print(
        f"1/5 wrote {n} demo pairs to {data_file}: {len(train_part.pairs)} for training ({train_file}), "
        f"{len(held_part.pairs)} held out by prompt ({held_file})",
        soft_wrap=True,
    )
    summary = summarize(data, tokenizer=load_tokenizer("minilm"), max_length=128, source=str(data_file))
    write_summary(summary, out / "summary")
    console.print(f"2/5 summarised the data into {out / 'summary'}", soft_wrap=True)
    model_dir, eval_dir, diag_dir = out / "model", out / "eval", out / "diagnose"
    for old in (model_dir, eval_dir, diag_dir):
        if old.exists():
            shutil.rmtree(old)  # the demo's own earlier outputs
    console.print(f"3/5 training an embedding reward model (frozen MiniLM, {ensemble} heads) ...")
    train(
        TrainConfig(
            data=str(train_file),
            eval_data=str(held_file),
            out=str(model_dir),
            method="embedding",
            ensemble=ensemble,
            max_length=128,
            seed=seed,
        )
    )
    console.print("4/5 evaluating it on the held-out pairs ...")
    report = evaluate(
        EvalConfig(model=[f"demo={model_dir}"], data=[f"heldout={held_file}"], out=str(eval_dir), seed=seed)
    )
    console.print(
        "5/5 stress-testing it (rewardlab diagnose: probes, length, ensemble, best-of-N vs gold) ..."
    )
    diagnosis = diagnose(
        DiagnoseConfig(
            model=[str(model_dir)],
            data=str(held_file),
            out=str(diag_dir),
            gold="demo",
            max_responses=200,
            bon_prompts=max(10, n // 20),
            seed=seed,
        )
    )
    top = diagnosis["findings"][0]["title"] if diagnosis["findings"] else "no check fired"
    m = report["results"]["heldout"]["demo"]
    lo, hi = m["accuracy_ci"]
    console.print(
        f"\nDone. Held-out accuracy {m['accuracy']:.3f} (95 % interval {lo:.3f}-{hi:.3f}) on {m['n_pairs']} "
        f"pairs; the length-only baseline gets {m['length_baseline_accuracy']:.3f}.\n"
        f"Look first at {eval_dir / 'report.html'} (open it in a browser: agreement, margins, calibration,\n"
        f"length bias), then {diag_dir / 'diagnostics.html'} (what a policy could exploit; top finding:\n"
        f"{top}), {out / 'summary' / 'data_summary.md'} (the chosen one is longer in 70 % of\n"
        f"pairs), {eval_dir / 'metrics.json'} (numbers to diff) and {model_dir / 'rewardlab.json'} "
        "(the model card).\n"
        f"Score with: RewardModel.from_pretrained('{model_dir}').score(prompts, responses)",
        soft_wrap=True,
    )
    return report
