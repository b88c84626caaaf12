"""The model and saving steps of the fine-tuned outcome model recipes (native engine and TRL).

Both recipes (:mod:`~rewardlab.training.recipes.outcome`, :mod:`~rewardlab.training.recipes.trl`)
load the same model and save the same checkpoint; only their training step differs. Here:
:func:`load_outcome_model` (the model with a one-output head and a safe pad token, every pair and
list encoded, the batch layout: an :class:`OutcomeModel`), :func:`start_head` (``--head-init``),
:func:`training_sample` and :func:`reward_stats` (the reward mean and std measured after training, with
the features of that pass: :func:`store_feature_stats` fits and writes their statistics) and
:func:`save_outcome_run`, which saves the checkpoint from an :class:`OutcomeRun` and writes
``train_summary.json``, ``rewardlab.json`` and ``INTEGRATION.md``. Not a command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab import __version__
from rewardlab.config import to_dict
from rewardlab.errors import RewardlabError
from rewardlab.training.recipe import Reporter
from rewardlab.training.recipes.preference_steps import PreferenceSplit, refuse_cpu_flex_attention
from rewardlab.training.run_records import (
    TRAIN_LOG,
    TRAIN_SUMMARY,
    checkpoint_record,
    data_digest,
    data_record,
    distributed_record,
    input_format_record,
    low_accuracy_warning,
    save_checkpoint,
    write_run_files,
)


@dataclass
class OutcomeModel:
    """A loaded outcome model, its encoded data and its batch layout (what :func:`load_outcome_model` gives).

    ``pad_note`` says how the pad token was chosen (``None``: the tokenizer had a safe one);
    ``resized``: the embeddings grew for a new pad token; ``lengths``: the training groups' lengths
    for length-grouped padded batches, else ``None``.
    """

    model: Any
    tokenizer: Any
    arch: str
    pad_note: str | None
    resized: bool
    train_groups: list[Any]
    train_report: Any
    eval_groups: list[Any]
    eval_report: Any
    layout: str
    why: str
    collator: Any
    lengths: list[int] | None


@dataclass
class OutcomeRun:
    """What an outcome recipe's training step leaves for :func:`save_outcome_run`.

    Args:
        engine: ``native`` or ``trl`` (recorded).
        tokenization: How the texts were tokenized (``rewardlab.json``).
        trainer: The Hugging Face trainer that ran.
        runtime: Seconds of training.
        train_metrics: The trainer's training metrics.
        eval_metrics: The final held-out metrics (empty without held-out data).
        groups: The summary's encoding and batching blocks.
        head_init: The ``--head-init`` record (:func:`start_head`).
        debias: ``--debias-length``'s length reward after training (native engine), else ``None``.
    """

    engine: str
    tokenization: str
    trainer: Any
    runtime: float
    train_metrics: dict[str, Any]
    eval_metrics: dict[str, Any]
    groups: dict[str, Any]
    head_init: dict[str, Any] | None
    debias: Any = None

    def debias_record(self) -> dict[str, Any] | None:
        """The ``debias_length`` block (the learnt length coefficient), else ``None``."""
        return None if self.debias is None else self.debias.record()


def load_outcome_model(cfg: Any, data: PreferenceSplit, reporter: Reporter, engine: str) -> OutcomeModel:
    """The model and tokenizer (with a safe pad token), the encoded groups, the batch layout."""
    from rewardlab.models.encoding import SequenceEncoder
    from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer, model_arch
    from rewardlab.training.dataset import encode_groups

    say = reporter.say
    refuse_cpu_flex_attention(cfg)
    model, tokenizer = load_model_and_tokenizer(cfg.model, attn_implementation=cfg.attn_implementation)
    arch = model_arch(model)
    vocab_before = model.get_input_embeddings().weight.shape[0]
    pad_note = ensure_pad_token(tokenizer, model, arch, allow_resize=not cfg.lora)
    resized = model.get_input_embeddings().weight.shape[0] != vocab_before
    if pad_note:
        say(pad_note)
    encoder = SequenceEncoder(tokenizer, arch, cfg.max_length, cfg.truncation)
    train_groups, train_report = encode_groups(data.train, encoder)
    eval_groups, eval_report = encode_groups(data.evals, encoder)
    if not train_groups:
        from rewardlab.training.dataset import no_usable_pairs_message

        raise RewardlabError(no_usable_pairs_message(data.train, train_report.excluded))
    say(
        f"{arch} model, {len(train_groups)} training groups ({train_report.sequences_cut} of "
        f"{train_report.sequences} sequences cut to {cfg.max_length} tokens with {cfg.truncation}; excluded: "
        f"{dict(train_report.excluded) or 'none'}), {len(eval_groups)} held-out groups"
    )
    layout, why, collator, lengths = _choose_batching(
        cfg, model, tokenizer, arch, train_groups, reporter, engine
    )
    return OutcomeModel(
        model, tokenizer, arch, pad_note, resized, train_groups, train_report, eval_groups, eval_report,
        layout, why, collator, lengths,
    )  # fmt: skip


def _choose_batching(
    cfg: Any, model: Any, tokenizer: Any, arch: str, groups: list[Any], reporter: Reporter, engine: str
) -> tuple[str, str, Any, list[int] | None]:
    """The batch layout, why, its collator (also used to measure the normalisation), group lengths."""
    from rewardlab.training.batching import group_length, make_collator, resolve_batching

    checked = model if engine == "native" else None  # TRL lays out its own batches
    layout, why = resolve_batching(cfg.batching, arch, checked, tokenizer, cfg.max_length, reporter.warn)
    padding_side = tokenizer.padding_side if cfg.padding_side == "auto" else cfg.padding_side
    collator = make_collator(
        layout, tokenizer.pad_token_id, padding_side, arch, cfg.pack_tokens or cfg.max_length
    )
    lengths = (
        [group_length(g, layout) for g in groups] if layout == "padded" and cfg.group_by_length else None
    )
    return layout, why, collator, lengths


def start_head(cfg: Any, loaded: OutcomeModel, reporter: Reporter) -> dict[str, Any]:
    """``--head-init``: set the head before training (not when resuming: the checkpoint sets it)."""
    from rewardlab.training.head_init import init_head

    if cfg.resume and cfg.head_init != "model":
        return {"how": cfg.head_init, "skipped": "--resume: the checkpoint's head is used"}
    if cfg.head_init == "probe":
        reporter.say("--head-init probe: fitting a linear probe on the frozen model's features")
    record = init_head(loaded.model, cfg.head_init, loaded.train_groups, loaded.collator, cfg.seed)
    if "probe" in record:
        probe = record["probe"]
        reporter.say(
            f"probe: {probe['comparisons']} comparisons, L2 {probe['l2']:g}, training accuracy "
            f"{probe['train_accuracy']:.3f}"
        )
    return record


@contextmanager
def _bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar of ``total`` steps on the main process (none elsewhere); yields ``advance(k)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rewardlab.training.recipe import is_main_process

    if not is_main_process():
        yield lambda _k: None
        return
    columns = (TextColumn(f"[bold]{label}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    with Progress(*columns, TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()) as bar:
        task = bar.add_task("", total=total)
        yield lambda k: bar.advance(task, k)


def training_sample(
    model: Any, groups: list[Any], collator: Any, n: int, seed: int
) -> tuple[list[float], Any]:
    """Rewards and features (what the head read, (N, hidden) on the CPU) of up to ``n`` training responses.

    One forward pass gives both (:func:`rewardlab.training.batching.score_groups`). The responses
    are whole groups of a seeded shuffle (:func:`rewardlab.training.batching.sample_groups`), so a
    prefix-shared layout computes each prompt once; they come back group by group, in that order.
    """
    from rewardlab.training.batching import sample_groups, score_groups

    picked = sample_groups(groups, n, seed)
    total = sum(len(g.encoded) for g in picked)
    device = next(model.parameters()).device
    model.eval()
    with _bar("normalisation", total) as advance:
        rewards, features = score_groups(model, picked, collator, device, advance=advance)
    return rewards.tolist(), features


def reward_stats(rewards: list[float]) -> dict[str, float]:
    """Mean, population std (1 when 0) and count of ``rewards``: a checkpoint's ``normalization``."""
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    return {"mean": mean, "std": std if std > 0 else 1.0, "samples": len(rewards)}


def store_feature_stats(
    out: Path, features: Any, seed: int, warn: Callable[[str], None], fitted_on: str | None = None
) -> dict[str, Any] | None:
    """Fit and write the feature statistics of the ``feature_distance`` signal; their record, or None.

    A fit that cannot be made (features not finite) is warned about, not fatal: the checkpoint
    then scores as before, without that signal. ``fitted_on`` says what the features came from
    (default: the number of training responses).
    """
    from rewardlab.models.feature_stats import fit_feature_stats, save_feature_stats

    try:
        stats = fit_feature_stats(features, seed=seed)
    except RewardlabError as exc:
        warn(f"{exc}: the checkpoint stores no feature statistics (no feature_distance signal)")
        return None
    return save_feature_stats(
        out, stats, "pooled last hidden state", fitted_on or f"{stats.samples} training responses"
    )


@dataclass
class OutcomeRecord:
    """Everything :func:`save_outcome_run` records of a run (the run's config, data, model, training)."""

    cfg: Any
    data: PreferenceSplit
    loaded: OutcomeModel
    run: OutcomeRun
    size_defaults: dict[str, Any] | None
    reporter: Reporter


def save_outcome_run(rec: OutcomeRecord) -> dict[str, Any]:
    """Save the checkpoint, measure the reward normalisation, write the summary and rewardlab.json.

    Returns the summary (empty on processes other than the main one, which write nothing).
    """
    from rewardlab.models.reward_model import unwrap
    from rewardlab.training.finite import check_values

    cfg, loaded, run, say, warn = rec.cfg, rec.loaded, rec.run, rec.reporter.say, rec.reporter.warn
    out = Path(cfg.out)
    what = "saving the checkpoint" + (" and merging the LoRA adapters" if cfg.lora and cfg.merge else "")
    with rec.reporter.phase(what):
        final = save_checkpoint(run.trainer, loaded.tokenizer, out, cfg.lora, cfg.merge, loaded.resized)
    if final is None:
        return {}
    if cfg.lora and not cfg.merge and loaded.pad_note and "was the end token" in loaded.pad_note:
        warn(
            "plain transformers loads this LoRA folder with the base model's config, whose pad token is "
            "the EOS: after AutoModelForSequenceClassification.from_pretrained, set "
            f"model.config.pad_token_id = {loaded.tokenizer.pad_token_id} (RewardModel.from_pretrained "
            "does it), or train with --merge"
        )
    n = min(cfg.norm_samples, sum(len(g.encoded) for g in loaded.train_groups))
    plain = unwrap(final)
    dtype = str(next(plain.parameters()).dtype).removeprefix("torch.")
    with rec.reporter.phase("reward normalisation", f"scoring {n} training responses in {dtype}"):
        rewards, features = training_sample(
            plain, loaded.train_groups, loaded.collator, cfg.norm_samples, cfg.seed
        )
        norm = reward_stats(rewards)
    check_values(norm, "the reward normalisation", f"{out}")
    feature_stats = store_feature_stats(out, features, cfg.seed, warn)
    metrics = run.eval_metrics
    if "eval_accuracy" in metrics:
        say(
            f"held-out: accuracy {metrics['eval_accuracy']:.3f}, mean margin "
            f"{metrics.get('eval_margin_mean', metrics.get('eval_margin', float('nan'))):.4f}, "
            f"loss {metrics['eval_loss']:.4f}"
        )
    low = low_accuracy_warning(metrics.get("eval_accuracy"), rec.data.summary, out)
    if low:
        warn(low)
    summary = outcome_summary(rec, norm)
    write_run_files(out, summary, {**outcome_info(rec, norm, final), "feature_stats": feature_stats})
    say(f"saved the reward model to {out} (rewardlab.json, {TRAIN_SUMMARY}, {TRAIN_LOG}, data_summary.md)")
    return summary


def outcome_summary(rec: OutcomeRecord, norm: dict[str, float]) -> dict[str, Any]:
    """``train_summary.json`` of an outcome model."""
    run = rec.run
    return {
        "rewardlab_version": __version__,
        "engine": run.engine,
        "data": data_record(rec.cfg, rec.data.split, rec.data.summary),
        **run.groups,
        "pad_token": rec.loaded.pad_note,
        "steps": run.trainer.state.global_step,
        "size_defaults": rec.size_defaults,
        "head_init": run.head_init,
        "distributed": distributed_record(run.trainer),
        "runtime_s": run.runtime,
        "train_metrics": run.train_metrics,
        "eval_metrics": run.eval_metrics,
        "normalization": norm,
        "debias_length": run.debias_record(),
        "warnings": rec.reporter.warnings,
        "phase_seconds": rec.reporter.phase_seconds,
    }


def outcome_info(rec: OutcomeRecord, norm: dict[str, float], final: Any) -> dict[str, Any]:
    """``rewardlab.json`` of an outcome model."""
    cfg, run = rec.cfg, rec.run
    return {
        "kind": "orm",
        **checkpoint_record(cfg, rec.loaded.arch),
        "engine": run.engine,
        "truncation": cfg.truncation,
        "tokenization": run.tokenization,
        "input_format": input_format_record(rec.data.train, rec.loaded.tokenizer, rec.loaded.arch, cfg),
        "pad_token": rec.loaded.tokenizer.pad_token,
        "normalization": norm,
        "metrics": run.eval_metrics,
        "train_config": to_dict(cfg),
        "data_summary": data_digest(rec.data.summary),
        "rewardlab_version": __version__,
        "torch_dtype": str(next(final.parameters()).dtype),
        "debias_length": run.debias_record(),
    }
