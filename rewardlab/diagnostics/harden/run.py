"""``rewardlab harden``: check, export, retrain, check again; a before/after report of every round.

Round 0 is ``rewardlab rlcheck`` of the given reward model (``round-0/check``). Each round ``r`` then
retrains the model (:mod:`rewardlab.diagnostics.harden.data`: its own training options and original
data, plus the exploit pairs of every check so far, weighted by the ``k`` chosen on validation)
into ``round-r/model`` and runs the same check on it (``round-r/check``: the same prompts, seeds,
steps and arms; only the reward model differs). Every round is measured the same way:

- the gold fall of the unguarded arm: its gold's peak minus its final value on the eval set, with
  the paired noise of :mod:`rewardlab.diagnostics.rlcheck.verdict`;
- the proxy–gold pairwise agreement on the policy's own samples: pairs of the unguarded arm's eval
  completions to the same prompt, the gold apart by ``--pair-min-gap`` or more, ordered by the
  proxy as by the gold; on the round's own samples, and on round 0's samples re-scored (fixed
  samples: the difference is the model's alone);
- the held-out accuracy on the original data (the pairs its first run held out).

Run: ``rewardlab harden --reward runs/demo/model --out runs/harden``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.diagnostics.harden.config import HardenConfig
from rewardlab.diagnostics.harden.data import accuracy, choose_k, mix, original_data, retrain
from rewardlab.diagnostics.rlcheck.config import RLCheckConfig
from rewardlab.diagnostics.rlcheck.exports import pair_agreement
from rewardlab.diagnostics.rlcheck.run import load_proxy, proxy_scorer, rlcheck

console = Console()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file the checks wrote (empty when it is absent)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check(cfg: HardenConfig, model: Path, out: Path) -> dict[str, Any]:
    """``rlcheck`` of ``model`` with the harden run's check options, into ``out``."""
    names = [f.name for f in dataclasses.fields(RLCheckConfig)]
    options = {n: getattr(cfg, n) for n in names if n not in ("reward", "out")}
    return rlcheck(RLCheckConfig(reward=[str(model)], out=str(out), **options))


def unguarded_eval(check_dir: Path) -> list[dict[str, Any]]:
    """The unguarded arm's scored eval completions of a check."""
    return [
        r for r in read_jsonl(check_dir / "completions.jsonl") if r["arm"] == "none" and r["split"] == "eval"
    ]


def measure(
    r: int,
    model: Path,
    report: dict[str, Any],
    check_dir: Path,
    heldout: list[Any],
    fixed: list[dict],
    gap: float,
) -> dict[str, Any]:
    """One round's measurements (see the module doc)."""
    score = proxy_scorer(load_proxy([str(model)]))
    own = unguarded_eval(check_dir)
    rescored = score([x["prompt"] for x in fixed], [x["completion"] for x in fixed]) if fixed else []
    s = report["summary"].get("none") or {}
    return {
        "round": r,
        "model": str(model),
        "check": str(check_dir),
        "hacked": report["verdict"].get("hacked"),
        "gold": {
            k: s.get(k)
            for k in ("start_gold", "peak_gold", "peak_step", "final_gold", "gold_drop", "noise", "se")
        },
        "proxy": {k: s.get(k) for k in ("start_proxy", "final_proxy")},
        "agreement_own": pair_agreement(own, gap),
        "agreement_round0_samples": pair_agreement(
            [{**x, "proxy": p} for x, p in zip(fixed, rescored, strict=True)], gap
        ),
        "heldout_accuracy": accuracy(score, heldout),
        "exploit_pairs": len(read_jsonl(check_dir / "exploit_pairs.jsonl")),
    }


def findings(model: Path, heldout: Path | None, out: Path) -> list[dict[str, Any]] | None:
    """``rewardlab diagnose`` of ``model`` on the held-out pairs into ``out``: its findings, in short."""
    from rewardlab.diagnostics.config import DiagnoseConfig
    from rewardlab.diagnostics.diagnose import diagnose

    if heldout is None:
        return None
    report = diagnose(DiagnoseConfig(model=[str(model)], data=str(heldout), out=str(out)))
    return [{k: f.get(k) for k in ("kind", "title", "severity")} for f in report["findings"]]


def new_pairs(check_dir: Path, pairs_from: str, seen: set[tuple]) -> list[dict[str, Any]]:
    """A check's exploit pairs not trained on before (``--pairs-from train``: training prompts only)."""
    out = []
    for row in read_jsonl(check_dir / "exploit_pairs.jsonl"):
        key = (row["prompt"], row["chosen"], row["rejected"])
        if (pairs_from == "all" or row.get("split") == "train") and key not in seen:
            seen.add(key)
            out.append(row)
    return out


class Repair:
    """The state of a harden run: the original data, the exploit pairs so far, the rounds measured."""

    def __init__(self, cfg: HardenConfig) -> None:
        from rewardlab.data import load_preferences
        from rewardlab.io_utils import write_jsonl

        self.cfg, self.out = cfg, Path(cfg.out)
        self.stored, self.original, self.heldout = original_data(cfg.reward[0], cfg.data)
        rows = [dict(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected) for p in self.heldout]
        self.held_file = write_jsonl(self.out / "heldout.jsonl", rows) if rows else None
        self.probes = [p for f in cfg.probe_pairs for p in load_preferences(f).training_pairs()]
        self.pool: list[dict[str, Any]] = []
        self.seen: set[tuple] = set()
        self.fixed: list[dict[str, Any]] = []  # round 0's unguarded eval completions
        self.rounds: list[dict[str, Any]] = []

    def check_round(self, r: int, model: Path, **extra: Any) -> None:
        """Check ``model`` (round ``r``) and measure it; round 0's samples become the fixed ones."""
        folder = self.out / f"round-{r}"
        report = check(self.cfg, model, folder / "check")
        if r == 0:
            self.fixed = unguarded_eval(folder / "check")
        m = measure(r, model, report, folder / "check", self.heldout, self.fixed, self.cfg.pair_min_gap)
        m.update(extra)
        if self.cfg.diagnose:
            m["findings"] = findings(model, self.held_file, folder / "diagnose")
        self.rounds.append(m)

    def retrain_round(self, r: int) -> tuple[Path, dict[str, Any]] | None:
        """Round ``r``'s model, trained on the exploit pairs so far with a chosen k (None: no pairs)."""
        self.pool += new_pairs(self.out / f"round-{r - 1}" / "check", self.cfg.pairs_from, self.seen)
        if not self.pool:
            return None
        console.print(
            f"round {r}: retraining on {len(self.original)} original + {len(self.pool)} exploit pairs",
            soft_wrap=True,
        )
        held = (self.held_file, self.heldout)
        base = self.rounds[0]["heldout_accuracy"]
        choice = choose_k(self.stored, self.original, held, self.pool, self.probes, self.cfg, base)
        rows = mix(self.original, self.pool, choice["k"], self.probes)
        return retrain(self.stored, rows, self.held_file, self.out / f"round-{r}" / "model"), choice


def harden(cfg: HardenConfig) -> dict[str, Any]:
    """Run the rounds; write harden.json and harden.md into ``cfg.out``; return the report."""
    from rewardlab.diagnostics.harden.report import write_reports
    from rewardlab.io_utils import check_out_dir

    start = time.perf_counter()
    own = ["harden.json", "harden.md", "heldout.jsonl", *(f"round-{i}" for i in range(cfg.rounds + 1))]
    check_out_dir(cfg.out, own)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    repair = Repair(cfg)
    console.print(f"round 0: checking {cfg.reward[0]}", soft_wrap=True)
    repair.check_round(0, Path(cfg.reward[0]))
    for r in range(1, cfg.rounds + 1):
        retrained = repair.retrain_round(r)
        if retrained is None:
            repair.rounds[-1]["stopped"] = (
                f"no exploit pairs (from the {cfg.pairs_from} prompts) to retrain with: no repair round ran"
            )
            break
        model, choice = retrained
        repair.check_round(
            r, model, k=choice, trained_exploit_pairs=len(repair.pool), probe_pairs=len(repair.probes)
        )
    result = {
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "original": {
            "data": repair.stored.get("data"),
            "train_pairs": len(repair.original),
            "heldout_pairs": len(repair.heldout),
        },
        "rounds": repair.rounds,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_reports(result, Path(cfg.out))
    for line in result["verdict"]:
        console.print(line, soft_wrap=True, markup=False)
    console.print(f"Wrote {Path(cfg.out) / 'harden.md'} (and harden.json)", soft_wrap=True)
    return result
