"""``rewardlab bench ...``: train, score, serve and embedding benchmarks, with their console tables.

Options are the dataclasses of :mod:`rewardlab.bench.config`; each command runs its benchmark,
prints the numbers and names the report it wrote. Run ``rewardlab bench --help``.
"""

from __future__ import annotations

import typer
from rich.table import Table

from rewardlab.bench.config import BenchEmbeddingConfig, BenchScoreConfig, BenchServeConfig, BenchTrainConfig
from rewardlab.cli.common import config_command, console

bench_app = typer.Typer(help="Measured comparisons (numbers for docs/benchmarks.md).", no_args_is_help=True)


def _print_table(title: str, columns: list[str] | tuple[str, ...], rows: list[list[str]]) -> None:
    """A bench report's rows as one Rich table on the console."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _train(cfg: BenchTrainConfig) -> None:
    from rewardlab.bench.train import COLUMNS, bench_train_table, table_rows

    result = bench_train_table(
        model=cfg.model,
        data=cfg.data,
        batch_sizes=cfg.batch_sizes,
        pairs=cfg.pair_counts,
        engines=cfg.engine_names,
        max_length=cfg.max_length,
        out=str(cfg.out),
        seed=cfg.seed,
        learning_rate=cfg.learning_rate,
        batching=cfg.batching,
        pack_tokens=cfg.pack_tokens,
        attn_implementation=cfg.attn_implementation,
        precision=cfg.precision,
        lora=cfg.lora,
        lora_dropout=cfg.lora_dropout,
        gradient_checkpointing=cfg.gradient_checkpointing,
        compile=cfg.compile,
    )
    rows = [row for report in result.get("runs", [result]) for row in table_rows(report)]
    _print_table(
        f"bench train: {cfg.model}", COLUMNS, [[cell.replace("**", "") for cell in row] for row in rows]
    )
    console.print(f"wrote {cfg.out} and {cfg.out.with_suffix('.md')}", soft_wrap=True)


def _score(cfg: BenchScoreConfig) -> None:
    from rewardlab.bench.scoring import bench_score

    r = bench_score(
        model=cfg.model,
        data=cfg.data,
        out=str(cfg.out),
        n=cfg.n,
        batch_size=cfg.batch_size,
        max_length=cfg.max_length,
        device=cfg.device,
        dtype=cfg.dtype,
        pool=cfg.pool,
        attn_implementation=cfg.attn_implementation,
    )
    for name, row in r["results"].items():
        console.print(f"{name}: {row['responses_per_s']:.1f} responses/s ({row['seconds']:.1f} s)")
    console.print(
        f"rewardlab vs naive {r['speedup_vs_naive']:.2f}x, vs pipeline {r['speedup_vs_pipeline']:.2f}x; "
        f"wrote {cfg.out}"
    )


def _serve(cfg: BenchServeConfig) -> None:
    from rewardlab.bench.serve import bench_serve

    r = bench_serve(
        model=cfg.model,
        data=cfg.data,
        out=str(cfg.out),
        clients=cfg.clients,
        requests=cfg.requests,
        items=cfg.items,
        device=cfg.device,
        dtype=cfg.dtype,
        in_process=cfg.in_process,
        unique=cfg.unique,
        rss_every=cfg.rss_every,
    )
    rss = r["rss"]
    console.print(
        f"{r['requests_per_s']:.1f} requests/s, p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
        f"{r['errors']} errors, {r['forward_calls']} forward calls; server RSS {rss['start_mib']} -> "
        f"peak {rss['peak_mib']} -> {rss['end_mib']} MiB; wrote {cfg.out}",
        soft_wrap=True,
    )


def _embedding(cfg: BenchEmbeddingConfig) -> None:
    from rewardlab.bench.embedding import bench_embedding

    r = bench_embedding(
        data=cfg.data,
        out=str(cfg.out),
        model=cfg.model,
        folds=cfg.folds,
        ensemble=cfg.ensemble,
        head=cfg.head,
        objective=cfg.objective,
        max_length=cfg.max_length,
        embed_prompt=cfg.embed_prompt,
        embed_layers=cfg.embed_layers,
        l2=cfg.l2,
        seed=cfg.seed,
        embed_pooling=cfg.embed_pooling,
        embed_dtype=cfg.embed_dtype,
        tests=cfg.test,
        max_pairs=cfg.max_pairs,
        debias_length=cfg.debias_length,
    )
    for row in r["folds"]:
        console.print(
            f"fold {row['fold']}: accuracy {row['accuracy']:.3f}, length-only {row['length_baseline']:.3f} "
            f"({row['pairs']} pairs)"
        )
    console.print(
        f"{cfg.folds}-fold accuracy {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} (length-only "
        f"{r['length_baseline_mean']:.3f}); {r['total_seconds']:.0f} s in all; wrote {cfg.out}",
        soft_wrap=True,
    )
    for row in r["out_of_domain"]:
        console.print(
            f"out of domain {row['data']}: accuracy {row['accuracy']:.3f}, length-only "
            f"{row['length_baseline']:.3f} ({row['pairs']} pairs)",
            soft_wrap=True,
        )


bench_app.command("train")(
    config_command(
        BenchTrainConfig,
        _train,
        "Train each engine on the same pairs and steps; report speed, tokens, padding, memory, loss.",
    )
)
bench_app.command("score")(
    config_command(
        BenchScoreConfig,
        _score,
        "Responses/s of RewardModel.score vs a naive per-example loop vs the transformers pipeline.",
    )
)
bench_app.command("serve")(
    config_command(
        BenchServeConfig,
        _serve,
        "Requests/s, p50/p99 latency and server RSS of rewardlab serve under concurrent load.",
    )
)
bench_app.command("embedding")(
    config_command(
        BenchEmbeddingConfig,
        _embedding,
        "K-fold accuracy of an embedding reward model, with the length-only baseline on the same folds.",
    )
)
