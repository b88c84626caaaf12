"""The recipes of ``rewardlab train``, one per method, and :func:`recipe_class`, which picks one.

Each is a :class:`~rewardlab.training.recipe.Recipe` (the one skeleton every method runs); none
inherits from another, they share functions:

========================================  ===================  ==========================================
recipe                                    method               module
========================================  ===================  ==========================================
:class:`~.outcome.OutcomeRecipe`          default              ``recipes/outcome.py`` (native engine)
:class:`~.trl.TrlRecipe`                  ``--engine trl``     ``recipes/trl.py``
:class:`~.embedding.EmbeddingRecipe`      ``--method embedding``  ``recipes/embedding.py``
:class:`~.process.ProcessRecipe`          ``--kind prm``       ``recipes/process.py``
========================================  ===================  ==========================================

The shared steps: :mod:`~.preference_steps` (the preference data: outcome, TRL, embedding) and
:mod:`~.outcome_steps` (the fine-tuned outcome model: loading, head init, saving; outcome and TRL).
Not a command: ``rewardlab.training.run.train(cfg)`` runs the recipe of a config.
"""

from __future__ import annotations

from typing import Any


def recipe_class(cfg: Any) -> type:
    """The recipe class of ``cfg``: ``--kind prm``, else ``--method embedding``, else the engine's."""
    if cfg.kind == "prm":
        from rewardlab.training.recipes.process import ProcessRecipe

        return ProcessRecipe
    if cfg.method == "embedding":
        from rewardlab.training.recipes.embedding import EmbeddingRecipe

        return EmbeddingRecipe
    if cfg.engine == "trl":
        from rewardlab.training.recipes.trl import TrlRecipe

        return TrlRecipe
    from rewardlab.training.recipes.outcome import OutcomeRecipe

    return OutcomeRecipe
