"""``rewardlab data ...``: demo, summarize, split, tag and outcome-pairs, with their console summaries.

Options are the dataclasses of :mod:`rewardlab.data.config`; each command hands its config to
the data package and prints what it wrote. Run ``rewardlab data --help``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from rewardlab.cli.common import config_command, console
from rewardlab.data.config import (
    DataDemoConfig,
    DataSplitConfig,
    OutcomePairsConfig,
    SummarizeConfig,
    TagConfig,
)
from rewardlab.errors import RewardlabError

data_app = typer.Typer(help="Read, check and summarise preference data.", no_args_is_help=True)


def _demo(cfg: DataDemoConfig) -> None:
    from rewardlab.data.demo import write_candidates, write_demo

    try:
        if cfg.candidates is not None:
            path = write_candidates(
                cfg.out,
                n_prompts=cfg.n,
                n_candidates=cfg.candidates,
                seed=cfg.seed,
                max_filler=cfg.max_filler,
            )
            console.print(
                f"wrote {cfg.n} demo prompts with {cfg.candidates} candidates each to {path}", soft_wrap=True
            )
            return
        path = write_demo(
            cfg.out, n=cfg.n, seed=cfg.seed, longer_chosen=cfg.longer_chosen, over_refusal=cfg.over_refusal
        )
    except ValueError as exc:
        raise RewardlabError(str(exc)) from exc
    console.print(f"wrote {cfg.n} demo pairs to {path}", soft_wrap=True)


def _summarize(cfg: SummarizeConfig) -> None:
    from rewardlab.data import StepwiseDataError, load_preferences
    from rewardlab.data.summary import summarize, write_summary

    try:
        data = load_preferences(
            cfg.path,
            format=cfg.format,
            mapping=cfg.mapping,
            on_error=cfg.on_error,
            split=cfg.split,
            labels=cfg.labels,
            score_key=cfg.score_key,
        )
    except StepwiseDataError:
        _summarize_steps(cfg.path, cfg.out, cfg.on_error)
        return
    tok = None
    if cfg.tokenizer is not None:
        from transformers.utils import logging as hf_logging

        from rewardlab.models.presets import load_tokenizer

        hf_logging.set_verbosity_error()  # length warnings are what this report is about
        tok = load_tokenizer(cfg.tokenizer)
    summary = summarize(data, tokenizer=tok, max_length=cfg.max_length, source=str(cfg.path))
    json_path, md_path = write_summary(summary, cfg.out)
    _print_summary(summary)
    console.print(f"\nwrote {json_path} and {md_path}", soft_wrap=True)


def _summarize_steps(path: Path, out: Path, on_error: str) -> None:
    """The stepwise branch of ``data summarize``: steps, label balance, first errors, inconsistencies."""
    from rewardlab.data.stepwise import (
        load_stepwise,
        render_steps_markdown,
        summarize_steps,
        write_steps_summary,
    )

    summary = summarize_steps(load_stepwise(path, on_error=on_error), source=str(path))
    json_path, md_path = write_steps_summary(summary, out)
    console.print(render_steps_markdown(summary), soft_wrap=True, markup=False)
    console.print(f"wrote {json_path} and {md_path}", soft_wrap=True)


def _print_summary(s: dict) -> None:
    c = s["counts"]
    table = Table(title=f"data summary: {escape(s['source'])}", show_header=False)
    rows = [
        ("format", ", ".join(sorted({f["format"] for f in s["files"]}))),
        ("records", c["records"]),
        ("pairs (incl. from lists)", c["pairs_total"]),
        ("usable pairs", c["usable_pairs"]),
        ("prompts", c["prompts"]),
        ("ties", c["ties"]),
        ("identical chosen/rejected", c["identical_chosen_rejected"]),
        ("dropped", f"{c['dropped']} {c['drop_reasons'] or ''}".strip()),
        ("exact duplicate pairs", s["duplicates"]["exact_duplicate_pairs"]),
        ("contradictory pairs", s["duplicates"]["contradictory_pairs"]),
    ]
    bias = s["length_bias_tokens"] or s["length_bias_chars"]
    if bias:
        rows.append(("chosen is longer", f"{bias['chosen_longer_share']:.1%}"))
    if s["truncation"]:
        t = s["truncation"]
        rows.append((f"pairs cut at {t['max_length']} tokens", f"{t['pairs_cut_share']:.1%}"))
    if s["agreement"]:
        a = s["agreement"]
        rows.append(
            (
                "annotator agreement",
                f"{a['raw_agreement']:.1%} (Fleiss κ {a['fleiss_kappa']:.3f}, "
                f"Krippendorff α {a['krippendorff_alpha']:.3f})",
            )
        )
    for k, v in rows:
        table.add_row(k, escape(str(v)))
    console.print(table)
    for w in s["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)


def _split(cfg: DataSplitConfig) -> None:
    from rewardlab.data import load_preferences
    from rewardlab.data.split import write_folds, write_test_split

    data = load_preferences(cfg.path, format=cfg.format, on_error=cfg.on_error)
    everything = data.all_pairs(include_ties=True)
    pairs = data.training_pairs()
    if cfg.test_share is not None:
        record = write_test_split(pairs, cfg.out, cfg.test_share, cfg.seed)
        what = (
            f"wrote {record['train_pairs']} training and {record['test_pairs']} test pairs "
            f"({record['test_prompts']} held-out prompts) to {cfg.out}"
        )
    else:
        record = write_folds(pairs, cfg.out, cfg.folds, cfg.seed)
        what = (
            f"wrote {cfg.folds} folds of {record['pairs']} pairs to {cfg.out} (test pairs per fold: "
            f"{record['test_pairs']})"
        )
    left = len(everything) - len(pairs)
    console.print(
        f"{what}; not written: {left} ties or identical pairs"
        + (f", {len(data.drops)} records dropped by --on-error skip" if data.drops else ""),
        soft_wrap=True,
    )


def _tag(cfg: TagConfig) -> None:
    from rewardlab.data import load_preferences
    from rewardlab.data.split import write_pairs
    from rewardlab.data.tags import tag_pairs

    data = load_preferences(cfg.path, format=cfg.format, on_error=cfg.on_error)
    pairs = data.training_pairs()
    tagged = tag_pairs(pairs, cfg.kind)
    write_pairs(tagged, cfg.out)
    left = len(data.all_pairs(include_ties=True)) - len(pairs)
    console.print(
        f"wrote {len(tagged)} tagged pairs to {cfg.out}; not written: {left} ties or identical pairs"
        + (f", {len(data.drops)} records dropped by --on-error skip" if data.drops else ""),
        soft_wrap=True,
    )


def _outcome_pairs(cfg: OutcomePairsConfig) -> None:
    from rewardlab.data.stepwise import load_stepwise, outcome_pairs
    from rewardlab.io_utils import write_jsonl

    rows = outcome_pairs(load_stepwise(cfg.path, on_error=cfg.on_error).examples, cfg.per_prompt, cfg.seed)
    if not rows:
        raise RewardlabError(f"{cfg.path}: no prompt has both a correct and a wrong solution")
    write_jsonl(cfg.out, rows)
    console.print(f"wrote {len(rows)} outcome pairs to {cfg.out}", soft_wrap=True)


data_app.command("demo")(
    config_command(
        DataDemoConfig,
        _demo,
        "Write the built-in demo dataset (rule-scored task families, see rewardlab.data.demo).",
    )
)
data_app.command("summarize")(
    config_command(
        SummarizeConfig,
        _summarize,
        "Summarise preference data: counts, drops, duplicates, lengths, agreement, categories.",
    )
)
data_app.command("split")(
    config_command(
        DataSplitConfig,
        _split,
        "K-fold train/test files split by prompt, the folds of `rewardlab bench embedding`.",
    )
)
data_app.command("tag")(
    config_command(
        TagConfig,
        _tag,
        r"""Write the request's kind into each prompt ("\[kind: NAME]" at its end): one model, """
        "mixed kinds.",
    )
)
data_app.command("outcome-pairs")(
    config_command(
        OutcomePairsConfig,
        _outcome_pairs,
        "Pairs of a correct over a wrong solution to the same prompt, to train an ORM on step data.",
    )
)
