"""Process reward models: one score per reasoning step, read at each step's separator token.

Layout of one solution: ``[prefix specials] prompt  step_1 SEP  step_2 SEP … step_n SEP``, each
part tokenized on its own and the ids concatenated, so a separator never merges with its
neighbours. The model is ``AutoModelForTokenClassification`` with one output: the logit at the
i-th SEP is the log-odds that step i is correct, given the prompt and the steps before it
(decoders see only the past; encoders see the whole solution). The separator defaults to the
tokenizer's own ``sep_token`` (BERT) or ``eos_token`` (decoders): one token in every vocabulary,
no new embeddings. A solution's score aggregates its steps' probabilities: ``min`` (default; the
weakest step, as Lightman et al. 2023, arXiv 2305.20050, find best for best-of-N alongside
``prod``), ``prod``, ``last`` or ``mean``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.schema import Text, text_plain
from rewardlab.errors import RewardlabError
from rewardlab.models.backbone import LayoutChoice, model_inputs, read_info
from rewardlab.models.encoding import Encoded
from rewardlab.models.layouts import shared_prefix_batch

PRM_AGGREGATIONS = ("min", "prod", "last", "mean")
#: Steps of a plain-text solution: blank-line-separated blocks, else lines.
_BLANK = re.compile(r"\n\s*\n")


def split_steps(solution: str) -> list[str]:
    """A solution text cut into steps: paragraphs if it has blank lines, else non-empty lines."""
    text = solution.strip()
    parts = _BLANK.split(text) if _BLANK.search(text) else text.splitlines()
    steps = [p.strip() for p in parts if p.strip()]
    return steps or [solution]


def aggregate_steps(probs: Sequence[float], how: str = "min") -> float:
    """A solution score from its steps' probabilities of being correct (see the module doc)."""
    if how not in PRM_AGGREGATIONS:
        raise RewardlabError(f"aggregation must be one of {PRM_AGGREGATIONS}")
    if not probs:
        raise RewardlabError("a solution needs at least one step")
    if how == "min":
        return min(probs)
    if how == "prod":
        return math.prod(probs)
    if how == "last":
        return probs[-1]
    return sum(probs) / len(probs)


def resolve_separator(tokenizer: Any, spec: str = "auto") -> tuple[str, list[int]]:
    """The separator text and its token ids (``auto``: the tokenizer's sep token, else its EOS)."""
    if spec == "auto":
        token = tokenizer.sep_token or tokenizer.eos_token
        if token is None:
            raise RewardlabError("the tokenizer has neither a sep nor an eos token: give --step-separator")
        return token, [tokenizer.convert_tokens_to_ids(token)]
    ids = tokenizer(spec, add_special_tokens=False)["input_ids"]
    if not ids:
        raise RewardlabError(f"--step-separator {spec!r} encodes to no tokens with this tokenizer")
    return spec, list(ids)


@dataclass
class EncodedSteps:
    """One solution's ids, where each kept step's label is read, and what truncation removed."""

    input_ids: list[int]
    positions: list[int]
    steps_kept: int
    prompt_cut: int
    #: Tokens before the first step (the prompt, as kept): solutions with equal ones can share them.
    prompt_len: int = 0

    def sequence(self) -> Encoded:
        """The solution as a plain sequence with its prompt length, for the shared layouts."""
        return Encoded(self.input_ids, None, self.prompt_len, False)


class StepEncoder:
    """Encodes (prompt, steps) as in the module doc, within ``max_length`` tokens.

    Truncation never drops a label silently: the prompt is cut first (its start, keeping a
    leading special token); if the steps alone do not fit, trailing steps are left out and
    :attr:`EncodedSteps.steps_kept` says how many remain (training counts and reports them).
    """

    MIN_PROMPT = 8

    def __init__(self, tokenizer: Any, max_length: int, separator_ids: list[int]) -> None:
        self.tokenizer, self.max_length, self.sep = tokenizer, max_length, separator_ids

    def encode(self, prompt: Text, steps: Sequence[str]) -> EncodedSteps:
        """Encode one solution (see the class doc)."""
        tok = self.tokenizer
        prefix = list(tok(text_plain(prompt))["input_ids"])
        parts = [list(tok(s, add_special_tokens=False)["input_ids"]) + self.sep for s in steps]
        need = sum(len(p) for p in parts)
        head = 1 if prefix and prefix[0] in tok.all_special_ids else 0
        room = self.max_length - need
        keep = len(prefix) if room >= len(prefix) else max(min(len(prefix), self.MIN_PROMPT), room)
        cut = len(prefix) - keep
        if cut:
            tail = max(keep - head, 0)
            prefix = prefix[:head] + (prefix[len(prefix) - tail :] if tail else [])
        ids, positions = list(prefix), []
        prompt_len = len(prefix)
        for part in parts:
            if len(ids) + len(part) > self.max_length:
                if not positions:  # even the first step is too long: keep its end and separator
                    part = part[len(ids) + len(part) - self.max_length :]
                else:
                    break
            ids += part
            positions.append(len(ids) - 1)
        return EncodedSteps(ids, positions, len(positions), cut, prompt_len)


def pad_steps(encoded: Sequence[EncodedSteps], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with (row, col) of every kept step's separator."""
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    rows, cols = [], []
    for i, e in enumerate(encoded):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
        rows += [i] * len(e.positions)
        cols += e.positions
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "step_rows": torch.tensor(rows, dtype=torch.long),
        "step_cols": torch.tensor(cols, dtype=torch.long),
    }


def packed_steps(
    encoded: Sequence[EncodedSteps], groups: Sequence[Sequence[int]], pad_id: int, pack_tokens: int | None
) -> dict[str, torch.Tensor]:
    """Prefix-shared, packed rows (:mod:`rewardlab.models.layouts`) for decoder PRMs.

    ``groups`` holds indices of ``encoded`` whose prompt ids are equal. Each step's separator is
    found from its solution's last token, where the layout puts the reward: a solution of ``n``
    ids ending at column ``c`` has position ``p`` at column ``c - (n - 1 - p)``.
    """
    batch = shared_prefix_batch([[encoded[i].sequence() for i in g] for g in groups], pad_id, pack_tokens)
    rows: list[int] = []
    cols: list[int] = []
    ends = zip(batch["reward_rows"].tolist(), batch["reward_cols"].tolist(), strict=True)
    for i, (r, c) in zip([i for g in groups for i in g], ends, strict=True):
        n = len(encoded[i].input_ids)
        rows += [r] * len(encoded[i].positions)
        cols += [c - (n - 1 - p) for p in encoded[i].positions]
    batch["step_rows"] = torch.tensor(rows, dtype=torch.long)
    batch["step_cols"] = torch.tensor(cols, dtype=torch.long)
    return batch


def step_logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logit at every (``step_rows``, ``step_cols``) of ``batch`` (float32)."""
    out = model(**model_inputs(model, batch))
    return out.logits[..., 0][batch["step_rows"], batch["step_cols"]].float()


class ProcessRewardModel(LayoutChoice):
    """A loaded PRM: :meth:`score_steps` per step, :meth:`score` per solution (aggregated)."""

    def __init__(self, model: Any, tokenizer: Any, info: dict[str, Any]) -> None:
        self.model, self.tokenizer, self.info = model.eval(), tokenizer, info
        self.encoder = StepEncoder(tokenizer, int(info["max_length"]), list(info["separator_ids"]))
        self.aggregation = info.get("aggregation", "min")

    @classmethod
    def from_pretrained(
        cls, path: str | Path, device: str | None = "auto", dtype: str = "float32"
    ) -> ProcessRewardModel:
        """Load a ``kind: prm`` checkpoint (``rewardlab.json`` + a token-classification model).

        ``device`` and ``dtype`` as in :meth:`rewardlab.models.reward_model.RewardModel.from_pretrained`.
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from rewardlab.models.backbone import dtype_choice, load_dtype, resolve_device, set_precision

        dev = resolve_device(device)
        name = dtype_choice(dtype, dev)[0]
        info = read_info(path)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForTokenClassification.from_pretrained(
            str(path), num_labels=1, dtype=load_dtype(name)
        )
        return cls(set_precision(model.to(dev), name), tokenizer, info)

    @torch.inference_mode()
    def step_probabilities(
        self,
        prompts: Sequence[Text],
        solutions: Sequence[Sequence[str]],
        batch_size: int = 8,
        max_tokens: int | None = None,
        progress: bool = False,
        layout: str = "auto",
    ) -> list[list[float]]:
        """P(step correct) for every step of every solution (steps cut by truncation get ``nan``).

        Solutions are sorted by length and batched by ``batch_size`` and, with ``max_tokens``, by a
        token budget, in the ``layout`` of :meth:`score_layout`, as
        :meth:`rewardlab.models.reward_model.RewardModel.score` does: with ``packed`` rows the
        solutions to one problem share its prompt.
        """
        use = self.score_layout(layout)
        encoded = [self.encoder.encode(p, s) for p, s in zip(prompts, solutions, strict=True)]
        pad = self.tokenizer.pad_token_id

        def build(units: list[list[int]], widest: int, idx: list[int]) -> dict[str, torch.Tensor]:
            if use == "packed":
                return packed_steps(encoded, units, pad, widest)
            return pad_steps([encoded[i] for i in idx], pad)

        seqs = [e.sequence() for e in encoded]
        out: list[list[float]] = [[] for _ in encoded]
        for idx, batch in self.scoring_batches(
            seqs, use, batch_size, max_tokens, progress, "scoring steps", build
        ):
            probs = torch.sigmoid(step_logits(self.model, batch)).tolist()
            at = 0
            for i in idx:
                k = encoded[i].steps_kept
                out[i] = probs[at : at + k] + [math.nan] * (len(solutions[i]) - k)
                at += k
        return out

    def score_steps(self, prompt: Text, steps: Sequence[str]) -> list[float]:
        """P(step correct) for each step of one solution."""
        return self.step_probabilities([prompt], [list(steps)])[0]

    def score_solutions(
        self,
        prompts: Sequence[Text],
        solutions: Sequence[Sequence[str]],
        aggregation: str | None = None,
        batch_size: int = 8,
        max_tokens: int | None = None,
        progress: bool = False,
        layout: str = "auto",
    ) -> list[float]:
        """One score per solution: its steps' probabilities aggregated (default: the checkpoint's)."""
        how = aggregation or self.aggregation
        return [
            aggregate_steps([p for p in probs if not math.isnan(p)] or [0.0], how)
            for probs in self.step_probabilities(prompts, solutions, batch_size, max_tokens, progress, layout)
        ]

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        batch_size: int = 8,
        aggregation: str | None = None,
        normalize: bool = False,
        length_correction: bool | None = None,
        layout: str = "auto",
        max_tokens: int | None = None,
        progress: bool = False,
    ) -> list[float]:
        """Like :meth:`RewardModel.score`: each response is split into steps (:func:`split_steps`).

        Batched by ``batch_size`` and the ``max_tokens`` budget, in ``layout``, as there. Scores
        are aggregated step probabilities in [0, 1]: ``normalize=True`` or a length correction is
        refused rather than ignored.

        Raises:
            RewardlabError: ``normalize`` or ``length_correction`` asked for.
        """
        if normalize:
            raise RewardlabError(
                "a process reward model stores no reward normalisation: its scores are in [0, 1]"
            )
        if length_correction:
            raise RewardlabError("a process reward model stores no length correction")
        steps = [split_steps(text_plain(r)) for r in responses]
        return self.score_solutions(prompts, steps, aggregation, batch_size, max_tokens, progress, layout)
