"""Length-debiased reward training (``--debias-length``), after ODIN (Chen et al. 2024, arXiv 2402.07319).

ODIN trains two rewards at once, one meant to carry length and one meant to carry quality, and
keeps only the quality reward at inference. Here the length reward is a learnt linear function of
the log response length, ``a * log(1 + characters)``, added to the quality reward during training
(the Bradley-Terry loss sees ``r_quality + r_length``), with no penalty on ``a``, and left out of
the saved reward. The pairs are also weighted so that those whose chosen response is the longer
and those whose chosen response is the shorter weigh the same (:meth:`LengthTerm.weights`): a
quality head can learn length through features that merely go with it (a closing pleasantry, a
list), which no function of the length alone absorbs, and the weighting takes away the reason to.

Measured on the demo data with a planted confound (600 pairs, 90 % chosen-longer, MiniLM, tested
on 400 balanced pairs): without the option 0.985 accuracy on chosen-longer pairs and 0.870 on
chosen-shorter ones; the length reward alone 0.965 / 0.900; with the weighting too 0.945 / 0.940
(overall 0.943, against 0.927 without). ODIN's penalty on the correlation of quality reward and
length made no difference on top of the weighting and was worse than the length reward alone
without it, so it is not used.

Full and LoRA fine-tuning (native engine) do the same by mini-batches: every training group
carries its responses' log lengths and a weight factor from the whole training set
(:func:`rewardlab.training.dataset.length_balanced`, with :func:`balance_factors`), the collators
fold the factors into the comparison weights and emit ``log_len``
(:mod:`rewardlab.training.batching`); the outcome recipe hands the balanced set, the coefficient
and the decorrelation weight to :class:`rewardlab.training.trainer.RewardTrainer` as one
:class:`LengthDebias`, and the trainer learns the coefficient (:data:`LENGTH_COEF_LR`), writes it
next to every checkpoint (:data:`LENGTH_COEF_FILE`) and reads it back on ``--resume``. When
fine-tuning, ODIN's decorrelation penalty is added too (``--length-corr-weight``, 0.1 by default:
:func:`length_correlation`). Not a command.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardlab.data.schema import Text, text_chars

#: The length reward, as the records describe it.
LENGTH_REWARD = "coef * log(1 + response characters), learnt in training, left out of the reward"


def log_lengths(responses: Sequence[Text]) -> torch.Tensor:
    """``log(1 + characters)`` of each response (message lists: their text's characters)."""
    return torch.tensor([math.log1p(text_chars(r)) for r in responses], dtype=torch.float32)


@dataclass
class LengthTerm:
    """The log lengths of the chosen and rejected responses of some pairs, and the learnt coefficient.

    Args:
        chosen: Log lengths of the chosen responses.
        rejected: Log lengths of the rejected responses (same size).
        coef: The length reward's coefficient (a scalar parameter shared by every subset).
    """

    chosen: torch.Tensor
    rejected: torch.Tensor
    coef: torch.Tensor

    def rewards(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The length rewards of the chosen and of the rejected responses."""
        return self.coef * self.chosen, self.coef * self.rejected

    def weights(self) -> torch.Tensor:
        """Pair weights (summing to 1) under which chosen-longer and chosen-shorter pairs weigh the same.

        Pairs of equal length keep the average weight; with no pair on one side all weigh the same.
        """
        w = balance_factors(self.chosen - self.rejected)
        return w / w.sum()


def balance_factors(diff: torch.Tensor) -> torch.Tensor:
    """Per-pair weight factors under which chosen-longer and chosen-shorter pairs weigh the same.

    Args:
        diff: Chosen minus rejected log length of each pair.

    Returns:
        ``(n_long + n_short) / (2 n_long)`` for each chosen-longer pair, ``… / (2 n_short)`` for each
        chosen-shorter one, 1 for pairs of equal length; all 1 when one side has no pair. The
        factors of the unequal pairs average to 1, so weighting by them keeps the loss's scale.
    """
    longer, shorter = diff > 0, diff < 0
    w = torch.ones_like(diff, dtype=torch.float32)
    n_long, n_short = int(longer.sum()), int(shorter.sum())
    if n_long and n_short:
        w[longer] = (n_long + n_short) / (2 * n_long)
        w[shorter] = (n_long + n_short) / (2 * n_short)
    return w


def new_length_term(chosen: torch.Tensor, rejected: torch.Tensor) -> LengthTerm:
    """A length term with a fresh coefficient (0, learnt)."""
    return LengthTerm(chosen, rejected, torch.zeros((), requires_grad=True))


#: Next to every checkpoint of a fine-tuned model trained with ``--debias-length``: the coefficient.
LENGTH_COEF_FILE = "length_coef.json"

#: Learning rate of the length coefficient when fine-tuning. Adam moves a parameter by about its
#: learning rate per step whatever the gradient's scale, and the coefficient is useful at values
#: of order 0.1 to 1 (reward per unit of log length): at the model's 1e-5 (full) it would move at
#: most 0.01 in 1000 steps, i.e. not at all. A fixed 1e-2 lets it reach 1 in about 100 steps while
#: a step's jitter (1e-2 × a log-length gap of about 1) stays far below the rewards' margins; a
#: multiple of the model's rate would make it 10x noisier under LoRA's 1e-4. It follows the same
#: schedule (warm-up, decay) as the model.
LENGTH_COEF_LR = 1e-2


@dataclass
class LengthDebias:
    """``--debias-length`` for fine-tuning, as the recipe prepares it and the trainer uses it.

    Args:
        dataset: The training set with its groups weighted by
            :func:`~rewardlab.training.dataset.length_balanced` (what the trainer trains on).
        coef: The length reward's coefficient (a scalar parameter, starting at 0 on the training
            device); the trainer learns it in place, so after training it holds the learnt value.
        corr_weight: The weight λ of ODIN's decorrelation penalty (``--length-corr-weight``; 0: off).
    """

    dataset: Any
    coef: torch.nn.Parameter
    corr_weight: float

    def record(self) -> dict[str, Any]:
        """The ``debias_length`` block of ``train_summary.json`` and ``rewardlab.json``."""
        return debias_record(float(self.coef.detach()), self.corr_weight or None)


def length_correlation(rewards: torch.Tensor, log_len: torch.Tensor, reduce: Any = None) -> torch.Tensor:
    """``|corr(rewards, log_len)|`` over a batch's responses: ODIN's penalty on the quality reward.

    ODIN (Chen et al. 2024, arXiv 2402.07319) trains with ``L_rank + λ_L L_L (+ λ_O L_O)``
    where ``L_L = |ρ(r_Q, L)| − ρ(r_L, L)`` and ρ is the Pearson correlation over the batch's
    responses. Our length reward is ``a · log_len``, so its correlation with ``log_len`` is ±1 and
    the second term has nothing to learn; this is the first, on ``log(1 + characters)`` (ODIN uses
    the token count). 0 when the batch has fewer than two responses or only one length.

    The correlation is computed from the batch's sums (count, Σr, Σl, Σr², Σl², Σrl), so that
    ``reduce`` (an autograd all-reduce under DDP) can add them over the processes: every process
    then penalises the correlation of the whole global batch, as one process with that batch does.

    Args:
        rewards: The model's (length-free) rewards, one per response.
        log_len: The responses' log lengths, in the same order.
        reduce: Sums the 6 statistics over processes (with gradients), or ``None``.
    """
    r = rewards.float()
    x = log_len.to(r)
    stats = torch.stack(
        [torch.ones_like(r).sum(), r.sum(), x.sum(), (r * r).sum(), (x * x).sum(), (r * x).sum()]
    )
    if reduce is not None:
        stats = reduce(stats)
    n, sr, sx, srr, sxx, srx = stats.unbind()
    var_x = sxx - sx * sx / n.clamp(min=1.0)
    if float(n) < 2 or float(var_x) <= 1e-12:
        return r.sum() * 0.0  # keeps the graph (and the device) of the rewards
    var_r = (srr - sr * sr / n).clamp(min=1e-12)
    return (srx - sr * sx / n).abs() / (var_r * var_x).sqrt()


def save_length_coef(folder: str | Path, coef: float) -> None:
    """Write the coefficient as ``folder/length_coef.json`` (what ``--resume`` reads back)."""
    record = {"length_coef": coef, "length_reward": LENGTH_REWARD}
    (Path(folder) / LENGTH_COEF_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def load_length_coef(folder: str | Path) -> float:
    """The coefficient saved in ``folder`` (0 when the checkpoint has none, e.g. a run without the option)."""
    path = Path(folder) / LENGTH_COEF_FILE
    if not path.is_file():
        return 0.0
    return float(json.loads(path.read_text(encoding="utf-8"))["length_coef"])


def debias_record(length_coef: float | list[float], corr_weight: float | None = None) -> dict[str, Any]:
    """What ``rewardlab.json`` and ``train_summary.json`` say of ``--debias-length``.

    Args:
        length_coef: The learnt coefficient (a list: one per head of an embedding ensemble).
        corr_weight: Fine-tuning only: the weight λ of ODIN's decorrelation penalty used.
    """
    record: dict[str, Any] = {
        "method": "length-reward-and-balanced-pairs",
        "length_reward": LENGTH_REWARD,
        "pair_weights": "chosen-longer and chosen-shorter pairs weigh the same",
        "length_coef": length_coef,
    }
    if corr_weight is not None:
        record["method"] += "-and-decorrelation"
        record["decorrelation"] = (
            f"{corr_weight} * |corr(reward, log length)| over each batch's responses (ODIN)"
        )
    return record
