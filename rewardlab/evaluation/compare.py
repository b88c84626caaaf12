"""Comparing models and runs: paired-bootstrap accuracy differences, and the ``--compare`` regression check.

Models: on each dataset, every two models are compared on the same usable pairs; the difference
in accuracy (B − A) gets a paired-bootstrap interval (:func:`rewardlab.metrics.paired_difference`)
and a plain statement ("B beats A by 0.03 [0.01, 0.05]" or "no clear difference").

Runs: ``--compare OLD/metrics.json`` checks a metric (``--metric``, a dotted key of a model's results:
``accuracy``, ``suite.overall``, ``suite.hard``, ``suite.domains.chat.score`` …; default
``suite.overall`` with ``--suite``, else ``accuracy``) for every dataset and model present in both
runs. A drop of more than ``--max-drop`` (a rise, for ECE, Brier and log loss) makes ``rewardlab
eval`` exit with status 1 after writing its outputs, with one line naming the metric, old and new.
"""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

from rewardlab import metrics as M
from rewardlab.errors import RewardlabError

#: Metrics where lower is better: for these a rise is the regression.
LOWER_IS_BETTER = ("ece", "brier", "log_loss", "ece_after_temperature", "log_loss_after_temperature")


class RegressionFound(RewardlabError):
    """A chosen metric dropped by more than ``--max-drop``: the CLI prints it and exits with status 1."""

    exit_code = 1


def model_comparisons(
    datasets: dict[str, Any], rewards: dict[str, Any], n_boot: int, seed: int
) -> dict[str, list[dict[str, Any]]]:
    """Per dataset, the paired-bootstrap difference in accuracy of every two models."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, per_model in rewards.items():
        if len(per_model) < 2:
            continue
        use = [i for i, p in enumerate(datasets[name].pairs) if p.usable]
        right = {m: M.correctness([rc[i] - rr[i] for i in use]) for m, (rc, rr) in per_model.items()}
        rows = []
        for a, b in combinations(per_model, 2):
            d = M.paired_difference(right[a], right[b], n_boot, 0.95, seed)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "metric": "accuracy",
                    "n_pairs": len(use),
                    **d,
                    "statement": M.difference_statement(a, b, d["difference"], d["ci"]),
                }
            )
        if datasets[name].suite is not None:
            rows += _suite_comparisons(datasets[name], per_model, n_boot, seed)
        out[name] = rows
    return out


def _suite_comparisons(
    dataset: Any, per_model: dict[str, Any], n_boot: int, seed: int
) -> list[dict[str, Any]]:
    """Every two models on the benchmark's overall score, resampling the benchmark's prompts."""
    from rewardlab.evaluation.suites import item_scores, score_items

    suite = dataset.suite
    scored = {m: item_scores(suite, dataset.pairs, rc, rr) for m, (rc, rr) in per_model.items()}
    rows = []
    for a, b in combinations(per_model, 2):

        def overall(idx: Any, a: str = a, b: str = b) -> tuple[float | None, float | None]:
            return tuple(score_items(suite.suite, [scored[m][i] for i in idx])["overall"] for m in (a, b))

        d = M.paired_bootstrap(len(suite.items), overall, n_boot, 0.95, seed)
        if d is not None:
            statement = M.difference_statement(a, b, d["difference"], d["ci"])
            metric = "suite.overall"
            rows.append(
                {"a": a, "b": b, "metric": metric, "n_prompts": len(suite.items), **d, "statement": statement}
            )
    return rows


def read_previous(cfg: Any) -> dict[str, Any] | None:
    """The earlier run's metrics.json of ``--compare`` (checked before any work), or ``None``."""
    if not cfg.compare:
        return None
    try:
        old = json.loads(Path(cfg.compare).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RewardlabError(f"{cfg.compare}: cannot read the earlier metrics.json: {exc}") from exc
    if not isinstance(old, dict) or not isinstance(old.get("results"), dict):
        raise RewardlabError(f"{cfg.compare}: not a metrics.json written by rewardlab eval (no results)")
    if old.get("suite") != cfg.suite:
        raise RewardlabError(
            f"{cfg.compare}: that run was of suite {old.get('suite') or 'none'}, this one of "
            f"{cfg.suite or 'none'}; --compare needs two runs of the same suite"
        )
    return old


def metric_value(result: Any, metric: str) -> float | None:
    """The value at the dotted key ``metric`` of one model's results, or ``None``."""
    value = result
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def same_data(old: dict[str, Any], new: dict[str, Any], against: str) -> dict[str, str]:
    """Per data set in both runs: ``same`` (equal content hashes) or ``unverified`` (no hash recorded then).

    Raises:
        RewardlabError: a data set of the same name holds different pairs in the two runs: a
            regression check on different data would compare nothing.
    """
    out = {}
    for name, info in (new.get("datasets") or {}).items():
        before = ((old.get("datasets") or {}).get(name) or {}).get("content_sha256")
        if name not in old.get("results", {}):
            continue
        if before is None:
            out[name] = "unverified"  # an earlier rewardlab wrote no hash: matched by name only
        elif before != info.get("content_sha256"):
            raise RewardlabError(
                f"--compare {against}: data set {name!r} holds different pairs in the two runs (content "
                f"SHA-256 {str(before)[:12]}... then, {str(info.get('content_sha256'))[:12]}... now): a "
                "regression check needs the same data"
            )
        else:
            out[name] = "same"
    return out


def _data_note(data: dict[str, str]) -> str:
    unverified = sorted(name for name, how in data.items() if how == "unverified")
    if unverified:
        return f" ({', '.join(unverified)}: matched by name only, the earlier run recorded no content hash)"
    return " (on the same data: content hashes equal)" if data else ""


def check_regression(old: dict[str, Any], new: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """Compare ``cfg.metric`` between two runs for every dataset and model present in both.

    Raises:
        RewardlabError: no dataset and model of this run has the metric in the earlier run.
    """
    metric = cfg.metric or ("suite.overall" if cfg.suite else "accuracy")
    lower = metric.split(".")[-1] in LOWER_IS_BETTER
    data = same_data(old, new, cfg.compare)
    checks, skipped = [], []
    for dname, per_model in new["results"].items():
        for model, result in per_model.items():
            before = metric_value(old["results"].get(dname, {}).get(model), metric)
            after = metric_value(result, metric)
            if before is None or after is None:
                skipped.append(f"{model} on {dname}")
                continue
            drop = (after - before) if lower else (before - after)
            checks.append(
                {
                    "dataset": dname,
                    "model": model,
                    "old": before,
                    "new": after,
                    "drop": drop,
                    "regressed": drop > cfg.max_drop + 1e-12,
                }
            )
    if not checks:
        raise RewardlabError(
            f"--compare {cfg.compare}: no dataset and model of this run has '{metric}' in both runs "
            "(datasets and models are matched by name)"
        )
    bad = [c for c in checks if c["regressed"]]
    how = "rose" if lower else "fell"
    message = "; ".join(
        f"{metric} of {c['model']} on {c['dataset']} {how} from {c['old']:.4f} to {c['new']:.4f} "
        f"(more than --max-drop {cfg.max_drop:g})"
        for c in bad
    )
    settings = {
        m: [before.get("max_length"), after.get("max_length")]
        for m, after in (new.get("models") or {}).items()
        if isinstance(before := (old.get("models") or {}).get(m), dict)
        and before.get("max_length") != after.get("max_length")
    }
    return {
        "settings_differ": settings,
        "against": str(cfg.compare),
        "metric": metric,
        "max_drop": cfg.max_drop,
        "checks": checks,
        "not_compared": skipped,
        "data": data,
        "failed": bool(bad),
        "message": (f"regression: {message}" if bad else f"no regression of {metric} beyond {cfg.max_drop:g}")
        + _data_note(data),
    }


def comparison_rows(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the model comparisons and of the regression check, for the report."""
    out = []
    for name, rows in (report.get("comparisons") or {}).items():
        out.append(
            (
                f"{name}: model comparison (paired bootstrap, 95 %)",
                ["A", "B", "metric", "B − A", "interval", "verdict"],
                [
                    [
                        r["a"],
                        r["b"],
                        r["metric"],
                        f"{r['difference']:+.3f}",
                        f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]",
                        r["statement"],
                    ]
                    for r in rows
                ],
            )
        )
    reg = report.get("regression")
    if reg:
        out.append(
            (
                f"Regression check against {reg['against']} ({reg['metric']}, max drop {reg['max_drop']:g})",
                ["dataset", "model", "old", "new", "drop", "verdict"],
                [
                    [c["dataset"], c["model"], f"{c['old']:.4f}", f"{c['new']:.4f}", f"{c['drop']:+.4f}"]
                    + ["REGRESSION" if c["regressed"] else "ok"]
                    for c in reg["checks"]
                ]
                + [[s, "", "", "", "", "not in both runs"] for s in reg["not_compared"]],
            )
        )
    return out


def add_to_report(
    report: dict[str, Any],
    cfg: Any,
    datasets: dict[str, Any],
    rewards: dict[str, Any],
    previous: dict[str, Any] | None,
) -> None:
    """Add ``suite``, model ``comparisons`` and the ``regression`` check to metrics.json where they apply."""
    if cfg.suite:
        report["suite"] = cfg.suite
    comparisons = model_comparisons(datasets, rewards, cfg.bootstrap, cfg.seed)
    if comparisons:
        report["comparisons"] = comparisons
    if previous is not None:
        report["regression"] = check_regression(previous, report, cfg)
