"""The process reward model recipe: ``rewardlab train --kind prm`` on step-labelled data.

:class:`ProcessRecipe`'s steps, run by :func:`~rewardlab.training.recipe.run_recipe`: read
step-labelled data (:mod:`rewardlab.data.stepwise`; five formats), split by prompt, summarise it
(steps, label balance, first errors, inconsistencies); load any local model as
``AutoModelForTokenClassification`` with one output, encode each solution as prompt + steps each
ended by the separator (:class:`rewardlab.models.prm.StepEncoder`; truncation is counted, never
silent) and choose the batch layout; train with the same Hugging Face Trainer, callbacks, LoRA,
resume and logging as outcome models, with the loss only at labelled separators
(:class:`~rewardlab.training.prm_trainer.PRMTrainer`); save a checkpoint whose ``rewardlab.json`` declares
``kind: prm`` and loads through ``RewardModel.from_pretrained``.

Run: ``rewardlab train --kind prm --model tiny-llama --data ../shared/data/big-bench-mistake
--out runs/prm``.
"""

from __future__ import annotations

import math
from typing import Any

from rewardlab import __version__
from rewardlab.config import to_dict
from rewardlab.errors import RewardlabError
from rewardlab.training.callbacks import run_callbacks
from rewardlab.training.options import FineTuneOptions, LoraOptions, ProcessOptions, SequenceOptions
from rewardlab.training.recipe import Recipe, TrainResult
from rewardlab.training.run_records import (
    TRAIN_SUMMARY,
    checkpoint_record,
    distributed_record,
    save_checkpoint,
    write_run_files,
)
from rewardlab.training.size_defaults import resolve_size_defaults
from rewardlab.training.trainer_setup import lora_config, run_trainer, training_args


class ProcessRecipe(Recipe):
    """``rewardlab train --kind prm`` (see the module doc); its state lives on ``self``."""

    parts = (ProcessOptions, SequenceOptions, FineTuneOptions, LoraOptions)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """No outcome-model options (head init, length debiasing); the model fine-tuned, native engine."""
        cfg.refuse_head_init()
        cfg.refuse_debias_length()
        if cfg.method != "full" or cfg.engine != "native":
            raise ValueError(
                "--kind prm trains the model (--method full, optionally --lora) with the native engine"
            )
        super().check_config(cfg)

    def load_data(self) -> None:
        """The step-labelled data, its split by prompt and its summary (with the data's warnings)."""
        from rewardlab.data.stepwise import load_stepwise, summarize_steps
        from rewardlab.training.prm_trainer import split_examples

        cfg, fmt = self.cfg, self.cfg.format
        self.data = load_stepwise(cfg.data, format=fmt, on_error=cfg.on_error)
        if cfg.eval_data:
            self.train_examples = self.data.examples
            self.eval_examples = load_stepwise(cfg.eval_data, format=fmt, on_error=cfg.on_error).examples
            self.split = {"eval_data": cfg.eval_data}
        else:
            self.train_examples, self.eval_examples = split_examples(
                self.data.examples, cfg.eval_split or 0.0, cfg.seed
            )
            self.split = {"eval_split": cfg.eval_split, "split_by": "prompt"}
        self.data_summary = summarize_steps(self.data, source=cfg.data)
        for w in self.data_summary["warnings"]:
            self.reporter.warn(f"data: {w}")

    def write_data_summary(self) -> None:
        """The step data's summary (``data_summary.json`` and ``data_summary.md``)."""
        from rewardlab.data.stepwise import write_steps_summary

        write_steps_summary(self.data_summary, self.out)

    def load_model(self) -> None:
        """The token-classification model (safe pad token), the step separator, the encoded solutions."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        from rewardlab.models.presets import resolve_model_path
        from rewardlab.models.prm import resolve_separator
        from rewardlab.models.reward_model import ensure_pad_token, model_arch

        self.cfg, _ = resolve_size_defaults(self.cfg)  # the large-model rule (reads no file for PRMs)
        cfg = self.cfg
        folder = resolve_model_path(cfg.model)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForTokenClassification.from_pretrained(
                str(folder),
                num_labels=1,
                **({"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}),
            )
        except (OSError, ValueError) as exc:
            raise RewardlabError(f"{folder}: cannot load a token-classification model: {exc}") from exc
        self.model, self.tokenizer, self.arch = model, tokenizer, model_arch(model)
        vocab = model.get_input_embeddings().weight.shape[0]
        self.pad_note = ensure_pad_token(tokenizer, model, self.arch, allow_resize=not cfg.lora)
        self.resized = model.get_input_embeddings().weight.shape[0] != vocab
        if self.pad_note:
            self.reporter.say(self.pad_note)
        self.separator, self.sep_ids = resolve_separator(tokenizer, cfg.step_separator)
        if tokenizer.pad_token_id in self.sep_ids:
            raise RewardlabError(
                f"the step separator {self.separator!r} contains the pad token: choose another"
            )
        self._encode()
        self._choose_batching()

    def _encode(self) -> None:
        """Encode both splits; refuse data with nothing to learn; report what truncation left out."""
        from rewardlab.models.prm import StepEncoder
        from rewardlab.training.prm_trainer import encode_all

        cfg, warn = self.cfg, self.reporter.warn
        encoder = StepEncoder(self.tokenizer, cfg.max_length, self.sep_ids)
        self.train_items, self.train_report = encode_all(self.train_examples, encoder)
        self.eval_items, self.eval_report = encode_all(self.eval_examples, encoder)
        if not self.train_items:
            raise RewardlabError(f"{cfg.data}: no solution with a labelled step to train on")
        labelled = self.train_report["labelled_steps"]
        self.reporter.say(
            f"{self.arch} PRM: {len(self.train_items)} training solutions ({labelled} labelled steps), "
            f"{len(self.eval_items)} held-out; step separator {self.separator!r} (ids {self.sep_ids}); "
            f"aggregation {cfg.aggregation}"
        )
        left_out = f"--max-length {cfg.max_length} and were left out (counted in {TRAIN_SUMMARY})"
        for name, rep in (("training", self.train_report), ("held-out", self.eval_report)):
            if rep["solutions_without_labelled_step"]:
                warn(
                    f"{name}: {rep['solutions_without_labelled_step']} solutions have no labelled step "
                    f"within {left_out}"
                )
            if rep["steps_cut"]:
                warn(
                    f"{name}: {rep['steps_cut']} steps ({rep['labelled_steps_cut']} labelled) of "
                    f"{rep['steps']} did not fit in {left_out}"
                )

    def _choose_batching(self) -> None:
        """The batch layout (checked on the model), then LoRA adapters when asked."""
        from rewardlab.training.batching import resolve_batching

        cfg = self.cfg
        self.layout, self.why = resolve_batching(
            cfg.batching, self.arch, self.model, self.tokenizer, cfg.max_length, self.reporter.warn
        )
        self.reporter.say(f"batching: {self.layout} ({self.why})")
        if cfg.lora:
            from peft import get_peft_model

            self.model = get_peft_model(self.model, lora_config(cfg, self.arch, "TOKEN_CLS"))

    def train(self) -> None:
        """Train with :class:`~rewardlab.training.prm_trainer.PRMTrainer` (resuming with ``--resume``)."""
        from rewardlab.training.prm_trainer import PRMTrainer, StepCollator

        cfg = self.cfg
        has_eval = bool(self.eval_items)
        self.trainer = PRMTrainer(
            model=self.model,
            args=training_args(cfg, self.out, has_eval),
            train_dataset=self.train_items,
            eval_dataset=self.eval_items or None,
            data_collator=StepCollator(
                self.tokenizer.pad_token_id, self.layout, cfg.pack_tokens or cfg.max_length
            ),
            processing_class=self.tokenizer,
            callbacks=run_callbacks(cfg, self.reporter),
        )
        result, self.runtime, self.eval_metrics = run_trainer(self.trainer, cfg, has_eval, self.reporter)
        self.train_metrics = dict(result.metrics)

    def save(self) -> TrainResult:
        """Save the checkpoint; write the summary, ``rewardlab.json`` and ``INTEGRATION.md``."""
        cfg, out, say = self.cfg, self.out, self.reporter.say
        with self.reporter.phase(
            "saving the checkpoint" + (" and merging the LoRA adapters" if cfg.merge else "")
        ):
            final = save_checkpoint(self.trainer, self.tokenizer, out, cfg.lora, cfg.merge, self.resized)
        if final is None:
            return self.result({})
        metrics = self.eval_metrics
        if metrics:
            say(
                f"held-out: step accuracy {metrics['eval_step_accuracy']:.3f}, AUROC "
                f"{metrics.get('eval_step_auroc', math.nan):.3f}, loss {metrics['eval_loss']:.4f}"
            )
        summary = self._summary()
        write_run_files(out, summary, self._info())
        say(
            f"saved the process reward model to {out} "
            f"(rewardlab.json, INTEGRATION.md, {TRAIN_SUMMARY}, data_summary.md)"
        )
        return self.result(summary)

    def _summary(self) -> dict[str, Any]:
        """``train_summary.json``."""
        return {
            "rewardlab_version": __version__,
            "kind": "prm",
            "data": {"train": self.cfg.data, "split": self.split, "dropped_records": len(self.data.drops)},
            "train_encoding": self.train_report,
            "eval_encoding": self.eval_report,
            "pad_token": self.pad_note,
            "steps": self.trainer.state.global_step,
            "batching": {"layout": self.layout, "why": self.why},
            "distributed": distributed_record(self.trainer),
            "runtime_s": self.runtime,
            "train_metrics": self.train_metrics,
            "eval_metrics": self.eval_metrics,
            "warnings": self.reporter.warnings,
        }

    def _info(self) -> dict[str, Any]:
        """``rewardlab.json``."""
        cfg = self.cfg
        return {
            "kind": "prm",
            **checkpoint_record(cfg, self.arch),
            "head": {
                "kind": "token-classification",
                "outputs": 1,
                "read_at": "every step separator: the log-odds that the step is correct",
            },
            "step_separator": self.separator,
            "separator_ids": self.sep_ids,
            "aggregation": cfg.aggregation,
            "pad_token": self.tokenizer.pad_token,
            "metrics": self.eval_metrics,
            "train_config": to_dict(cfg),
            "data_summary": {k: self.data_summary[k] for k in ("counts", "label_balance", "task_types")},
            "rewardlab_version": __version__,
        }
