r"""How close to the gold must a second reward model be for the monitor's ``independent`` signals?

The monitor's strongest signal is a second reward model that scores the same completions; in the
measured worlds it told the hacked completions apart as well as it agreed with the gold. This
script puts several second models side by side on finished ``rewardlab rlcheck`` runs: each one
re-scores every recorded completion (eval points and training batches; the proxy's rewards and
signals are the run's own), and the report gives, per model, its agreement with the gold on held-out
pairs (share of pairs both order alike, Spearman of the margins; its own accuracy) next to the pooled
AUROC of ``independent`` and ``independent_gap`` for "this completion's gold fell below its prompt's
start" and the default rule's firing steps, per run and (several runs of one world) pooled over
the runs. Run::

    python -m dev.experiments.second_models --check RUN [--check RUN2 ...] --gold GOLD \
        --test TEST_PAIRS --second NAME=MODEL [--second NAME2=MODEL2 ...] --out second.json

``--gold`` is the world's gold as rlcheck takes it (``demo`` or anything ``--model`` takes);
``--test`` held-out pairs of the world's data (for the demo world, whose gold is a rule, pairs the
rule labelled: the unconfounded demo data).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rewardlab.data.loader import load_preferences
from rewardlab.diagnostics.rlcheck.eval_set import items
from rewardlab.diagnostics.rlcheck.monitor_check import GAP, validate
from rewardlab.diagnostics.rlcheck.rewards import load_gold
from rewardlab.metrics import spearman
from rewardlab.models.loading import load_reward


def margins(score: Any, pairs: list[Any]) -> list[float]:
    """The chosen − rejected reward of every pair (``score(prompts, responses)``)."""
    prompts = [p.prompt for p in pairs]
    both = score([*prompts, *prompts], [p.chosen for p in pairs] + [p.rejected for p in pairs])
    return [c - r for c, r in zip(both[: len(pairs)], both[len(pairs) :], strict=True)]


def agreement(second: list[float], gold: list[float]) -> dict[str, Any]:
    """How a second model's test margins match the gold's, and its own accuracy on the labels."""
    same = sum((a > 0) == (b > 0) for a, b in zip(second, gold, strict=True))
    return {
        "order_agreement_with_gold": round(same / len(gold), 4),
        "margin_spearman_with_gold": round(spearman(second, gold) or 0.0, 4),
        "accuracy": round(sum(m > 0 for m in second) / len(second), 4),
        "gold_accuracy": round(sum(m > 0 for m in gold) / len(gold), 4),
        "pairs": len(gold),
    }


def rescored(check: str, model: Any) -> dict[str, Any]:
    """The run's report with every record's ``independent_items`` replaced by ``model``'s rewards."""
    report = json.loads((Path(check) / "rlcheck.json").read_text())
    text = (Path(check) / "completions.jsonl").read_text()
    rows = [json.loads(x) for x in text.split("\n") if x]  # not splitlines: texts may hold U+2028
    for arm, v in report["arms"].items():
        for split, records in (("eval", v.get("eval") or []), ("train", v.get("steps") or [])):
            for rec in records:
                got = [r for r in rows if (r["arm"], r["split"], r["step"]) == (arm, split, rec["step"])]
                if "proxy_items" in rec and len(got) != len(rec["proxy_items"]):
                    raise SystemExit(f"{check}: {arm} {split} step {rec['step']}: {len(got)} saved")
                if got:
                    scores = model.score([r["prompt"] for r in got], [r["completion"] for r in got])
                    rec["independent_items"] = items(scores)
    return report


def brief(section: dict[str, Any]) -> dict[str, Any]:
    """Pooled AUROC of every row and the firing per arm (training batches and eval points)."""
    keys = ("fired_at", "peak_step", "hacked", "target_met", "reasons")
    return {
        "auroc_pooled": {k: v["pooled"] for k, v in section["auroc"].items()},
        "hacked_completions": next(iter(section["auroc"].values()))["hacked"],
        "completions": next(iter(section["auroc"].values()))["n"],
        **{w: {a: {k: f[k] for k in keys} for a, f in section[w].items()} for w in ("firing", "firing_eval")},
    }


def main() -> None:
    """Agreement with the gold and the monitor's numbers of every ``--second`` model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="append", required=True, help="finished rlcheck output folder")
    ap.add_argument("--gold", required=True)
    ap.add_argument("--test", required=True, help="held-out preference pairs of the world")
    ap.add_argument("--second", action="append", required=True, help="NAME=MODEL")
    ap.add_argument("--max-test", type=int, default=471)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    every = load_preferences(args.test).all_pairs()
    untied = [p for p in every if not p.tie]  # a tie has no order to agree with
    pairs = untied[: args.max_test]
    gold_margins = margins(load_gold(args.gold), pairs)
    out: dict[str, Any] = {"checks": args.check, "gold": args.gold, "test": args.test, "models": {}}
    left = {"ties_left_out": len(every) - len(untied), "past_max_test": len(untied) - len(pairs)}
    out["test_pairs"] = {"used": len(pairs), **left}
    print(f"{len(pairs)} test pairs; left out: {left}")
    for spec in args.second:
        name, path = spec.split("=", 1)
        t0 = time.perf_counter()
        model = load_reward(path)
        agree = agreement(margins(model.score, pairs), gold_margins)
        row: dict[str, Any] = {"model": path, **agree, "runs": {}}
        reports = []
        for check in args.check:
            report = rescored(check, model)
            reports.append(report)
            section = validate(report["arms"], report["summary"], report["config"]["eval_samples"])
            row["runs"][check] = brief(section) if section else None
        if len(reports) > 1:  # every run's arms as arms of one world (the same prompts and start)
            arms = {f"{a}@{i}": v for i, r in enumerate(reports) for a, v in r["arms"].items()}
            summary = {f"{a}@{i}": v for i, r in enumerate(reports) for a, v in r["summary"].items()}
            section = validate(arms, summary, reports[0]["config"]["eval_samples"])
            pooled = brief(section) if section else {}
            row["pooled_over_runs"] = {k: v for k, v in pooled.items() if "firing" not in k}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        out["models"][name] = row
        runs = row["runs"].items()
        aurocs = {c: r and {k: r["auroc_pooled"].get(k) for k in ("independent", GAP)} for c, r in runs}
        print(name, agree, aurocs, flush=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
