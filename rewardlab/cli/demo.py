"""``rewardlab demo``: the main job on defaults (options: :class:`rewardlab.demo.DemoConfig`)."""

from __future__ import annotations

from rewardlab.cli.common import config_command
from rewardlab.demo import DemoConfig


def _demo(cfg: DemoConfig) -> None:
    from rewardlab.demo import run_demo

    run_demo(cfg.out, n=cfg.n, seed=cfg.seed, ensemble=cfg.ensemble)


demo_command = config_command(
    DemoConfig,
    _demo,
    "The main job on defaults: demo data, data summary, embedding reward model, held-out metrics.",
)
