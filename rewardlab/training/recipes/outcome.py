"""The outcome reward model recipe of ``rewardlab train`` (full or LoRA fine-tuning, native engine).

:class:`OutcomeRecipe`'s steps, run by :func:`~rewardlab.training.recipe.run_recipe`: load and split
the data (by prompt) and summarise it; fill the learning rate and epochs left out by the model's
size, load the model with a one-output head and a safe pad token, encode every pair and list
(cutting, never dropping, long sequences; counting every exclusion) and choose the batch layout;
train with :class:`~rewardlab.training.trainer.RewardTrainer` (progress bar, JSONL log, periodic
evaluation and checkpoints, health warnings; with ``--debias-length`` the length reward prepared
here as one :class:`~rewardlab.training.debias.LengthDebias`); then save a checkpoint that plain
``transformers`` loads, measure the reward normalisation and write ``train_summary.json``,
``rewardlab.json`` and ``INTEGRATION.md``. Its steps are functions it shares with the other
recipes (:mod:`~rewardlab.training.recipes.preference_steps`,
:mod:`~rewardlab.training.recipes.outcome_steps`).

Run: ``rewardlab train --model tiny-llama --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out runs/hh --max-steps 100``.
"""

from __future__ import annotations

from typing import Any

from rewardlab.training.callbacks import CpuThreadsCallback, compile_record, run_callbacks
from rewardlab.training.options import (
    DebiasOptions,
    FineTuneOptions,
    HeadInitOptions,
    LoraOptions,
    PreferenceLossOptions,
    SequenceOptions,
)
from rewardlab.training.recipe import Recipe, TrainResult
from rewardlab.training.recipes.outcome_steps import (
    OutcomeRecord,
    OutcomeRun,
    load_outcome_model,
    save_outcome_run,
    start_head,
)
from rewardlab.training.recipes.preference_steps import load_preference_data, write_preference_summary
from rewardlab.training.size_defaults import resolve_size_defaults
from rewardlab.training.trainer_setup import lora_config, resolve_precision, run_trainer, training_args

NATIVE_TOKENIZATION = (
    "decoders: prompt + response tokenized as one text, [BOS] prompt response EOS, reward at EOS; "
    "encoders: the tokenizer's pair form, model pooling"
)


def length_debias(groups: list[Any], corr_weight: float, device: Any) -> Any:
    """``--debias-length``'s :class:`~rewardlab.training.debias.LengthDebias` for these training groups.

    The groups weighted so that chosen-longer and chosen-shorter pairs weigh the same, a length
    coefficient at 0 on the training ``device``, and ODIN's decorrelation weight.
    """
    import torch

    from rewardlab.training.dataset import GroupDataset, length_balanced
    from rewardlab.training.debias import LengthDebias

    coef = torch.nn.Parameter(torch.zeros((), device=device))
    return LengthDebias(GroupDataset(length_balanced(groups)), coef, corr_weight)


class OutcomeRecipe(Recipe):
    """``rewardlab train`` (outcome reward model, native engine); see the module doc.

    State: ``data`` (:class:`~rewardlab.training.recipes.preference_steps.PreferenceSplit`) after
    :meth:`load_data`; ``loaded`` (:class:`~rewardlab.training.recipes.outcome_steps.OutcomeModel`)
    and ``size_defaults`` after :meth:`load_model`; ``run``
    (:class:`~rewardlab.training.recipes.outcome_steps.OutcomeRun`) after :meth:`train`.
    """

    parts = (
        SequenceOptions,
        FineTuneOptions,
        LoraOptions,
        HeadInitOptions,
        PreferenceLossOptions,
        DebiasOptions,
    )

    def load_data(self) -> None:
        """The preference data, its split and its summary."""
        self.data = load_preference_data(self.cfg)

    def write_data_summary(self) -> None:
        """``data_summary.json`` and ``data_summary.md``."""
        write_preference_summary(self.data, self.out, self.reporter.say)

    def load_model(self) -> None:
        """Learning rate and epochs by the model's size, then the model, the encoded groups, the batches."""
        self.cfg, self.size_defaults = resolve_size_defaults(self.cfg)
        self.loaded = load_outcome_model(self.cfg, self.data, self.reporter, engine="native")

    def train(self) -> None:
        """Train with :class:`~rewardlab.training.trainer.RewardTrainer` (resuming with ``--resume``)."""
        from rewardlab.training.dataset import GroupDataset
        from rewardlab.training.trainer import RewardTrainer

        cfg, loaded = self.cfg, self.loaded
        self.reporter.say(f"batching: {loaded.layout} ({loaded.why})")
        head_init = start_head(cfg, loaded, self.reporter)
        model = loaded.model
        if cfg.lora:
            from peft import get_peft_model

            model = get_peft_model(model, lora_config(cfg, loaded.arch))
        if cfg.gradient_checkpointing:
            model.config.use_cache = False
        has_eval = bool(loaded.eval_groups)
        args = training_args(cfg, self.out, has_eval)
        debias = (
            length_debias(loaded.train_groups, cfg.length_corr_weight, args.device)
            if cfg.debias_length
            else None
        )
        threads = CpuThreadsCallback(self.reporter.say)
        callbacks = [*run_callbacks(cfg, self.reporter), threads]
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=debias.dataset if debias else GroupDataset(loaded.train_groups),
            eval_dataset=GroupDataset(loaded.eval_groups) if has_eval else None,
            data_collator=loaded.collator,
            processing_class=loaded.tokenizer,
            label_smoothing=cfg.label_smoothing,
            center_rewards_coefficient=cfg.center_rewards_coefficient,
            use_margin=cfg.use_margin,
            group_lengths=loaded.lengths,
            debias=debias,
            callbacks=callbacks,
        )
        result, runtime, eval_metrics = run_trainer(trainer, cfg, has_eval, self.reporter)
        groups = {
            "train_groups": loaded.train_report.to_dict(),
            "eval_groups": loaded.eval_report.to_dict(),
            "batching": {"layout": loaded.layout, "why": loaded.why, **trainer.token_counts},
            "precision": resolve_precision(cfg.precision, trainer.args.device.type == "cuda").to_dict(),
            "cpu_threads": threads.record,
            "compile": compile_record(callbacks),
        }
        self.run = OutcomeRun(
            "native", NATIVE_TOKENIZATION, trainer, runtime, dict(result.metrics), eval_metrics, groups,
            head_init, debias,
        )  # fmt: skip

    def save(self) -> TrainResult:
        """Save the checkpoint, measure the reward normalisation, write the summary and rewardlab.json."""
        record = OutcomeRecord(self.cfg, self.data, self.loaded, self.run, self.size_defaults, self.reporter)
        return self.result(save_outcome_run(record))
