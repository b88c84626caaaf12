"""Measurements of ``rewardlab rlcheck``: the fixed held-out eval set, KL to the reference, step records.

The curves of ``rlcheck`` must show how the *policy* changed, not which prompts a step happened to
draw, so every arm is measured on one fixed eval set: ``--eval-prompts`` demo prompts (the families
in turn, drawn with ``--eval-seed`` and never among the training prompts), ``--eval-samples``
completions each, generated in one batched ``generate`` call with the trainer's own sampling
settings and a fixed seed (the same random numbers at every eval point of every arm, so the curves
differ by the policy alone). Eval points are step 0 (before any update), every ``--eval-every``
steps and the last step (after the last update). At each, the completions are scored by the arm's
reward, the proxy and the gold, and their KL to the reference (:func:`policy_kl`) is measured.

Step 0 is the same for every arm (LoRA starts as the identity: its B matrix is zero), so it is
generated once and reused. The generator runs in a forked RNG, so evaluating never changes the
training run. Used by :mod:`rewardlab.diagnostics.rlcheck`; run it with ``rewardlab rlcheck``.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from rich.console import Console

from rewardlab.data.demo import FAMILIES, TASK_MAKERS, is_refusal
from rewardlab.diagnostics.rlcheck.prompts import families_of
from rewardlab.errors import RewardlabError

Scorer = Callable[[list[str], list[str]], list[float]]
SignalScorer = Callable[[list[str], list[str]], dict[str, list[float | None]]]
console = Console()
#: Completions of each eval point kept in the report (of its first and last point).
KEEP_SAMPLES = 10


def demo_prompts(n: int, seed: int, exclude: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``n`` distinct demo prompts ``(prompt, family)``, the families in turn, from ``seed``.

    None is in ``exclude`` (the eval set excludes the training prompts this way).
    """
    rng, seen, out = random.Random(seed), set(exclude), []
    for _ in range(50 * n):
        family = FAMILIES[len(out) % len(FAMILIES)]
        prompt = TASK_MAKERS[family](rng).prompt
        if prompt not in seen:
            seen.add(prompt)
            out.append((prompt, family))
        if len(out) == n:
            return out
    raise RewardlabError(f"could not draw {n} distinct demo prompts (got {len(out)} in {50 * n} tries)")


def items(values: Sequence[float | None]) -> list[float | None]:
    """Per-completion values rounded to 4 decimals for the report (missing values stay None)."""
    return [None if x is None else round(float(x), 4) for x in values]


def rounded(signals: dict[str, list[float | None]]) -> dict[str, list[float | None]]:
    """Per-sample signals rounded to 4 decimals for the report (missing values stay None)."""
    return {k: items(v) for k, v in signals.items()}


def eval_steps(steps: int, every: int) -> list[int]:
    """The steps evaluated: 0 (before any update), every ``every`` steps, and ``steps`` (after the last)."""
    return sorted({*range(0, steps + 1, every), steps})


def chat(prompt: str) -> list[dict[str, str]]:
    """The conversational prompt GRPO trains on."""
    return [{"role": "user", "content": prompt}]


def prompt_ids(tokenizer: Any, messages: Any) -> list[int]:
    """Token ids of a conversational prompt with the generation prompt, as TRL tokenises it."""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def policy_kl(
    model: Any, tokenizer: Any, prompts: Sequence[Any], completion_ids: Sequence[Sequence[int]]
) -> list[float]:
    """Per completion Σ_t log π(y_t) − log π_ref(y_t) over its sampled tokens.

    π is ``model`` (a PEFT model), π_ref the same model with its adapter switched off; ``prompts``
    are message lists. Sampled from π, the mean estimates KL(π ‖ π_ref).
    """
    rows, starts = [], []
    for p, c in zip(prompts, completion_ids, strict=True):
        ids = prompt_ids(tokenizer, p)
        rows.append(ids + list(c))
        starts.append(len(ids))
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id or 0
    device = next(model.parameters()).device
    x = torch.tensor([r + [pad] * (width - len(r)) for r in rows], device=device)
    att = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)

    def logprobs() -> torch.Tensor:
        logits = model(input_ids=x, attention_mask=att).logits[:, :-1].float()
        return torch.log_softmax(logits, -1).gather(-1, x[:, 1:, None])[..., 0]

    lp = logprobs()
    with model.disable_adapter():
        ref = logprobs()
    return [
        float((lp[i, s - 1 : len(r) - 1] - ref[i, s - 1 : len(r) - 1]).sum())
        for i, (r, s) in enumerate(zip(rows, starts, strict=True))
    ]


def step_record(
    step: int,
    reward: list[float],
    proxy: list[float],
    gold: list[float] | None,
    kl: list[float] | None,
    completions: list[str],
    families: list[str],
) -> dict[str, Any]:
    """Means of one step: optimised reward, proxy, gold, KL, length (words), refusal share, per family.

    ``kl`` None (not measured) gives ``kl`` and ``sqrt_kl`` None; ``gold`` None (no gold, ``--gold
    none``) gives ``gold`` and ``gold_se`` None.
    """

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    per_family: dict[str, dict[str, Any]] = {}
    for fam in sorted(set(families)):
        idx = [i for i, f in enumerate(families) if f == fam]
        per_family[fam] = {
            "n": len(idx),
            "proxy": mean([proxy[i] for i in idx]),
            "gold": None if gold is None else mean([gold[i] for i in idx]),
        }
    gold_var = None if gold is None else mean([(g - mean(gold)) ** 2 for g in gold])
    return {
        "step": step,
        "n": len(completions),
        "reward": mean(reward),
        "proxy": mean(proxy),
        "gold": None if gold is None else mean(gold),
        "gold_se": None if gold is None else (gold_var / max(1, len(gold) - 1)) ** 0.5,
        "kl": None if kl is None else max(0.0, mean(kl)),
        "sqrt_kl": None if kl is None else max(0.0, mean(kl)) ** 0.5,
        "length": mean([len(c.split()) for c in completions]),
        "refusal_share": mean([float(is_refusal(c)) for c in completions]),
        "families": per_family,
    }


class EvalSet:
    """The fixed eval prompts × samples, and the generation shared by every arm's eval points."""

    def __init__(
        self,
        prompts: list[tuple[str, str]],
        samples: int,
        seed: int,
        proxy: Scorer,
        gold: Scorer | None,
        tokenizer: Any,
        spread: Scorer | None = None,
        signals: SignalScorer | None = None,
        independent: Scorer | None = None,
    ) -> None:
        self.prompts, self.samples, self.seed = prompts, samples, seed
        self.proxy, self.gold, self.tokenizer = proxy, gold, tokenizer
        self.spread = spread  # the ensemble's spread per completion (recorded when there is no gold)
        self.signals = signals  # the proxy's per-completion signals (rewardlab.models.signals)
        self.independent = independent  # a second reward model's per-completion rewards (never optimised)
        self.rows = [(p, f) for p, f in prompts for _ in range(samples)]  # prompt-major, samples adjacent
        self.start: dict[str, Any] | None = None  # step 0's completions and scores, the same for every arm
        self._enc: Any = None  # the tokenised eval prompts
        self._ref: Any = None  # the reference's KV cache of the eval prompts, and its first-token log-probs

    def describe(self) -> dict[str, Any]:
        """What the reports say about the eval set."""
        return {
            "n_prompts": len(self.prompts),
            "samples": self.samples,
            "n": len(self.rows),
            "seed": self.seed,
            "families": families_of(self.prompts),
            "prompts": [p for p, _ in self.prompts],
        }

    def _encode(self, device: Any) -> dict[str, Any]:
        """The eval prompts, left-padded, tokenised once."""
        if self._enc is None:
            tok = self.tokenizer
            texts = [
                tok.apply_chat_template(chat(p), add_generation_prompt=True, tokenize=False)
                for p, _ in self.rows
            ]
            self._enc = tok(
                texts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
            )
        return {k: v.to(device) for k, v in self._enc.items()}

    @torch.no_grad()
    def generate(self, model: Any, generation_config: Any) -> tuple[list[str], list[list[int]], list[float]]:
        """All eval completions in one batched, seeded call.

        Returns their texts, their token ids up to and with the first EOS, and Σ_t log π(y_t) of each
        from the logits the sampling already computed (no second forward pass of the policy).
        """
        device = next(model.parameters()).device
        enc = self._encode(device)
        eos = generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        config = copy.deepcopy(generation_config)
        config.output_logits, config.return_dict_in_generate = True, True
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(self.seed)
                out = model.generate(**enc, generation_config=config)
        finally:
            model.train(was_training)
        new = out.sequences[:, enc["input_ids"].shape[1] :]
        ids = []
        for row in new.tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            ids.append(row[:cut])
        mask = torch.tensor([[float(t < len(c)) for t in range(new.shape[1])] for c in ids], device=device)
        lp = torch.stack(
            [
                torch.log_softmax(lg.float(), -1).gather(-1, new[:, t : t + 1])[:, 0]
                for t, lg in enumerate(out.logits)
            ],
            1,
        )
        return self.tokenizer.batch_decode(ids, skip_special_tokens=True), ids, (lp * mask).sum(1).tolist()

    @torch.no_grad()
    def ref_logprobs(self, model: Any, ids: list[list[int]]) -> list[float]:
        """Σ_t log π_ref(y_t) of each completion: the adapter switched off, the prompts' cache computed once.

        The reference and the eval prompts never change, so their KV cache (and the reference's
        distribution of the first token) is computed at the first call and reused by every eval
        point of every arm; each call runs the reference on the completion tokens alone.
        """
        device = next(model.parameters()).device
        enc = self._encode(device)
        mask = enc["attention_mask"]
        was_training = model.training
        model.eval()
        try:
            with model.disable_adapter():
                if self._ref is None:
                    pos = (mask.cumsum(-1) - 1).clamp(min=0)
                    out = model(**enc, position_ids=pos, use_cache=True, logits_to_keep=1)
                    self._ref = (out.cache, torch.log_softmax(out.logits[:, -1].float(), -1))
                cache, first = self._ref
                width, pad = max(map(len, ids)), self.tokenizer.pad_token_id or 0
                x = torch.tensor([c + [pad] * (width - len(c)) for c in ids], device=device)
                cmask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in ids], device=device)
                pos = mask.sum(-1, keepdim=True) + torch.arange(width, device=device)[None]
                logits = model(
                    input_ids=x, attention_mask=torch.cat([mask, cmask], 1), position_ids=pos,
                    cache=copy.deepcopy(cache), use_cache=True,
                ).logits  # fmt: skip
        finally:
            model.train(was_training)
        rest = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, x[:, 1:, None])[..., 0]
        lp = torch.cat([first.gather(-1, x[:, :1]), rest], 1)
        return (lp * cmask).sum(1).tolist()

    def measure(self, model: Any, generation_config: Any, step: int) -> dict[str, Any]:
        """Completions, proxy, gold and KL of the policy now (step 0's are computed once for all arms)."""
        if step == 0 and self.start is not None:
            return {**self.start, "seconds": 0.0, "reused": True}
        t0 = time.perf_counter()
        texts, ids, logp = self.generate(model, generation_config)
        prompts = [p for p, _ in self.rows]
        # step 0: the adapter is the identity (LoRA's B is zero), so the KL is exactly 0
        kl = (
            [0.0] * len(ids)
            if step == 0
            else [a - b for a, b in zip(logp, self.ref_logprobs(model, ids), strict=True)]
        )
        t1 = time.perf_counter()
        proxy = self.proxy(prompts, texts)
        signals = None if self.signals is None else self.signals(prompts, texts)  # the same pass's
        t2 = time.perf_counter()
        point = {
            "completions": texts,
            "ids": ids,
            "proxy": proxy,
            "gold": None if self.gold is None else self.gold(prompts, texts),
            "spread": None if self.spread is None else self.spread(prompts, texts),
            "independent": None if self.independent is None else self.independent(prompts, texts),
            "signals": signals,
            "kl": kl,
            "timing": {"proxy": t2 - t1},  # scoring with the signals
            "seconds": time.perf_counter() - t0,
        }
        if step == 0:
            self.start = point
        return point

    def record(self, point: dict[str, Any], step: int, reward: Scorer | None) -> dict[str, Any]:
        """One eval record: the step record's means, per-completion gold (for paired noise), samples."""
        prompts, texts = [p for p, _ in self.rows], point["completions"]
        scores = point["proxy"] if reward is None else reward(prompts, texts)
        rec = step_record(
            step, scores, point["proxy"], point["gold"], point["kl"], texts, [f for _, f in self.rows]
        )
        gold = point["gold"] or [None] * len(texts)
        rec["gold_items"] = None if point["gold"] is None else items(gold)
        if point.get("spread") is not None:
            rec["spread"] = sum(point["spread"]) / len(point["spread"])
        if point.get("signals") is not None:  # per completion, for the monitor's validation
            rec["proxy_items"] = items(point["proxy"])
            rec["signals"] = rounded(point["signals"])
            if point.get("independent") is not None:
                rec["independent_items"] = items(point["independent"])
            if not point.get("reused"):  # step 0 is measured once for every arm
                rec["timing"] = {k: round(v, 4) for k, v in point["timing"].items()}
        rec["seconds"] = round(point["seconds"], 2)
        rec["scored"] = [
            {"prompt": p, "family": f, "completion": c, "step": step, "proxy": x, "gold": g}
            for (p, f), c, x, g in zip(self.rows, texts, point["proxy"], gold, strict=True)
        ]  # every completion (the exports); taken out of the report by rlcheck
        keep = range(0, len(texts), max(1, len(texts) // KEEP_SAMPLES))
        rec["samples"] = [
            {
                "prompt": prompts[i],
                "completion": texts[i],
                "proxy": point["proxy"][i],
                "gold": gold[i],
            }
            for i in keep
        ]
        return rec


def make_callback(evalset: EvalSet, reward: Scorer | None, steps: int, every: int, name: str = "") -> Any:
    """A ``TrainerCallback`` that evaluates at step 0 (``.evaluate(model, 0)``) and after each eval step."""
    from transformers import TrainerCallback

    class EvalCallback(TrainerCallback):
        def __init__(self) -> None:
            self.at = set(eval_steps(steps, every))
            self.records: list[dict[str, Any]] = []
            self.generation_config: Any = None  # the trainer's, set once the trainer exists

        def evaluate(self, model: Any, step: int) -> None:
            point = evalset.measure(model, self.generation_config, step)
            rec = evalset.record(point, step, reward)
            self.records.append(rec)
            gold = "no gold" if rec["gold"] is None else f"gold {rec['gold']:.3f} (se {rec['gold_se']:.3f})"
            console.print(
                f"  {name} eval step {step}: proxy {rec['proxy']:.3f}, {gold}, "
                f"sqrt KL {rec['sqrt_kl']:.2f}, {rec['length']:.0f} words, "
                f"{rec['seconds']:.1f} s",
                soft_wrap=True,
                highlight=False,
            )

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> None:
            if state.global_step in self.at and state.global_step > 0:
                self.evaluate(model, state.global_step)

    return EvalCallback()
