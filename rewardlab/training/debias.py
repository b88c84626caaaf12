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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rewardlab.data.schema import Text, text_chars


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
        diff = self.chosen - self.rejected
        longer, shorter = diff > 0, diff < 0
        w = torch.ones_like(diff)
        n_long, n_short = int(longer.sum()), int(shorter.sum())
        if n_long and n_short:
            w[longer] = (n_long + n_short) / (2 * n_long)
            w[shorter] = (n_long + n_short) / (2 * n_short)
        return w / w.sum()


def new_length_term(chosen: torch.Tensor, rejected: torch.Tensor) -> LengthTerm:
    """A length term with a fresh coefficient (0, learnt)."""
    return LengthTerm(chosen, rejected, torch.zeros((), requires_grad=True))
