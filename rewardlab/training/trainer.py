"""The reward trainer: a Hugging Face ``Trainer`` subclass with the Bradley-Terry loss (outcome models).

Why a subclass of ``transformers.Trainer`` and not TRL's ``RewardTrainer``: the Trainer gives
``accelerate launch`` (DDP, DeepSpeed, FSDP), gradient accumulation and checkpointing, mixed
precision and exact resume; what TRL adds on top is what we must do differently — it drops
over-long pairs instead of cutting them, reads the reward with the model's pad-based pooling
(wrong when pad == EOS), has no ranked-list loss, and tokenizes prompt and response as one text,
which prefix-shared and packed batches cannot use. ``--engine trl`` still runs TRL's stock
trainer for comparison.

``debias=`` a :class:`~rewardlab.training.debias.LengthDebias` (``--debias-length``, prepared by the
outcome recipe: the length-balanced training set, the coefficient, the decorrelation weight): the
scalar length coefficient ``a`` (not a parameter of the model, starting at 0) is learnt with the
model, its own param group at :data:`~rewardlab.training.debias.LENGTH_COEF_LR`; the loss sees
``rewards + a * log_len``, and the saved model gives the length-free rewards. Training and
evaluation metrics are of the length-free rewards (what the saved model gives); the evaluation adds
the loss and accuracy with the length reward (``eval_loss_with_length``,
``eval_accuracy_with_length``) and the logs add ``length_coef``, which is written next to every
checkpoint and read back on resume. With a decorrelation weight λ > 0 (``--length-corr-weight``)
the training loss adds ODIN's ``λ |corr(rewards, log_len)|`` over the batch's responses
(:func:`~rewardlab.training.debias.length_correlation`).

The callbacks (progress bar, JSONL log, health warnings) are in :mod:`rewardlab.training.callbacks`.
Not a command.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from transformers import Trainer

from rewardlab.metrics import pairwise_accuracy, preference_metrics
from rewardlab.models.reward_model import forward_rewards, positions_computed
from rewardlab.training.callbacks import SyncLengthCoefCallback
from rewardlab.training.debias import (
    LENGTH_COEF_LR,
    LengthDebias,
    length_correlation,
    load_length_coef,
    save_length_coef,
)
from rewardlab.training.finite import FiniteLossMixin
from rewardlab.training.losses import Comparisons, comparison_loss


class RewardTrainer(FiniteLossMixin, Trainer):
    """Trains on batches from :class:`~rewardlab.training.dataset.PaddedCollator` with the BT loss.

    A step whose loss is not finite stops the run (:class:`~rewardlab.training.finite.FiniteLossMixin`).

    Args:
        label_smoothing: Conservative BT ε.
        center_rewards_coefficient: Weight of the reward-centring penalty.
        use_margin: Use the data's margins.
        group_lengths: Lengths of the training groups, for length-grouped batches of padded rows.
        debias: ``--debias-length``: the length reward to learn and leave out (module doc), else ``None``.
        *args: Passed to ``transformers.Trainer``.
        **kwargs: Passed to ``transformers.Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        label_smoothing: float = 0.0,
        center_rewards_coefficient: float = 0.0,
        use_margin: bool = True,
        group_lengths: list[int] | None = None,
        debias: LengthDebias | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_lengths = group_lengths
        #: The length reward (``--debias-length``), else ``None``.
        self.debias = debias
        if debias is not None:
            self.add_callback(SyncLengthCoefCallback(self))
        #: Real tokens and computed token positions of the training batches (this process).
        self.token_counts = {"real_tokens": 0, "positions": 0}
        # The loss is a mean over the micro-batch's groups: let the Trainer divide by the
        # accumulation steps, so 2 x 4 accumulates to exactly the loss of a batch of 8.
        self.model_accepts_loss_kwargs = False
        self.loss_opts = {
            "label_smoothing": label_smoothing,
            "center": center_rewards_coefficient,
            "use_margin": use_margin,
        }
        self._stats: dict[str, list[float]] = defaultdict(list)

    @property
    def length_coef(self) -> torch.nn.Parameter | None:
        """The length reward's coefficient (``--debias-length``), else ``None``."""
        return None if self.debias is None else self.debias.coef

    @property
    def length_corr_weight(self) -> float:
        """The weight of ODIN's decorrelation penalty (0 without ``--debias-length``)."""
        return 0.0 if self.debias is None else self.debias.corr_weight

    def _loss(
        self, model: Any, inputs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The training loss (with the length reward when debiasing), the model's rewards, their deltas."""
        rewards = forward_rewards(model, inputs)
        comps = Comparisons(inputs["better"], inputs["worse"], inputs["margin"], inputs["weight"])
        loss = comparison_loss(self._with_length(rewards, inputs), comps, **self.loss_opts)
        if self.length_corr_weight and model.training:
            penalty = length_correlation(rewards, inputs["log_len"], reduce=_global_sum())
            loss = loss + self.length_corr_weight * penalty
        return loss, rewards, (rewards[comps.better] - rewards[comps.worse]).detach()

    def _with_length(self, rewards: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """``rewards + a * log_len`` when debiasing, else ``rewards``."""
        if self.length_coef is None:
            return rewards
        if "log_len" not in inputs:
            raise ValueError("--debias-length: the batch has no log_len (groups built without their texts)")
        return rewards + self.length_coef * inputs["log_len"].to(rewards.dtype)

    def create_optimizer(self, model: Any = None) -> Any:
        """The Trainer's optimizer, plus the length coefficient in a param group of its own (no decay)."""
        optimizer = super().create_optimizer(model)
        coef = self.length_coef
        if coef is not None and all(p is not coef for g in optimizer.param_groups for p in g["params"]):
            optimizer.add_param_group({"params": [coef], "lr": LENGTH_COEF_LR, "weight_decay": 0.0})
        return optimizer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Save the model; with the length coefficient, also ``length_coef.json`` beside it (main process)."""
        super()._save(output_dir, state_dict)
        if self.length_coef is not None and self.args.should_save:
            save_length_coef(output_dir or self.args.output_dir, float(self.length_coef.detach()))

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """The Trainer's ``train``; on resume, the length coefficient is read back from the checkpoint."""
        if self.length_coef is not None and resume_from_checkpoint:
            folder = resume_from_checkpoint
            if folder is True:
                from transformers.trainer_utils import get_last_checkpoint

                folder = get_last_checkpoint(self.args.output_dir)
            if folder:  # else the Trainer says that there is no checkpoint
                with torch.no_grad():
                    self.length_coef.fill_(load_length_coef(folder))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        """BT loss over the batch's comparisons; records accuracy, margin and reward statistics."""
        loss, rewards, deltas = self._loss(model, inputs)
        if model.training:
            self.token_counts["real_tokens"] += int(inputs["n_tokens"])
            self.token_counts["positions"] += positions_computed(model, inputs)
        self._stats["deltas"].extend(deltas.tolist())
        self._stats["rewards"].extend(rewards.detach().tolist())
        return (loss, rewards) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        """Length-grouped order for padded rows when lengths were given, else the Trainer's."""
        if self.group_lengths is None:
            return super()._get_train_sampler(train_dataset)
        from rewardlab.training.batching import LengthGroupedSampler

        return LengthGroupedSampler(self.group_lengths, self.args.per_device_train_batch_size, self.args.seed)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the training metrics gathered since the last log."""
        if "loss" in logs and self._stats["deltas"]:
            logs.update(preference_metrics(self._stats["deltas"], self._stats["rewards"]))
            self._stats.clear()
        if "loss" in logs and self.length_coef is not None:
            logs["length_coef"] = float(self.length_coef.detach())
        super().log(logs, start_time)

    @torch.no_grad()
    def evaluate(
        self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """Loss and preference metrics on the held-out groups (gathered over processes)."""
        from accelerate.utils import gather_object

        loader = self.get_eval_dataloader(eval_dataset)
        model = self.model
        was_training = model.training
        model.eval()
        deltas: list[float] = []  # of the model's (length-free) rewards
        with_length: list[float] = []  # of the rewards plus the length reward (debiasing)
        rewards: list[float] = []
        losses: list[tuple[float, float, int]] = []  # loss, loss with the length reward, groups
        for inputs in loader:
            inputs = self._prepare_inputs(inputs)
            r = forward_rewards(model, inputs)
            comps = Comparisons(inputs["better"], inputs["worse"], inputs["margin"], inputs["weight"])
            fitted = self._with_length(r, inputs)
            loss = comparison_loss(r, comps, **self.loss_opts).item()
            loss_len = comparison_loss(fitted, comps, **self.loss_opts).item() if fitted is not r else loss
            losses.append((loss, loss_len, int(inputs["n_groups"])))
            deltas.extend((r[comps.better] - r[comps.worse]).tolist())
            with_length.extend((fitted[comps.better] - fitted[comps.worse]).tolist())
            rewards.extend(r.tolist())
        if was_training:
            model.train()
        if self.accelerator.num_processes > 1:
            deltas, rewards, losses = gather_object(deltas), gather_object(rewards), gather_object(losses)
            with_length = gather_object(with_length)
        n = sum(k for *_, k in losses) or 1
        metrics = {"loss": sum(v * k for v, _, k in losses) / n, **preference_metrics(deltas, rewards)}
        if self.length_coef is not None and deltas:
            metrics["loss_with_length"] = sum(v * k for _, v, k in losses) / n
            metrics["accuracy_with_length"] = pairwise_accuracy(with_length)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def _global_sum() -> Any:
    """An autograd all-reduce (sum) over the processes of a DDP run, or ``None`` in one process.

    Every process adds the same global penalty; the all-reduce's backward sums its gradient over the
    processes and DDP then averages the parameters' gradients, which gives the global penalty's
    gradient once, as one process with the whole batch computes it.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return None
    from torch.distributed.nn.functional import all_reduce

    return all_reduce
