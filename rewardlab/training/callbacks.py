"""The Hugging Face Trainer callbacks of ``rewardlab train``: progress, logs, health, the length coefficient.

:func:`run_callbacks` gives the callbacks every fine-tuning recipe (outcome, TRL, process) hands to
its Trainer: :class:`JsonlLogCallback` (``train_log.jsonl``), :class:`HealthCallback` (the warnings
when the margin stops growing or the rewards collapse), :class:`RichProgressCallback` (the progress
bar), the config saved next to every checkpoint, and
:class:`~rewardlab.training.finite.FiniteLogCallback` (stops a run whose logged loss is not finite;
it lives with the other finite checks). :class:`SyncLengthCoefCallback` keeps the
``--debias-length`` coefficient's gradient right under DDP
(:class:`~rewardlab.training.trainer.RewardTrainer` adds it). :class:`CpuThreadsCallback` keeps a
CPU run's thread count at the cores other processes leave free (the native engine adds it). Not a
command.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from rewardlab.training.recipe import Reporter
from rewardlab.training.run_records import CONFIG_FILE, TRAIN_LOG

#: Margin "stopped growing": the mean of this many newest training logs is not above the previous ones.
PLATEAU_LOGS = 5
#: Rewards "collapsed": their std fell below this.
COLLAPSE_STD = 1e-3


class SyncLengthCoefCallback(TrainerCallback):
    """The length coefficient's gradient: averaged over the processes, then cleared, at every step.

    The coefficient lives outside the (DDP-wrapped) model: DDP does not average its gradient
    (averaging it keeps every process's copy the same) and the Trainer's ``model.zero_grad()``
    does not clear it (else it would add up over the steps).
    """

    def __init__(self, trainer: Any) -> None:
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
        self.eval_bar: Any = None
        self.eval_task: Any = None

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

    def on_prediction_step(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """A held-out evaluation's own bar: a task in the training bar, or a bar of its own after training."""
        if not state.is_world_process_zero:
            return
        if getattr(self, "eval_task", None) is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            loader = kw.get("eval_dataloader")
            total = len(loader) if loader is not None and hasattr(loader, "__len__") else None
            if self.progress is None:  # the final evaluation, after the training bar stopped
                self.eval_bar = Progress(
                    TextColumn("[bold]held-out"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                )  # fmt: skip
                self.eval_bar.start()
                self.eval_task = self.eval_bar.add_task("", total=total)
            else:
                self.eval_bar = None
                self.eval_task = self.progress.add_task("held-out evaluation", total=total)
        (self.eval_bar or self.progress).advance(self.eval_task)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Close the evaluation's bar."""
        if getattr(self, "eval_task", None) is None:
            return
        if self.eval_bar is not None:
            self.eval_bar.stop()
        elif self.progress is not None:
            self.progress.remove_task(self.eval_task)
        self.eval_bar = self.eval_task = None


class CpuThreadsCallback(TrainerCallback):
    """On the CPU, torch's thread count by :class:`rewardlab.runtime.CpuThreads`, re-read every step.

    ``record`` (set when training starts on the CPU) is what ``train_summary.json`` keeps.
    """

    def __init__(self, say: Any) -> None:
        from rewardlab.runtime import CpuThreads

        self.say = say
        self.threads = CpuThreads()
        self.started = False

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Choose the first count (a CPU run only)."""
        if args.device.type == "cpu":
            self.say(f"CPU threads: {self.threads.start().reason}")
            self.started = True

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        """Follow the load of the step that ended."""
        if self.started:
            self.threads.update()

    @property
    def record(self) -> dict[str, Any] | None:
        """Cores, the first choice and why, every count used; ``None`` off the CPU."""
        return self.threads.to_dict() if self.started else None


def run_callbacks(cfg: Any, reporter: Reporter) -> list[Any]:
    """Progress bar, JSONL log, health warnings, the config saved next to every checkpoint, ``--compile``."""
    from rewardlab.config import save_yaml
    from rewardlab.training.finite import FiniteLogCallback
    from rewardlab.training.regional_compile import RegionalCompileCallback

    class SaveConfig(TrainerCallback):
        """Writes the resolved config next to every checkpoint."""

        def on_save(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                save_yaml(cfg, Path(a.output_dir) / f"checkpoint-{state.global_step}" / CONFIG_FILE)

    bar = RichProgressCallback()
    stop_bar = lambda: bar.on_train_end(None, None, None)  # noqa: E731
    mode = getattr(cfg, "compile", False)  # None: decided when training begins (auto)
    what = {"engine": getattr(cfg, "engine", "native"), "kind": getattr(cfg, "kind", "orm")}
    compiling = [] if mode is False else [RegionalCompileCallback(reporter.say, mode, **what)]
    return [
        *compiling,
        JsonlLogCallback(Path(cfg.out) / TRAIN_LOG),
        HealthCallback(reporter.warn, ZERO_HEAD_ADVICE if cfg.head_init == "zero" else COLLAPSE_ADVICE),
        bar,
        SaveConfig(),
        FiniteLogCallback(stop_bar),
    ]


def compile_record(callbacks: list[Any]) -> dict[str, Any] | None:
    """What ``--compile`` did in a run of these callbacks (compiled or not, why, its cost); None if off."""
    from rewardlab.training.regional_compile import RegionalCompileCallback

    return next((c.record for c in callbacks if isinstance(c, RegionalCompileCallback)), None)
