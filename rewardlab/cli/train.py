"""``rewardlab train``, ``merge``, ``advise`` and ``export``: making a reward model and handing it on.

Options are :class:`rewardlab.training.config.TrainConfig`,
:class:`rewardlab.training.merge_config.MergeConfig`,
:class:`rewardlab.training.advise.AdviseConfig` and :class:`rewardlab.models.export_config.ExportConfig`;
each command hands its config to the training (or models) package.
"""

from __future__ import annotations

from rich.markup import escape

from rewardlab.cli.common import config_command, console
from rewardlab.config import typer_command
from rewardlab.io_utils import check_out_folder
from rewardlab.models.export_config import ExportConfig
from rewardlab.training.advise import AdviseConfig
from rewardlab.training.config import TrainConfig
from rewardlab.training.merge_config import MergeConfig


def _train(cfg: TrainConfig) -> None:
    from rewardlab.training.run import train

    check_out_folder(cfg.out)
    train(cfg)


def _merge(cfg: MergeConfig) -> None:
    from rewardlab.training.warm_merge import merge

    console.print(
        f"averaging {len(cfg.model)} models into {cfg.out}, then measuring its reward normalisation ...",
        soft_wrap=True,
    )
    result = merge(cfg.model, cfg.out, cfg.weight_values, cfg.overwrite, cfg.norm_data)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    shown = ", ".join(f"{w:.4g}" for w in result.weights)
    console.print(
        f"merged {len(result.weights)} models (weights {shown}) into {cfg.out} in {result.seconds:.1f} s; "
        f"{result.bytes / 2**20:.1f} MiB",
        soft_wrap=True,
    )


def _advise(cfg: AdviseConfig) -> None:
    from rewardlab.training.advise import advise

    advise(cfg.data, cfg.out, cfg.on_error, cfg.hardware, cfg.gpu_memory_gb)


def _export(cfg: ExportConfig) -> None:
    from rewardlab.models.export import export_checkpoint

    result = export_checkpoint(cfg.model, cfg.out, cfg.dtype, cfg.overwrite)
    for change in result.changes:
        console.print(f"  {escape(change)}", soft_wrap=True, highlight=False)
    how = "LoRA merged" if result.kind == "lora" else "full"
    console.print(
        f"exported {cfg.model} ({how}, {result.arch}) to {cfg.out} in {result.dtype} "
        f"in {result.seconds:.1f} s",
        soft_wrap=True,
    )
    if cfg.check is not None:
        from rewardlab.models.export_check import check_export

        console.print(
            check_export(cfg.out, cfg.check, source=cfg.model).line(), soft_wrap=True, highlight=False
        )


train_command = typer_command(
    TrainConfig,
    _train,
    "Train an outcome reward model (Bradley-Terry) on any local Hugging Face model.\n\n"
    "Options can also come from a YAML file (--config); flags given here override it.",
)
merge_command = config_command(
    MergeConfig,
    _merge,
    "WARM: average the weights of reward models fine-tuned from one base model into one model.",
)
advise_command = config_command(
    AdviseConfig,
    _advise,
    "Recommend an outcome (ORM) or process (PRM) reward model for this data, with reasons.",
)
export_command = config_command(
    ExportConfig,
    _export,
    "Export a checkpoint as a folder that plain transformers (4.x and 5.x), vLLM, SGLang and TEI score "
    "as rewardlab does: LoRA merged, the END token added by the tokenizer, its truncation, a model card.",
)
