"""The ``rewardlab`` command line: parses arguments and calls the package. No logic lives here.

Run ``rewardlab --help``; in code, ``main(["data", "summarize", "data.jsonl", "--out", "out"])``
returns the exit status (0 success, 2 a user error such as bad data, with a message and no
traceback). The module is long on purpose: every command and its options are declared here, in one
place, and each command only hands them to the package.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from safetensors import SafetensorError

from rewardlab.config import parse_assignments, typer_command
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.diagnostics.rlcheck.config import RLCheckConfig
from rewardlab.errors import RewardlabError
from rewardlab.evaluation.config import EvalConfig
from rewardlab.io_utils import check_out_file, check_out_folder, os_error_message
from rewardlab.serving.server import ServeConfig, serve
from rewardlab.training.config import TrainConfig

app = typer.Typer(
    name="rewardlab",
    help="Train, evaluate, stress-test and serve reward models for RLHF.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Read, check and summarise preference data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
bench_app = typer.Typer(help="Measured comparisons (numbers for docs/benchmarks.md).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

console = Console()
err_console = Console(stderr=True)


def _str_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _print_table(title: str, columns: list[str] | tuple[str, ...], rows: list[list[str]]) -> None:
    """A bench report's rows as one Rich table on the console."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _int_list(text: str, option: str) -> list[int]:
    """Parse ``"8,32"``; anything but positive integers is a user error."""
    items = _str_list(text)
    if not items or not all(i.isdigit() and int(i) > 0 for i in items):
        raise RewardlabError(f"{option} expects positive integers, comma-separated (e.g. 8,32), got {text!r}")
    return [int(i) for i in items]


@data_app.command("demo")
def data_demo(
    out: Annotated[Path, typer.Option(help="Where to write the JSONL file.")] = Path("demo.jsonl"),
    n: Annotated[int, typer.Option(help="Number of preference pairs.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same file.")] = 0,
    longer_chosen: Annotated[
        float, typer.Option(help="Share of pairs whose chosen response is also the longer one.")
    ] = 0.7,
    over_refusal: Annotated[
        float,
        typer.Option(
            help="Share of the non-safety pairs whose rejected response is a refusal (over-refusal)."
        ),
    ] = 0.0,
    candidates: Annotated[
        int | None,
        typer.Option(
            help="Write a best-of-N pool instead: N candidates (with gold rewards) for each of --n prompts."
        ),
    ] = None,
    max_filler: Annotated[
        int, typer.Option(help="With --candidates: most filler sentences appended to a candidate.")
    ] = 12,
) -> None:
    """Write the built-in demo dataset (rule-scored task families, see rewardlab.data.demo)."""
    from rewardlab.data.demo import write_candidates, write_demo

    check_out_file(out)
    try:
        if candidates is not None:
            path = write_candidates(
                out, n_prompts=n, n_candidates=candidates, seed=seed, max_filler=max_filler
            )
            console.print(
                f"wrote {n} demo prompts with {candidates} candidates each to {path}", soft_wrap=True
            )
            return
        path = write_demo(out, n=n, seed=seed, longer_chosen=longer_chosen, over_refusal=over_refusal)
    except ValueError as exc:
        raise RewardlabError(str(exc)) from exc
    console.print(f"wrote {n} demo pairs to {path}", soft_wrap=True)


@data_app.command("summarize")
def data_summarize(
    path: Annotated[Path, typer.Argument(help="Data file, save_to_disk folder, or folder of files.")],
    out: Annotated[Path, typer.Option(help="Folder for data_summary.json and data_summary.md.")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, explicit (trl), implicit (hh), labelled, ranked.")
    ] = "auto",
    map: Annotated[
        list[str] | None,
        typer.Option("--map", help="Field mapping NEW=OLD, e.g. prompt=question. Repeatable."),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="Label meaning VALUE=first|second|tie for labelled pairs. Repeatable."),
    ] = None,
    score_key: Annotated[
        str | None, typer.Option(help="Key of a per-response scores object to rank by (default: overall).")
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split of a saved DatasetDict.")] = None,
    on_error: Annotated[
        str, typer.Option(help="fail: stop at the first bad record; skip: drop it and count it.")
    ] = "fail",
    tokenizer: Annotated[
        str | None, typer.Option(help="Tokenizer folder (or preset 'minilm') for token lengths.")
    ] = None,
    max_length: Annotated[
        int | None, typer.Option(help="Token budget per sequence: report pairs that would be cut.")
    ] = None,
) -> None:
    """Summarise preference data: counts, drops, duplicates, lengths, agreement, categories."""
    from rewardlab.data import StepwiseDataError, load_preferences
    from rewardlab.data.summary import summarize, write_summary

    check_out_folder(out)
    if max_length is not None and tokenizer is None:
        raise RewardlabError("--max-length needs --tokenizer (lengths are counted in tokens)")
    if max_length is not None and max_length < 2:
        raise RewardlabError("--max-length must be at least 2")
    try:
        data = load_preferences(
            path,
            format=format,
            mapping=parse_assignments(map, "--map"),
            on_error=on_error,
            split=split,
            labels=parse_assignments(label, "--label"),
            score_key=score_key,
        )
    except StepwiseDataError:
        _summarize_steps(path, out, on_error)
        return
    tok = None
    if tokenizer is not None:
        from transformers.utils import logging as hf_logging

        from rewardlab.models.presets import load_tokenizer

        hf_logging.set_verbosity_error()  # length warnings are what this report is about
        tok = load_tokenizer(tokenizer)
    summary = summarize(data, tokenizer=tok, max_length=max_length, source=str(path))
    json_path, md_path = write_summary(summary, out)
    _print_summary(summary)
    console.print(f"\nwrote {json_path} and {md_path}", soft_wrap=True)


@data_app.command("split")
def data_split(
    path: Annotated[Path, typer.Argument(help="Data file, save_to_disk folder, or folder of files.")],
    out: Annotated[
        Path, typer.Option(help="Folder for fold{k}/train.jsonl, fold{k}/test.jsonl, split.json.")
    ],
    folds: Annotated[int, typer.Option(help="Number of folds (split by prompt).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment (as in bench embedding).")] = 42,
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, explicit, implicit, labelled, ranked.")
    ] = "auto",
    on_error: Annotated[str, typer.Option(help="fail or skip (dropped and counted).")] = "fail",
) -> None:
    """K-fold train/test files split by prompt, the folds of `rewardlab bench embedding`."""
    from rewardlab.data import load_preferences
    from rewardlab.data.split import write_folds

    check_out_folder(out)
    if folds < 2:
        raise RewardlabError("--folds must be at least 2")
    data = load_preferences(path, format=format, on_error=on_error)
    everything = data.all_pairs(include_ties=True)
    pairs = data.training_pairs()
    record = write_folds(pairs, out, folds, seed)
    left = len(everything) - len(pairs)
    console.print(
        f"wrote {folds} folds of {record['pairs']} pairs to {out} (test pairs per fold: "
        f"{record['test_pairs']}); not written: {left} ties or identical pairs"
        + (f", {len(data.drops)} records dropped by --on-error skip" if data.drops else ""),
        soft_wrap=True,
    )


@data_app.command("tag")
def data_tag(
    path: Annotated[Path, typer.Argument(help="Data file, save_to_disk folder, or folder of files.")],
    out: Annotated[Path, typer.Option(help="JSONL of the tagged pairs (explicit format).")],
    kind: Annotated[str | None, typer.Option(help="Tag every prompt with this kind.")] = None,
    by_category: Annotated[
        bool, typer.Option(help="Tag each prompt with its record's category field.")
    ] = False,
    format: Annotated[
        str, typer.Option("--format", "-f", help="auto, explicit, implicit, labelled, ranked.")
    ] = "auto",
    on_error: Annotated[str, typer.Option(help="fail or skip (dropped and counted).")] = "fail",
) -> None:
    r"""Write the request's kind into each prompt ("\[kind: NAME]" at its end): one model, mixed kinds."""
    from rewardlab.data import load_preferences
    from rewardlab.data.split import write_pairs
    from rewardlab.data.tags import tag_pairs

    if (kind is None) == (not by_category):
        raise RewardlabError("give --kind NAME or --by-category (one of them)")
    if kind is not None and not kind.strip():
        raise RewardlabError(f"--kind must name a kind, got {kind!r}")
    check_out_file(out)
    data = load_preferences(path, format=format, on_error=on_error)
    pairs = data.training_pairs()
    tagged = tag_pairs(pairs, kind)
    write_pairs(tagged, out)
    left = len(data.all_pairs(include_ties=True)) - len(pairs)
    console.print(
        f"wrote {len(tagged)} tagged pairs to {out}; not written: {left} ties or identical pairs"
        + (f", {len(data.drops)} records dropped by --on-error skip" if data.drops else ""),
        soft_wrap=True,
    )


@data_app.command("outcome-pairs")
def data_outcome_pairs(
    path: Annotated[Path, typer.Argument(help="Step-labelled data (file or folder).")],
    out: Annotated[Path, typer.Option(help="JSONL of preference pairs (explicit format).")],
    per_prompt: Annotated[int, typer.Option(help="Most pairs per prompt.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of the pair choice.")] = 0,
    on_error: Annotated[str, typer.Option(help="fail or skip (dropped and counted).")] = "fail",
) -> None:
    """Pairs of a correct over a wrong solution to the same prompt, to train an ORM on step data."""
    from rewardlab.data.stepwise import load_stepwise, outcome_pairs
    from rewardlab.io_utils import write_jsonl

    check_out_file(out)
    rows = outcome_pairs(load_stepwise(path, on_error=on_error).examples, per_prompt, seed)
    if not rows:
        raise RewardlabError(f"{path}: no prompt has both a correct and a wrong solution")
    write_jsonl(out, rows)
    console.print(f"wrote {len(rows)} outcome pairs to {out}", soft_wrap=True)


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


def _run_train(cfg: TrainConfig) -> None:
    from rewardlab.training.run import train

    check_out_folder(cfg.out)
    train(cfg)


app.command("train")(
    typer_command(
        TrainConfig,
        _run_train,
        "Train an outcome reward model (Bradley-Terry) on any local Hugging Face model.\n\n"
        "Options can also come from a YAML file (--config); flags given here override it.",
    )
)


def _config_command(cls: type, run: Callable[[Any], object], doc: str) -> object:
    """A command whose options are the fields of the dataclass ``cls``; ``run`` takes the config."""
    return typer_command(
        cls, run, doc + "\n\nOptions can also come from a YAML file (--config); flags override it."
    )


def _run_eval(cfg: EvalConfig) -> None:
    from rewardlab import distributed
    from rewardlab.evaluation.compare import RegressionFound
    from rewardlab.evaluation.evaluate import evaluate

    regression = None
    with distributed.session(cfg.device):  # several processes under torchrun: each scores a slice
        try:
            evaluate(cfg)
        except RegressionFound as exc:  # the outputs are written: close the group cleanly, then fail
            regression = exc
    if regression is not None:
        raise regression


def _run_diagnose(cfg: DiagnoseConfig) -> None:
    from rewardlab.diagnostics.diagnose import diagnose

    diagnose(cfg)


def _run_rlcheck(cfg: RLCheckConfig) -> None:
    from rewardlab.diagnostics.rlcheck.run import rlcheck

    rlcheck(cfg)


app.command("eval")(
    _config_command(
        EvalConfig,
        _run_eval,
        "Evaluate reward models on held-out preference data: agreement, margins, calibration, "
        "length bias; writes metrics.json, scores.jsonl, report.md, report.html and plots.",
    )
)
app.command("diagnose")(
    _config_command(
        DiagnoseConfig,
        _run_diagnose,
        "Find a reward model's exploitable weaknesses: perturbation probes, length exploitation, "
        "ensemble disagreement, best-of-N over-optimisation against a gold reward; ranked findings "
        "with mitigations in diagnostics.json/.md/.html.",
    )
)
app.command("rlcheck")(
    _config_command(
        RLCheckConfig,
        _run_rlcheck,
        "Reward hacking in a real RL loop: short seeded GRPO runs of a policy (LoRA) against the reward "
        "model, unguarded and with each guard (KL, min/uwo ensemble, length correction, normalise+clip) "
        "and against the gold; proxy and gold against sqrt KL in rlcheck.json/.md/.html.",
    )
)
app.command("serve")(
    _config_command(
        ServeConfig,
        serve,
        "Serve reward models over HTTP: POST /score, POST /get_reward (OpenRLHF), POST /classify and "
        "/pooling (vLLM), GET /health, GET /info.",
    )
)

ModelOption = Annotated[
    str,
    typer.Option(
        help="Reward model folder (any rewardlab checkpoint), module:function, file.py:function, "
        "builtin:demo-gold, builtin:math?references=FILE, a server URL (http://HOST/score, "
        "/get_reward, /classify, /pooling), or ensemble:mean|min|uwo:DIR1,DIR2[,...]."
    ),
]
NormalizeOption = Annotated[bool, typer.Option(help="Normalise with the checkpoint's mean/std.")]
BatchOption = Annotated[int, typer.Option(help="Sequences per forward pass.")]
DeviceOption = Annotated[
    str, typer.Option(help="auto (a CUDA device when torch sees one, else the CPU), cpu, cuda, cuda:1, ...")
]
DtypeOption = Annotated[
    str,
    typer.Option(
        help="float32 (rewards as trained), auto (bfloat16 on a GPU or a CPU that computes bf16 "
        "natively, else float32), bfloat16 or float16."
    ),
]
AttnOption = Annotated[
    str | None,
    typer.Option(help="Attention kernel: sdpa, eager, flex_attention (block masks for packed rows; GPU)."),
]
LayoutOption = Annotated[
    str,
    typer.Option(
        help="auto (packed for decoders that reproduce padded rewards on a probe), packed or padded."
    ),
]


@app.command("advise")
def advise_cmd(
    data: Annotated[Path, typer.Option(help="Preference or step-labelled data (file or folder).")],
    out: Annotated[Path | None, typer.Option(help="Folder for advice.json.")] = None,
    on_error: Annotated[str, typer.Option(help="fail or skip (dropped and counted).")] = "fail",
) -> None:
    """Recommend an outcome (ORM) or process (PRM) reward model for this data, with reasons."""
    from rewardlab.training.advise import advise

    if out is not None:
        check_out_folder(out)
    advise(data, out, on_error)


@app.command("score")
def score_cmd(
    model: ModelOption,
    data: Annotated[Path, typer.Option(help="Records with a prompt and a response field.")],
    out: Annotated[Path, typer.Option(help="JSONL: each record with its reward added.")],
    normalize: NormalizeOption = False,
    batch_size: BatchOption = 16,
    layout: LayoutOption = "auto",
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    attn_implementation: AttnOption = None,
) -> None:
    """Score every (prompt, response) record of a file (split over the processes of a launch)."""
    from rewardlab import distributed
    from rewardlab.models.loading import load_reward
    from rewardlab.serving.file_scoring import score_file

    check_out_file(out)
    if batch_size < 1:
        raise RewardlabError(f"--batch-size must be at least 1, got {batch_size}")
    with distributed.session(device) as place:
        here = distributed.rank_device(device)
        rm = load_reward(model, device=here, dtype=dtype, attn_implementation=attn_implementation)
        n = score_file(rm, data, out, normalize, batch_size, layout)
    if place.main:
        console.print(f"scored {n} responses; wrote {out}", soft_wrap=True)


@app.command("bon")
def bon_cmd(
    model: ModelOption,
    candidates: Annotated[Path, typer.Option(help="Records with a prompt and a list of N candidates.")],
    out: Annotated[Path, typer.Option(help="JSONL: the best candidate, all scores, the KL bound.")],
    normalize: NormalizeOption = False,
    batch_size: BatchOption = 16,
    layout: LayoutOption = "auto",
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    attn_implementation: AttnOption = None,
) -> None:
    """Best-of-N: pick the highest-reward candidate per prompt (split over the processes of a launch)."""
    from rewardlab import distributed
    from rewardlab.models.loading import load_reward
    from rewardlab.serving.file_scoring import best_of_n

    check_out_file(out)
    if batch_size < 1:
        raise RewardlabError(f"--batch-size must be at least 1, got {batch_size}")
    with distributed.session(device) as place:
        here = distributed.rank_device(device)
        rm = load_reward(model, device=here, dtype=dtype, attn_implementation=attn_implementation)
        rows = best_of_n(rm, candidates, out, normalize, batch_size, layout)
    if place.main:
        console.print(
            f"chose the best of {sum(r['n'] for r in rows)} candidates for {len(rows)} prompts; wrote {out}"
        )


@app.command("merge")
def merge_cmd(
    model: Annotated[
        list[str],
        typer.Option(help="A member: a full fine-tuning checkpoint of rewardlab train. Repeat (2 or more)."),
    ],
    out: Annotated[Path, typer.Option(help="Folder for the merged model.")],
    weights: Annotated[
        str | None,
        typer.Option(help="One weight per --model, comma-separated (default: equal); scaled to sum 1."),
    ] = None,
    norm_data: Annotated[
        Path | None,
        typer.Option(help="Preference data to measure the normalisation on (default: the members' samples)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the model folder at --out.")] = False,
) -> None:
    """WARM: average the weights of reward models fine-tuned from one base model into one model."""
    from rewardlab.models.weight_average import parse_weights
    from rewardlab.training.warm_merge import merge

    check_out_folder(out)
    result = merge(model, out, parse_weights(weights), overwrite, norm_data)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    shown = ", ".join(f"{w:.4g}" for w in result.weights)
    console.print(
        f"merged {len(result.weights)} models (weights {shown}) into {out} in {result.seconds:.1f} s; "
        f"{result.bytes / 2**20:.1f} MiB",
        soft_wrap=True,
    )


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Output folder (its earlier demo outputs are replaced).")] = Path(
        "runs/demo"
    ),
    n: Annotated[int, typer.Option(help="Demo pairs.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the data and the training.")] = 0,
    ensemble: Annotated[int, typer.Option(help="Heads in the embedding ensemble.")] = 5,
) -> None:
    """The main job on defaults: demo data, data summary, embedding reward model, held-out metrics."""
    from rewardlab.demo import run_demo

    check_out_folder(out)
    run_demo(out, n=n, seed=seed, ensemble=ensemble)


@bench_app.command("train")
def bench_train_cmd(
    model: Annotated[str, typer.Option(help="Local model folder or preset (e.g. tiny-llama-30m).")],
    data: Annotated[
        list[str], typer.Option(help="Preference data to take the pairs from; repeat for several sets.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the JSON report (and its Markdown table, .md).")],
    pairs: Annotated[
        str,
        typer.Option(
            help="Pairs to train on (rounded down to whole batches): one count, or one per batch size "
            "(comma-separated)."
        ),
    ] = "64",
    engines: Annotated[
        str, typer.Option(help="Comma-separated engines: native, trl (fp32), trl-bf16.")
    ] = "native,trl",
    batch_size: Annotated[
        str, typer.Option(help="Pairs per optimizer step; comma-separated for several (e.g. 8,32).")
    ] = "8",
    max_length: Annotated[
        int, typer.Option(help="Max tokens per sequence; only pairs that fit are used.")
    ] = 1024,
    seed: Annotated[int, typer.Option(help="Seed for pair selection and training.")] = 0,
    learning_rate: Annotated[float, typer.Option(help="Learning rate of both engines.")] = 1e-5,
    batching: Annotated[str, typer.Option(help="Native layout: auto, padded, prefix, packed.")] = "auto",
    pack_tokens: Annotated[
        int | None, typer.Option(help="Native packed-row budget (default: the training default).")
    ] = None,
    attn_implementation: Annotated[
        str | None,
        typer.Option(
            help="Native attention kernel (sdpa, eager, flex_attention on a GPU); TRL keeps its own."
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            help="Native engine: auto (bf16 on a GPU or a CPU that computes it natively, else fp32), "
            "fp32, bf16. The trl engine runs fp32 and trl-bf16 bf16."
        ),
    ] = "auto",
    lora: Annotated[
        bool, typer.Option(help="Train LoRA adapters (every engine) instead of all weights.")
    ] = False,
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="Recompute activations in the backward pass (every engine).")
    ] = False,
) -> None:
    """Train each engine on the same pairs and steps; report speed, tokens, padding, memory, loss."""
    from rewardlab.bench.train import COLUMNS, bench_train_table, table_rows

    check_out_file(out)
    check_out_file(out.with_suffix(".md"))
    result = bench_train_table(
        model=model,
        data=data,
        batch_sizes=_int_list(batch_size, "--batch-size"),
        pairs=_int_list(pairs, "--pairs"),
        engines=_str_list(engines),
        max_length=max_length,
        out=str(out),
        seed=seed,
        learning_rate=learning_rate,
        batching=batching,
        pack_tokens=pack_tokens,
        attn_implementation=attn_implementation,
        precision=precision,
        lora=lora,
        gradient_checkpointing=gradient_checkpointing,
    )
    rows = [row for report in result.get("runs", [result]) for row in table_rows(report)]
    _print_table(f"bench train: {model}", COLUMNS, [[cell.replace("**", "") for cell in row] for row in rows])
    console.print(f"wrote {out} and {out.with_suffix('.md')}", soft_wrap=True)


@bench_app.command("score")
def bench_score_cmd(
    model: Annotated[str, typer.Option(help="Reward model folder or preset.")],
    data: Annotated[str, typer.Option(help="Preference data to take the responses from.")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")],
    n: Annotated[int, typer.Option(help="Responses to score.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Batch size of rewardlab and of the pipeline.")] = 16,
    max_length: Annotated[int, typer.Option(help="Tokens per sequence.")] = 512,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    pool: Annotated[
        bool, typer.Option(help="--data is a best-of-N candidate pool: score its candidates (N per prompt).")
    ] = False,
    attn_implementation: AttnOption = None,
) -> None:
    """Responses/s of RewardModel.score vs a naive per-example loop vs the transformers pipeline."""
    from rewardlab.bench.scoring import bench_score

    check_out_file(out)
    r = bench_score(
        model=model,
        data=data,
        out=str(out),
        n=n,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        dtype=dtype,
        pool=pool,
        attn_implementation=attn_implementation,
    )
    for name, row in r["results"].items():
        console.print(f"{name}: {row['responses_per_s']:.1f} responses/s ({row['seconds']:.1f} s)")
    console.print(
        f"rewardlab vs naive {r['speedup_vs_naive']:.2f}x, vs pipeline {r['speedup_vs_pipeline']:.2f}x; "
        f"wrote {out}"
    )


@bench_app.command("serve")
def bench_serve_cmd(
    model: Annotated[str, typer.Option(help="Reward model folder or preset.")],
    data: Annotated[str, typer.Option(help="Preference data to take the requests from.")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")],
    clients: Annotated[int, typer.Option(help="Concurrent clients.")] = 16,
    requests: Annotated[int, typer.Option(help="Requests in all.")] = 320,
    items: Annotated[int, typer.Option(help="(prompt, response) items per request.")] = 4,
    device: DeviceOption = "auto",
    dtype: DtypeOption = "float32",
    in_process: Annotated[
        bool, typer.Option(help="Run the server in a thread of the benchmark (default: its own process).")
    ] = False,
    unique: Annotated[
        bool, typer.Option(help="Make every request's texts unique (as in RL: nothing comes from a cache).")
    ] = False,
    rss_every: Annotated[float, typer.Option(help="Seconds between samples of the server's RSS.")] = 0.5,
) -> None:
    """Requests/s, p50/p99 latency and server RSS of rewardlab serve under concurrent load."""
    from rewardlab.bench.scoring import bench_serve

    check_out_file(out)
    r = bench_serve(
        model=model,
        data=data,
        out=str(out),
        clients=clients,
        requests=requests,
        items=items,
        device=device,
        dtype=dtype,
        in_process=in_process,
        unique=unique,
        rss_every=rss_every,
    )
    rss = r["rss"]
    console.print(
        f"{r['requests_per_s']:.1f} requests/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
        f"{r['errors']} errors, {r['forward_calls']} forward calls; server RSS {rss['start_mib']} -> "
        f"peak {rss['peak_mib']} -> {rss['end_mib']} MiB; wrote {out}",
        soft_wrap=True,
    )


@bench_app.command("embedding")
def bench_embedding_cmd(
    data: Annotated[str, typer.Option(help="Preference data.")],
    out: Annotated[Path, typer.Option(help="Where to write the JSON report.")],
    model: Annotated[str, typer.Option(help="Frozen embedding model (folder or preset).")] = "minilm",
    folds: Annotated[int, typer.Option(help="Cross-validation folds (split by prompt).")] = 5,
    ensemble: Annotated[int, typer.Option(help="Heads per fold.")] = 5,
    head: Annotated[str, typer.Option(help="linear or mlp.")] = "linear",
    objective: Annotated[str, typer.Option(help="bt or classification.")] = "bt",
    max_length: Annotated[int, typer.Option(help="Tokens per embedded sequence.")] = 512,
    embed_prompt: Annotated[
        str, typer.Option(help="last_turn or full: the prompt text embedded.")
    ] = "last_turn",
    embed_layers: Annotated[int, typer.Option(help="Last layers whose pooled states are concatenated.")] = 6,
    l2: Annotated[
        float | None, typer.Option(help="L2 penalty of the heads (default: chosen on a validation split).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and the heads.")] = 42,
    embed_pooling: Annotated[str, typer.Option(help="auto, last (decoders) or mean.")] = "auto",
    embed_dtype: Annotated[str, typer.Option(help="auto, float32 or bfloat16 (while embedding).")] = "auto",
    test: Annotated[
        list[str] | None,
        typer.Option(help="Out-of-domain test data (repeatable): heads trained on all of --data score it."),
    ] = None,
    max_pairs: Annotated[
        int | None, typer.Option(help="A seeded random sample of this many pairs of each dataset.")
    ] = None,
    debias_length: Annotated[bool, typer.Option(help="Train the heads with --debias-length.")] = False,
) -> None:
    """K-fold accuracy of an embedding reward model, with the length-only baseline on the same folds."""
    from rewardlab.bench.embedding import bench_embedding

    check_out_file(out)
    r = bench_embedding(
        data=data,
        out=str(out),
        model=model,
        folds=folds,
        ensemble=ensemble,
        head=head,
        objective=objective,
        max_length=max_length,
        embed_prompt=embed_prompt,
        embed_layers=embed_layers,
        l2=l2,
        seed=seed,
        embed_pooling=embed_pooling,
        embed_dtype=embed_dtype,
        tests=test or [],
        max_pairs=max_pairs,
        debias_length=debias_length,
    )
    for row in r["folds"]:
        console.print(
            f"fold {row['fold']}: accuracy {row['accuracy']:.3f}, length-only {row['length_baseline']:.3f} "
            f"({row['pairs']} pairs)"
        )
    console.print(
        f"{folds}-fold accuracy {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} (length-only "
        f"{r['length_baseline_mean']:.3f}); {r['total_seconds']:.0f} s in all; wrote {out}",
        soft_wrap=True,
    )
    for row in r["out_of_domain"]:
        console.print(
            f"out of domain {row['data']}: accuracy {row['accuracy']:.3f}, length-only "
            f"{row['length_baseline']:.3f} ({row['pairs']} pairs)",
            soft_wrap=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    try:
        app(args=argv, prog_name="rewardlab", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: Typer's message on one line, no traceback
        message, ctx = " ".join(exc.format_message().split()), getattr(exc, "ctx", None)
        if message:  # empty when the help was shown instead (a group called without a command)
            _error(message + (f" (see {ctx.command_path} --help)" if ctx is not None else ""))
        return int(getattr(exc, "exit_code", 2))
    except RewardlabError as exc:
        _error(str(exc))
        return int(getattr(exc, "exit_code", 2))  # 2, or 1 for a regression found by eval --compare
    except OSError as exc:  # the last line of defence for files named by the user: one line, no traceback
        _error(os_error_message(exc))
        return 2
    except SafetensorError as exc:  # a damaged weights file that no loader above named
        _error(f"damaged .safetensors weights: {exc}")
        return 2
    return 0


def _error(message: str) -> None:
    """Print ``error: MESSAGE`` on stderr (the message as text, never as console markup)."""
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
