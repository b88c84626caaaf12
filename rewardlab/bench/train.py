"""``rewardlab bench train``: rewardlab's trainer against TRL's on the same pairs, model and steps.

What it does: loads the data, shuffles the usable pairs with the seed and keeps the first
``--pairs`` whose sequences fit ``--max-length`` uncut (so TRL, which drops longer pairs, trains
on exactly the same pairs), writes them to a JSONL file, then trains each engine in its own
process for ``pairs / batch size`` optimizer steps with the same seed and hyper-parameters, and
reports per engine: pairs/s, real tokens/s, token positions computed, padding share, peak RSS,
final loss, and model FLOP utilisation (6·N·tokens over the FLOP/s of a plain matrix multiply
measured in the same process: 2048² fp32 on the CPU; 4096² in the training precision on a GPU,
where peak GPU memory is reported too). The ratio native/TRL is of pairs/s.
``--attn-implementation flex_attention`` (GPU) applies to the native engine only: TRL's padded rows
have no block mask to use.

Several ``--data`` and comma-separated ``--batch-size``/``--pairs`` run every (batch size, data)
cell in turn, so one command reproduces a whole speed table (``docs/benchmarks.md``, the lab log);
the JSON then holds ``runs`` (one report per cell), and ``FILE.md`` next to it has the table in
Markdown.

Run: ``rewardlab bench train --model tiny-llama-30m --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--data ../shared/data/llmbar --batch-size 8,32 --pairs 64,128 --max-length 1024 --out bench.json``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError

#: CPU flags a benchmark report names: they decide ``--precision auto`` and the matmul peak.
SPEED_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8"})

#: Engines: rewardlab's trainer (in ``--precision``), TRL's RewardTrainer in fp32, and TRL with bf16=True.
ENGINES = ("native", "trl", "trl-bf16")


def engine_spec(engine: str, precision: str) -> tuple[str, str]:
    """(the TrainConfig engine, its precision) of a benchmark engine name."""
    if engine == "trl":
        return "trl", "fp32"
    if engine == "trl-bf16":
        return "trl", "bf16"
    return "native", precision


def engine_env(engine_kind: str) -> dict[str, str]:
    """The environment of an engine's process: TRL runs as users run it, without rewardlab's choices.

    rewardlab sets ``OMP_WAIT_POLICY`` itself on a busy machine
    (:func:`rewardlab.runtime.set_wait_policy`); TRL's process gets the variable only when the user
    set it.
    """
    import os

    from rewardlab.runtime import WAIT_POLICY_MARK

    env = dict(os.environ)
    if engine_kind == "trl":
        if env.pop(WAIT_POLICY_MARK, None) is not None:
            env.pop("OMP_WAIT_POLICY", None)
        env.setdefault("REWARDLAB_OMP_PASSIVE", "0")
    return env


def select_pairs(data_path: str, model: str, n: int, max_length: int, seed: int) -> tuple[list[dict], int]:
    """The first ``n`` usable pairs (seeded shuffle) that fit ``max_length`` uncut, and the number skipped."""
    from rewardlab.data import load_preferences
    from rewardlab.models.encoding import SequenceEncoder
    from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer, model_arch

    pairs = load_preferences(data_path, on_error="skip").training_pairs()
    random.Random(seed).shuffle(pairs)
    hf_model, tok = load_model_and_tokenizer(model)
    arch = model_arch(hf_model)
    ensure_pad_token(tok, hf_model, arch, allow_resize=False)
    del hf_model
    enc = SequenceEncoder(tok, arch, max_length - 4)  # slack: TRL tokenizes prompt + response jointly
    chosen, skipped = [], 0
    for p in pairs:
        if len(chosen) == n:
            break
        if any(e.cut for e in enc.encode_group(p.prompt, [p.chosen, p.rejected])):
            skipped += 1
            continue
        chosen.append({"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected})
    return chosen, skipped


def bench_train(
    *,
    model: str,
    data: str,
    pairs: int,
    engines: list[str],
    batch_size: int,
    max_length: int,
    out: str | None = None,
    seed: int = 0,
    learning_rate: float = 1e-5,
    batching: str = "auto",
    pack_tokens: int | None = None,
    attn_implementation: str | None = None,
    precision: str = "auto",
    lora: bool = False,
    lora_dropout: float | None = None,
    gradient_checkpointing: bool = False,
    compile: bool | None = None,  # noqa: A002  (the option's name)
) -> dict[str, Any]:
    """Run one cell of the benchmark and return its report, also written to ``out`` when given.

    ``lora_dropout`` (with ``lora``) is given to every engine; ``None`` keeps the training default.
    """
    import torch

    from rewardlab import __version__
    from rewardlab.io_utils import write_json
    from rewardlab.runtime import cpu_flags, quiet_transformers

    load_before = [round(x, 2) for x in os.getloadavg()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise RewardlabError(f"--engines: unknown {unknown}; choose from {ENGINES}")
    quiet_transformers()
    rows, skipped = select_pairs(data, model, pairs, max_length, seed)
    n = len(rows) - len(rows) % batch_size
    if n < batch_size:
        raise RewardlabError(f"only {len(rows)} pairs fit --max-length {max_length}: fewer than one batch")
    rows = rows[:n]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rewardlab-bench-") as tmp:
        pairs_file = Path(tmp) / "pairs.jsonl"
        pairs_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        for engine in engines:
            engine_kind, engine_precision = engine_spec(engine, precision)
            spec = {
                "train": {
                    "model": model,
                    "data": str(pairs_file),
                    "out": str(Path(tmp) / engine),
                    "engine": engine_kind,
                    "lora": lora,
                    **({"lora_dropout": lora_dropout} if lora_dropout is not None else {}),
                    "gradient_checkpointing": gradient_checkpointing,
                    "eval_split": 0.0,
                    "max_steps": n // batch_size,
                    "batch_size": batch_size,
                    "max_length": max_length,
                    "learning_rate": learning_rate,
                    "seed": seed,
                    "logging_steps": 1,
                    "save_steps": 10**9,
                    "norm_samples": 8,
                    "batching": batching,
                    "warmup_ratio": 0.0,
                    "pack_tokens": pack_tokens,
                    "precision": engine_precision,
                    # TRL's padded rows take no id-based block mask: FlexAttention is for rewardlab's layouts
                    "attn_implementation": attn_implementation if engine_kind == "native" else None,
                    "compile": compile if engine_kind == "native" else False,
                }
            }
            spec_file, result_file = Path(tmp) / f"{engine}.spec.json", Path(tmp) / f"{engine}.result.json"
            spec_file.write_text(json.dumps(spec))
            done = subprocess.run(
                [sys.executable, "-m", "rewardlab.bench.worker", str(spec_file), str(result_file)],
                capture_output=True,
                text=True,
                env=engine_env(engine_kind),
            )
            if done.returncode != 0:
                raise RewardlabError(f"engine {engine} failed:\n{done.stderr[-3000:]}")
            results[engine] = json.loads(result_file.read_text())
    report = {
        "rewardlab_version": __version__,
        "command": {
            "model": model,
            "data": data,
            "pairs": pairs,
            "engines": engines,
            "batch_size": batch_size,
            "max_length": max_length,
            "seed": seed,
            "learning_rate": learning_rate,
            "batching": batching,
            "pack_tokens": pack_tokens,
            "attn_implementation": attn_implementation,
            "precision": precision,
            "lora": lora,
            "lora_dropout": lora_dropout,
            "gradient_checkpointing": gradient_checkpointing,
            "compile": compile,
        },
        "pairs_used": n,
        "pairs_skipped_too_long": skipped,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            # what decides the precision and the peak (write them next to every figure)
            "cpu_flags": sorted(cpu_flags() & SPEED_FLAGS),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "engines": results,
    }
    for ref in ("trl", "trl-bf16"):
        if "native" in results and ref in results:
            report[f"native_over_{ref.replace('-', '_')}"] = {
                "pairs_per_s": results["native"]["pairs_per_s"] / results[ref]["pairs_per_s"],
                "positions": results["native"]["positions"] / results[ref]["positions"],
                "peak_rss": results["native"]["peak_rss_mb"] / results[ref]["peak_rss_mb"],
            }
    if out is not None:
        write_json(out, report)
    return report


def bench_train_table(
    *, model: str, data: list[str], batch_sizes: list[int], pairs: list[int], out: str, **common: Any
) -> dict[str, Any]:
    """Run every (batch size, data) cell; write the JSON to ``out`` and its Markdown table beside it.

    ``pairs`` is one count for every batch size or one per batch size, in the same order. With
    one cell the JSON is that cell's report; with several, ``{"runs": [report, ...]}``.
    """
    from rewardlab import __version__
    from rewardlab.io_utils import write_json

    if not data or not batch_sizes:
        raise RewardlabError("bench train: give at least one --data and one --batch-size")
    if len(pairs) not in (1, len(batch_sizes)):
        raise RewardlabError(
            f"--pairs: give one count or one per batch size ({len(batch_sizes)}), not {len(pairs)}"
        )
    counts = pairs * len(batch_sizes) if len(pairs) == 1 else pairs
    reports = [
        bench_train(model=model, data=d, pairs=n, batch_size=b, **common)
        for b, n in zip(batch_sizes, counts, strict=True)
        for d in data
    ]
    result = reports[0] if len(reports) == 1 else {"rewardlab_version": __version__, "runs": reports}
    write_json(out, result)
    Path(out).with_suffix(".md").write_text(markdown_table(reports))
    return result


#: The columns of the speed table (``docs/benchmarks.md``, ``dev/LOG.md``), one row per engine.
COLUMNS = (
    "data, batch",
    "engine (layout)",
    "pairs / steps",
    "pairs/s",
    "real tokens/s",
    "positions",
    "padding",
    "peak RSS MB",
    "final / mean loss",
    "MFU",
)


def data_label(path: str) -> str:
    """A short name for a data path: its folder for a directory or a generic file name."""
    p = Path(path)
    generic = p.name.split(".")[0] in {"test", "train", "data", "validation", "dev"}
    return p.parent.name if generic and p.parent.name else p.name


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """The table rows of one cell: one per engine, then the native/TRL ratios when both ran."""
    label = f"{data_label(report['command']['data'])}, batch {report['command']['batch_size']}"
    rows = []
    for name, r in report["engines"].items():
        gpu = f", peak GPU {r['peak_gpu_mb']:,.0f} MB" if r.get("peak_gpu_mb") else ""
        rows.append(
            [
                label,
                f"{name} ({r['layout']}, {r.get('precision', 'fp32')})",
                f"{r['pairs']} / {r['steps']}",
                f"{r['pairs_per_s']:.2f}",
                f"{r['real_tokens_per_s']:,.0f}",
                f"{r['positions']:,}",
                f"{r['padding_share']:.1%}",
                f"{r['peak_rss_mb']:,.0f}{gpu}",
                f"{_loss(r['final_loss'])} / {_loss(r['mean_loss'])}",
                f"{r['mfu']:.1%}",
            ]
        )
    for key, name in (("native_over_trl", "TRL"), ("native_over_trl_bf16", "TRL bf16")):
        ratio = report.get(key)
        if not ratio:
            continue
        rows.append(
            [
                "",
                f"**native / {name}**",
                "",
                f"**{ratio['pairs_per_s']:.2f}×**",
                "",
                f"{ratio['positions']:.2f}×",
                "",
                f"{ratio['peak_rss']:.2f}×",
                "",
                "",
            ]
        )
    return rows


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """The speed table of ``reports`` in Markdown, as the lab log (``dev/LOG.md``) shows it."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for r in reports for row in table_rows(r)]
    return "\n".join(lines) + "\n"
