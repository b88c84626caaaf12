"""The one skeleton every ``rewardlab train`` method runs: the :class:`Recipe` steps, the :class:`Reporter`.

In the spirit of torchtune's recipes, a trainer is a :class:`Recipe` subclass that keeps its state
on ``self`` and fills in four steps: :meth:`~Recipe.load_data`, :meth:`~Recipe.load_model`,
:meth:`~Recipe.train` and :meth:`~Recipe.save` (plus :meth:`~Recipe.write_data_summary`).
:func:`run_recipe` runs them in the one order every method shares:

1. refuse a bad OUT (:func:`~rewardlab.training.outdir.check_out`) before anything loads;
2. silence transformers' logs and seed every generator;
3. ``load_data()``, then ``load_model()`` (nothing is written into OUT until both succeed);
4. open OUT (:func:`~rewardlab.training.outdir.open_out`) and write the data summary, before
   ``train()`` when the method writes checkpoints while training (outcome and process models),
   after it when it writes nothing until its result is checked (embedding heads,
   ``opens_out_before_train = False``);
5. ``save()``, which returns the :class:`TrainResult`;
6. close the process group (a multi-process launch), after a barrier when the run succeeded.

A recipe also declares the config parts it reads (:attr:`Recipe.parts`, from
:mod:`rewardlab.training.options`) and checks them, with its own rules, when the config is built
(:meth:`Recipe.check_config`). A step that concerns every method (a new check, a new file in OUT)
goes into :func:`run_recipe`; an option of one method goes into its config part and that method's
recipe (:mod:`rewardlab.training.recipes`: ``outcome``, ``trl``, ``embedding``, ``process``). The
recipes share functions, not base classes (:mod:`~rewardlab.training.recipes.preference_steps`),
and print and warn through a :class:`Reporter`, which collects the warnings for
``train_summary.json``.

Not a command: ``rewardlab.training.run.train(cfg)`` picks the recipe of a config and runs it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from rewardlab.distributed import close_process_group, launch

console = Console()


def is_main_process() -> bool:
    """True on the process that writes files and prints (rank 0 of the launch, or a single process).

    Read from the launcher's ``RANK`` (:func:`rewardlab.distributed.launch`), since a training
    process asks before accelerate opens the process group.
    """
    return launch().main


@dataclass
class TrainResult:
    """What a finished run produced."""

    out: Path
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Reporter:
    """Prints a run's messages on the main process and collects its warnings (every process)."""

    def __init__(self) -> None:
        #: Every warning of the run, in order (written into ``train_summary.json``).
        self.warnings: list[str] = []
        #: Seconds of each phase after training (:meth:`phase`), written into ``train_summary.json``.
        self.phase_seconds: dict[str, float] = {}

    def warn(self, msg: str) -> None:
        """Record a warning; the main process prints it in yellow."""
        self.warnings.append(msg)
        if is_main_process():
            console.print(f"[yellow]warning:[/] {msg}", soft_wrap=True)

    def say(self, msg: str) -> None:
        """Print a message on the main process."""
        if is_main_process():
            console.print(msg, soft_wrap=True, highlight=False)

    @contextmanager
    def phase(self, name: str, detail: str = "") -> Iterator[None]:
        """Say when a phase of the run starts and how long it took (recorded in :attr:`phase_seconds`).

        Every phase after training that can take minutes on a large model (held-out evaluation,
        saving and merging, the reward normalisation) goes through here, so a run never waits
        silently.
        """
        self.say(f"phase: {name}" + (f" ({detail})" if detail else "") + " ...")
        start = time.monotonic()
        yield
        took = time.monotonic() - start
        self.phase_seconds[name] = round(took, 3)
        self.say(f"phase: {name} done in {took:.1f} s")


class Recipe:
    """A training method: its steps, run in order by :func:`run_recipe`; its state lives on ``self``.

    Args:
        cfg: The run's :class:`~rewardlab.training.config.TrainConfig`.
        reporter: Where messages and warnings go (a new :class:`Reporter` when not given).
    """

    #: Open OUT before :meth:`train` (the method writes checkpoints while it trains); ``False``:
    #: after it (nothing is written into OUT until the trained result is checked).
    opens_out_before_train: bool = True
    #: The config parts (:mod:`rewardlab.training.options`) this method reads; :meth:`check_config`
    #: runs their checks when the config is built.
    parts: tuple[type, ...] = ()

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """Check ``cfg`` for this method: its parts' checks (a recipe adds its own rules after them).

        Raises:
            ValueError: an option this method reads is bad, or one it cannot honour is given.
        """
        from rewardlab.training.options import check_parts

        check_parts(cfg, cls.parts)

    def __init__(self, cfg: Any, reporter: Reporter | None = None) -> None:
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.reporter = reporter or Reporter()

    @property
    def writer(self) -> bool:
        """Whether this process opens OUT and writes the data summary (the main process)."""
        return is_main_process()

    def load_data(self) -> None:
        """Read and split the data, summarise it; nothing is written."""
        raise NotImplementedError

    def load_model(self) -> None:
        """Load the model, encode the data, choose the batches; nothing is written."""
        raise NotImplementedError

    def write_data_summary(self) -> None:
        """Write the data summary into the freshly opened OUT (on the writing process)."""

    def train(self) -> None:
        """Train (checkpoints go into OUT when it is already open)."""
        raise NotImplementedError

    def save(self) -> TrainResult:
        """Save the model and write the summary, ``rewardlab.json`` and ``INTEGRATION.md``."""
        raise NotImplementedError

    def result(self, summary: dict[str, Any]) -> TrainResult:
        """The run's :class:`TrainResult` with ``summary`` (empty on processes that write nothing)."""
        return TrainResult(self.out, summary, self.reporter.warnings)


def run_recipe(recipe: Recipe) -> TrainResult:
    """Run ``recipe``'s steps in the shared order (see the module doc) and return its result.

    Under a multi-process launch every rank waits here for the main one to finish writing, then
    closes the process group: a rank that exits with its gloo/NCCL group still open can abort
    ("terminate called without an active exception") and fail the whole launch.
    """
    ok = False
    try:
        result = _steps(recipe)
        ok = True
        return result
    finally:
        compiling = sys.modules.get("rewardlab.training.regional_compile")
        if compiling is not None:  # an auto compile's error setting lasts until the run ends
            compiling.restore_compile_errors()
        close_process_group(sync=ok)


def _steps(recipe: Recipe) -> TrainResult:
    from rewardlab.runtime import quiet_transformers
    from rewardlab.training.outdir import check_out

    check_out(recipe.cfg)  # refused before anything loads; nothing is written into OUT before open_out
    quiet_transformers()
    from transformers import set_seed

    set_seed(recipe.cfg.seed)
    recipe.load_data()
    recipe.load_model()
    if recipe.opens_out_before_train:
        _open_out(recipe)
    recipe.train()
    if not recipe.opens_out_before_train:
        _open_out(recipe)
    return recipe.save()


def _open_out(recipe: Recipe) -> None:
    """Open OUT (the data and the model loaded: now it is written) and write the data summary."""
    from rewardlab.training.outdir import open_out

    writer = recipe.writer
    open_out(recipe.cfg, writer)
    if writer:
        recipe.write_data_summary()
