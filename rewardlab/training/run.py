"""``rewardlab train``: train an outcome reward model on any local Hugging Face model.

What it does, in order: load and split the data (by prompt), summarise it, load the model with a
one-output head and a safe pad token, encode every pair and list (cutting, never dropping, long
sequences; counting every exclusion), train with the Hugging Face Trainer (progress bar, JSONL
log, periodic evaluation and checkpoints, health warnings), then write a checkpoint that plain
``transformers`` loads, with ``rewardlab.json`` describing it.

Run: ``rewardlab train --model tiny-llama --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out runs/hh --max-steps 100``; several processes: ``torchrun --nproc_per_node 2 -m rewardlab train …``
or ``accelerate launch -m rewardlab train …``.

:func:`train` dispatches to the process (:mod:`~rewardlab.training.prm`), embedding
(:mod:`~rewardlab.training.embedding_rm`) and TRL (:mod:`~rewardlab.training.trl_engine`) trainers;
what they all share (Trainer arguments, callbacks, saving, the summary) is in :mod:`~rewardlab.training.kit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.config import parse_assignments
from rewardlab.errors import RewardlabError
from rewardlab.runtime import quiet_transformers
from rewardlab.training.config import TrainConfig
from rewardlab.training.kit import (
    TrainResult,
    console,
    finish_run,
    is_main_process,
    lora_config,
    resolve_precision,
    run_callbacks,
    run_trainer,
    training_args,
)
from rewardlab.training.outdir import check_out, open_out


def _load_data(cfg: TrainConfig) -> tuple[Any, Any, dict[str, Any]]:
    from rewardlab.data import load_preferences
    from rewardlab.data.split import split_by_prompt

    kwargs = {"format": cfg.format, "mapping": parse_assignments(cfg.map, "--map"), "on_error": cfg.on_error}
    data = load_preferences(cfg.data, **kwargs)
    if cfg.eval_data:
        train, evals = data, load_preferences(cfg.eval_data, **kwargs)
        how = {"eval_data": cfg.eval_data}
    else:
        train, evals = split_by_prompt(data, cfg.eval_split or 0.0, cfg.seed)
        how = {"eval_split": cfg.eval_split, "split_by": "prompt"}
    return train, evals, how


def train(cfg: TrainConfig) -> TrainResult:
    """Run a training job (see the module doc) and return where its outputs are.

    Under a multi-process launch every rank waits here for the main one to finish writing, then
    closes the process group: a rank that exits with its gloo/NCCL group still open can abort
    ("terminate called without an active exception") and fail the whole launch.
    """
    ok = False
    try:
        result = _train(cfg)
        ok = True
        return result
    finally:
        close_process_group(sync=ok)


def close_process_group(sync: bool) -> None:
    """Barrier (when ``sync``) and destroy the default process group, if one is open."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def _train(cfg: TrainConfig) -> TrainResult:
    out = Path(cfg.out)
    check_out(cfg)  # refused before anything loads; nothing is written into OUT before open_out
    quiet_transformers()
    warnings: list[str] = []

    def warn(msg: str) -> None:
        warnings.append(msg)
        if is_main_process():
            console.print(f"[yellow]warning:[/] {msg}", soft_wrap=True)

    def say(msg: str) -> None:
        if is_main_process():
            console.print(msg, soft_wrap=True, highlight=False)

    if cfg.kind == "prm":
        from rewardlab.training.prm import train_prm

        return train_prm(cfg, warn, say, warnings)
    train_data, eval_data, split = _load_data(cfg)

    from transformers import set_seed

    from rewardlab.data.summary import summarize, write_summary
    from rewardlab.models.encoding import SequenceEncoder
    from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer, model_arch
    from rewardlab.training.batching import group_length, make_collator, resolve_batching
    from rewardlab.training.dataset import GroupDataset, encode_groups
    from rewardlab.training.trainer import RewardTrainer

    set_seed(cfg.seed)
    data_summary = summarize(train_data, source=cfg.data)

    if cfg.attn_implementation == "flex_attention":
        import torch

        if not torch.cuda.is_available():
            raise RewardlabError(
                "--attn-implementation flex_attention: PyTorch has no FlexAttention backward on the CPU; "
                "train with it on a GPU (scoring on the CPU works)"
            )
    if cfg.method == "embedding":
        from rewardlab.training.embedding_train import train_embedding

        return train_embedding(cfg, train_data, eval_data, split, data_summary, warnings, warn, say)
    model, tokenizer = load_model_and_tokenizer(cfg.model, attn_implementation=cfg.attn_implementation)
    arch = model_arch(model)
    vocab_before = model.get_input_embeddings().weight.shape[0]
    pad_note = ensure_pad_token(tokenizer, model, arch, allow_resize=not cfg.lora)
    resized = model.get_input_embeddings().weight.shape[0] != vocab_before
    if pad_note:
        say(pad_note)
    padding_side = tokenizer.padding_side if cfg.padding_side == "auto" else cfg.padding_side
    encoder = SequenceEncoder(tokenizer, arch, cfg.max_length, cfg.truncation)
    train_groups, train_report = encode_groups(train_data, encoder)
    eval_groups, eval_report = encode_groups(eval_data, encoder)
    if not train_groups:
        from rewardlab.training.dataset import no_usable_pairs_message

        raise RewardlabError(no_usable_pairs_message(train_data, train_report.excluded))
    say(
        f"{arch} model, {len(train_groups)} training groups ({train_report.sequences_cut} of "
        f"{train_report.sequences} sequences cut to {cfg.max_length} tokens with {cfg.truncation}; excluded: "
        f"{dict(train_report.excluded) or 'none'}), {len(eval_groups)} held-out groups"
    )
    checked = model if cfg.engine == "native" else None  # TRL lays out its own batches
    layout, why = resolve_batching(cfg.batching, arch, checked, tokenizer, cfg.max_length, warn)
    collator = make_collator(
        layout, tokenizer.pad_token_id, padding_side, arch, cfg.pack_tokens or cfg.max_length
    )
    lengths = (
        [group_length(g, layout) for g in train_groups]
        if layout == "padded" and cfg.group_by_length
        else None
    )
    common = {
        "cfg": cfg,
        "tokenizer": tokenizer,
        "arch": arch,
        "resized": resized,
        "data_summary": data_summary,
        "split": split,
        "pad_note": pad_note,
        "norm_groups": train_groups,
        "collator": collator,
        "warnings": warnings,
        "warn": warn,
        "say": say,
    }
    open_out(cfg, is_main_process())
    if is_main_process():
        write_summary(data_summary, out)
    if cfg.engine == "trl":
        from rewardlab.training.trl_engine import train_with_trl

        return train_with_trl(model=model, train_data=train_data, eval_data=eval_data, **common)
    say(f"batching: {layout} ({why})")
    if cfg.lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(cfg, arch))
    if cfg.gradient_checkpointing:
        model.config.use_cache = False
    args = training_args(cfg, out, bool(eval_groups))
    trainer = RewardTrainer(
        model=model,
        args=args,
        train_dataset=GroupDataset(train_groups),
        eval_dataset=GroupDataset(eval_groups) if eval_groups else None,
        data_collator=collator,
        processing_class=tokenizer,
        label_smoothing=cfg.label_smoothing,
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        use_margin=cfg.use_margin,
        group_lengths=lengths,
        callbacks=run_callbacks(cfg, warn),
    )
    result, runtime, eval_metrics = run_trainer(trainer, cfg, bool(eval_groups), warn, say)
    return finish_run(
        trainer=trainer,
        eval_metrics=eval_metrics,
        train_metrics=dict(result.metrics),
        runtime=runtime,
        groups={
            "train_groups": train_report.to_dict(),
            "eval_groups": eval_report.to_dict(),
            "batching": {"layout": layout, "why": why, **trainer.token_counts},
            "precision": resolve_precision(cfg.precision, trainer.args.device.type == "cuda").to_dict(),
        },
        engine="native",
        tokenization=NATIVE_TOKENIZATION,
        **common,
    )


NATIVE_TOKENIZATION = (
    "prompt and response tokenized separately; decoders: [BOS] prompt response EOS, reward at EOS; "
    "encoders: the tokenizer's pair form, model pooling"
)
