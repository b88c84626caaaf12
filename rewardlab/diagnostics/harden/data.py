"""The data of ``rewardlab harden``: the original split, the training mixes, accuracy, the choice of k.

The reward model is retrained with its own options (the ``train_config`` of its ``rewardlab.json``)
on its original training pairs (split off its held-out pairs as its run split them: the same
``--eval-split`` and seed, or its ``--eval-data``) plus the exploit pairs of the checks, each
repeated ``k`` times, plus any probe pairs once. The held-out pairs stay held out (passed as
``--eval-data``), so held-out accuracy before and after is on the same pairs.

``k`` is chosen on a validation split of the exploit pairs (by prompt, ``--val-share``): one model
per candidate of ``--repeats`` is trained without the validation pairs; the chosen ``k`` is the most
accurate on them among those that lose at most ``--max-accuracy-drop`` held-out accuracy on the
original data (ties: the smaller ``k``; none within the bound: the one that loses least). With fewer
than ``--min-val-pairs`` validation pairs nothing is searched: the smallest ``k`` is taken. The final
model of the round is then trained on all exploit pairs with that ``k``. Used by
:mod:`rewardlab.diagnostics.harden.run` (``rewardlab harden``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError

#: Training options that harden sets itself (the rest are the original run's).
OWN_OPTIONS = ("data", "eval_data", "eval_split", "out", "overwrite", "resume", "format", "map")


def original_data(model: str, data: str | None) -> tuple[dict[str, Any], Any, Any]:
    """The stored training options of ``model`` and its original training and held-out pairs.

    Raises:
        RewardlabError: no train_config in its rewardlab.json, or its data cannot be read.
    """
    from rewardlab.models.backbone import read_info
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.recipes.preference_steps import load_preference_split

    stored = dict(read_info(model).get("train_config") or {})
    if not stored:
        raise RewardlabError(f"{model}: its rewardlab.json records no train_config: nothing to retrain with")
    if data:
        stored["data"] = data
    if not Path(str(stored.get("data"))).exists():
        raise RewardlabError(f"{model}: its training data {stored.get('data')} is gone (give --data)")
    try:
        cfg = TrainConfig(**stored)
    except (TypeError, ValueError) as exc:
        raise RewardlabError(f"{model}: its train_config cannot be read again ({exc})") from exc
    train, evals, _ = load_preference_split(cfg)
    return stored, train.training_pairs(), evals.training_pairs()


def pair_row(prompt: Any, chosen: Any, rejected: Any, category: str | None = None) -> dict[str, Any]:
    """One explicit preference row."""
    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return row if category is None else {**row, "category": category}


def mix(original: list[Any], exploits: list[dict[str, Any]], k: int, probes: list[Any]) -> list[dict]:
    """The training rows: the original pairs, every exploit pair ``k`` times, every probe pair once."""
    rows = [pair_row(p.prompt, p.chosen, p.rejected, p.category) for p in original]
    rows += [pair_row(e["prompt"], e["chosen"], e["rejected"], "rlcheck") for e in exploits] * k
    return rows + [pair_row(p.prompt, p.chosen, p.rejected, "probe") for p in probes]


def retrain(stored: dict[str, Any], rows: list[dict], heldout: Path | None, out: Path) -> Path:
    """Train the reward model again with its stored options on ``rows``; return its folder ``out``."""
    from rewardlab.io_utils import write_jsonl
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    data = write_jsonl(out.parent / f"{out.name}-train.jsonl", rows)
    options = {k: v for k, v in stored.items() if k not in OWN_OPTIONS}
    cfg = TrainConfig(
        **options, data=str(data), out=str(out), overwrite=True,
        eval_data=str(heldout) if heldout else None, eval_split=None if heldout else 0.0,
    )  # fmt: skip
    train(cfg)
    return out


def accuracy(scorer: Any, pairs: list[Any]) -> float | None:
    """Share of ``pairs`` (PreferencePair or exploit rows) whose chosen the scorer ranks higher (ties 1/2)."""
    if not pairs:
        return None

    def get(p: Any, key: str) -> Any:
        return p[key] if isinstance(p, dict) else getattr(p, key)

    prompts = [get(p, "prompt") for p in pairs]
    chosen = scorer(prompts, [get(p, "chosen") for p in pairs])
    rejected = scorer(prompts, [get(p, "rejected") for p in pairs])
    return sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True)) / len(
        pairs
    )


def split_exploits(rows: list[dict[str, Any]], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Exploit pairs split by prompt into training and validation (``share`` of the prompts)."""
    from rewardlab.data.split import held_out_prompts

    held = held_out_prompts([r["prompt"] for r in rows], share, seed)
    return [r for r in rows if r["prompt"] not in held], [r for r in rows if r["prompt"] in held]


def choose_k(
    stored: dict[str, Any],
    original: list[Any],
    heldout: tuple[Path | None, list[Any]],
    exploits: list[dict[str, Any]],
    probes: list[Any],
    opts: Any,
    base_accuracy: float | None,
) -> dict[str, Any]:
    """The weight ``k`` of the exploit pairs, chosen on held-out exploit pairs (see the module doc)."""
    from rewardlab.diagnostics.rlcheck.run import load_proxy, proxy_scorer

    repeats = sorted(set(opts.repeats))
    fit, val = split_exploits(exploits, opts.val_share, opts.seed)
    if len(repeats) == 1 or not fit or len(val) < opts.min_val_pairs:
        why = (
            "one candidate"
            if len(repeats) == 1
            else f"{len(val)} held-out exploit pairs ({len(fit)} to train on), fewer than the "
            f"{opts.min_val_pairs} a choice needs (--min-val-pairs): the smallest"
        )
        return {
            "k": repeats[0], "how": f"not searched ({why})", "candidates": [], "val_pairs": len(val),
            "fit_pairs": len(fit),
        }  # fmt: skip
    tried = []
    with tempfile.TemporaryDirectory(prefix="harden-k-") as tmp:
        for k in repeats:
            folder = retrain(stored, mix(original, fit, k, probes), heldout[0], Path(tmp) / f"k{k}")
            score = proxy_scorer(load_proxy([str(folder)]))
            acc = accuracy(score, heldout[1])
            drop = None if acc is None or base_accuracy is None else base_accuracy - acc
            tried.append(
                {"k": k, "exploit_val_accuracy": accuracy(score, val), "heldout_accuracy": acc, "drop": drop}
            )
    within = [t for t in tried if t["drop"] is None or t["drop"] <= opts.max_accuracy_drop]
    if within:
        best = max(within, key=lambda t: (t["exploit_val_accuracy"], -t["k"]))
        how = (
            f"the most accurate on {len(val)} held-out exploit pairs ({len(fit)} trained on) among the k "
            f"losing at most {opts.max_accuracy_drop} held-out accuracy"
        )
    else:
        best = min(tried, key=lambda t: (t["drop"], t["k"]))
        how = f"every k lost more than {opts.max_accuracy_drop} held-out accuracy: the one that lost least"
    return {"k": best["k"], "how": how, "candidates": tried, "val_pairs": len(val), "fit_pairs": len(fit)}
