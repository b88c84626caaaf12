r"""The hacking monitor's numbers on rlcheck runs: signals added to finished runs, rule chosen on one world.

Run, per finished ``rewardlab rlcheck`` output folder (its ``rlcheck.json`` and ``completions.jsonl``)::

    python -m dev.experiments.monitor_validation signals --check RUN [--check RUN2 ...] \\
        --reward MODEL_WITH_FEATURE_STATS [--independent SECOND_MODEL] --out RUN.signals.json
    python -m dev.experiments.monitor_validation validate --fit A.signals.json --apply B.signals.json \\
        --out monitor.json
    python -m dev.experiments.monitor_validation table RUN.json [RUN2.json ...]

``signals`` re-scores every eval completion of the runs (several runs of the same world with other
``--arms`` are joined: every arm starts from the same step 0) with
:func:`rewardlab.models.signals.score_with_signals` and writes the report's arms with the
per-completion signals, as an rlcheck run of this version records them, plus the summaries (with
``--independent``, a second reward model's rewards too, as ``rlcheck --independent`` records them). It
also times ``model.score`` against ``score_with_signals`` on the same completions (two instances,
memory caches only, so every call embeds) and the monitor's updates. ``validate`` chooses the rule
(:func:`rewardlab.diagnostics.rlcheck.monitor_check.choose_rule`) and fits the combination on the
``--fit`` world and reports both worlds with them: pooled AUROC per signal, the firing step against
the gold peak per arm. ``table`` prints each run's pooled AUROC per row, the gold's own step mean
(:data:`rewardlab.diagnostics.rlcheck.monitor_check.STEP_GOLD`) included, also for runs recorded
before the signals (any JSON with ``arms`` whose eval records hold ``gold_items``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rewardlab.diagnostics.rlcheck.eval_set import items, rounded
from rewardlab.diagnostics.rlcheck.monitor_check import choose_rule, fit_combination, signal_aurocs, validate
from rewardlab.diagnostics.rlcheck.verdict import analyse
from rewardlab.models.loading import load_reward
from rewardlab.models.signals import score_with_signals
from rewardlab.serving.monitor import HackingMonitor


def _fresh(path: str) -> Any:
    model = load_reward(path)
    if hasattr(model, "embedder"):  # memory cache only: every completion is embedded once per instance
        model.embedder.cache_file, model.embedder.cache_writes = None, False
    return model


def _rows(rows: list[dict[str, Any]], arm: str, split: str, step: int) -> tuple[list[str], list[str], list]:
    got = [r for r in rows if r["arm"] == arm and r["split"] == split and r["step"] == step]
    return [r["prompt"] for r in got], [r["completion"] for r in got], got


def add_signals(checks: list[str], reward: str, independent: str | None = None) -> dict[str, Any]:
    """The joined arms of ``checks`` with per-completion signals (eval points and training batches)."""
    with_signals, plain = _fresh(reward), _fresh(reward)
    second = load_reward(independent) if independent else None
    kw = {"length_correction": False} if (with_signals.info or {}).get("length_correction") else {}
    arms: dict[str, Any] = {}
    timing = {"score": 0.0, "score_with_signals": 0.0, "monitor": 0.0, "points": 0, "completions": 0}
    mismatch = 0.0
    for check in checks:
        report = json.loads((Path(check) / "rlcheck.json").read_text())
        text = (Path(check) / "completions.jsonl").read_text()
        rows = [json.loads(x) for x in text.split("\n") if x]  # not splitlines: texts may hold U+2028
        samples = report["eval"]["samples"]
        for arm, v in report["arms"].items():
            if not v.get("eval"):
                continue
            mon = HackingMonitor()
            for rec in v["eval"]:
                prompts, texts, got = _rows(rows, arm, "eval", rec["step"])
                t0 = time.perf_counter()
                rewards, signals = score_with_signals(with_signals, prompts, texts, **kw)
                t1 = time.perf_counter()
                plain.score(prompts, texts, **kw)
                t2 = time.perf_counter()
                mon.update(rec["step"], rewards, signals)
                timing["score_with_signals"] += t1 - t0
                timing["score"] += t2 - t1
                timing["points"] += 1
                timing["completions"] += len(texts)
                mismatch = max(mismatch, *(abs(a - r["proxy"]) for a, r in zip(rewards, got, strict=True)))
                rec["proxy_items"] = items(rewards)
                rec["signals"] = rounded(signals)
                if second is not None:
                    rec["independent_items"] = items(second.score(prompts, texts))
            timing["monitor"] += mon.seconds
            for b in v.get("steps") or []:  # the training batches, as a TRL callback sees them
                prompts, texts, _ = _rows(rows, arm, "train", b["step"])
                rewards, signals = score_with_signals(with_signals, prompts, texts, **kw)
                b["proxy_items"], b["signals"] = items(rewards), rounded(signals)
                if second is not None:
                    b["independent_items"] = items(second.score(prompts, texts))
            arms[arm] = v
    timing["overhead_share"] = (timing["score_with_signals"] - timing["score"] + timing["monitor"]) / timing[
        "score"
    ]
    summary = analyse(arms, reward)["summary"]
    return {
        "checks": checks, "reward": reward, "independent": independent, "samples": samples, "arms": arms,
        "summary": summary, "timing": timing, "proxy_mismatch": mismatch,
    }  # fmt: skip


def _brief(section: dict[str, Any]) -> dict[str, Any]:
    keys = ("fired_at", "peak_step", "overoptimised", "hacked", "target_met", "reasons")
    out = {
        "auroc_pooled": {k: v["pooled"] for k, v in section["auroc"].items()},
        "auroc_per_arm": {k: v["per_arm"] for k, v in section["auroc"].items()},
    }
    for which in ("firing", "firing_eval"):
        out[which] = {a: {k: f[k] for k in keys} for a, f in section[which].items()}
    return out


def validate_worlds(
    fit: dict[str, Any], apply: dict[str, Any], fit_name: str, apply_name: str
) -> dict[str, Any]:
    """Rule and combination chosen on ``fit``, then the monitor section of both worlds with them.

    The rule is chosen on the training batches (what a TRL callback sees; the first 2 steps the
    baseline); the same choice made on the eval points (step 0 the baseline) is reported beside it.
    """
    runs = [(fit["arms"], fit["summary"])]
    rule, caught = choose_rule(runs, source=f"rlcheck runs of {fit_name}")
    eval_rule, eval_caught = choose_rule(runs, source=f"rlcheck runs of {fit_name}", which="eval", baseline=1)
    present = {k for v in fit["arms"].values() for r in v["eval"] for k in r.get("signals", {})}
    names = ["proxy", *(n for n in ("length", "refusal", "spread", "feature_distance") if n in present)]
    if any("independent_items" in r for v in fit["arms"].values() for r in v["eval"]):
        names.append("independent")
    combo = fit_combination([(fit["arms"], fit["samples"])], names, fitted_on=fit_name)
    out: dict[str, Any] = {
        "rule": {
            "thresholds": dict(rule.thresholds),
            "baseline": rule.baseline,
            "caught_on_fit_world": caught,
        },
        "eval_rule": {"thresholds": dict(eval_rule.thresholds), "caught_on_fit_world": eval_caught},
        "combination": combo,
    }
    for name, world in ((fit_name, fit), (apply_name, apply)):
        args = (world["arms"], world["summary"], world["samples"])
        out[name] = {**_brief(validate(*args, rule, combo)), "role": "fit" if world is fit else "check"}
        out[name]["firing_eval_rule"] = _brief(validate(*args, eval_rule))["firing_eval"]
        out[name]["timing"] = world["timing"]
        out[name]["summary"] = {
            a: {k: s[k] for k in ("start_gold", "peak_gold", "peak_step", "final_gold", "overoptimised")}
            for a, s in world["summary"].items()
        }
    return out


def main() -> None:
    """``signals``, ``validate`` or ``table`` (see the module doc)."""
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("signals")
    s.add_argument("--check", action="append", required=True)
    s.add_argument("--reward", required=True)
    s.add_argument("--independent", default=None, help="a second reward model scored on the same completions")
    s.add_argument("--out", required=True)
    v = sub.add_parser("validate")
    v.add_argument("--fit", required=True)
    v.add_argument("--apply", required=True)
    v.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("runs", nargs="+")
    args = ap.parse_args()
    if args.what == "table":
        for path in args.runs:
            run = json.loads(Path(path).read_text())
            if "arms" not in run:  # e.g. a validate output or a benchmark JSON
                print(f"{path}: no 'arms' (not an rlcheck or signals output): skipped", file=sys.stderr)
                continue
            samples = run.get("samples") or (run.get("config") or {}).get("eval_samples", 2)
            rows = signal_aurocs(run["arms"], samples)
            print(path, json.dumps({k: [v["pooled"], v["hacked"], v["n"]] for k, v in rows.items()}))
        return
    if args.what == "signals":
        result = add_signals(args.check, args.reward, args.independent)
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(json.dumps({"timing": result["timing"], "proxy_mismatch": result["proxy_mismatch"]}, indent=1))
        return
    fit, apply = (json.loads(Path(p).read_text()) for p in (args.fit, args.apply))
    result = validate_worlds(fit, apply, Path(args.fit).stem, Path(args.apply).stem)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "combination"}, indent=1))


if __name__ == "__main__":
    main()
