"""``rewardlab demo``: the main job on built-in defaults, end to end, on a CPU with nothing but PyPI.

Generates the demo dataset (2,000 rule-scored pairs, seed 0), summarises it with the bundled
MiniLM tokenizer, trains an embedding reward model (5-head ensemble on frozen MiniLM embeddings)
with 10 % of the prompts held out, and prints where everything is and what to look at first.
Run: ``rewardlab demo --out runs/demo`` (or ``make demo``). It replaces its own earlier outputs in OUT.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

console = Console()


def run_demo(out: str | Path, n: int = 2000, seed: int = 0, ensemble: int = 5) -> dict:
    """Run the demo into ``out``; return the training summary."""
    from rewardlab.data import load_preferences
    from rewardlab.data.demo import write_demo
    from rewardlab.data.summary import summarize, write_summary
    from rewardlab.models.presets import load_tokenizer
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import _quiet_transformers, train

    out = Path(out)
    _quiet_transformers()
    data_file = write_demo(out / "demo.jsonl", n=n, seed=seed)
    console.print(f"1/3 wrote {n} demo pairs to {data_file}", soft_wrap=True)
    summary = summarize(
        load_preferences(data_file), tokenizer=load_tokenizer("minilm"), max_length=128, source=str(data_file)
    )
    write_summary(summary, out / "summary")
    console.print(f"2/3 summarised the data into {out / 'summary'}", soft_wrap=True)
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)  # the demo's own earlier model
    console.print("3/3 training an embedding reward model (frozen MiniLM, 5 heads) ...")
    result = train(
        TrainConfig(
            data=str(data_file),
            out=str(model_dir),
            method="embedding",
            ensemble=ensemble,
            max_length=128,
            seed=seed,
        )
    )
    acc = result.summary["eval_metrics"].get("eval_accuracy")
    console.print(
        f"\nDone. Held-out accuracy {acc:.3f} on {result.summary['eval_pairs']['used']} pairs.\n"
        f"Look first at {out / 'summary' / 'data_summary.md'}\n(the chosen response is longer in 70 % of "
        f"pairs), then {model_dir / 'train_summary.json'} (metrics)\nand {model_dir / 'rewardlab.json'} "
        "(the model card).\n"
        f"Score with: RewardModel.from_pretrained('{model_dir}').score(prompts, responses)",
        soft_wrap=True,
    )
    return result.summary
