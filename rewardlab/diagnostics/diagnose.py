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
import math
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.data.schema import Text, text_key, text_plain
from rewardlab.diagnostics import checks
from rewardlab.diagnostics.config import DiagnoseConfig
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
from rewardlab.errors import RewardlabError

console = Console()


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


class MemberScorer:
    """Every member's reward for (prompt, response) texts; each distinct text is scored once."""

    def __init__(self, ensemble: Any, batch_size: int) -> None:
        self.ensemble, self.batch_size = ensemble, batch_size
        self.cache: dict[tuple[str, str], list[float]] = {}

    def __call__(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[list[float]]:
        """K lists (one per member) of rewards, in input order."""
        keys = [(text_key(p), text_key(r)) for p, r in zip(prompts, responses, strict=True)]
        todo: dict[tuple[str, str], int] = {}
        for i, k in enumerate(keys):
            if k not in self.cache and k not in todo:
                todo[k] = i
        if todo:
            idx = list(todo.values())
            members = self.ensemble.score_members(
                [prompts[i] for i in idx],
                [responses[i] for i in idx],
                batch_size=self.batch_size,
                length_correction=False,  # diagnose the model itself
                progress=True,
            )
            for j, k in enumerate(todo):
                self.cache[k] = [float(m[j]) for m in members]
                bad = next((v for v in self.cache[k] if not math.isfinite(v)), None)
                if bad is not None:
                    shown = text_plain(responses[idx[j]])[:60]
                    raise RewardlabError(
                        f"the model gave the response {shown!r} the reward {bad} (not a finite number); "
                        "nothing written"
                    )
        return [list(col) for col in zip(*(self.cache[k] for k in keys), strict=True)]


def _mean_over(members: list[list[float]]) -> list[float]:
    return [sum(col) / len(col) for col in zip(*members, strict=True)]


def _pools(cfg: DiagnoseConfig) -> list[tuple[Text, list[Text], list[float] | None, str]] | None:
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


def _gold(
    cfg: DiagnoseConfig, pools: list[tuple[Text, list[Text], list[float] | None, str]]
) -> tuple[list[list[float]], str]:
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


def diagnose(cfg: DiagnoseConfig, models: Sequence[Any] | None = None) -> dict[str, Any]:
    """Run ``rewardlab diagnose``; return what diagnostics.json holds.

    ``models`` (anything with ``score(prompts, responses, **kw)``) replaces loading ``cfg.model``,
    for tests and for models built in code.
    """
    import torch

    from rewardlab import __version__
    from rewardlab.config import save_yaml
    from rewardlab.data import load_preferences
    from rewardlab.diagnostics.findings import rank_findings
    from rewardlab.diagnostics.gold_probes import gold_judge, judge_probes
    from rewardlab.diagnostics.probes import select
    from rewardlab.diagnostics.report import write_reports
    from rewardlab.io_utils import atomic_dir, check_out_dir, dumps, write_jsonl, write_text
    from rewardlab.models.ensemble import RewardEnsemble, aggregate
    from rewardlab.models.reward_model import response_length
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    out = Path(cfg.out)
    own, export_to = outputs_of(cfg)
    check_out_dir(out, own)  # before any work: a run that cannot write its outputs fails at once
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
        from rewardlab.models.loading import load_reward, reward_kind

        for path in cfg.model:
            if reward_kind(path) == "checkpoint" and not Path(path).is_dir():
                raise RewardlabError(f"{path}: no such model folder")
        models = [load_reward(p, device=cfg.device) for p in cfg.model]
    ensemble = RewardEnsemble(models)
    score = MemberScorer(ensemble, cfg.batch_size)

    # the distinct held-out responses, and each pair as indices into them
    index: dict[tuple[str, str], int] = {}
    prompts: list[Text] = []
    responses: list[Text] = []
    for p in pairs:
        for r in (p.chosen, p.rejected):
            key = (text_key(p.prompt), text_key(r))
            if key not in index:
                index[key] = len(prompts)
                prompts.append(p.prompt)
                responses.append(r)
    pair_idx = [
        (index[(text_key(p.prompt), text_key(p.chosen))], index[(text_key(p.prompt), text_key(p.rejected))])
        for p in pairs
    ]
    console.print(f"scoring {len(responses)} held-out responses of {len(pairs)} pairs ...")
    members = score(prompts, responses)
    k = len(members)
    rewards = _mean_over(members)
    std = checks.reward_std(rewards)
    groups = [text_key(p) for p in prompts]
    lengths = [response_length(r) for r in responses]
    chars = [len(text_plain(r)) for r in responses]

    # 1. probes
    rng = random.Random(cfg.seed)
    sample = sorted(rng.sample(range(len(responses)), min(cfg.max_responses, len(responses))))
    todo: list[tuple[str, int, Text]] = []
    skipped = {p.name: 0 for p in probes}
    for probe in probes:
        for i in sample:
            try:
                new = checks.apply_probe(probe, prompts[i], responses[i])
            except Exception as exc:  # a user's probe: name it rather than fail deep inside
                raise RewardlabError(f"probe {probe.name} failed on response {i}: {exc!r}") from exc
            if new is None:
                skipped[probe.name] += 1
            else:
                todo.append((probe.name, i, new))
    console.print(
        f"probing {len(sample)} responses with {len(probes)} probes ({len(todo)} perturbed texts) ..."
    )
    after = _mean_over(score([prompts[i] for _, i, _ in todo], [t for _, _, t in todo])) if todo else []
    probed = [
        checks.Probed(name, prompts[i], responses[i], new, rewards[i], a)
        for (name, i, new), a in zip(todo, after, strict=True)
    ]
    # 2. length
    length = checks.length_checks(rewards, lengths, chars, groups, pair_idx)
    correction = checks.fit_length_correction(rewards, lengths, chars, groups, pair_idx, cfg.seed)
    probe_table = checks.probe_report(probes, probed, skipped, std)
    # with a gold that judges any text, the gold decides which changes are damage (gold_probes.py)
    probe_table = judge_probes(probe_table, probed, gold_judge(cfg.gold, cfg.device, cfg.batch_size), std)
    length["flags"] = checks.length_flags(length, probe_table)

    # 3. ensemble disagreement
    spread = None
    if k >= 2:
        spread = checks.disagreement(
            [[m[c] for c, _ in pair_idx] for m in members], [[m[r] for _, r in pair_idx] for m in members]
        )

    # 4. best-of-N
    bon = None
    if pools is not None:
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

    report: dict[str, Any] = {
        "rewardlab_version": __version__,
        "models": cfg.model,
        "model_kinds": [(getattr(m, "info", None) or {}).get("kind", "orm") for m in models],
        "members": k,
        "data": {
            "path": cfg.data,
            "pairs": len(pairs),
            "responses": len(responses),
            "dropped": len(data.drops),
        },
        "reward_std": std,
        "probes": probe_table,
        "probed_responses": len(sample),
        "length": length,
        "length_correction": correction,
        "disagreement": spread,
        "best_of_n": bon,
    }
    report["findings"], report["notes"] = rank_findings(report)

    if cfg.store_length_correction:
        report["length_correction_stored"] = length_correction_record(correction, cfg.data)
    adversarial = adversarial_rows(probed, {p.name: p.expect for p in probes}, std)
    if cfg.export_adversarial:
        report["adversarial_pairs"] = {"path": cfg.export_adversarial, "pairs": len(adversarial)}
    json_text = dumps(report, str(out / JSON_FILE), indent=2) + "\n"
    with atomic_dir(out, own) as tmp:  # all or nothing: a failure leaves the earlier outputs as they were
        save_yaml(cfg, tmp / CONFIG_FILE)
        if cfg.export_adversarial:
            write_jsonl(tmp / export_to if export_to else cfg.export_adversarial, adversarial)
        write_text(tmp / JSON_FILE, json_text)
        write_reports(report, rewards, chars, tmp)
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
    return report
