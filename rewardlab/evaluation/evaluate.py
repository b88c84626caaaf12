"""``rewardlab eval``: score held-out pairs with one or more reward models and report.

For each dataset and model it computes, with :mod:`rewardlab.metrics` (the one metrics module):
agreement with a bootstrap interval, margins, calibration of σ(r_chosen − r_rejected) (ECE,
Brier, log loss, the best single temperature), length bias, per-category and section scores,
agreement with annotators, and two consistency checks (a text scored alone and in another batch
gets the same reward). It writes ``metrics.json`` (machine-diffable), ``scores.jsonl`` (one line
per pair, every model's rewards, so any metric can be recomputed elsewhere), ``report.md``,
a self-contained ``report.html`` and the plots as PNG files.

Run: ``rewardlab eval --model runs/demo/model --data runs/demo/heldout.jsonl --out runs/demo/eval``.

Under ``torchrun`` / ``accelerate launch`` (:mod:`rewardlab.distributed`) every process loads each
model and scores one slice of the distinct texts (and of a ``--candidates`` pool); rank 0 gathers
the rewards in input order and alone computes the metrics, runs the consistency checks and writes.
"""

from __future__ import annotations

import json
import math
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.data.schema import PreferencePair, Text, text_chars, text_key
from rewardlab.data.split import seeded_sample
from rewardlab.distributed import is_main, rank_device, run_sharded
from rewardlab.errors import RewardlabError
from rewardlab.evaluation.config import REWARDBENCH_SECTIONS, EvalConfig
from rewardlab.evaluation.inputs import (
    Dataset,
    check_model_specs,
    content_digest,
    load_model,
    model_record,
    split_name,
    unique_names,
)

console = Console()

METRICS_FILE, SCORES_FILE, REPORT_MD, REPORT_HTML, PLOTS_DIR, CONFIG_FILE = (
    "metrics.json",
    "scores.jsonl",
    "report.md",
    "report.html",
    "plots",
    "eval_config.yaml",
)
#: Everything ``rewardlab eval`` writes into ``--out`` (the folder is replaced whole on success).
OUTPUTS = (METRICS_FILE, SCORES_FILE, REPORT_MD, REPORT_HTML, PLOTS_DIR, CONFIG_FILE)


def load_datasets(cfg: EvalConfig) -> list[Dataset]:
    """Load every ``--data`` (all pairs, ties included)."""
    from rewardlab.data import load_preferences

    if cfg.suite:
        from rewardlab.evaluation.suites import load_suite_datasets

        return load_suite_datasets(cfg)
    entries = [split_name(d) for d in cfg.data]
    out = []
    for name, (_, path) in zip(unique_names(entries), entries, strict=True):
        data = load_preferences(path, format=cfg.format, on_error=cfg.on_error, split=cfg.split)
        pairs = data.all_pairs(include_ties=True)
        if not pairs:
            raise RewardlabError(f"{path}: no preference pairs to evaluate")
        total = None
        if cfg.max_pairs is not None and cfg.max_pairs < len(pairs):
            console.print(
                f"{name}: scoring a seeded sample of {cfg.max_pairs} of {len(pairs)} pairs (--max-pairs)"
            )
            total, pairs = len(pairs), seeded_sample(pairs, cfg.max_pairs, cfg.seed)
        files = [f.to_dict() for f in data.files]
        out.append(Dataset(name, path, pairs, len(data.drops), files, sampled_from=total))
    return out


@contextmanager
def uncached(model: Any) -> Any:
    """Score without an embedding model's on-disk cache (the checks must run the model again)."""
    embedder = getattr(model, "embedder", None)
    if embedder is None:
        yield
        return
    with embedder.uncached():
        yield


def score_dataset(
    model: Any, pairs: list[PreferencePair], batch_size: int
) -> tuple[list[float], list[float]]:
    """Rewards of every chosen and rejected response; each distinct text is scored once."""
    index: dict[tuple[str, str], int] = {}
    prompts: list[Text] = []
    responses: list[Text] = []

    def slot(prompt: Text, response: Text) -> int:
        key = (text_key(prompt), text_key(response))
        if key not in index:
            index[key] = len(prompts)
            prompts.append(prompt)
            responses.append(response)
        return index[key]

    cs = [slot(p.prompt, p.chosen) for p in pairs]
    rs = [slot(p.prompt, p.rejected) for p in pairs]
    rewards = run_sharded(
        lambda ps, rs: model.score(ps, rs, batch_size=batch_size, progress=is_main()), prompts, responses
    )
    for pair, c, r in zip(pairs, cs, rs, strict=True):
        for side, value in (("chosen", rewards[c]), ("rejected", rewards[r])):
            if not math.isfinite(value):
                raise RewardlabError(
                    f"{pair.origin or 'a pair'}: the model gave the {side} response the reward {value} "
                    "(not a finite number); nothing written"
                )
    return [rewards[i] for i in cs], [rewards[i] for i in rs]


def consistency_checks(
    model: Any,
    pairs: list[PreferencePair],
    rc: list[float],
    rr: list[float],
    n: int,
    batch_size: int,
    seed: int,
) -> dict[str, Any]:
    """Re-score a sample of texts alone, and in a shuffled batch with each text twice.

    ``alone_max_abs_diff``: rewards scored one at a time (no padding, no batch-mates) against the
    main batched pass. ``duplicate_max_abs_diff``: the same text at two places of one shuffled
    call. Both should be ~0 (float noise); ``passed`` allows 1e-3 × max(1, reward std).
    """
    if n == 0:
        return {}
    rng = random.Random(seed)
    sample = rng.sample(range(len(pairs)), min(n, len(pairs)))
    texts = [(pairs[i].prompt, pairs[i].chosen, rc[i]) for i in sample]
    texts += [(pairs[i].prompt, pairs[i].rejected, rr[i]) for i in sample]
    with uncached(model):
        alone = [model.score([p], [r], batch_size=1)[0] for p, r, _ in texts]
        doubled = texts + texts
        order = list(range(len(doubled)))
        rng.shuffle(order)
        mixed = model.score(
            [doubled[i][0] for i in order], [doubled[i][1] for i in order], batch_size=batch_size
        )
    at = {j: k for k, j in enumerate(order)}
    dup = max(abs(mixed[at[j]] - mixed[at[j + len(texts)]]) for j in range(len(texts)))
    diff = max(abs(a - t[2]) for a, t in zip(alone, texts, strict=True))
    all_rewards = rc + rr
    mean = sum(all_rewards) / len(all_rewards)
    std = (sum((r - mean) ** 2 for r in all_rewards) / len(all_rewards)) ** 0.5
    tol = 1e-3 * max(1.0, std)
    return {
        "texts": len(texts),
        "alone_max_abs_diff": diff,
        "duplicate_max_abs_diff": dup,
        "tolerance": tol,
        "passed": diff <= tol and dup <= tol,
    }


def read_sections(spec: str | None) -> dict[str, list[str]]:
    """``rewardlab`` sections from ``--sections`` (``rewardbench`` or a JSON file)."""
    if spec is None:
        return {}
    if spec == "rewardbench":
        return REWARDBENCH_SECTIONS
    try:
        raw = json.loads(Path(spec).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8 text, not JSON
        raise RewardlabError(f"{spec}: cannot read the sections file: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(v, list) and all(isinstance(c, str) for c in v) for v in raw.values()
    ):
        raise RewardlabError(f'{spec}: sections must be a JSON object {{"section": ["category", ...]}}')
    return raw


def pair_metrics(
    pairs: list[PreferencePair],
    rc: list[float],
    rr: list[float],
    cfg: EvalConfig,
    sections: dict[str, list[str]],
) -> dict[str, Any]:
    """Every metric of one model on one dataset (see the README for each key)."""
    from rewardlab import metrics as M

    use = [i for i, p in enumerate(pairs) if p.usable]
    ties = [i for i, p in enumerate(pairs) if p.tie]
    if not use:
        raise RewardlabError("no usable (non-tie, non-identical) pairs to evaluate")
    c, r = [rc[i] for i in use], [rr[i] for i in use]
    deltas = [a - b for a, b in zip(c, r, strict=True)]
    temperature = M.fit_temperature(deltas)
    scaled = [d / temperature for d in deltas]
    lengths = M.length_bias(
        c, r, [text_chars(pairs[i].chosen) for i in use], [text_chars(pairs[i].rejected) for i in use]
    )
    per_category = M.category_accuracy(deltas, [pairs[i].category for i in use])
    section_table, section_score = M.section_scores(per_category, sections)
    voted = [
        (abs(d), pairs[i].agreement)
        for d, i in zip(deltas, use, strict=True)
        if pairs[i].agreement is not None
    ]
    out: dict[str, Any] = {
        "n_pairs": len(use),
        "n_ties": len(ties),
        "n_identical": sum(p.identical and not p.tie for p in pairs),
        "accuracy": M.pairwise_accuracy(deltas),
        "accuracy_ci": list(M.bootstrap_ci(M.correctness(deltas), cfg.bootstrap, 0.95, cfg.seed)),
        "mean_margin": sum(deltas) / len(deltas),
        "median_margin": M.percentile(deltas, 50),
        "mean_abs_margin": sum(abs(d) for d in deltas) / len(deltas),
        "reward_mean_chosen": sum(c) / len(c),
        "reward_mean_rejected": sum(r) / len(r),
        "ece": M.expected_calibration_error(deltas, cfg.bins),
        "brier": M.brier_score(deltas),
        "log_loss": M.log_loss(deltas),
        "temperature": temperature,
        "ece_after_temperature": M.expected_calibration_error(scaled, cfg.bins),
        "log_loss_after_temperature": M.log_loss(scaled),
        "reliability": M.reliability_bins(deltas, cfg.bins),
        **lengths,
        "per_category": per_category,
        "sections": section_table,
        "section_score": section_score,
        "agreement_pairs": len(voted),
        "agreement_margin_spearman": M.spearman([v[0] for v in voted], [v[1] for v in voted])
        if len(voted) >= 3
        else None,
        "tie_mean_abs_margin": sum(abs(rc[i] - rr[i]) for i in ties) / len(ties) if ties else None,
    }
    return out


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run ``rewardlab eval``: score, compute the metrics, write every output; return metrics.json.

    On a rank other than 0 of a launch: score this rank's slices and return ``{}``.
    """
    from rewardlab import __version__
    from rewardlab.config import save_yaml
    from rewardlab.data import StepwiseDataError
    from rewardlab.evaluation.report import write_reports
    from rewardlab.io_utils import atomic_dir, check_out_dir, dumps, write_text
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    out = Path(cfg.out)
    check_out_dir(out, OUTPUTS)  # before any work: a run that cannot write its outputs fails at once
    sections = read_sections(cfg.sections)
    from rewardlab.evaluation import compare

    previous = compare.read_previous(cfg)  # a bad --compare file fails before any work
    try:
        datasets = load_datasets(cfg)
    except StepwiseDataError:
        from rewardlab.evaluation.steps import evaluate_steps

        if not is_main():  # another rank of a launch: score its slice, write nothing
            return evaluate_steps(cfg)
        with atomic_dir(out, OUTPUTS) as tmp:
            return evaluate_steps(cfg, tmp)
    pools, bon = None, None
    if cfg.candidates:
        from rewardlab.evaluation.steps import read_pools

        pools, bon = read_pools(cfg.candidates)
    model_entries = [split_name(m) for m in cfg.model]
    check_model_specs([path for _, path in model_entries])
    names = unique_names(model_entries)
    results: dict[str, dict[str, Any]] = {d.name: {} for d in datasets}
    rewards: dict[str, dict[str, tuple[list[float], list[float]]]] = {d.name: {} for d in datasets}
    models: dict[str, Any] = {}
    main = is_main()
    for name, (_, path) in zip(names, model_entries, strict=True):
        if main:
            console.print(f"model {name}: loading {path}", soft_wrap=True)
        model = load_model(path, cfg.max_length, rank_device(cfg.device))
        models[name] = model_record(path, model)
        for d in datasets:
            start = time.time()
            rc, rr = score_dataset(model, d.pairs, cfg.batch_size)
            seconds = time.time() - start
            if not main:
                continue  # rank 0 has every reward: it alone computes the metrics and writes
            m = pair_metrics(d.pairs, rc, rr, cfg, sections)
            m["checks"] = consistency_checks(
                model, d.pairs, rc, rr, cfg.check_pairs, cfg.batch_size, cfg.seed
            )
            m["scoring_seconds"] = seconds
            if d.suite is not None:
                from rewardlab.evaluation.suites import suite_finding, suite_score

                m["suite"] = suite_score(d.suite, d.pairs, rc, rr)
                console.print(
                    "  " + suite_finding(cfg.suite, name, d.name, m["suite"], False), soft_wrap=True
                )
            results[d.name][name] = m
            rewards[d.name][name] = (rc, rr)
            console.print(
                f"  {d.name}: accuracy {m['accuracy']:.3f} [{m['accuracy_ci'][0]:.3f}, "
                f"{m['accuracy_ci'][1]:.3f}], ECE {m['ece']:.3f}, length-only "
                f"{m['length_baseline_accuracy']:.3f} ({m['n_pairs']} pairs, {seconds:.1f} s)",
                soft_wrap=True,
            )
        if pools is not None and bon is not None:
            from rewardlab.evaluation.steps import bon_report

            bon["models"][name] = bon_report(model, pools, cfg.batch_size)
            if main:
                console.print(f"  best-of-N on {cfg.candidates}: {bon['models'][name]}", soft_wrap=True)
        del model
    if not main:
        return {}
    report = {
        "rewardlab_version": __version__,
        "models": models,
        "datasets": {
            d.name: {
                "path": d.path,
                "pairs_loaded": len(d.pairs),
                "content_sha256": content_digest(d.pairs),
                **({"sampled_from": d.sampled_from} if d.sampled_from else {}),
                "records_dropped": d.dropped,
                "files": d.files,
            }
            for d in datasets
        },
        "results": results,
        "best_of_n": bon,
    }
    compare.add_to_report(report, cfg, {d.name: d for d in datasets}, rewards, previous)
    from rewardlab.evaluation.findings import report_findings

    report["findings"] = report_findings(report)
    lines = []
    for d in datasets:
        for i, p in enumerate(d.pairs):
            row: dict[str, Any] = {
                "dataset": d.name,
                "index": i,
                "origin": p.origin,
                "category": p.category,
                "tie": p.tie,
                "chosen_chars": text_chars(p.chosen),
                "rejected_chars": text_chars(p.rejected),
                "rewards": {
                    n: {"chosen": rewards[d.name][n][0][i], "rejected": rewards[d.name][n][1][i]}
                    for n in names
                },
            }
            lines.append(dumps(row, f"{out / SCORES_FILE}, line {len(lines) + 1}"))
    metrics_text = dumps(report, str(out / METRICS_FILE), indent=2) + "\n"
    with atomic_dir(out, OUTPUTS) as tmp:  # all or nothing: a failure leaves the earlier outputs as they were
        save_yaml(cfg, tmp / CONFIG_FILE)
        write_text(tmp / SCORES_FILE, "\n".join(lines) + "\n")
        write_text(tmp / METRICS_FILE, metrics_text)
        write_reports(report, {d.name: d for d in datasets}, rewards, tmp)
    if report["findings"]:
        console.print(f"top finding: {report['findings'][0]['text']}.", soft_wrap=True)
    console.print(
        f"wrote {out / REPORT_HTML} (open it in a browser), {out / REPORT_MD}, {out / METRICS_FILE}, "
        f"{out / SCORES_FILE} and {out / PLOTS_DIR}/",
        soft_wrap=True,
    )
    if report.get("regression", {}).get("failed"):
        raise compare.RegressionFound(report["regression"]["message"])
    return report
