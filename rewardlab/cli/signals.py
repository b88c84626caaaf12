"""``rewardlab signals fit``: the ``feature_distance`` signal's statistics for an older checkpoint.

Options are :class:`rewardlab.models.signals_fit.SignalsFitConfig`; the fit is
:func:`rewardlab.models.signals_fit.fit_checkpoint`. Run ``rewardlab signals fit --help``.
"""

from __future__ import annotations

import typer

from rewardlab.cli.common import config_command, console
from rewardlab.models.signals_fit import SignalsFitConfig

signals_app = typer.Typer(
    help="Per-sample reward-hacking signals (length, refusal, spread, feature distance).",
    no_args_is_help=True,
)


def _fit(cfg: SignalsFitConfig) -> None:
    from rewardlab.models.signals_fit import fit_checkpoint

    record = fit_checkpoint(cfg)
    console.print(
        f"stored feature statistics in {cfg.model}/{record['file']}: {record['samples']} responses of "
        f"{record['dim']} features ({record['features']}), rank {record['rank']}, shrinkage "
        f"{record['shrinkage']:.3g}; rewardlab.json records them as feature_stats",
        soft_wrap=True,
        highlight=False,
    )


signals_app.command("fit")(
    config_command(
        SignalsFitConfig,
        _fit,
        "Store the training features' statistics (the feature_distance signal) in a checkpoint saved "
        "without them, from preference data (its training data).",
    )
)
