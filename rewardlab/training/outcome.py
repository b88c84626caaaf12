"""The outcome reward model recipe of ``rewardlab train`` (the native engine).

:class:`OutcomeRecipe`'s steps, run by :func:`~rewardlab.training.recipe.run_recipe`: load and split
the data (by prompt) and summarise it; load the model with a one-output head and a safe pad token,
encode every pair and list (cutting, never dropping, long sequences; counting every exclusion) and
choose the batch layout; train with the Hugging Face Trainer (progress bar, JSONL log, periodic
evaluation and checkpoints, health warnings); then save a checkpoint that plain ``transformers``
loads, measure the reward normalisation and write ``train_summary.json``, ``rewardlab.json`` and
``INTEGRATION.md``. ``--engine trl`` (:mod:`~rewardlab.training.trl_engine`) and ``--method
embedding`` (:mod:`~rewardlab.training.embedding_train`) are subclasses that share the data steps.

Run: ``rewardlab train --model tiny-llama --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out runs/hh --max-steps 100``.
"""

from __future__ import annotations

import random
from typing import Any

from rewardlab import __version__
from rewardlab.config import parse_assignments, to_dict
from rewardlab.errors import RewardlabError
from rewardlab.training.config import TrainConfig
from rewardlab.training.kit import (
    TRAIN_LOG,
    TRAIN_SUMMARY,
    checkpoint_record,
    data_digest,
    data_record,
    distributed_record,
    lora_config,
    low_accuracy_warning,
    resolve_precision,
    run_callbacks,
    run_trainer,
    save_checkpoint,
    training_args,
    write_run_files,
)
from rewardlab.training.recipe import Recipe, TrainResult

NATIVE_TOKENIZATION = (
    "prompt and response tokenized separately; decoders: [BOS] prompt response EOS, reward at EOS; "
    "encoders: the tokenizer's pair form, model pooling"
)


def load_preference_split(cfg: TrainConfig) -> tuple[Any, Any, dict[str, Any]]:
    """The training and held-out preference data (``--eval-data``, or a split by prompt) and how."""
    from rewardlab.data import load_preferences
    from rewardlab.data.split import split_by_prompt

    kwargs = {"format": cfg.format, "mapping": parse_assignments(cfg.map, "--map"), "on_error": cfg.on_error}
    data = load_preferences(cfg.data, **kwargs)
    if cfg.eval_data:
        train, evals = data, load_preferences(cfg.eval_data, **kwargs)
        how = {"eval_data": cfg.eval_data}
    else:
        train, evals = split_by_prompt(data, cfg.eval_split or 0.0, cfg.seed)
        how = {"eval_split": cfg.eval_split, "split_by": "prompt"}
    return train, evals, how


def refuse_cpu_flex_attention(cfg: TrainConfig) -> None:
    """FlexAttention has no backward on the CPU: refuse it before the model loads."""
    if cfg.attn_implementation == "flex_attention":
        import torch

        if not torch.cuda.is_available():
            raise RewardlabError(
                "--attn-implementation flex_attention: PyTorch has no FlexAttention backward on the CPU; "
                "train with it on a GPU (scoring on the CPU works)"
            )


def normalization(model: Any, groups: list[Any], collator: Any, n: int, seed: int) -> dict[str, float]:
    """Mean and std of the trained model's rewards on up to ``n`` training responses."""
    import torch

    from rewardlab.models.reward_model import forward_rewards
    from rewardlab.training.batching import response_batches

    flat = [e for g in groups for e in g.encoded]
    picked = random.Random(seed).sample(flat, min(n, len(flat)))
    rewards: list[float] = []
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        for batch in response_batches(picked, collator, device):
            rewards.extend(forward_rewards(model, batch).tolist())
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    return {"mean": mean, "std": std if std > 0 else 1.0, "samples": len(rewards)}


class OutcomeRecipe(Recipe):
    """``rewardlab train`` (outcome reward model, native engine); see the module doc.

    After :meth:`train`, ``trainer``, ``runtime``, ``train_metrics``, ``eval_metrics`` and ``groups``
    (the summary's encoding and batching blocks) are set; :meth:`save` reads them.
    """

    engine = "native"
    tokenization = NATIVE_TOKENIZATION

    def load_data(self) -> None:
        """The preference data, its split and its summary."""
        from rewardlab.data.summary import summarize

        self.train_data, self.eval_data, self.split = load_preference_split(self.cfg)
        self.data_summary = summarize(self.train_data, source=self.cfg.data)

    def write_data_summary(self) -> None:
        """``data_summary.json`` and ``data_summary.md``."""
        from rewardlab.data.summary import write_summary

        write_summary(self.data_summary, self.out)

    def load_model(self) -> None:
        """The model and tokenizer (with a safe pad token), the encoded groups, the batch layout."""
        from rewardlab.models.encoding import SequenceEncoder
        from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer, model_arch
        from rewardlab.training.dataset import encode_groups

        cfg, say = self.cfg, self.reporter.say
        refuse_cpu_flex_attention(cfg)
        model, tokenizer = load_model_and_tokenizer(cfg.model, attn_implementation=cfg.attn_implementation)
        self.model, self.tokenizer, self.arch = model, tokenizer, model_arch(model)
        vocab_before = model.get_input_embeddings().weight.shape[0]
        self.pad_note = ensure_pad_token(tokenizer, model, self.arch, allow_resize=not cfg.lora)
        self.resized = model.get_input_embeddings().weight.shape[0] != vocab_before
        if self.pad_note:
            say(self.pad_note)
        encoder = SequenceEncoder(tokenizer, self.arch, cfg.max_length, cfg.truncation)
        self.train_groups, self.train_report = encode_groups(self.train_data, encoder)
        self.eval_groups, self.eval_report = encode_groups(self.eval_data, encoder)
        if not self.train_groups:
            from rewardlab.training.dataset import no_usable_pairs_message

            raise RewardlabError(no_usable_pairs_message(self.train_data, self.train_report.excluded))
        report = self.train_report
        say(
            f"{self.arch} model, {len(self.train_groups)} training groups ({report.sequences_cut} of "
            f"{report.sequences} sequences cut to {cfg.max_length} tokens with {cfg.truncation}; excluded: "
            f"{dict(report.excluded) or 'none'}), {len(self.eval_groups)} held-out groups"
        )
        self._choose_batching()

    def _choose_batching(self) -> None:
        """The batch layout and its collator (also used to measure the normalisation)."""
        from rewardlab.training.batching import group_length, make_collator, resolve_batching

        cfg, tokenizer = self.cfg, self.tokenizer
        checked = self.model if self.engine == "native" else None  # TRL lays out its own batches
        self.layout, self.why = resolve_batching(
            cfg.batching, self.arch, checked, tokenizer, cfg.max_length, self.reporter.warn
        )
        padding_side = tokenizer.padding_side if cfg.padding_side == "auto" else cfg.padding_side
        self.collator = make_collator(
            self.layout, tokenizer.pad_token_id, padding_side, self.arch, cfg.pack_tokens or cfg.max_length
        )
        self.lengths = (
            [group_length(g, self.layout) for g in self.train_groups]
            if self.layout == "padded" and cfg.group_by_length
            else None
        )

    def start_head(self) -> None:
        """``--head-init``: set the head before training (not when resuming: the checkpoint sets it)."""
        from rewardlab.training.head_init import init_head

        cfg = self.cfg
        if cfg.resume and cfg.head_init != "model":
            self.head_init = {"how": cfg.head_init, "skipped": "--resume: the checkpoint's head is used"}
            return
        if cfg.head_init == "probe":
            self.reporter.say("--head-init probe: fitting a linear probe on the frozen model's features")
        self.head_init = init_head(self.model, cfg.head_init, self.train_groups, self.collator, cfg.seed)
        if "probe" in self.head_init:
            probe = self.head_init["probe"]
            self.reporter.say(
                f"probe: {probe['comparisons']} comparisons, L2 {probe['l2']:g}, training accuracy "
                f"{probe['train_accuracy']:.3f}"
            )

    def train(self) -> None:
        """Train with :class:`~rewardlab.training.trainer.RewardTrainer` (resuming with ``--resume``)."""
        from rewardlab.training.dataset import GroupDataset
        from rewardlab.training.trainer import RewardTrainer

        cfg, model = self.cfg, self.model
        self.reporter.say(f"batching: {self.layout} ({self.why})")
        self.start_head()
        if cfg.lora:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(cfg, self.arch))
        if cfg.gradient_checkpointing:
            model.config.use_cache = False
        has_eval = bool(self.eval_groups)
        self.trainer = RewardTrainer(
            model=model,
            args=training_args(cfg, self.out, has_eval),
            train_dataset=GroupDataset(self.train_groups),
            eval_dataset=GroupDataset(self.eval_groups) if has_eval else None,
            data_collator=self.collator,
            processing_class=self.tokenizer,
            label_smoothing=cfg.label_smoothing,
            center_rewards_coefficient=cfg.center_rewards_coefficient,
            use_margin=cfg.use_margin,
            group_lengths=self.lengths,
            debias_length=cfg.debias_length,
            callbacks=run_callbacks(cfg, self.reporter),
        )
        result, self.runtime, self.eval_metrics = run_trainer(self.trainer, cfg, has_eval, self.reporter)
        self.train_metrics = dict(result.metrics)
        self.groups = {
            "train_groups": self.train_report.to_dict(),
            "eval_groups": self.eval_report.to_dict(),
            "batching": {"layout": self.layout, "why": self.why, **self.trainer.token_counts},
            "precision": resolve_precision(cfg.precision, self.trainer.args.device.type == "cuda").to_dict(),
        }

    def save(self) -> TrainResult:
        """Save the checkpoint, measure the reward normalisation, write the summary and rewardlab.json."""
        from rewardlab.models.reward_model import unwrap
        from rewardlab.training.finite import check_values

        cfg, out, say, warn = self.cfg, self.out, self.reporter.say, self.reporter.warn
        final = save_checkpoint(self.trainer, self.tokenizer, out, cfg.lora, cfg.merge, self.resized)
        if final is None:
            return self.result({})
        if cfg.lora and not cfg.merge and self.pad_note and "was the end token" in self.pad_note:
            warn(
                "plain transformers loads this LoRA folder with the base model's config, whose pad token is "
                "the EOS: after AutoModelForSequenceClassification.from_pretrained, set "
                f"model.config.pad_token_id = {self.tokenizer.pad_token_id} (RewardModel.from_pretrained "
                "does it), or train with --merge"
            )
        norm = normalization(unwrap(final), self.train_groups, self.collator, cfg.norm_samples, cfg.seed)
        check_values(norm, "the reward normalisation", f"{out}")
        metrics = self.eval_metrics
        if "eval_accuracy" in metrics:
            say(
                f"held-out: accuracy {metrics['eval_accuracy']:.3f}, mean margin "
                f"{metrics.get('eval_margin_mean', metrics.get('eval_margin', float('nan'))):.4f}, "
                f"loss {metrics['eval_loss']:.4f}"
            )
        low = low_accuracy_warning(metrics.get("eval_accuracy"), self.data_summary, out)
        if low:
            warn(low)
        summary = self._summary(norm)
        write_run_files(out, summary, self._info(norm, final))
        say(
            f"saved the reward model to {out} (rewardlab.json, {TRAIN_SUMMARY}, {TRAIN_LOG}, data_summary.md)"
        )
        return self.result(summary)

    def _summary(self, norm: dict[str, float]) -> dict[str, Any]:
        """``train_summary.json``."""
        return {
            "rewardlab_version": __version__,
            "engine": self.engine,
            "data": data_record(self.cfg, self.split, self.data_summary),
            **self.groups,
            "pad_token": self.pad_note,
            "steps": self.trainer.state.global_step,
            "size_defaults": self.cfg.size_defaults,
            "head_init": getattr(self, "head_init", None),
            "distributed": distributed_record(self.trainer),
            "runtime_s": self.runtime,
            "train_metrics": self.train_metrics,
            "eval_metrics": self.eval_metrics,
            "normalization": norm,
            "debias_length": self._debias_record(),
            "warnings": self.reporter.warnings,
        }

    def _info(self, norm: dict[str, float], final: Any) -> dict[str, Any]:
        """``rewardlab.json``."""
        cfg = self.cfg
        return {
            "kind": "orm",
            **checkpoint_record(cfg, self.arch),
            "engine": self.engine,
            "truncation": cfg.truncation,
            "tokenization": self.tokenization,
            "pad_token": self.tokenizer.pad_token,
            "normalization": norm,
            "metrics": self.eval_metrics,
            "train_config": to_dict(cfg),
            "data_summary": data_digest(self.data_summary),
            "rewardlab_version": __version__,
            "torch_dtype": str(next(final.parameters()).dtype),
            "debias_length": self._debias_record(),
        }

    def _debias_record(self) -> dict[str, Any] | None:
        """The ``debias_length`` block (``--debias-length``: the learnt length coefficient), else ``None``."""
        from rewardlab.training.debias import debias_record

        coef = getattr(self.trainer, "length_coef", None)
        weight = getattr(self.trainer, "length_corr_weight", 0.0)
        return None if coef is None else debias_record(float(coef.detach()), weight or None)
