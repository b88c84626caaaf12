"""``rewardlab eval``, ``diagnose``, ``rlcheck`` and ``harden``: judging (and repairing) a reward model.

Options are :class:`rewardlab.evaluation.config.EvalConfig`,
:class:`rewardlab.diagnostics.config.DiagnoseConfig`,
:class:`rewardlab.diagnostics.rlcheck.config.RLCheckConfig` and
:class:`rewardlab.diagnostics.harden.config.HardenConfig`; each command hands its config on.
"""

from __future__ import annotations

from rewardlab.cli.common import config_command
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.diagnostics.harden.config import HardenConfig
from rewardlab.diagnostics.rlcheck.config import RLCheckConfig
from rewardlab.evaluation.config import EvalConfig


def _eval(cfg: EvalConfig) -> None:
    from rewardlab import distributed
    from rewardlab.evaluation.compare import RegressionFound
    from rewardlab.evaluation.evaluate import evaluate

    regression = None
    with distributed.session(cfg.device):  # several processes under torchrun: each scores a slice
        try:
            evaluate(cfg)
        except RegressionFound as exc:  # the outputs are written: close the group cleanly, then fail
            regression = exc
    if regression is not None:
        raise regression


def _diagnose(cfg: DiagnoseConfig) -> None:
    from rewardlab.diagnostics.diagnose import diagnose

    diagnose(cfg)


def _rlcheck(cfg: RLCheckConfig) -> None:
    from rewardlab.diagnostics.rlcheck.run import rlcheck

    rlcheck(cfg)


def _harden(cfg: HardenConfig) -> None:
    from rewardlab.diagnostics.harden.run import harden

    harden(cfg)


eval_command = config_command(
    EvalConfig,
    _eval,
    "Evaluate reward models on held-out preference data: agreement, margins, calibration, "
    "length bias; writes metrics.json, scores.jsonl, report.md, report.html and plots.",
    usage_errors=False,
)
diagnose_command = config_command(
    DiagnoseConfig,
    _diagnose,
    "Find a reward model's exploitable weaknesses: perturbation probes, length exploitation, "
    "ensemble disagreement, best-of-N over-optimisation against a gold reward; ranked findings "
    "with mitigations in diagnostics.json/.md/.html.",
    usage_errors=False,
)
rlcheck_command = config_command(
    RLCheckConfig,
    _rlcheck,
    "Reward hacking in a real RL loop: short seeded GRPO runs of a policy (LoRA) against the reward "
    "model, unguarded and with each guard (KL, min/uwo ensemble, length correction, normalise+clip) "
    "and against the gold; proxy and gold against sqrt KL in rlcheck.json/.md/.html.",
    usage_errors=False,
)
harden_command = config_command(
    HardenConfig,
    _harden,
    "Repair a reward model that RL hacks: rlcheck it, retrain it on its original data plus the exploit "
    "pairs the check found (weight chosen on validation), check it again on the same prompts and seeds; "
    "--rounds N iterates; before/after in harden.json/.md.",
    usage_errors=False,
)
