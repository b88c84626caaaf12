"""``rewardlab rlcheck``: optimise a real policy against a reward model and watch the gold reward.

Each arm is a short, seeded GRPO run (TRL's ``GRPOTrainer``, LoRA on the policy) from the same start,
on held-out demo prompts, against the reward model with one guard (see
:data:`rewardlab.diagnostics.rlcheck.config.ARMS`) or against the gold itself (the oracle arm).
At every step, each arm's completions are scored by the unguarded reward model (the proxy) and by
the gold reward, and their KL to the reference policy (the policy with its LoRA adapter switched
off) is measured on the sampled tokens: Σ_t log π(y_t) − log π_ref(y_t) per completion, averaged.
The curves against √KL are those of Gao et al. (2023, arXiv 2210.10760). Those per-step training
records mostly show which prompts a step drew, so the curves, the gold peak and the verdict are
measured on a fixed held-out eval set instead (:mod:`rewardlab.diagnostics.rlcheck.eval_set`), at
step 0, every ``--eval-every`` steps and the last step; the training records stay as a faint
secondary series (and are the fallback with ``--eval-prompts 0``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from rewardlab.diagnostics.rlcheck.config import ARMS, RLCheckConfig
from rewardlab.diagnostics.rlcheck.eval_set import (
    EvalSet,
    Scorer,
    chat,
    demo_prompts,
    items,
    make_callback,
    policy_kl,
    rounded,
    step_record,
)
from rewardlab.diagnostics.rlcheck.prompts import draw_prompts, families_of, load_prompt_file
from rewardlab.diagnostics.rlcheck.rewards import (
    arm_reward,
    ensemble_size,
    load_gold,
    load_proxy,
    proxy_scorer,
    spread_scorer,
)
from rewardlab.errors import RewardlabError

__all__ = [
    "arm_reward", "demo_prompts", "ensemble_size", "load_gold", "load_proxy", "proxy_scorer", "rlcheck",
    "spread_scorer", "step_record",
]  # fmt: skip
console = Console()


def _text(x: Any) -> str:
    """Plain text of a prompt or completion (a message list gives its last message's content)."""
    return x[-1]["content"] if isinstance(x, list) else str(x)


class StepRecorder:
    """The TRL reward function of one arm: returns the arm's reward, records the step's measurements.

    With ``measure_kl`` off (an eval set measures the KL on fixed prompts) the training records carry
    no KL: its two forward passes per step cost about a third of a step on a CPU.
    """

    def __init__(
        self,
        reward: Scorer,
        proxy: Scorer,
        gold: Scorer | None,
        tokenizer: Any,
        name: str = "",
        measure_kl: bool = True,
        signals: Any = None,
        independent: Scorer | None = None,
    ) -> None:
        self.reward, self.proxy, self.gold, self.tokenizer, self.name = reward, proxy, gold, tokenizer, name
        self.measure_kl = measure_kl
        self.signals = signals  # the proxy's per-sample signals: what a monitor callback would see
        self.independent = independent  # a second reward model, scored and never optimised
        self.t0 = time.perf_counter()
        self.model: Any = None  # the trainer's (LoRA) policy, set once the trainer exists
        self.steps: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.scored: list[dict[str, Any]] = []  # every training completion (the exports)
        self.__name__ = "rlcheck"

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kw: Any) -> list[float]:
        """Score the completions; record proxy, gold, KL, length, refusals and families for this step."""
        texts_p, texts_c = [_text(p) for p in prompts], [_text(c) for c in completions]
        reward = self.reward(texts_p, texts_c)
        proxy = reward if self.reward is self.proxy else self.proxy(texts_p, texts_c)
        gold = None if self.gold is None else self.gold(texts_p, texts_c)
        kl = self._kl(prompts, kw.get("completion_ids") or []) if self.measure_kl else None
        families = kw.get("family") or ["all"] * len(texts_p)
        step = len(self.steps)
        self.steps.append(step_record(step, reward, proxy, gold, kl, texts_c, families))
        last = self.steps[-1]
        if self.signals is not None:
            last["proxy_items"] = items(proxy)
            last["signals"] = rounded(self.signals(texts_p, texts_c))
            if self.independent is not None:
                last["independent_items"] = items(self.independent(texts_p, texts_c))
        console.print(
            f"  {self.name} step {step}: proxy {last['proxy']:.3f}, "
            + ("" if last["gold"] is None else f"gold {last['gold']:.3f}, ")
            + ("" if last["sqrt_kl"] is None else f"sqrt KL {last['sqrt_kl']:.2f}, ")
            + f"{last['length']:.0f} words "
            f"({time.perf_counter() - self.t0:.0f} s)",
            soft_wrap=True,
            highlight=False,
        )
        golds = gold or [None] * len(texts_c)
        self.scored += [
            {"prompt": p, "family": f, "completion": c, "step": step, "proxy": x, "gold": g}
            for p, f, c, x, g in zip(texts_p, families, texts_c, proxy, golds, strict=True)
        ]
        self.samples += [
            {k: v for k, v in self.scored[i - len(texts_c)].items() if k != "family"}
            for i in range(0, len(texts_c), max(1, len(texts_c) // 2))
        ]
        return reward

    def _kl(self, prompts: Sequence[Any], completion_ids: Sequence[Sequence[int]]) -> list[float]:
        """Per completion KL estimate (:func:`policy_kl`); 0 before the trainer exists."""
        if self.model is None or not completion_ids:
            return [0.0] * len(prompts)
        return policy_kl(self.model, self.tokenizer, prompts, completion_ids)


def resolve_policy(spec: str) -> Path:
    """A local causal LM folder, or the folder a model preset is built into."""
    if Path(spec).is_dir():
        return Path(spec)
    from rewardlab.models.presets import resolve_model_path

    return Path(resolve_model_path(spec))


def run_arm(
    arm: str,
    cfg: RLCheckConfig,
    policy: Path,
    prompts: list[tuple[str, str]],
    recorder: StepRecorder,
    evaluation: Any = None,
) -> None:
    """One seeded GRPO run (LoRA on a fresh copy of the policy) whose reward function is ``recorder``.

    ``evaluation`` (from :func:`rewardlab.diagnostics.rlcheck.eval_set.make_callback`) is evaluated at
    step 0, before the first update, and then by the trainer at its eval steps.
    """
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from transformers.trainer_callback import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(str(policy), dtype=torch.float32)
    data = Dataset.from_list([{"prompt": chat(p), "family": f} for p, f in prompts])
    with tempfile.TemporaryDirectory(prefix="rlcheck-") as tmp:
        args = GRPOConfig(
            output_dir=tmp,
            per_device_train_batch_size=cfg.prompts_per_step * cfg.generations,
            gradient_accumulation_steps=1,
            num_generations=cfg.generations,
            max_completion_length=cfg.max_completion_length,
            learning_rate=cfg.learning_rate,
            lr_scheduler_type="constant",
            beta=cfg.beta if arm == "kl" else 0.0,
            max_steps=cfg.steps,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            seed=cfg.seed,
            data_seed=cfg.seed,
            use_cpu=not torch.cuda.is_available(),
            bf16=False,
            disable_tqdm=True,
            temperature=1.0,
            gradient_checkpointing=False,
        )
        lora = LoraConfig(
            r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, lora_dropout=0.0, target_modules="all-linear",
            task_type="CAUSAL_LM",
        )  # fmt: skip
        trainer = GRPOTrainer(
            model=model, reward_funcs=[recorder], args=args, train_dataset=data, peft_config=lora,
            processing_class=recorder.tokenizer,
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)  # rlcheck prints its own line per arm
        recorder.model = trainer.model
        if evaluation is not None:
            evaluation.generation_config = trainer.generation_config  # the training run's sampling
            evaluation.evaluate(trainer.model, 0)
            trainer.add_callback(evaluation)
        trainer.train()


def world(cfg: RLCheckConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, Any]]:
    """Training and eval prompts ``(prompt, family)`` and each prompt's reference columns.

    The demo world's (drawn with ``--prompt-seed`` and ``--eval-seed``), or ``--prompts-file``'s:
    deduplicated, the eval prompts drawn first (families in turn), the training prompts from the rest.
    """
    if not cfg.prompts_file:
        prompts = demo_prompts(cfg.prompts, cfg.prompt_seed)
        if not cfg.eval_prompts:
            return prompts, [], {}
        return prompts, demo_prompts(cfg.eval_prompts, cfg.eval_seed, exclude=[p for p, _ in prompts]), {}
    if cfg.gold == "demo":
        raise RewardlabError(
            "--gold demo judges demo prompts only: with --prompts-file give --gold SPEC (a reward model, "
            "module:function, builtin:math, a URL) or --gold none"
        )
    items = load_prompt_file(cfg.prompts_file)
    train, evals = draw_prompts(items, cfg.prompts, cfg.eval_prompts, cfg.prompt_seed, cfg.eval_seed)
    columns = {it.prompt: it.columns for it in items if it.columns}
    return [(it.prompt, it.family) for it in train], [(it.prompt, it.family) for it in evals], columns


def rlcheck(cfg: RLCheckConfig) -> dict[str, Any]:
    """Run every arm; write rlcheck.json/.md/.html and the exports into ``cfg.out``; return the report."""
    from transformers import AutoTokenizer

    from rewardlab.diagnostics.rlcheck import proxy_only
    from rewardlab.diagnostics.rlcheck.exports import export_files
    from rewardlab.diagnostics.rlcheck.monitor_check import validate
    from rewardlab.diagnostics.rlcheck.report import OWN, monitor_headline, write_reports
    from rewardlab.diagnostics.rlcheck.verdict import analyse
    from rewardlab.io_utils import check_out_dir
    from rewardlab.runtime import quiet_transformers

    check_out_dir(cfg.out, OWN)  # a run that cannot write its outputs fails before the work
    quiet_transformers()
    start = time.perf_counter()
    policy = resolve_policy(cfg.policy)
    tokenizer = AutoTokenizer.from_pretrained(str(policy))
    if tokenizer.chat_template is None:
        raise RewardlabError(f"{policy}: the policy's tokenizer has no chat template")
    prompts, held_out, columns = world(cfg)
    proxy_model, gold = load_proxy(cfg.reward), load_gold(cfg.gold, columns)
    proxy = proxy_scorer(proxy_model, columns)
    independent = load_gold(cfg.independent, columns) if cfg.independent else None
    evalset = None
    if held_out:
        spread = spread_scorer(proxy_model) if gold is None else None
        evalset = EvalSet(
            held_out,
            cfg.eval_samples,
            cfg.eval_seed,
            proxy,
            gold,
            tokenizer,
            spread,
            proxy.signals,
            independent,
        )
    arms: dict[str, Any] = {}
    scored: list[dict[str, Any]] = []
    for arm in cfg.arms:
        t0 = time.perf_counter()
        try:
            reward = arm_reward(arm, proxy_model, gold, cfg)
        except RewardlabError as exc:
            arms[arm] = {"guard": ARMS[arm], "skipped": str(exc), "steps": [], "eval": [], "samples": []}
            console.print(f"arm {arm}: skipped ({exc})", soft_wrap=True)
            continue
        optimised = proxy if arm in ("none", "kl") else reward
        recorder = StepRecorder(
            optimised,
            proxy,
            gold,
            tokenizer,
            arm,
            measure_kl=evalset is None,
            signals=proxy.signals,
            independent=independent,
        )
        evaluation = None
        if evalset is not None:
            evaluation = make_callback(
                evalset, None if arm in ("none", "kl") else reward, cfg.steps, cfg.eval_every, arm
            )
        run_arm(arm, cfg, policy, prompts, recorder, evaluation)
        records = evaluation.records if evaluation is not None else recorder.steps
        for rec in records:  # every eval completion goes to the exports, not into the report
            scored += [{**x, "arm": arm, "split": "eval"} for x in rec.pop("scored", [])]
        scored += [{**x, "arm": arm, "split": "train"} for x in recorder.scored]
        first, last = records[0], records[-1]
        gold_text = "" if gold is None else f", gold {first['gold']:.3f} -> {last['gold']:.3f}"
        console.print(
            f"arm {arm}: {len(recorder.steps)} steps, {'eval' if evaluation else 'training'} proxy "
            f"{first['proxy']:.3f} -> {last['proxy']:.3f}{gold_text}, "
            f"sqrt KL {last['sqrt_kl']:.2f}, {time.perf_counter() - t0:.0f} s",
            soft_wrap=True,
        )
        arms[arm] = {
            "guard": ARMS[arm],
            "steps": recorder.steps,
            "eval": evaluation.records if evaluation is not None else [],
            "samples": recorder.samples,
            "seconds": round(time.perf_counter() - t0, 1),
            "eval_seconds": round(sum(r["seconds"] for r in evaluation.records), 1) if evaluation else 0.0,
        }
    report = {
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "policy": str(policy),
        "gold": None if gold is None else cfg.gold,
        "prompts": {
            "source": cfg.prompts_file or "demo",
            "n": len(prompts),
            "families": families_of(prompts),
        },
        "eval": None if evalset is None else {**evalset.describe(), "every": cfg.eval_every},
        "arms": arms,
    }
    report.update(analyse(arms, cfg.reward[0], cfg.gold) if gold is not None else proxy_only.analyse(arms))
    if gold is not None and (monitor := validate(arms, report["summary"], cfg.eval_samples)) is not None:
        report["monitor"] = monitor
        if line := monitor_headline(monitor):
            report["verdict"]["text"].append(line)
    files = export_files(scored, gold is not None, cfg.pair_min_gap, cfg.pairs_per_prompt)
    report["exports"] = {name: len(rows) for name, rows in files.items()}
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_reports(report, Path(cfg.out), files)
    for line in report["verdict"]["text"]:
        console.print(line, soft_wrap=True, markup=False)
    exported = ", ".join(f"{name} ({n} rows)" for name, n in report["exports"].items())
    console.print(
        f"Wrote {Path(cfg.out) / 'rlcheck.html'} (and rlcheck.json, rlcheck.md, {exported})", soft_wrap=True
    )
    return report
