"""``rewardlab serve``, ``rewardlab score`` and ``rewardlab bon``: a reward model at work.

Options are the dataclasses of :mod:`rewardlab.serving.config`. ``score`` and ``bon`` share one
runner (:func:`_score_file`): load the reward on each process of a launch, score its slice of the
file, and print one line on the main process.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rewardlab.cli.common import config_command, console
from rewardlab.serving.config import BonConfig, ScoreConfig, ServeConfig
from rewardlab.serving.server import serve


def _score_rows(rm: Any, cfg: ScoreConfig) -> str:
    """Score every record of ``--data``; the line to print."""
    from rewardlab.serving.file_scoring import score_file

    n = score_file(rm, cfg.data, cfg.out, cfg.normalize, cfg.batch_size, cfg.layout)
    return f"scored {n} responses; wrote {cfg.out}"


def _best_of_n(rm: Any, cfg: BonConfig) -> str:
    """Pick the best candidate of each prompt of ``--candidates``; the line to print."""
    from rewardlab.serving.file_scoring import best_of_n

    rows = best_of_n(rm, cfg.candidates, cfg.out, cfg.normalize, cfg.batch_size, cfg.layout)
    return (
        f"chose the best of {sum(r['n'] for r in rows)} candidates for {len(rows)} prompts; wrote {cfg.out}"
    )


def _score_file(
    cfg: ScoreConfig | BonConfig, work: Callable[[Any, Any], str], soft_wrap: bool = False
) -> None:
    """Load ``--model`` on each process of a launch, run ``work`` on its slice, print on the main one."""
    from rewardlab import distributed
    from rewardlab.models.loading import load_reward

    with distributed.session(cfg.device) as place:
        here = distributed.rank_device(cfg.device)
        rm = load_reward(cfg.model, device=here, dtype=cfg.dtype, attn_implementation=cfg.attn_implementation)
        line = work(rm, cfg)
    if place.main:
        console.print(line, soft_wrap=soft_wrap)


serve_command = config_command(
    ServeConfig,
    serve,
    "Serve reward models over HTTP: POST /score, POST /get_reward (OpenRLHF), POST /classify and "
    "/pooling (vLLM), POST /predict (TEI), POST /v1/score/evaluation (LLaMA-Factory), GET /v1/models, "
    "GET /health, GET /info.",
    usage_errors=False,
)
score_command = config_command(
    ScoreConfig,
    partial(_score_file, work=_score_rows, soft_wrap=True),
    "Score every (prompt, response) record of a file (split over the processes of a launch).",
)
bon_command = config_command(
    BonConfig,
    partial(_score_file, work=_best_of_n),
    "Best-of-N: pick the highest-reward candidate per prompt (split over the processes of a launch).",
)
