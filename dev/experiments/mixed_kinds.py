"""Lab experiment: per-kind accuracy of one reward model trained on mixed kinds of data.

Does one reward model trained on several kinds of preference data lose accuracy on each kind, and
what wins it back?

Kinds that conflict pull one head in opposite directions: in helpful data a refusal loses, in
harmless data it wins, and one linear direction over frozen embeddings cannot reward refusing a
harmful request and punish refusing a harmless one at once. The bench splits each kind's pairs into
K folds by prompt (seeded, :func:`rewardlab.data.split.fold_of_prompts`, within each kind), embeds
every (prompt, response) once with the frozen :class:`~rewardlab.models.embedding.Embedder` (its
on-disk cache), and per fold trains on the other folds and scores each kind's held-out pairs with:

==================  ==========================================================================
arm                 head
==================  ==========================================================================
single              a linear head trained on that kind alone (the reference)
mixed-linear        one linear head on all kinds pooled
mixed-mlp           the MLP head (``--head mlp``) on all kinds pooled
mixed-conditioned   a linear head on ``[x, onehot(kind) ⊗ x]``: a shared head plus a correction
                    per kind, all under the one L2 chosen on validation; the kind known at test
mixed-routed        the conditioned head, the kind at test predicted from the prompt alone by a
                    logistic regression on prompt embeddings trained on the training folds (what
                    a deployed model can do: a request comes without a label)
==================  ==========================================================================

Heads are those of ``rewardlab train --method embedding`` (:func:`train_ensemble`, L2 chosen on
validation). The report gives per kind and arm the accuracy (mean ± std over folds), accuracy on
chosen-longer and chosen-shorter pairs, the drop against ``single`` and whether it is within
:data:`TARGET_DROP`; per kind the length-only baseline (the longer response wins) on the same pairs
and the router's held-out accuracy; and wall time, peak RSS and load average. The conditioned
features have (kinds + 1) × the embedding size. Conditioning is a measurement here; a conditioned
model is trained on prompts that carry the kind as text (``rewardlab data tag``,
:mod:`rewardlab.data.tags`).

Run from the repository root: ``python -m dev.experiments.mixed_kinds --data helpful=helpful.jsonl
--data harmless=harmless.jsonl --out mixed.json``, or with kinds from the records' ``category`` field:
``rewardlab data demo --n 2000 --over-refusal 0.3 --out demo.jsonl && python -m
dev.experiments.mixed_kinds --data demo.jsonl --by-category --out mixed.json``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rewardlab.bench.embedding import run_costs, sample_pairs, scored_pairs
from rewardlab.data.schema import PreferencePair, text_key
from rewardlab.errors import RewardlabError

ARMS = ("single", "mixed-linear", "mixed-mlp", "mixed-conditioned", "mixed-routed")
#: Most a mixed arm may fall below ``single`` on a kind's held-out pairs and still meet the target.
TARGET_DROP = 0.02
#: L2 penalties of the router, chosen on a validation share of the training prompts.
ROUTER_L2 = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


@dataclass
class MixedSet:
    """Pairs of several kinds, their fold and kind, and their embeddings (row i is pair i)."""

    kinds: list[str]
    pairs: list[PreferencePair]
    kind: torch.Tensor  # (N,) index into kinds
    fold: torch.Tensor  # (N,)
    xc: torch.Tensor  # (N, D) prompt + chosen
    xr: torch.Tensor  # (N, D) prompt + rejected
    xp: torch.Tensor  # (N, P) the prompt alone, for the router


def load_kinds(
    specs: Sequence[str],
    by_category: bool,
    max_pairs: int | None,
    seed: int,
    left_out: dict[str, dict[str, int]] | None = None,
) -> dict[str, list[PreferencePair]]:
    """Pairs per kind from ``KIND=PATH`` specs, or from one file's ``category`` field (``by_category``).

    Bad records are skipped and ties / identical responses are not trainable; ``left_out`` (if
    given) receives, per path, how many of each were left out, for the report.
    """
    from rewardlab.data import load_preferences

    def load(path: str) -> list[PreferencePair]:
        data = load_preferences(path, on_error="skip")
        found = data.training_pairs()
        if left_out is not None:
            untrainable = len(data.all_pairs(include_ties=True)) - len(found)
            left_out[path] = {"records_dropped": len(data.drops), "pairs_not_trainable": untrainable}
        if not found:
            raise RewardlabError(f"{path}: no preference pairs to train on")
        return found

    kinds: dict[str, list[PreferencePair]] = {}
    if by_category:
        if len(specs) != 1:
            raise RewardlabError("--by-category takes one --data PATH (its records' category names the kind)")
        for p in load(specs[0]):
            if p.category is None:
                raise RewardlabError(f"{specs[0]}: a pair without a category field ({p.origin})")
            kinds.setdefault(p.category, []).append(p)
        kinds = dict(sorted(kinds.items()))
    else:
        for spec in specs:
            name, _, path = spec.partition("=")
            if not name or not path:
                raise RewardlabError(f"--data {spec!r}: expected KIND=PATH (or one file with --by-category)")
            if name in kinds:
                raise RewardlabError(f"--data: kind {name!r} given twice")
            kinds[name] = load(path)
    if len(kinds) < 2:
        raise RewardlabError(f"mixed kinds needs at least two kinds, got {list(kinds)}")
    return {name: sample_pairs(found, max_pairs, seed) for name, found in kinds.items()}


def kind_folds(by_kind: dict[str, list[PreferencePair]], folds: int, seed: int) -> list[int]:
    """The fold of every pair (kinds in order), prompts dealt into folds within each kind."""
    from rewardlab.data.split import fold_of_prompts

    out = []
    for name, found in by_kind.items():
        fold_of = fold_of_prompts((text_key(p.prompt) for p in found), folds, seed)
        if len(fold_of) < folds:
            raise RewardlabError(
                f"kind {name!r}: {len(fold_of)} distinct prompts, fewer than --folds {folds}"
            )
        out += [fold_of[text_key(p.prompt)] for p in found]
    return out


def conditioned(x: torch.Tensor, kind: torch.Tensor, n_kinds: int) -> torch.Tensor:
    """``[x, onehot(kind) ⊗ x]``: the features, then one copy per kind, zero but for the row's kind."""
    onehot = F.one_hot(kind, n_kinds).to(x.dtype)
    return torch.cat([x, (onehot[:, :, None] * x[:, None, :]).flatten(1)], dim=1)


class Router(nn.Module):
    """Multinomial logistic regression on standardised prompt embeddings: the kind of a request."""

    def __init__(self, x: torch.Tensor, n_kinds: int) -> None:
        super().__init__()
        self.register_buffer("mean", x.mean(0))
        self.register_buffer("std", x.std(0).clamp_min(1e-6))
        self.linear = nn.Linear(x.shape[1], n_kinds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of each kind, one row per prompt."""
        return self.linear((x - self.mean) / self.std)

    def fit(self, x: torch.Tensor, y: torch.Tensor, l2: float) -> Router:
        """Full-batch L-BFGS on the cross-entropy plus ``l2`` times the squared weights."""
        opt = torch.optim.LBFGS(self.parameters(), max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.cross_entropy(self(x), y) + l2 * (self.linear.weight**2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The most likely kind of each prompt."""
        with torch.no_grad():
            return self(x).argmax(1)


def train_router(
    x: torch.Tensor, y: torch.Tensor, keys: list[str], n_kinds: int, seed: int
) -> tuple[Router, float]:
    """A router with the L2 of :data:`ROUTER_L2` whose loss on held-out prompts (20 %) is lowest."""
    from rewardlab.data.split import held_out_prompts

    held = held_out_prompts(keys, 0.2, seed)
    val = torch.tensor([k in held for k in keys])
    best, best_loss = ROUTER_L2[0], float("inf")
    if val.any() and (~val).any():
        for l2 in ROUTER_L2:
            torch.manual_seed(seed)
            router = Router(x[~val], n_kinds).fit(x[~val], y[~val], l2)
            with torch.no_grad():
                loss = F.cross_entropy(router(x[val]), y[val]).item()
            if loss < best_loss:
                best, best_loss = l2, loss
    torch.manual_seed(seed)
    return Router(x, n_kinds).fit(x, y, best), best


def evaluate_fold(data: MixedSet, f: int, ensemble: int, seed: int) -> dict[str, Any]:
    """Train every arm on the folds but ``f`` and score each kind's pairs of fold ``f``."""
    from rewardlab.training.embedding_heads import train_ensemble

    test, train = data.fold == f, data.fold != f
    n = len(data.kinds)

    def fit(xc: torch.Tensor, xr: torch.Tensor, rows: torch.Tensor, head: str = "linear") -> list[Any]:
        margin = torch.zeros(int(rows.sum()))
        return train_ensemble(xc[rows], xr[rows], margin, ensemble, seed=seed + f, kind=head)[0]

    keys = [text_key(p.prompt) for p, t in zip(data.pairs, train.tolist(), strict=True) if t]
    router, router_l2 = train_router(data.xp[train], data.kind[train], keys, n, seed + f)
    routed = router.predict(data.xp)
    cc, cr = conditioned(data.xc, data.kind, n), conditioned(data.xr, data.kind, n)
    cond_heads = fit(cc, cr, train)
    pooled = {
        "mixed-linear": (fit(data.xc, data.xr, train), data.xc, data.xr),
        "mixed-mlp": (fit(data.xc, data.xr, train, "mlp"), data.xc, data.xr),
        "mixed-conditioned": (cond_heads, cc, cr),
        "mixed-routed": (cond_heads, conditioned(data.xc, routed, n), conditioned(data.xr, routed, n)),
    }
    out: dict[str, Any] = {"fold": f, "router_l2": router_l2, "kinds": {}}
    for k, name in enumerate(data.kinds):
        mine = data.kind == k
        rows = test & mine
        pairs = [p for p, t in zip(data.pairs, rows.tolist(), strict=True) if t]
        arms = {
            "single": scored_pairs(fit(data.xc, data.xr, train & mine), data.xc[rows], data.xr[rows], pairs)
        }
        arms |= {arm: scored_pairs(heads, a[rows], b[rows], pairs) for arm, (heads, a, b) in pooled.items()}
        out["kinds"][name] = {"router_accuracy": (routed[rows] == k).float().mean().item(), "arms": arms}
    return out


def _mean(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.mean(found) if found else None


def summarise(rows: list[dict[str, Any]], kinds: list[str]) -> dict[str, Any]:
    """Per kind and arm over the folds: accuracy mean ± std, length splits, drop against ``single``."""
    out: dict[str, Any] = {}
    for name in kinds:
        per_fold = [r["kinds"][name] for r in rows]
        arms = {}
        for arm in ARMS:
            scores = [fold["arms"][arm] for fold in per_fold]
            accs = [s["accuracy"] for s in scores]
            arms[arm] = {
                "accuracy_mean": statistics.mean(accs),
                "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "accuracy_folds": accs,
                "accuracy_chosen_longer": _mean([s["accuracy_chosen_longer"] for s in scores]),
                "accuracy_chosen_shorter": _mean([s["accuracy_chosen_shorter"] for s in scores]),
            }
        for arm, row in arms.items():
            drop = arms["single"]["accuracy_mean"] - row["accuracy_mean"]
            row["drop_vs_single"] = None if arm == "single" else drop
            row["meets_target"] = None if arm == "single" else drop <= TARGET_DROP + 1e-12
        out[name] = {
            "pairs": sum(fold["arms"]["single"]["pairs"] for fold in per_fold),
            "length_baseline": statistics.mean(
                fold["arms"]["single"]["length_baseline"] for fold in per_fold
            ),
            "router_accuracy": statistics.mean(fold["router_accuracy"] for fold in per_fold),
            "arms": arms,
        }
    return out


def embed_set(embedder: Any, by_kind: dict[str, list[PreferencePair]], fold: list[int]) -> MixedSet:
    """Embed every pair (prompt with each response) and every distinct prompt alone."""
    pairs = [p for found in by_kind.values() for p in found]
    kind = [k for k, found in enumerate(by_kind.values()) for _ in found]
    x = embedder.embed(
        [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs], progress=True
    )
    distinct = {text_key(p.prompt): p.prompt for p in pairs}
    xp = embedder.embed(list(distinct.values()), [""] * len(distinct), progress=True)
    row_of = {key: i for i, key in enumerate(distinct)}
    return MixedSet(
        kinds=list(by_kind),
        pairs=pairs,
        kind=torch.tensor(kind),
        fold=torch.tensor(fold),
        xc=x[: len(pairs)],
        xr=x[len(pairs) :],
        xp=xp[torch.tensor([row_of[text_key(p.prompt)] for p in pairs])],
    )


def bench_mixed(
    *,
    data: Sequence[str],
    out: str,
    by_category: bool = False,
    model: str = "minilm",
    folds: int = 5,
    ensemble: int = 1,
    max_length: int = 512,
    max_pairs: int | None = None,
    embed_layers: int = 6,
    seed: int = 42,
) -> dict[str, Any]:
    """Run the per-kind cross-validation of every arm and write its JSON report to ``out``."""
    from rewardlab import __version__
    from rewardlab.io_utils import write_json
    from rewardlab.models.embedding import Embedder
    from rewardlab.runtime import quiet_transformers

    if folds < 2:
        raise RewardlabError("--folds must be at least 2")
    if max_pairs is not None and max_pairs < 2:
        raise RewardlabError("--max-pairs must be at least 2")
    if ensemble < 1:
        raise RewardlabError("--ensemble must be at least 1")
    quiet_transformers()
    start, load_before = time.time(), os.getloadavg()
    left_out: dict[str, dict[str, int]] = {}
    by_kind = load_kinds(data, by_category, max_pairs, seed, left_out)
    fold = kind_folds(by_kind, folds, seed)
    embedder = Embedder(model, max_length=max_length, layers=embed_layers)
    mixed = embed_set(embedder, by_kind, fold)
    embed_s = time.time() - start
    rows = [evaluate_fold(mixed, f, ensemble, seed) for f in range(folds)]
    results = summarise(rows, mixed.kinds)
    report = {
        "rewardlab_version": __version__,
        "command": {
            "data": list(data),
            "by_category": by_category,
            "model": model,
            "folds": folds,
            "ensemble": ensemble,
            "max_length": max_length,
            "max_pairs": max_pairs,
            "embed_layers": embedder.layers,
            "seed": seed,
        },
        "kinds": {name: len(found) for name, found in by_kind.items()},
        "left_out": left_out,
        "sample": f"a seeded random sample of {max_pairs} pairs per kind" if max_pairs else "all pairs",
        "target_drop": TARGET_DROP,
        "arms_meeting_target_on_every_kind": [
            arm for arm in ARMS[1:] if all(r["arms"][arm]["meets_target"] for r in results.values())
        ],
        "sequences_embedded_now": embedder.embedded,
        "embed_seconds": embed_s,
        **run_costs(start, load_before),
        "results": results,
        "folds": rows,
    }
    write_json(out, report)
    return report


#: Columns of :func:`table_rows`; longer/shorter: accuracy on pairs whose chosen response is longer/shorter.
COLUMNS = ("kind", "arm", "accuracy", "drop", f"≤{TARGET_DROP}", "longer", "shorter")


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row per kind and arm (:data:`COLUMNS`), then the kind's length-only and router accuracy."""

    def num(v: float | None, sign: bool = False) -> str:
        return "–" if v is None else (f"{v:+.3f}" if sign else f"{v:.3f}")

    rows = []
    for name, r in report["results"].items():
        for arm, a in r["arms"].items():
            target = "–" if a["meets_target"] is None else ("yes" if a["meets_target"] else "no")
            accuracy = f"{a['accuracy_mean']:.3f}±{a['accuracy_std']:.3f}"
            longer, shorter = num(a["accuracy_chosen_longer"]), num(a["accuracy_chosen_shorter"])
            rows.append([name, arm, accuracy, num(a["drop_vs_single"], True), target, longer, shorter])
        rows.append([name, "length-only", num(r["length_baseline"]), "", "", "", ""])
        rows.append([name, "router", num(r["router_accuracy"]), "", "", "", ""])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run :func:`bench_mixed`, print its table; 2 with one line on a user error."""
    import argparse

    from rich.console import Console
    from rich.table import Table

    p = argparse.ArgumentParser(
        prog="python -m dev.experiments.mixed_kinds", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", action="append", required=True, help="KIND=PATH (repeatable), or one PATH.")
    p.add_argument("--out", required=True, help="Where to write the JSON report.")
    p.add_argument("--by-category", action="store_true", help="Kinds from the records' category field.")
    p.add_argument("--model", default="minilm", help="Frozen embedding model (folder or preset).")
    p.add_argument("--folds", type=int, default=5, help="Cross-validation folds (split by prompt per kind).")
    p.add_argument("--ensemble", type=int, default=1, help="Heads per arm and fold.")
    p.add_argument("--max-length", type=int, default=512, help="Tokens per embedded sequence.")
    p.add_argument("--max-pairs", type=int, default=None, help="A seeded sample of this many pairs per kind.")
    p.add_argument("--embed-layers", type=int, default=6, help="Last layers whose pooled states are joined.")
    p.add_argument("--seed", type=int, default=42, help="Seed of the folds and the heads.")
    args = p.parse_args(argv)
    console = Console()
    try:
        r = bench_mixed(**{k: v for k, v in vars(args).items()})
    except RewardlabError as exc:
        Console(stderr=True).print(f"error: {exc}", markup=False)
        return 2
    table = Table(title=f"mixed kinds: {args.model}, {args.folds} folds")
    for col in COLUMNS:
        table.add_column(col)
    for row in table_rows(r):
        table.add_row(*row)
    console.print(table)
    meeting = ", ".join(r["arms_meeting_target_on_every_kind"]) or "none"
    console.print(
        f"within {r['target_drop']} of single on every kind: {meeting}; {r['total_seconds']:.0f} s in all, "
        f"peak RSS {r['peak_rss_mib']} MiB; wrote {args.out}",
        soft_wrap=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
