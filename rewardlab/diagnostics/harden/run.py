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


def harden(cfg: HardenConfig) -> dict[str, Any]:
    """Run the rounds; write harden.json and harden.md into ``cfg.out``; return the report."""
    from rewardlab.data import load_preferences
    from rewardlab.diagnostics.harden.report import write_reports
    from rewardlab.io_utils import check_out_dir, write_jsonl

    start = time.perf_counter()
    out = Path(cfg.out)
    own = ["harden.json", "harden.md", "heldout.jsonl", *(f"round-{i}" for i in range(cfg.rounds + 1))]
    check_out_dir(out, own)
    out.mkdir(parents=True, exist_ok=True)
    stored, original, heldout = original_data(cfg.reward[0], cfg.data)
    held_file = (
        write_jsonl(
            out / "heldout.jsonl",
            [dict(prompt=p.prompt, chosen=p.chosen, rejected=p.rejected) for p in heldout],
        )
        if heldout
        else None
    )
    probes = [p for f in cfg.probe_pairs for p in load_preferences(f).training_pairs()]
    model = Path(cfg.reward[0])
    console.print(f"round 0: checking {model}", soft_wrap=True)
    report = check(cfg, model, out / "round-0" / "check")
    fixed = unguarded_eval(out / "round-0" / "check")
    rounds = [measure(0, model, report, out / "round-0" / "check", heldout, fixed, cfg.pair_min_gap)]
    if cfg.diagnose:
        rounds[0]["findings"] = findings(model, held_file, out / "round-0" / "diagnose")
    pool: list[dict[str, Any]] = []
    seen: set[tuple] = set()
    for r in range(1, cfg.rounds + 1):
        pool += new_pairs(out / f"round-{r - 1}" / "check", cfg.pairs_from, seen)
        if not pool:
            rounds[-1]["stopped"] = (
                f"no exploit pairs (from the {cfg.pairs_from} prompts) to retrain with: no repair round ran"
            )
            break
        console.print(
            f"round {r}: retraining on {len(original)} original + {len(pool)} exploit pairs", soft_wrap=True
        )
        choice = choose_k(
            stored, original, (held_file, heldout), pool, probes, cfg, rounds[0]["heldout_accuracy"]
        )
        model = retrain(
            stored, mix(original, pool, choice["k"], probes), held_file, out / f"round-{r}" / "model"
        )
        report = check(cfg, model, out / f"round-{r}" / "check")
        rounds.append(
            measure(r, model, report, out / f"round-{r}" / "check", heldout, fixed, cfg.pair_min_gap)
        )
        rounds[-1].update(k=choice, trained_exploit_pairs=len(pool), probe_pairs=len(probes))
        if cfg.diagnose:
            rounds[-1]["findings"] = findings(model, held_file, out / f"round-{r}" / "diagnose")
    result = {
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "original": {"data": stored.get("data"), "train_pairs": len(original), "heldout_pairs": len(heldout)},
        "rounds": rounds,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_reports(result, out)
    for line in result["verdict"]:
        console.print(line, soft_wrap=True, markup=False)
    console.print(f"Wrote {out / 'harden.md'} (and harden.json)", soft_wrap=True)
    return result
