"""The reward trainer: a Hugging Face ``Trainer`` subclass, plus progress, logging and health checks.

Why a subclass of ``transformers.Trainer`` and not TRL's ``RewardTrainer``: the Trainer gives
``accelerate launch`` (DDP, DeepSpeed, FSDP), gradient accumulation and checkpointing, mixed
precision and exact resume; what TRL adds on top is what we must do differently — it drops
over-long pairs instead of cutting them, reads the reward with the model's pad-based pooling
(wrong when pad == EOS), has no ranked-list loss, and tokenizes prompt and response as one text,
which prefix-shared and packed batches cannot use. ``--engine trl`` still runs TRL's stock
trainer for comparison.

``debias_length=True`` (``--debias-length``, :mod:`rewardlab.training.debias`): a scalar length
coefficient ``a`` (a parameter of the trainer, not of the model, starting at 0) is learnt with the
model, its own param group at :data:`~rewardlab.training.debias.LENGTH_COEF_LR`; the loss sees
``rewards + a * log_len``, the training groups are weighted by
:func:`~rewardlab.training.dataset.length_balanced`, and the saved model gives the length-free
rewards. Training and evaluation metrics are of the length-free rewards (what the saved model
gives); the evaluation adds the loss and accuracy with the length reward (``eval_loss_with_length``,
``eval_accuracy_with_length``) and the logs add ``length_coef``, which is written next to every
checkpoint and read back on resume. With :data:`~rewardlab.training.debias.LENGTH_CORR_WEIGHT`
λ > 0 the training loss adds ODIN's ``λ |corr(rewards, log_len)|`` over the batch's responses
(:func:`~rewardlab.training.debias.length_correlation`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from rewardlab.metrics import pairwise_accuracy, preference_metrics
from rewardlab.models.reward_model import forward_rewards
from rewardlab.training import debias
from rewardlab.training.debias import (
    LENGTH_COEF_LR,
    length_correlation,
    load_length_coef,
    save_length_coef,
)
from rewardlab.training.finite import FiniteLossMixin
from rewardlab.training.losses import Comparisons, comparison_loss

#: Margin "stopped growing": the mean of this many newest training logs is not above the previous ones.
PLATEAU_LOGS = 5
#: Rewards "collapsed": their std fell below this.
COLLAPSE_STD = 1e-3


class RewardTrainer(FiniteLossMixin, Trainer):
    """Trains on batches from :class:`~rewardlab.training.dataset.PaddedCollator` with the BT loss.

    A step whose loss is not finite stops the run (:class:`~rewardlab.training.finite.FiniteLossMixin`).

    Args:
        label_smoothing: Conservative BT ε.
        center_rewards_coefficient: Weight of the reward-centring penalty.
        use_margin: Use the data's margins.
        group_lengths: Lengths of the training groups, for length-grouped batches of padded rows.
        debias_length: Learn a length reward left out of the model, on length-balanced groups (module doc).
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
        debias_length: bool = False,
        **kwargs: Any,
    ) -> None:
        if debias_length and kwargs.get("train_dataset") is not None:
            from rewardlab.training.dataset import GroupDataset, length_balanced

            kwargs["train_dataset"] = GroupDataset(length_balanced(kwargs["train_dataset"].groups))
        super().__init__(*args, **kwargs)
        self.group_lengths = group_lengths
        #: The length reward's coefficient (``debias_length``), else ``None``.
        self.length_coef: torch.nn.Parameter | None = None
        #: Weight of ODIN's decorrelation penalty (``debias_length``; read when the trainer is made).
        self.length_corr_weight = debias.LENGTH_CORR_WEIGHT if debias_length else 0.0
        if debias_length:
            self.length_coef = torch.nn.Parameter(torch.zeros((), device=self.args.device))
            self.add_callback(_SyncLengthCoef(self))
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
            self.token_counts["positions"] += inputs["input_ids"].numel()
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


class _SyncLengthCoef(TrainerCallback):
    """The length coefficient's gradient: averaged over the processes, then cleared, at every step.

    The coefficient lives outside the (DDP-wrapped) model: DDP does not average its gradient
    (averaging it keeps every process's copy the same) and the Trainer's ``model.zero_grad()``
    does not clear it (else it would add up over the steps).
    """

    def __init__(self, trainer: RewardTrainer) -> None:
        self.trainer = trainer

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """All-reduce (mean) the gradient."""
        coef = self.trainer.length_coef
        if coef is None or self.trainer.accelerator.num_processes == 1:
            return
        import torch.distributed as dist

        if coef.grad is None:  # every process must join the all-reduce
            coef.grad = torch.zeros_like(coef)
        dist.all_reduce(coef.grad)
        coef.grad /= self.trainer.accelerator.num_processes

    def on_optimizer_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Clear the gradient once the optimizer has used it."""
        if self.trainer.length_coef is not None:
            self.trainer.length_coef.grad = None


class JsonlLogCallback(TrainerCallback):
    """Appends every log (train and eval) as one JSON line to ``train_log.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = time.time()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        """Write one line (main process only)."""
        if state.is_world_process_zero and logs:
            row = {
                "step": state.global_step,
                "epoch": state.epoch,
                "time_s": round(time.time() - self.start, 3),
            }
            row.update(logs)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


#: What the collapse warning advises.
COLLAPSE_ADVICE = "try a lower learning rate and check the gradients"
#: ... when the head started at zero (``--head-init zero``), where small early rewards are expected.
ZERO_HEAD_ADVICE = (
    "--head-init zero starts every reward at 0 and the head grows at the model's learning rate; "
    "if the margins stay near 0, use --head-init model or probe, or a higher learning rate"
)


class HealthCallback(TrainerCallback):
    """Warns, once each, when the margin stops growing or the rewards collapse to a narrow range.

    The margin series is the held-out margin when the run evaluates, else the training margin;
    "stopped growing" compares the mean of the newest :data:`PLATEAU_LOGS` values with the mean
    of the ones before (single logs are too noisy to compare).
    """

    def __init__(self, warn: Any, collapse_advice: str = COLLAPSE_ADVICE) -> None:
        self.warn = warn
        self.collapse_advice = collapse_advice
        self.series: dict[str, list[float]] = {"eval": [], "train": []}
        self.warned: set[str] = set()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        """Check the newest log."""
        if not logs or not state.is_world_process_zero:
            return
        if "eval_margin_mean" in logs:
            self.series["eval"].append(logs["eval_margin_mean"])
        elif "margin_mean" in logs:
            self.series["train"].append(logs["margin_mean"])
        else:
            return
        warmup = args.warmup_steps * state.max_steps if args.warmup_steps < 1 else args.warmup_steps
        if state.global_step <= max(1, warmup):
            return
        series = self.series["eval"] if len(self.series["eval"]) >= 2 else self.series["train"]
        window = 1 if series is self.series["eval"] else PLATEAU_LOGS
        if "plateau" not in self.warned and len(series) >= 2 * window:
            new = sum(series[-window:]) / window
            old = sum(series[-2 * window : -window]) / window
            if new <= old:
                self.warned.add("plateau")
                which = "held-out" if window == 1 else "training"
                self.warn(
                    f"step {state.global_step}: the mean {which} margin stopped growing "
                    f"({old:.4f} -> {new:.4f}); more steps may not help"
                )
        if "collapse" not in self.warned and logs.get("reward_std", 1.0) < COLLAPSE_STD:
            self.warned.add("collapse")
            self.warn(
                f"step {state.global_step}: rewards collapsed to a narrow range (std "
                f"{logs['reward_std']:.2e}): {self.collapse_advice}"
            )


class RichProgressCallback(TrainerCallback):
    """A Rich progress bar with ETA that shows loss, accuracy and margin as they are logged."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Start the bar (main process only)."""
        if not state.is_world_process_zero:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
        )
        self.progress.start()
        self.task = self.progress.add_task("", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Advance the bar."""
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        """Show the newest metrics; print evaluations as their own lines."""
        if self.progress is None or not logs:
            return
        if "eval_step_accuracy" in logs or "step_accuracy" in logs:  # a process reward model
            if "eval_loss" in logs:
                self.progress.console.print(
                    f"step {state.global_step} eval: loss {logs['eval_loss']:.4f} step accuracy "
                    f"{logs['eval_step_accuracy']:.3f} AUROC {logs.get('eval_step_auroc', float('nan')):.3f}"
                )
            elif "loss" in logs:
                self.progress.update(
                    self.task, description=f"loss {logs['loss']:.4f} step acc {logs['step_accuracy']:.3f}"
                )
            return
        if "eval_loss" in logs:
            self.progress.console.print(
                f"step {state.global_step} eval: loss {logs['eval_loss']:.4f} "
                f"accuracy {logs.get('eval_accuracy', float('nan')):.3f} "
                f"margin {logs.get('eval_margin_mean', float('nan')):.4f}"
            )
        elif "loss" in logs:
            nan = float("nan")
            margin = logs.get("margin_mean", logs.get("margin", nan))  # TRL logs "margin"
            reward = logs.get("reward_mean", logs.get("mean_reward", nan))
            spread = f"±{logs['reward_std']:.3f}" if "reward_std" in logs else ""
            self.progress.update(
                self.task,
                description=f"loss {logs['loss']:.4f} acc {logs.get('accuracy', nan):.3f} "
                f"margin {margin:.4f} reward {reward:.3f}{spread}",
            )

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Stop the bar."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


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
