"""The outcome reward model: :class:`RewardModel` loads any rewardlab checkpoint and scores pairs.

:meth:`RewardModel.from_pretrained` is the one entry point for checkpoint folders: a process reward
model loads as :class:`~rewardlab.models.prm.ProcessRewardModel`, an embedding reward model as
:class:`~rewardlab.models.embedding.EmbeddingRewardModel`, anything else as a :class:`RewardModel`;
all satisfy :class:`~rewardlab.models.scoring.Scorer`. The transformer underneath (device, dtype,
pad token, forward pass, loading) is in :mod:`rewardlab.models.backbone`, what happens to rewards
after it in :mod:`rewardlab.models.scoring`; their names are importable from here as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.schema import Text
from rewardlab.errors import RewardlabError
from rewardlab.models.backbone import (
    DTYPES,
    INFO_FILE,
    PAD_TOKEN,
    SCORING_DTYPES,
    LayoutChoice,
    check_shared_layout,
    dtype_choice,
    ensure_pad_token,
    forward_rewards,
    load_dtype,
    load_model_and_tokenizer,
    model_arch,
    model_inputs,
    pad_batch,
    positions_computed,
    probe_shared_layout,
    read_info,
    resolve_device,
    resolve_dtype,
    set_precision,
    unwrap,
)
from rewardlab.models.encoding import DECODER, SequenceEncoder
from rewardlab.models.feature_stats import FeatureStats, load_feature_stats
from rewardlab.models.layouts import shared_prefix_batch
from rewardlab.models.mixed_precision import BF16_AUTOCAST, BF16_MIXED
from rewardlab.models.scoring import (
    PairScoring,
    Scorer,
    correct_length,
    length_batches,
    length_correction_of,
    normalize_rewards,
    prompt_groups,
    response_length,
)

#: Names that live in backbone.py and scoring.py, importable from here as before the split.
__all__ = [
    "DTYPES",
    "INFO_FILE",
    "PAD_TOKEN",
    "SCORING_DTYPES",
    "LayoutChoice",
    "PairScoring",
    "RewardModel",
    "Scorer",
    "check_shared_layout",
    "correct_length",
    "dtype_choice",
    "ensure_pad_token",
    "forward_rewards",
    "positions_computed",
    "length_batches",
    "length_correction_of",
    "load_dtype",
    "load_model_and_tokenizer",
    "model_arch",
    "model_inputs",
    "normalize_rewards",
    "pad_batch",
    "probe_shared_layout",
    "prompt_groups",
    "read_info",
    "resolve_device",
    "resolve_dtype",
    "response_length",
    "set_precision",
    "unwrap",
]


class RewardModel(LayoutChoice, PairScoring):
    """A loaded reward model that scores (prompt, response) pairs with one scalar each.

    Use :meth:`from_pretrained` on a rewardlab checkpoint (or any local sequence-classification
    model folder) and :meth:`score`.
    """

    def __init__(self, model: Any, tokenizer: Any, encoder: SequenceEncoder, info: dict[str, Any]) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.info = info
        #: Training features' statistics for the ``feature_distance`` signal (``None``: not stored).
        self.feature_stats: FeatureStats | None = None

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        max_length: int | None = None,
        device: str | None = "auto",
        dtype: str = "float32",
        attn_implementation: str | None = None,
    ) -> Scorer:
        """Load any rewardlab checkpoint (or a plain sequence-classification folder).

        ``rewardlab.json`` (if present) gives max length and truncation; a process reward model
        (``kind: prm``) loads as :class:`rewardlab.models.prm.ProcessRewardModel` and an embedding
        reward model (``method: embedding``) as
        :class:`rewardlab.models.embedding.EmbeddingRewardModel`; both score with the same
        ``score`` call.

        Args:
            path: The checkpoint folder.
            max_length: Tokens per sequence (default: the checkpoint's).
            device: ``auto`` (a CUDA device when torch sees one, else the CPU), ``cpu``, ``cuda``,
                ``cuda:1``, …
            dtype: ``float32`` (default: rewards as trained), ``auto`` (bfloat16 weights on a GPU
                or a CPU with native bf16, else float32; see :func:`dtype_choice`), ``bf16-mixed``
                (bf16 matrix multiplies; residual stream, norms, attention and head in float32:
                :mod:`rewardlab.models.mixed_precision`), ``bf16-autocast`` (bf16-mixed with
                attention in bf16 too, 1.25-3.2x float32 on a CPU with avx512_bf16; its packed
                layout is probed in float32 before conversion), ``bfloat16`` or ``float16``. float32
                stays the default: with SmolLM2-135M on 64 HH-RLHF pairs, bf16-mixed and bfloat16
                each flipped the order of 4 pairs against float32 (6 %), bf16-autocast 1.6-4.7 %
                of 128 pairs on three data sets (a default needs at most 1 %: docs/benchmarks.md,
                "Scoring precision"). The loaded model's ``dtype_note``
                says which and why.
            attn_implementation: Attention kernel for transformers (``sdpa``, ``eager``,
                ``flex_attention``: packed rows then pass a block mask built from group ids
                instead of a dense 4-D mask, which saves memory on a GPU). Full and LoRA
                checkpoints only.
        """
        dev = resolve_device(device)
        info = read_info(path)
        if info.get("method") == "embedding" and dtype == "auto":
            name = info.get("embedding", {}).get("dtype", "float32")
            why = "an embedding reward model embeds in the precision its heads were trained on"
        else:
            name, why = dtype_choice(dtype, dev)
        dt = load_dtype(name)
        if attn_implementation == "flex_attention" and dev.type == "cpu":
            # FlexAttention on the CPU runs through torch.compile's CPU code generation, which here
            # failed to compile some shapes and returned NaN rewards for others (torch 2.13).
            raise RewardlabError("attn_implementation flex_attention is for GPUs: on the CPU use sdpa")
        if attn_implementation and (info.get("kind") == "prm" or info.get("method") == "embedding"):
            raise RewardlabError("attn_implementation applies to full and LoRA outcome checkpoints only")
        try:
            if info.get("kind") == "prm":
                from rewardlab.models.prm import ProcessRewardModel

                loaded = ProcessRewardModel.from_pretrained(path, device=str(dev), dtype=name)
                loaded.dtype_note = f"{name} ({why})"
                return loaded
            if info.get("method") == "embedding":
                from rewardlab.models.embedding import EmbeddingRewardModel

                loaded = EmbeddingRewardModel.from_pretrained(path, device=str(dev), dtype=name)
                loaded.dtype_note = f"{name} ({why})"
                return loaded
        except KeyError as exc:  # a field the loader needs is missing
            where = Path(path) / INFO_FILE
            raise RewardlabError(f"{where} has no {exc} field: the checkpoint is damaged") from exc
        model, tokenizer = load_model_and_tokenizer(path, dtype=dt, attn_implementation=attn_implementation)
        model.to(dev)
        arch = model_arch(model)
        ensure_pad_token(tokenizer, model, arch)
        length = max_length or info.get("max_length") or min(getattr(tokenizer, "model_max_length", 512), 512)
        encoder = SequenceEncoder(tokenizer, arch, int(length), info.get("truncation", "keep_end"))
        loaded = cls(model, tokenizer, encoder, info)
        # bf16 rounding moves packed rows as much as a wrong layout moves a float32 one (tiny ALiBi
        # MPT), and on a trained SmolLM2 more than bf16-mixed's probe tolerance: whether packing is
        # right is the architecture's question, so the layout is probed (once, as always) in
        # float32, before the conversion, which changes the model in place
        if name in (BF16_MIXED, BF16_AUTOCAST) and arch == DECODER:
            loaded.score_layout("auto")
            loaded.layout_note += f"; probed in float32 before the {name} conversion"
        set_precision(model, name)
        loaded.dtype_note = f"{name} ({why})"
        loaded.feature_stats = load_feature_stats(path, info)
        return loaded

    @torch.inference_mode()
    def conform(self, prompts: Sequence[Text], responses: Sequence[Text]) -> tuple[list[Text], list[Text]]:
        """The inputs in the rendering this checkpoint was trained on (``rewardlab.json``'s ``input_format``).

        Pad tokens written out as text are removed from the ends first (a padded RL batch), then
        :func:`rewardlab.models.input_format.conform_all` turns text into messages or back as trained.
        """
        from rewardlab.models.input_format import conform_inputs

        return conform_inputs(prompts, responses, self.info.get("input_format"), self.tokenizer)

    def score(
        self,
        prompts: Sequence[Text],
        responses: Sequence[Text],
        batch_size: int = 16,
        normalize: bool = False,
        progress: bool = False,
        max_tokens: int | None = None,
        length_correction: bool | None = None,
        layout: str = "auto",
        return_features: bool = False,
    ) -> Any:
        """One reward per (prompt, response); batched by length, in the input order.

        Args:
            prompts: Prompts (strings or chat messages).
            responses: Responses, one per prompt.
            batch_size: Responses per forward pass (at most).
            normalize: Subtract the training-data reward mean and divide by its std
                (from ``rewardlab.json``).
            progress: Show a progress bar.
            max_tokens: Token budget of a forward pass: sequences (sorted by length) join a
                batch while its token positions (padded rows: batch size × its longest
                sequence; packed rows: the sum of their lengths) stay within it (a longer
                sequence gets a batch of its own).
            length_correction: Apply the length correction stored by ``rewardlab diagnose``
                (before normalisation); ``None`` follows the checkpoint (on when stored).
            layout: ``packed`` (decoders): responses to the same prompt share one computation of
                it, and sequences are packed into rows with block-diagonal masks, so no forward
                pass computes padding; ``padded``: one right-padded row per response; ``auto``
                (default): ``packed`` for decoders that pass :func:`check_shared_layout`,
                ``padded`` otherwise (see :meth:`score_layout`). Both give the same rewards
                (tested to 1e-5).
            return_features: Return (rewards, features): also what the head read for each
                response in the same forward pass, an (N, hidden) float32 tensor on the CPU
                (:func:`rewardlab.models.backbone.forward_rewards`); the rewards are unchanged.
        """
        correction = length_correction_of(self.info, length_correction)
        if len(prompts) != len(responses):
            raise RewardlabError(f"{len(prompts)} prompts but {len(responses)} responses")
        use = self.score_layout(layout)
        given = responses  # the length correction reads the responses as given
        prompts, responses = self.conform(prompts, responses)
        encoded = [self.encoder.encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        pad = self.tokenizer.pad_token_id

        def build(units: list[list[int]], widest: int, idx: list[int]) -> dict[str, torch.Tensor]:
            if use == "packed":
                return shared_prefix_batch([[encoded[i] for i in u] for u in units], pad, widest)
            batch = pad_batch([encoded[i] for i in idx], pad, "right", self.encoder.arch)
            if self.encoder.arch == DECODER:
                # Right padding under causal attention: no real token attends to the pads
                # after it, so the mask changes nothing we read, and without it SDPA can
                # take its faster is_causal path (the lab log dev/LOG.md, "Scoring and serving").
                del batch["attention_mask"]
            return batch

        out = [0.0] * len(encoded)
        feats: list[Any] = [None] * len(encoded)
        # No autograd graph: kept, it held every layer's activations of a batch until its rewards
        # were read (SmolLM2-135M, 8 padded rows of 256 tokens: 4.3 GB peak instead of 1.0 GB).
        with torch.inference_mode():
            for idx, batch in self.scoring_batches(
                encoded, use, batch_size, max_tokens, progress, "scoring", build
            ):
                rewards = forward_rewards(self.model, batch, features=return_features)
                if return_features:
                    rewards, read = rewards
                    for i, f in zip(idx, read.cpu(), strict=True):
                        feats[i] = f
                for i, r in zip(idx, rewards.tolist(), strict=True):
                    out[i] = r
        if correction:
            out = correct_length(out, given, correction)
        out = normalize_rewards(out, self.info) if normalize else out
        if not return_features:
            return out
        # stacked outside inference mode: the caller gets an ordinary tensor, not an inference one
        return out, torch.stack(feats) if feats else torch.empty(0, 0)
