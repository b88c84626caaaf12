"""``rewardlab train``: pick the recipe of a config and run it.

:func:`train` is the entry point (the CLI, the bench, the demo and the tests call it): it builds the
recipe of the config (:func:`recipe_for`, by :func:`rewardlab.training.recipes.recipe_class`) and
runs it with :func:`~rewardlab.training.recipe.run_recipe`, the one skeleton every method shares
(check OUT, seed, load the data and the model, open OUT, train, save, close the process group).
The recipes (:mod:`rewardlab.training.recipes`): outcome models
(:class:`~rewardlab.training.recipes.outcome.OutcomeRecipe`; with ``--engine trl``
:class:`~rewardlab.training.recipes.trl.TrlRecipe`), embedding heads (``--method embedding``,
:class:`~rewardlab.training.recipes.embedding.EmbeddingRecipe`) and process reward models
(``--kind prm``, :class:`~rewardlab.training.recipes.process.ProcessRecipe`).

Run: ``rewardlab train --model tiny-llama --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out runs/hh --max-steps 100``; several processes: ``torchrun --nproc_per_node 2 -m rewardlab train …``
or ``accelerate launch -m rewardlab train …``.
"""

from __future__ import annotations

from rewardlab.training.config import TrainConfig
from rewardlab.training.recipe import Recipe, TrainResult, close_process_group, run_recipe
from rewardlab.training.recipes import recipe_class

__all__ = ["TrainResult", "close_process_group", "recipe_for", "train"]


def recipe_for(cfg: TrainConfig) -> Recipe:
    """The recipe of ``cfg``: ``--kind prm``, else ``--method embedding``, else the outcome engine's."""
    return recipe_class(cfg)(cfg)


def train(cfg: TrainConfig) -> TrainResult:
    """Run a training job (see the module doc) and return where its outputs are."""
    return run_recipe(recipe_for(cfg))
