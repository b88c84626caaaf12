"""``rewardlab train``: pick the recipe of a config and run it.

:func:`train` is the entry point (the CLI, the bench, the demo and the tests call it): it chooses
the recipe (:func:`recipe_for`) and runs it with :func:`~rewardlab.training.recipe.run_recipe`,
the one skeleton every method shares (check OUT, seed, load the data and the model, open OUT,
train, save, close the process group). The recipes: outcome models
(:class:`~rewardlab.training.outcome.OutcomeRecipe`; with ``--engine trl``
:class:`~rewardlab.training.trl_engine.TrlRecipe`), embedding heads (``--method embedding``,
:class:`~rewardlab.training.embedding_train.EmbeddingRecipe`) and process reward models
(``--kind prm``, :class:`~rewardlab.training.prm_recipe.ProcessRecipe`).

Run: ``rewardlab train --model tiny-llama --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out runs/hh --max-steps 100``; several processes: ``torchrun --nproc_per_node 2 -m rewardlab train …``
or ``accelerate launch -m rewardlab train …``.
"""

from __future__ import annotations

from rewardlab.training.config import TrainConfig
from rewardlab.training.recipe import Recipe, TrainResult, close_process_group, run_recipe

__all__ = ["TrainResult", "close_process_group", "recipe_for", "train"]


def recipe_for(cfg: TrainConfig) -> Recipe:
    """The recipe of ``cfg``: ``--kind prm``, else ``--method embedding``, else the outcome engine's."""
    if cfg.kind == "prm":
        from rewardlab.training.prm_recipe import ProcessRecipe

        return ProcessRecipe(cfg)
    if cfg.method == "embedding":
        from rewardlab.training.embedding_train import EmbeddingRecipe

        return EmbeddingRecipe(cfg)
    if cfg.engine == "trl":
        from rewardlab.training.trl_engine import TrlRecipe

        return TrlRecipe(cfg)
    from rewardlab.training.outcome import OutcomeRecipe

    return OutcomeRecipe(cfg)


def train(cfg: TrainConfig) -> TrainResult:
    """Run a training job (see the module doc) and return where its outputs are."""
    return run_recipe(recipe_for(cfg))
