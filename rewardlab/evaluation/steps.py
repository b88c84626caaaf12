"""``rewardlab eval`` on step-labelled data, and best-of-N selection accuracy on a labelled pool.

Step-labelled data (:mod:`rewardlab.data.stepwise`): for each process reward model, step-level
accuracy, wrong-step F1 and AUROC (:func:`rewardlab.metrics.step_metrics`), and ProcessBench-style
first-error identification: the predicted first error is the first step with P(correct) < 0.5,
compared with the human one (:func:`rewardlab.metrics.first_error_metrics`). Outcome models have no
step scores and are reported as such.

Best-of-N (``--candidates``, a pool whose candidates carry outcome labels such as GSM8K's
``is_correct``): per model, the mean label of the candidate it ranks first (ties share the pick),
for a PRM under each aggregation (min, prod, last, mean), against picking at random and an oracle.

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
from rewardlab.reporting import fmt

console = Console()


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def step_report(model: Any, examples: list[Any], batch_size: int) -> dict[str, Any]:
    """Step-level and first-error metrics of one PRM on stepwise examples."""
    probs = run_sharded(
        lambda ps, ss: model.step_probabilities(ps, ss, batch_size),
        [e.prompt for e in examples],
        [e.steps for e in examples],
    )
    logits, targets, predicted, gold, cut, unlabelled = [], [], [], [], 0, 0
    for e, ps in zip(examples, probs, strict=True):
        kept = [p for p in ps if not math.isnan(p)]
        cut += len(ps) - len(kept)
        for p, y in zip(kept, e.labels, strict=False):
            if y is not None:
                logits.append(_logit(p))
                targets.append(y)
        if all(y is None for y in e.labels):
            unlabelled += 1  # no human first error to compare with
            continue
        gold.append(M.first_error(e.labels))
        predicted.append(M.first_error(kept))
    return {
        "solutions": len(examples),
        "steps_cut_by_max_length": cut,
        "solutions_without_labels": unlabelled,
        **M.step_metrics(logits, targets),
        "first_error": M.first_error_metrics(predicted, gold),
    }


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
    """``rewardlab eval`` when the data is step-labelled: write metrics.json and report.md/.html.

    ``into``: the folder written (default ``cfg.out``; ``evaluate`` passes a temporary one). A rank
    other than 0 of a launch scores its slices, prints and writes nothing, and returns the report.
    """
    from rewardlab import __version__
    from rewardlab.config import save_yaml
    from rewardlab.data.stepwise import load_stepwise
    from rewardlab.evaluation.inputs import (
        check_model_specs,
        load_model,
        model_record,
        split_name,
        unique_names,
    )
    from rewardlab.io_utils import write_json, write_text
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
    models = {}
    main = is_main()
    for name, (_, path) in zip(unique_names(model_entries), model_entries, strict=True):
        model = load_model(path, cfg.max_length, rank_device(cfg.device))
        models[name] = model_record(path, model)
        for dname, data in datasets.items():
            if isinstance(model, ProcessRewardModel):
                r = step_report(model, data.examples, cfg.batch_size)
                fe = r["first_error"]
                if main:
                    console.print(
                        f"{name} on {dname}: step accuracy {r.get('step_accuracy', math.nan):.3f}, "
                        f"AUROC {r.get('step_auroc', math.nan):.3f}, first-error F1 {fmt(fe['f1'])}",
                        soft_wrap=True,
                    )
            else:
                r = {"skipped": "an outcome reward model gives no step scores"}
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
        "baselines": {n: M.step_baselines([e.labels for e in d.examples]) for n, d in datasets.items()},
        "best_of_n": bon,
    }
    out = Path(cfg.out)
    if not main:
        return report
    from rewardlab.evaluation.step_findings import step_report_findings

    report["findings"] = step_report_findings(report)
    if report["findings"]:
        console.print(f"top finding: {report['findings'][0]['text']}.", soft_wrap=True)
    into = out if into is None else into
    save_yaml(cfg, into / "eval_config.yaml")
    write_json(into / "metrics.json", report)
    write_text(into / "report.md", render_markdown(report))
    write_text(into / "report.html", render_html(report))
    console.print(
        f"wrote {out / 'report.html'}, {out / 'report.md'} and {out / 'metrics.json'}", soft_wrap=True
    )
    return report


ROWS = (
    ("step_accuracy", "step accuracy"),
    ("step_auroc", "step AUROC"),
    ("wrong_step_f1", "wrong-step F1"),
    ("loss", "step log loss"),
)


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the stepwise report."""
    out = []
    names = list(report["models"])
    for dname, per in report["results"].items():
        # label-only baselines (reports written before they existed have none)
        base = (report.get("baselines") or {}).get(dname) or {}
        always, rand = base.get("every_step_correct", {}), base.get("random", {})
        rows = [
            [label] + [fmt(per[m].get(key)) for m in names] + [fmt(always.get(key)), fmt(rand.get(key))]
            for key, label in ROWS
        ]
        for key, label in (
            ("accuracy_erroneous", "first error found exactly (erroneous solutions)"),
            ("accuracy_correct", "no error predicted (correct solutions)"),
            ("f1", "first-error F1 (harmonic mean)"),
        ):
            found = [fmt((per[m].get("first_error") or {}).get(key)) for m in names]
            rows.append([label, *found, fmt(always.get(key)), fmt(rand.get(key))])
        header = ["metric", *names, "baseline: every step correct", "baseline: random first error"]
        out.append((dname, header, rows))
    if report.get("best_of_n"):
        out.append(bon_table(report["best_of_n"]))
    return out


def bon_table(bon: dict[str, Any]) -> tuple[str, list[str], list[list[str]]]:
    """The best-of-N selection table (also used by the pairwise report)."""
    rows = [["random pick", "", fmt(bon["random"])], ["oracle (any correct)", "", fmt(bon["oracle"])]]
    rows += [[m, how, fmt(v)] for m, per in bon["models"].items() for how, v in per.items()]
    title = f"best-of-N on {bon['path']} ({bon['pools']} prompts, {bon['candidates']} candidates)"
    return title, ["selector", "aggregation", "mean outcome of the pick"], rows


def findings_lines(report: dict[str, Any]) -> list[str]:
    """The ranked findings as sentences (computed here for a report written without them)."""
    from rewardlab.evaluation.step_findings import step_report_findings

    found = report.get("findings")
    return [f["text"] + "." for f in (step_report_findings(report) if found is None else found)]


def render_markdown(report: dict[str, Any]) -> str:
    """The stepwise evaluation as Markdown."""
    from rewardlab.reporting import md_table

    md = ["# rewardlab evaluation report (step-labelled data)", ""]
    md += [f"- {line}" for line in findings_lines(report)] + [""]
    for title, header, rows in tables(report):
        md += [f"## {title}", "", *md_table(header, rows)]
    return "\n".join(md)


def render_html(report: dict[str, Any]) -> str:
    """The stepwise evaluation as one HTML file."""
    import html

    from rewardlab.reporting import html_page, html_table

    parts = ["<ul id='findings'>", *[f"<li>{html.escape(x)}</li>" for x in findings_lines(report)], "</ul>"]
    for title, header, rows in tables(report):
        parts += [f"<h2>{html.escape(title)}</h2>", html_table(header, rows)]
    return html_page("rewardlab evaluation report (step-labelled data)", parts)
