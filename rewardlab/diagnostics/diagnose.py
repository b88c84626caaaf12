"""``rewardlab diagnose``: find a reward model's exploitable weaknesses before a policy does.

Runs, on held-out preference data and optionally a best-of-N candidate pool with a gold reward:
perturbation probes (:mod:`rewardlab.diagnostics.probes`), length exploitation with a fitted
length correction, ensemble disagreement, and best-of-N over-optimisation per ensemble
aggregation (:mod:`rewardlab.diagnostics.checks`). Ranks what it finds, with evidence and a
mitigation each, and writes ``diagnostics.json``, ``diagnostics.md``, a self-contained
``diagnostics.html`` and plots.

Run: ``rewardlab diagnose --model runs/demo/model --data runs/demo/heldout.jsonl --gold demo
--out runs/demo/diagnose``.
"""

from __future__ import annotations

import importlib
import importlib.util
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.data.schema import Text, text_plain
from rewardlab.diagnostics import checks
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.diagnostics.held_out import HeldOut, MemberScorer, mean_over, score_held_out
from rewardlab.diagnostics.outputs import (
    CONFIG_FILE,
    HTML_FILE,
    JSON_FILE,
    MD_FILE,
    adversarial_rows,
    info_file,
    length_correction_record,
    outputs_of,
    store_length_correction,
)
from rewardlab.diagnostics.probes import Probe
from rewardlab.errors import RewardlabError

console = Console()

#: A best-of-N pool: (prompt, candidates, their labels if any, where it came from).
Pool = tuple[Text, list[Text], list[float] | None, str]


def load_plugins(plugins: Sequence[str]) -> None:
    """Import each plugin (a ``.py`` file or a module name), so its probes register."""
    for i, plugin in enumerate(plugins):
        try:
            if plugin.endswith(".py"):
                spec = importlib.util.spec_from_file_location(f"rewardlab_plugin_{i}", plugin)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {plugin}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(plugin)
        except (ImportError, OSError, SyntaxError) as exc:
            raise RewardlabError(f"--plugin {plugin}: {exc}") from exc


def _pools(cfg: DiagnoseConfig) -> list[Pool] | None:
    """(prompt, candidates, labels, where) of the best-of-N pool, or ``None`` without one."""
    if cfg.candidates:
        from rewardlab.data.pools import read_candidates

        return [(p.prompt, p.texts, p.gold, p.where) for p in read_candidates(cfg.candidates)]
    if cfg.gold == "demo":
        from rewardlab.data.demo import generate_candidates

        rows = generate_candidates(cfg.bon_prompts, cfg.bon_n, cfg.seed)
        return [(r["prompt"], r["responses"], r["scores"], f"demo pool #{i}") for i, r in enumerate(rows)]
    if cfg.gold:
        raise RewardlabError("--gold with a reward model needs --candidates (a pool to select from)")
    return None


def _gold(cfg: DiagnoseConfig, pools: list[Pool]) -> tuple[list[list[float]], str]:
    """Gold rewards of every pool's candidates, and what they are."""
    if cfg.gold == "demo":
        from rewardlab.data.demo import gold_reward

        out = []
        for prompt, texts, _, where in pools:
            try:
                out.append([gold_reward(checks.request_text(prompt), text_plain(t)) for t in texts])
            except ValueError as exc:
                raise RewardlabError(f"{where}: --gold demo only judges demo prompts ({exc})") from exc
        return out, "demo rule-based gold reward (rewardlab.data.demo.gold_reward)"
    if cfg.gold:
        from rewardlab.models.reward_model import RewardModel

        if not Path(cfg.gold).is_dir():
            raise RewardlabError(f"--gold {cfg.gold}: not 'demo' and not a model folder")
        gold_model = RewardModel.from_pretrained(cfg.gold, device=cfg.device)
        flat = gold_model.score(
            [p for p, texts, _, _ in pools for _ in texts],
            [t for _, texts, _, _ in pools for t in texts],
            batch_size=cfg.batch_size,
            progress=True,
        )
        out, at = [], 0
        for _, texts, _, _ in pools:
            out.append(flat[at : at + len(texts)])
            at += len(texts)
        return out, f"reward model {cfg.gold}"
    missing = [where for _, _, labels, where in pools if labels is None]
    if missing:
        raise RewardlabError(
            f"{missing[0]}: candidates without labels (is_correct, score ...): give --gold demo or --gold DIR"
        )
    return [list(labels or []) for _, _, labels, _ in pools], f"the pool's own labels ({cfg.candidates})"


def run_probes(
    cfg: DiagnoseConfig, probes: Sequence[Probe], held: HeldOut, score: MemberScorer
) -> tuple[list[checks.Probed], dict[str, int], int]:
    """Perturb a sample of the responses with every probe and score the results.

    Returns:
        The probed responses, how many responses each probe left alone (skipped), and the sample size.
    """
    rng = random.Random(cfg.seed)
    n = len(held.responses)
    sample = sorted(rng.sample(range(n), min(cfg.max_responses, n)))
    todo: list[tuple[str, int, Text]] = []
    skipped = {p.name: 0 for p in probes}
    for probe in probes:
        for i in sample:
            try:
                new = checks.apply_probe(probe, held.prompts[i], held.responses[i])
            except Exception as exc:  # a user's probe: name it rather than fail deep inside
                raise RewardlabError(f"probe {probe.name} failed on response {i}: {exc!r}") from exc
            if new is None:
                skipped[probe.name] += 1
            else:
                todo.append((probe.name, i, new))
    console.print(
        f"probing {len(sample)} responses with {len(probes)} probes ({len(todo)} perturbed texts) ..."
    )
    prompts = [held.prompts[i] for _, i, _ in todo]
    after = mean_over(score(prompts, [t for _, _, t in todo])) if todo else []
    probed = [
        checks.Probed(name, held.prompts[i], held.responses[i], new, held.rewards[i], a)
        for (name, i, new), a in zip(todo, after, strict=True)
    ]
    return probed, skipped, len(sample)


def check_probes(
    cfg: DiagnoseConfig,
    probes: Sequence[Probe],
    probed: list[checks.Probed],
    skipped: dict[str, int],
    std: float,
) -> dict[str, Any]:
    """The probe table; with a gold that judges any text, the gold decides which changes are damage."""
    from rewardlab.diagnostics.gold_probes import gold_judge, judge_probes

    table = checks.probe_report(probes, probed, skipped, std)
    return judge_probes(table, probed, gold_judge(cfg.gold, cfg.device, cfg.batch_size), std)


def check_length(
    held: HeldOut, probe_table: dict[str, Any], seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Length exploitation (flags read the probe table too) and the fitted length correction."""
    h = held
    length = checks.length_checks(h.rewards, h.lengths, h.chars, h.groups, h.pair_idx)
    correction = checks.fit_length_correction(h.rewards, h.lengths, h.chars, h.groups, h.pair_idx, seed)
    length["flags"] = checks.length_flags(length, probe_table)
    return length, correction


def check_disagreement(held: HeldOut) -> dict[str, Any] | None:
    """How far the ensemble's members disagree, and whether that predicts their mistakes (2+ members)."""
    if len(held.members) < 2:
        return None
    return checks.disagreement(
        [[m[c] for c, _ in held.pair_idx] for m in held.members],
        [[m[r] for _, r in held.pair_idx] for m in held.members],
    )


def check_best_of_n(
    cfg: DiagnoseConfig, pools: list[Pool] | None, score: MemberScorer, k: int
) -> dict[str, Any] | None:
    """Best-of-N over-optimisation per aggregation, against the gold; ``None`` without a pool."""
    if pools is None:
        return None
    import torch

    from rewardlab.models.ensemble import aggregate

    single = sum(len(pl[1]) < 2 for pl in pools)  # nothing to select among: left out, counted
    pools = [pl for pl in pools if len(pl[1]) >= 2]
    if not pools:
        raise RewardlabError("the candidate pool has no prompt with two or more candidates")
    if single:
        console.print(f"best-of-N: {single} prompts with a single candidate left out", soft_wrap=True)
    gold, gold_source = _gold(cfg, pools)
    flat = score(
        [p for p, texts, _, _ in pools for _ in texts], [t for _, texts, _, _ in pools for t in texts]
    )
    per_pool, at = [], 0
    for (_, texts, _, _), g in zip(pools, gold, strict=True):
        per_pool.append(([m[at : at + len(texts)] for m in flat], g))
        at += len(texts)

    def agg(ms: list[list[float]], how: str) -> list[float]:
        return aggregate(torch.tensor(ms, dtype=torch.float64), how, cfg.uwo_lambda).tolist()

    bon = checks.bon_curves(per_pool, agg, checks.BON_AGGREGATIONS if k >= 2 else ("mean",))
    bon["gold_source"] = gold_source
    bon["prompts_with_one_candidate_left_out"] = single
    bon["candidates_total"] = sum(len(t) for _, t, _, _ in pools)
    return bon


def _load_models(cfg: DiagnoseConfig) -> list[Any]:
    from rewardlab.models.loading import load_reward, reward_kind

    for path in cfg.model:
        if reward_kind(path) == "checkpoint" and not Path(path).is_dir():
            raise RewardlabError(f"{path}: no such model folder")
    return [load_reward(p, device=cfg.device) for p in cfg.model]


def _write(
    cfg: DiagnoseConfig, report: dict[str, Any], adversarial: list[dict[str, Any]], held: HeldOut
) -> None:
    """Write every output at once (all or nothing) and say what was written."""
    from rewardlab.config import save_yaml
    from rewardlab.diagnostics.report import write_reports
    from rewardlab.io_utils import atomic_dir, dumps, write_jsonl, write_text

    out = Path(cfg.out)
    own, export_to = outputs_of(cfg)
    json_text = dumps(report, str(out / JSON_FILE), indent=2) + "\n"
    with atomic_dir(out, own) as tmp:  # all or nothing: a failure leaves the earlier outputs as they were
        save_yaml(cfg, tmp / CONFIG_FILE)
        if cfg.export_adversarial:
            write_jsonl(tmp / export_to if export_to else cfg.export_adversarial, adversarial)
        write_text(tmp / JSON_FILE, json_text)
        write_reports(report, held.rewards, held.chars, tmp)
        if cfg.store_length_correction:
            store_length_correction(cfg.model[0], report["length_correction_stored"])
    if cfg.export_adversarial:
        console.print(
            f"wrote {len(adversarial)} adversarial pairs to {cfg.export_adversarial}", soft_wrap=True
        )
    for i, f in enumerate(report["findings"], 1):
        console.print(f"{i}. [bold]{f['title']}[/] (severity {f['severity']:.2f})", soft_wrap=True)
    if not report["findings"]:
        console.print("no finding: no check fired", soft_wrap=True)
    console.print(
        f"wrote {out / HTML_FILE} (open it in a browser), {out / MD_FILE} and {out / JSON_FILE}",
        soft_wrap=True,
    )


def diagnose(cfg: DiagnoseConfig, models: Sequence[Any] | None = None) -> dict[str, Any]:
    """Run ``rewardlab diagnose``; return what diagnostics.json holds.

    Each check is its own function (:func:`check_probes`, :func:`check_length`,
    :func:`check_disagreement`, :func:`check_best_of_n`); this one only checks the inputs, scores
    the held-out responses once, runs the checks in order and writes the outputs.

    ``models`` (anything with ``score(prompts, responses, **kw)``) replaces loading ``cfg.model``,
    for tests and for models built in code.
    """
    from rewardlab import __version__
    from rewardlab.data import load_preferences
    from rewardlab.diagnostics.findings import rank_findings
    from rewardlab.diagnostics.probes import select
    from rewardlab.io_utils import check_out_dir
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    own, _ = outputs_of(cfg)
    check_out_dir(Path(cfg.out), own)  # before any work: a run that cannot write its outputs fails at once
    if cfg.store_length_correction:
        info_file(cfg.model[0])
    load_plugins(cfg.plugin)
    try:
        probes = select(cfg.probes)
    except ValueError as exc:
        raise RewardlabError(f"--probes: {exc}") from exc
    data = load_preferences(cfg.data, format=cfg.format, on_error=cfg.on_error, split=cfg.split)
    pairs = data.training_pairs()
    if not pairs:
        raise RewardlabError(f"{cfg.data}: no usable preference pairs")
    pools = _pools(cfg)
    if models is None:
        models = _load_models(cfg)
    score = MemberScorer(RewardEnsemble(models), cfg.batch_size)
    held = score_held_out(pairs, score)
    k = len(held.members)

    probed, skipped, sampled = run_probes(cfg, probes, held, score)
    probe_table = check_probes(cfg, probes, probed, skipped, held.std)
    length, correction = check_length(held, probe_table, cfg.seed)
    spread = check_disagreement(held)
    bon = check_best_of_n(cfg, pools, score, k)

    report: dict[str, Any] = {
        "rewardlab_version": __version__,
        "models": cfg.model,
        "model_kinds": [(getattr(m, "info", None) or {}).get("kind", "orm") for m in models],
        "members": k,
        "data": {
            "path": cfg.data,
            "pairs": len(pairs),
            "responses": len(held.responses),
            "dropped": len(data.drops),
        },
        "reward_std": held.std,
        "probes": probe_table,
        "probed_responses": sampled,
        "length": length,
        "length_correction": correction,
        "disagreement": spread,
        "best_of_n": bon,
    }
    report["findings"], report["notes"] = rank_findings(report)
    if bon is None:  # said, not dropped without a word
        why = (
            "best-of-N over-optimisation was not checked: it needs a gold reward to judge the picks "
            "(--gold demo on demo data, or --candidates POOL whose candidates carry gold scores or labels)"
        )
        report["skipped"] = {"best_of_n": why}
        console.print(f"note: {why}", soft_wrap=True)
    if cfg.store_length_correction:
        report["length_correction_stored"] = length_correction_record(correction, cfg.data)
    adversarial = adversarial_rows(probed, {p.name: p.expect for p in probes}, held.std)
    if cfg.export_adversarial:
        report["adversarial_pairs"] = {"path": cfg.export_adversarial, "pairs": len(adversarial)}
    _write(cfg, report, adversarial, held)
    return report
