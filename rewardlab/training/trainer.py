"""The reward trainer: a Hugging Face ``Trainer`` subclass, plus progress, logging and health checks.

Why a subclass of ``transformers.Trainer`` and not TRL's ``RewardTrainer``: the Trainer gives
``accelerate launch`` (DDP, DeepSpeed, FSDP), gradient accumulation and checkpointing, mixed
precision and exact resume; what TRL adds on top is what we must do differently — it drops
over-long pairs instead of cutting them, reads the reward with the model's pad-based pooling
(wrong when pad == EOS), has no ranked-list loss, and tokenizes prompt and response as one text,
which prefix-shared and packed batches cannot use. ``--engine trl`` still runs TRL's stock
trainer for comparison.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from rewardlab.metrics import preference_metrics
from rewardlab.models.reward_model import forward_rewards
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
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_lengths = group_lengths
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
        rewards = forward_rewards(model, inputs)
        comps = Comparisons(inputs["better"], inputs["worse"], inputs["margin"], inputs["weight"])
        loss = comparison_loss(rewards, comps, **self.loss_opts)
        return loss, rewards, (rewards[comps.better] - rewards[comps.worse]).detach()

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
        deltas: list[float] = []
        rewards: list[float] = []
        losses: list[tuple[float, int]] = []
        for inputs in loader:
            inputs = self._prepare_inputs(inputs)
            loss, r, d = self._loss(model, inputs)
            losses.append((loss.item(), int(inputs["n_groups"])))
            deltas.extend(d.tolist())
            rewards.extend(r.tolist())
        if was_training:
            model.train()
        if self.accelerator.num_processes > 1:
            deltas, rewards, losses = gather_object(deltas), gather_object(rewards), gather_object(losses)
        n = sum(k for _, k in losses) or 1
        metrics = {"loss": sum(v * k for v, k in losses) / n, **preference_metrics(deltas, rewards)}
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


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


class HealthCallback(TrainerCallback):
    """Warns, once each, when the margin stops growing or the rewards collapse to a narrow range.

    The margin series is the held-out margin when the run evaluates, else the training margin;
    "stopped growing" compares the mean of the newest :data:`PLATEAU_LOGS` values with the mean
    of the ones before (single logs are too noisy to compare).
    """

    def __init__(self, warn: Any) -> None:
        self.warn = warn
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
                f"{logs['reward_std']:.2e}): try a lower learning rate and check the gradients"
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
