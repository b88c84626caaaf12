"""Stop a training run whose loss or weights stop being finite, before any model is written.

A NaN margin or score in the data, or a learning rate far too high, turns the loss and then every
weight into NaN or infinity; a run that went on would save a model whose every reward is NaN. Each
check here raises :class:`NonFiniteError` (a one-line :class:`~rewardlab.errors.RewardlabError`
naming the step, the value and the likely cause):

* :class:`FiniteLossMixin`: every training step of a ``transformers.Trainer`` subclass (outcome and
  process models), so no checkpoint is written after the step that went wrong;
* :class:`FiniteLogCallback`: every logged loss and gradient norm (the TRL engine's steps too);
* :func:`check_weights`: the model's weights before they are saved;
* :func:`check_values`: the numbers stored in ``rewardlab.json`` (the reward mean and std).

Checkpoints written before the step that went wrong stay, so a run can resume from one of them with
a lower learning rate or cleaned data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from transformers import TrainerCallback

from rewardlab.errors import RewardlabError

LIKELY_CAUSE = "likely cause: a non-finite margin/score in the data, or a learning rate too high"


class NonFiniteError(RewardlabError):
    """Training produced a NaN or infinite loss, weight or stored value; nothing was saved."""


def non_finite(what: str, where: str, value: Any) -> NonFiniteError:
    """The one-line error: where (e.g. ``step 12``), what went non-finite and its value, the likely cause."""
    return NonFiniteError(
        f"{where}: {what} is {value} ({LIKELY_CAUSE}); training stopped and no model was written"
    )


def is_finite(value: Any) -> bool:
    """True for a finite number or a tensor whose every element is finite."""
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    return math.isfinite(value)


class FiniteLossMixin:
    """For ``transformers.Trainer`` subclasses: each training step's loss must be finite.

    Put it before ``Trainer`` in the bases. On a non-finite loss the callbacks' ``on_train_end``
    runs (the progress bar stops) and :class:`NonFiniteError` is raised before the optimizer step,
    so neither the weights of that step nor a checkpoint of them is written.
    """

    def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The Trainer's step, then the check."""
        loss = super().training_step(*args, **kwargs)  # type: ignore[misc]
        if not is_finite(loss):
            self.callback_handler.on_train_end(self.args, self.state, self.control)  # type: ignore[attr-defined]
            step = self.state.global_step + 1  # type: ignore[attr-defined]
            raise non_finite("the training loss", f"step {step}", float(loss.float().mean()))
        return loss


class FiniteLogCallback(TrainerCallback):
    """Stops the run when a logged loss or gradient norm is not finite.

    The TrainingArguments must set ``logging_nan_inf_filter=False``, else the Trainer leaves
    non-finite steps out of the logged loss.

    Args:
        before_raise: Called before the error is raised (e.g. to stop a progress bar).
    """

    KEYS = ("loss", "grad_norm", "eval_loss")

    def __init__(self, before_raise: Callable[[], None] | None = None) -> None:
        self.before_raise = before_raise

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        """Check the newest log."""
        for key in self.KEYS:
            value = (logs or {}).get(key)
            if isinstance(value, int | float) and not math.isfinite(value):
                if self.before_raise is not None:
                    self.before_raise()
                raise non_finite(f"the logged {key}", f"step {state.global_step}", value)


def check_weights(model: Any, where: str) -> None:
    """Raise :class:`NonFiniteError` if any floating-point parameter or buffer of ``model`` is not finite."""
    tensors: Iterable[tuple[str, torch.Tensor]] = [*model.named_parameters(), *model.named_buffers()]
    bad = [n for n, t in tensors if t.is_floating_point() and t.numel() and not is_finite(t.detach())]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise non_finite(f"the weights ({shown})", where, "not finite")


def check_values(record: Mapping[str, Any], what: str, where: str) -> None:
    """Raise :class:`NonFiniteError` if a number in ``record`` (e.g. the normalisation) is not finite."""
    for key, value in record.items():
        if isinstance(value, int | float) and not isinstance(value, bool) and not math.isfinite(value):
            raise non_finite(f"{what} {key}", where, value)
