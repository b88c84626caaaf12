"""``rewardlab eval`` on step-labelled data, and best-of-N selection accuracy on a labelled pool.

Step-labelled data (:mod:`rewardlab.data.stepwise`): for each process reward model, step-level
accuracy, wrong-step F1 and AUROC (:func:`rewardlab.metrics.step_metrics`), and ProcessBench-style
first-error identification: the predicted first error is the first step with P(correct) < 0.5,
compared with the human one (:func:`rewardlab.metrics.first_error_metrics`). Outcome models have no
step scores and are reported as such.

Best-of-N (``--candidates``, a pool whose candidates carry outcome labels such as GSM8K's
``is_correct``): per model, the mean label of the candidate it ranks first (ties share the pick),
for a PRM under each aggregation (min, prod, last, mean), against picking at random and an oracle.

The report (:mod:`rewardlab.evaluation.step_report`) adds, per PRM and dataset: bootstrap 95 %
intervals over solutions (``--bootstrap``, ``--seed``), step accuracy by position, the steps cut by
the max length, the model's training record (its ``rewardlab.json``) and what was skipped and why.

Run: ``rewardlab eval --model runs/prm/model --data steps.jsonl --out runs/prm/eval``.

Under ``torchrun`` / ``accelerate launch`` each process scores one slice of the solutions and
candidates (:mod:`rewardlab.distributed`); every rank gets all scores in order, rank 0 writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab import metrics as M
from rewardlab.data.schema import text_plain
from rewardlab.distributed import is_main, rank_device, run_sharded
from rewardlab.errors import RewardlabError
from rewardlab.evaluation.step_report import INTERVALS, MAX_POSITION, skipped, training_record
from rewardlab.reporting import fmt

console = Console()


def score_steps(model: Any, examples: list[Any], batch_size: int) -> list[list[float]]:
    """P(step correct) of every step of every solution (``nan`` for a step cut by the max length)."""
    return run_sharded(
        lambda ps, ss: model.step_probabilities(ps, ss, batch_size),
        [e.prompt for e in examples],
        [e.steps for e in examples],
    )


def step_report(model: Any, examples: list[Any], batch_size: int) -> dict[str, Any]:
    """Step-level and first-error metrics of one PRM on stepwise examples."""
    return step_metrics_of(examples, score_steps(model, examples, batch_size))


def step_metrics_of(examples: list[Any], probs: list[list[float]]) -> dict[str, Any]:
    """The metrics.json entry of one PRM from its step probabilities (intervals added by the caller)."""
    sols = per_solution(examples, probs)
    return {
        "solutions": len(examples),
        "steps_total": sum(len(e.steps) for e in examples),
        "steps_cut_by_max_length": sum(s["cut"] for s in sols),
        "solutions_without_labels": sum(not s["labelled"] for s in sols),
        **solution_metrics(sols),
    }


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def per_solution(examples: list[Any], probs: list[list[float]]) -> list[dict[str, Any]]:
    """Each solution's scored steps (logits, targets, positions), human and predicted first error."""
    out = []
    for e, ps in zip(examples, probs, strict=True):
        kept = [p for p in ps if not math.isnan(p)]
        scored = [
            (j, _logit(p), y) for j, (p, y) in enumerate(zip(kept, e.labels, strict=False)) if y is not None
        ]
        labelled = any(y is not None for y in e.labels)
        out.append(
            {
                "positions": [j for j, _, _ in scored],
                "logits": [z for _, z, _ in scored],
                "targets": [y for _, _, y in scored],
                "cut": len(ps) - len(kept),
                "labelled": labelled,
                "gold": M.first_error(e.labels) if labelled else None,
                "predicted": M.first_error(kept),
            }
        )
    return out


def solution_metrics(sols: list[dict[str, Any]]) -> dict[str, Any]:
    """Step metrics and first-error identification over these solutions."""
    labelled = [s for s in sols if s["labelled"]]
    return {
        **M.step_metrics([z for s in sols for z in s["logits"]], [y for s in sols for y in s["targets"]]),
        "first_error": M.first_error_metrics(
            [s["predicted"] for s in labelled], [s["gold"] for s in labelled]
        ),
    }


def _flat(m: dict[str, Any]) -> dict[str, float | None]:
    return {**{k: m.get(k) for _, k, _ in INTERVALS[:3]}, "first_error_f1": m["first_error"]["f1"]}


def intervals(sols: list[dict[str, Any]], n_boot: int, seed: int) -> dict[str, list[float] | None]:
    """Percentile bootstrap 95 % intervals over solutions (resampled whole, with their steps).

    A metric undefined in a resample (no wrong step drawn, say) is left out of that resample; a
    metric undefined on the data has no interval (``None``). Each resample is scored by
    :func:`resampled_metrics` (vectorised; equal to :func:`solution_metrics` on the drawn solutions).
    """
    import numpy as np

    point = _flat(solution_metrics(sols))
    arrays = solution_arrays(sols)
    draws: dict[str, list[float]] = {k: [] for _, k, _ in INTERVALS}
    rng = np.random.default_rng(seed)
    for idx in rng.integers(0, len(sols), size=(n_boot, len(sols))):
        for k, v in resampled_metrics(arrays, np.bincount(idx, minlength=len(sols))).items():
            if v is not None:
                draws[k].append(v)
    out: dict[str, list[float] | None] = {}
    for key, k, _ in INTERVALS:
        ok = point[k] is not None and len(draws[k]) >= n_boot // 2
        out[key] = [M.percentile(draws[k], 2.5), M.percentile(draws[k], 97.5)] if ok else None
    return out


def solution_arrays(sols: list[dict[str, Any]]) -> dict[str, Any]:
    """The scored steps and first-error outcomes of the solutions as numpy arrays, for resampling."""
    import numpy as np

    z = np.array([x for s in sols for x in s["logits"]], dtype=np.float64)
    return {
        "owner": np.array([i for i, s in enumerate(sols) for _ in s["logits"]], dtype=np.int64),
        "pred_ok": z > 0,
        "ok": np.array([y >= 0.5 for s in sols for y in s["targets"]], dtype=bool),
        "group": np.unique(z, return_inverse=True)[1].reshape(-1),  # tie groups, ascending score
        "erroneous": np.array([s["labelled"] and s["gold"] is not None for s in sols], dtype=bool),
        "correct": np.array([s["labelled"] and s["gold"] is None for s in sols], dtype=bool),
        "hit": np.array([s["predicted"] == s["gold"] for s in sols], dtype=bool),
    }


def resampled_metrics(a: dict[str, Any], counts: Any) -> dict[str, float | None]:
    """Step accuracy, AUROC (ties half), wrong-step F1 and first-error F1 of a resample.

    ``counts[i]``: how many times solution ``i`` was drawn; each of its steps weighs as much.
    """
    import numpy as np

    w = counts[a["owner"]].astype(np.float64)
    ok, pred_ok = a["ok"], a["pred_ok"]
    out: dict[str, float | None] = dict.fromkeys(
        ("step_accuracy", "step_auroc", "wrong_step_f1", "first_error_f1")
    )
    if w.sum() > 0:
        out["step_accuracy"] = float((w * (pred_ok == ok)).sum() / w.sum())
        tp, fp, fn = ((w * (m)).sum() for m in (~pred_ok & ~ok, ~pred_ok & ok, pred_ok & ~ok))
        out["wrong_step_f1"] = float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else None
        pos = np.bincount(a["group"], w * ok, minlength=int(a["group"].max()) + 1)
        neg = np.bincount(a["group"], w * ~ok, minlength=len(pos))
        if pos.sum() and neg.sum():
            out["step_auroc"] = float((pos * (np.cumsum(neg) - 0.5 * neg)).sum() / (pos.sum() * neg.sum()))
    side = []
    for which in (a["erroneous"], a["correct"]):
        n = (counts * which).sum()
        side.append(float((counts * (which & a["hit"])).sum() / n) if n else None)
    if side[0] is not None and side[1] is not None:
        out["first_error_f1"] = 2 * side[0] * side[1] / (side[0] + side[1]) if side[0] + side[1] else 0.0
    return out


def by_position(sols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps, step accuracy, mean P(correct) and share of correct labels per step position.

    Positions count from 1; the last bucket holds every later step. The share of correct labels is
    the "every step correct" accuracy at that position.
    """
    buckets: dict[int, list[tuple[float, float]]] = {}
    for s in sols:
        for j, z, y in zip(s["positions"], s["logits"], s["targets"], strict=True):
            buckets.setdefault(min(j + 1, MAX_POSITION), []).append((z, y))
    return [
        {
            "position": pos,
            "steps": len(b),
            "step_accuracy": sum((z > 0) == (y >= 0.5) for z, y in b) / len(b),
            "mean_score": sum(M.sigmoid(z) for z, _ in b) / len(b),
            "share_correct": sum(y >= 0.5 for _, y in b) / len(b),
        }
        for pos, b in sorted(buckets.items())
    ]


def label_baselines(labels: list[list[float | None]]) -> dict[str, dict[str, float | None]]:
    """:func:`rewardlab.metrics.step_baselines`, and the step log loss of "every step correct".

    That loss is the one of a constant P(correct) equal to the share of correct labelled steps (the
    best constant: the labels' entropy); ``None`` when every step has the same label.
    """
    out = M.step_baselines(labels)
    ys = [y for ls in labels for y in ls if y is not None]
    q = sum(ys) / len(ys) if ys else None
    if q is not None and 0 < q < 1:
        out["every_step_correct"]["loss"] = -sum(
            y * math.log(q) + (1 - y) * math.log(1 - q) for y in ys
        ) / len(ys)
    return out


def bon_report(model: Any, pools: list[Any], batch_size: int) -> dict[str, float]:
    """Mean outcome label of each model's best-of-N pick (a PRM: per aggregation)."""
    from rewardlab.models.prm import PRM_AGGREGATIONS, ProcessRewardModel, aggregate_steps, split_steps

    def pick(scores: list[float], gold: list[float]) -> float:
        best = max(scores)
        tied = [g for s, g in zip(scores, gold, strict=True) if s == best]
        return sum(tied) / len(tied)

    prompts = [p.prompt for p in pools for _ in p.texts]
    texts = [t for p in pools for t in p.texts]
    out: dict[str, float] = {}
    if isinstance(model, ProcessRewardModel):
        probs = run_sharded(
            lambda ps, ss: model.step_probabilities(ps, ss, batch_size),
            prompts,
            [split_steps(text_plain(t)) for t in texts],
        )
        for how in PRM_AGGREGATIONS:
            flat = [aggregate_steps([x for x in ps if not math.isnan(x)] or [0.0], how) for ps in probs]
            out[how] = _mean_pick(pools, flat, pick)
    else:
        scores = run_sharded(lambda ps, ts: model.score(ps, ts, batch_size=batch_size), prompts, texts)
        out["score"] = _mean_pick(pools, scores, pick)
    return out


def _mean_pick(pools: list[Any], flat: list[float], pick: Any) -> float:
    at, total = 0, 0.0
    for p in pools:
        total += pick(flat[at : at + len(p.texts)], p.gold)
        at += len(p.texts)
    return total / len(pools)


def read_pools(path: str) -> tuple[list[Any], dict[str, Any]]:
    """A candidate pool whose every candidate has an outcome label, and its baselines."""
    from rewardlab.data.pools import read_candidates

    pools = read_candidates(path)
    missing = [p.where for p in pools if p.gold is None]
    if missing:
        raise RewardlabError(
            f"{missing[0]}: --candidates needs an outcome label per candidate (is_correct, score …)"
        )
    return pools, {
        "path": path,
        "pools": len(pools),
        "candidates": sum(len(p.texts) for p in pools),
        "random": sum(sum(p.gold) / len(p.gold) for p in pools) / len(pools),
        "oracle": sum(max(p.gold) for p in pools) / len(pools),
        "models": {},
    }


def evaluate_steps(cfg: Any, into: Path | None = None) -> dict[str, Any]:
    """``rewardlab eval`` when the data is step-labelled: write every output.

    metrics.json, scores.jsonl, the plots and report.md/.html (:mod:`rewardlab.evaluation.step_report`).

    ``into``: the folder written (default ``cfg.out``; ``evaluate`` passes a temporary one). A rank
    other than 0 of a launch scores its slices, prints and writes nothing, and returns the report.
    """
    from rewardlab import __version__
    from rewardlab.config import save_yaml
    from rewardlab.data.stepwise import load_stepwise
    from rewardlab.evaluation import step_report as S
    from rewardlab.evaluation.inputs import (
        check_model_specs,
        load_model,
        model_record,
        split_name,
        unique_names,
    )
    from rewardlab.io_utils import write_json
    from rewardlab.models.prm import ProcessRewardModel

    entries = [split_name(d) for d in cfg.data]
    datasets = {
        name: load_stepwise(path, on_error=cfg.on_error)
        for name, (_, path) in zip(unique_names(entries), entries, strict=True)
    }
    model_entries = [split_name(m) for m in cfg.model]
    check_model_specs([path for _, path in model_entries])
    pools, bon = read_pools(cfg.candidates) if cfg.candidates else (None, None)
    results: dict[str, dict[str, Any]] = {name: {} for name in datasets}
    probs: dict[str, dict[str, list[list[float]]]] = {name: {} for name in datasets}
    scored: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in datasets}
    models = {}
    main = is_main()
    for name, (_, path) in zip(unique_names(model_entries), model_entries, strict=True):
        model = load_model(path, cfg.max_length, rank_device(cfg.device))
        if isinstance(model, ProcessRewardModel) and cfg.max_length:
            _score_at(model, cfg.max_length)
        models[name] = {**model_record(path, model), "training": training_record(model, cfg.max_length)}
        for dname, data in datasets.items():
            if not isinstance(model, ProcessRewardModel):
                results[dname][name] = {"skipped": "an outcome reward model gives no step scores"}
                continue
            ps = score_steps(model, data.examples, cfg.batch_size)
            r = step_metrics_of(data.examples, ps)
            if main:
                sols = per_solution(data.examples, ps)
                r.update(intervals(sols, cfg.bootstrap, cfg.seed) if r.get("steps") else {})
                r["by_position"] = by_position(sols)
                probs[dname][name], scored[dname][name] = ps, sols
                console.print(_line(name, dname, r), soft_wrap=True)
            results[dname][name] = r
        if pools is not None and bon is not None:
            bon["models"][name] = bon_report(model, pools, cfg.batch_size)
            if main:
                console.print(f"{name} best-of-N on {cfg.candidates}: {bon['models'][name]}", soft_wrap=True)
    report = {
        "rewardlab_version": __version__,
        "kind": "stepwise",
        "models": models,
        "datasets": {n: {"solutions": len(d.examples), "dropped": len(d.drops)} for n, d in datasets.items()},
        "results": results,
        "baselines": {n: label_baselines([e.labels for e in d.examples]) for n, d in datasets.items()},
        "best_of_n": bon,
    }
    out = Path(cfg.out)
    if not main:
        return report
    from rewardlab.evaluation.step_findings import step_report_findings

    report["skipped"] = skipped(report, cfg.candidates, datasets)
    report["findings"] = step_report_findings(report)
    if report["findings"]:
        console.print(f"top finding: {report['findings'][0]['text']}.", soft_wrap=True)
    into = out if into is None else into
    save_yaml(cfg, into / "eval_config.yaml")
    write_json(into / "metrics.json", report)
    S.write_step_reports(report, datasets, probs, scored, into)
    console.print(
        f"wrote {out / 'report.html'} (open it in a browser), {out / 'report.md'}, {out / 'metrics.json'}, "
        f"{out / 'scores.jsonl'} and {out / 'plots'}/",
        soft_wrap=True,
    )
    return report


def _score_at(model: Any, max_length: int) -> None:
    """Score a PRM at ``--max-length`` tokens per solution (its checkpoint's length otherwise)."""
    from rewardlab.models.prm import StepEncoder

    model.encoder = StepEncoder(model.tokenizer, max_length, model.encoder.sep)


def _line(name: str, dname: str, r: dict[str, Any]) -> str:
    """The console line of one PRM on one dataset."""
    ci = r.get("step_accuracy_ci")
    line = f"{name} on {dname}: step accuracy {fmt(r.get('step_accuracy'))}"
    line += f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    line += f", AUROC {fmt(r.get('step_auroc'))}, first-error F1 {fmt(r['first_error']['f1'])}"
    if r["steps_cut_by_max_length"]:
        line += f"; {r['steps_cut_by_max_length']:,} of {r['steps_total']:,} steps cut by the max length"
    return line
