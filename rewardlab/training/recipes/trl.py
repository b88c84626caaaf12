"""``--engine trl``: the same data and options through TRL's stock ``RewardTrainer``.

For comparison (``rewardlab bench``) and for users who want TRL's behaviour. The differences
are TRL's own and are counted, not hidden: TRL takes pairs only (ranked lists are expanded to
their pairs), tokenizes ``prompt + response`` as one text with EOS appended, **drops** pairs
longer than ``--max-length`` (the number dropped is reported), and reads the reward with the
model's pad-based pooling (rewardlab still gives it a pad token distinct from EOS).

:class:`TrlRecipe` shares the outcome recipe's steps (the functions of
:mod:`~rewardlab.training.recipes.preference_steps` and
:mod:`~rewardlab.training.recipes.outcome_steps`): the data, the model and the saved checkpoint
are the native engine's; its :meth:`~TrlRecipe.train` step runs TRL. ``--debias-length`` and
``--label-smoothing`` are refused (TRL's stock loss), as is a ``--truncation`` other than keep_end.

Run: ``rewardlab train --engine trl --model tiny-llama --data DATA --out runs/trl``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.training.callbacks import run_callbacks
from rewardlab.training.options import (
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
from rewardlab.training.trainer_setup import lora_config, resume_checkpoint, training_args

TRL_TOKENIZATION = "TRL RewardTrainer: prompt + response tokenized as one text, EOS appended, model pooling"


def _pair_rows(data: Any, use_margin: bool) -> tuple[list[dict[str, Any]], int]:
    """TRL rows from usable pairs (lists expanded); also the number of tied/identical pairs left out."""
    everything = data.all_pairs(include_ties=True)
    pairs = [p for p in everything if p.usable]
    with_margin = use_margin and any(p.margin is not None for p in pairs)
    rows = []
    for p in pairs:
        row = {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
        if with_margin:
            row["margin"] = float(p.margin or 0.0)
        rows.append(row)
    return rows, len(everything) - len(pairs)


class TrlRecipe(Recipe):
    """``--engine trl``: the outcome model's steps with :meth:`train` run by ``trl.RewardTrainer``.

    The data, the model, the encoded groups (for the normalisation) and :meth:`save` are the
    native recipe's (shared functions); the batch layout is TRL's own. State as
    :class:`~rewardlab.training.recipes.outcome.OutcomeRecipe`'s.
    """

    parts = (SequenceOptions, FineTuneOptions, LoraOptions, HeadInitOptions, PreferenceLossOptions)

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """The parts' checks; no ``--debias-length``, ``--label-smoothing``, ``--truncation`` but keep_end."""
        super().check_config(cfg)
        cfg.refuse_debias_length()
        if cfg.truncation != "keep_end" or cfg.label_smoothing:
            raise ValueError(
                "--engine trl runs TRL's stock loss and truncation: drop --truncation/--label-smoothing"
            )

    def load_data(self) -> None:
        """The preference data, its split and its summary."""
        self.data = load_preference_data(self.cfg)

    def write_data_summary(self) -> None:
        """``data_summary.json`` and ``data_summary.md``."""
        write_preference_summary(self.data, self.out, self.reporter.say)

    def load_model(self) -> None:
        """Learning rate and epochs by the model's size, then the model and the encoded groups."""
        self.cfg, self.size_defaults = resolve_size_defaults(self.cfg)
        self.loaded = load_outcome_model(self.cfg, self.data, self.reporter, engine="trl")

    def train(self) -> None:
        """Train with ``trl.RewardTrainer``; count what it drops and the tokens it lays out."""
        cfg, say = self.cfg, self.reporter.say
        tokenizer, data = self.loaded.tokenizer, self.data
        if tokenizer.eos_token is None and getattr(tokenizer, "sep_token", None) is not None:
            tokenizer.eos_token = tokenizer.sep_token  # TRL appends EOS as text and needs one
            say(f"TRL engine: no EOS token, using the separator {tokenizer.sep_token!r} as EOS")
        train_rows, excluded = _pair_rows(data.train, cfg.use_margin)
        eval_rows, _ = _pair_rows(data.evals, cfg.use_margin)
        if not train_rows:
            from rewardlab.training.dataset import no_usable_pairs_message

            raise RewardlabError(no_usable_pairs_message(data.train, {"tied or identical": excluded}))
        head_init = start_head(cfg, self.loaded, self.reporter)
        trainer = self._trl_trainer(train_rows, eval_rows)
        counts = _count_training_tokens(trainer)
        kept = len(trainer.train_dataset)
        dropped = len(train_rows) - kept
        say(f"TRL engine: {kept} training pairs ({excluded} ties or identical pairs left out)")
        if dropped:
            n = len(train_rows)
            self.reporter.warn(
                f"TRL dropped {dropped} of {n} training pairs longer than {cfg.max_length} tokens"
            )
        start = time.time()
        result = trainer.train(resume_from_checkpoint=resume_checkpoint(cfg, self.reporter))
        runtime = time.time() - start
        eval_metrics = {}
        if eval_rows:
            with self.reporter.phase("held-out evaluation", f"{len(eval_rows)} pairs"):
                eval_metrics = trainer.evaluate()
        groups = {
            "train_groups": {
                "pairs_in": len(train_rows) + excluded,
                "groups": kept,
                "excluded": {
                    "tie or identical": excluded,
                    "longer than max_length (dropped by TRL)": dropped,
                },
            },
            "eval_groups": {"pairs_in": len(eval_rows), "groups": len(trainer.eval_dataset or [])},
            "batching": {"layout": "trl padded", "why": "--engine trl", **counts},
        }
        self.run = OutcomeRun(
            "trl", TRL_TOKENIZATION, trainer, runtime, dict(result.metrics), eval_metrics, groups, head_init
        )

    def save(self) -> TrainResult:
        """Save the checkpoint, measure the reward normalisation, write the summary and rewardlab.json."""
        record = OutcomeRecord(self.cfg, self.data, self.loaded, self.run, self.size_defaults, self.reporter)
        return self.result(save_outcome_run(record))

    def _trl_trainer(self, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]]) -> Any:
        """``trl.RewardTrainer`` with the run's Trainer arguments, LoRA and callbacks."""
        from datasets import Dataset
        from transformers import PrinterCallback
        from trl import RewardConfig
        from trl import RewardTrainer as TRLRewardTrainer

        cfg = self.cfg
        hf_args = training_args(cfg, Path(cfg.out), bool(eval_rows)).to_dict()
        for key in ("push_to_hub_token", "_n_gpu"):
            hf_args.pop(key, None)
        args = RewardConfig(
            **{k: v for k, v in hf_args.items() if k in RewardConfig.__dataclass_fields__},
            max_length=cfg.max_length,
            center_rewards_coefficient=cfg.center_rewards_coefficient or None,
        )
        peft_config = lora_config(cfg, self.loaded.arch) if cfg.lora else None
        trainer = TRLRewardTrainer(
            model=self.loaded.model,
            args=args,
            train_dataset=Dataset.from_list(train_rows),
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
            processing_class=self.loaded.tokenizer,
            peft_config=peft_config,
            callbacks=run_callbacks(cfg, self.reporter),
        )
        trainer.remove_callback(PrinterCallback)
        return trainer


def _count_training_tokens(trainer: Any) -> dict[str, int]:
    """Make the training loader count real tokens and positions into the returned dict."""
    counts = {"real_tokens": 0, "positions": 0}
    inner, make_train_loader = trainer.data_collator, trainer.get_train_dataloader

    def counting_collator(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = inner(features)
        counts["real_tokens"] += int(batch["attention_mask"].sum())
        counts["positions"] += batch["input_ids"].numel()
        return batch

    def train_loader_that_counts() -> Any:
        """The training loader alone collates through the counter (batches are built ahead of steps)."""
        trainer.data_collator = counting_collator
        try:
            return make_train_loader()
        finally:
            trainer.data_collator = inner

    trainer.get_train_dataloader = train_loader_that_counts
    return counts
