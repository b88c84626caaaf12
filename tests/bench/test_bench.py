"""``rewardlab bench train`` on a tiny model: both engines, the same pairs, a complete report."""

from __future__ import annotations

import json

import pytest

from rewardlab.cli import main


def test_bench_train_reports_both_engines(tiny_models, demo_file, tmp_path):
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "train",
            "--model",
            str(tiny_models["llama"]),
            "--data",
            str(demo_file),
            "--pairs",
            "20",
            "--batch-size",
            "8",
            "--max-length",
            "96",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["pairs_used"] == 16  # rounded down to whole batches
    native, trl = report["engines"]["native"], report["engines"]["trl"]
    for r in (native, trl):
        assert r["steps"] == 2 and r["pairs"] == 16
        assert r["pairs_per_s"] > 0 and r["peak_rss_mb"] > 0 and 0 < r["mfu"] < 1
        assert 0 <= r["padding_share"] < 1 and r["final_loss"] is not None
    assert native["layout"] == "packed" and trl["layout"] == "trl padded"
    # prefix sharing computes each prompt once and packing wastes little: fewer positions than TRL
    assert native["positions"] < trl["positions"] and native["padding_share"] < trl["padding_share"]
    assert report["native_over_trl"]["positions"] < 1
    # TRL runs each prompt twice, so on the same pairs it must count more real tokens than native
    assert trl["real_tokens"] > native["real_tokens"]
    table = out.with_suffix(".md").read_text().splitlines()
    assert len(table) == 2 + 3  # header, rule, native, trl, ratio
    from rewardlab.runtime import auto_precision

    assert native["precision"] == auto_precision("cpu").precision and trl["precision"] == "fp32"
    assert table[2].startswith(f"| demo.jsonl, batch 8 | native (packed, {native['precision']}) | 16 / 2 | ")
    assert f"**{report['native_over_trl']['pairs_per_s']:.2f}×**" in table[4]
    # the machine's speed-deciding CPU flags and its load are written beside the figures
    from rewardlab.bench.train import SPEED_FLAGS
    from rewardlab.runtime import cpu_flags

    machine = report["machine"]
    assert set(machine["cpu_flags"]) == cpu_flags() & SPEED_FLAGS
    assert len(machine["load_average_before"]) == len(machine["load_average_after"]) == 3


@pytest.mark.slow
def test_bench_train_runs_a_grid_in_one_command(tiny_models, demo_rows, demo_file, tmp_path):
    """Two data sets x two batch sizes, pairs per batch size: four cells, batch size outer."""
    from tests.conftest import write_jsonl

    (tmp_path / "llmbar").mkdir()
    other = write_jsonl(tmp_path / "llmbar" / "test.jsonl", demo_rows[300:])
    out = tmp_path / "grid.json"
    args = ["bench", "train", "--model", str(tiny_models["llama"]), "--engines", "native"]
    args += ["--data", str(demo_file), "--data", str(other), "--batch-size", "4,8", "--pairs", "8,16"]
    assert main([*args, "--max-length", "96", "--out", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    cells = [(r["command"]["batch_size"], r["command"]["data"], r["pairs_used"]) for r in runs]
    assert cells == [(4, str(demo_file), 8), (4, str(other), 8), (8, str(demo_file), 16), (8, str(other), 16)]
    assert [r["engines"]["native"]["steps"] for r in runs] == [2, 2, 2, 2]
    rows = out.with_suffix(".md").read_text().splitlines()[2:]
    labels = [row.split(" | ")[0] for row in rows]
    assert labels == [
        "| demo.jsonl, batch 4",
        "| llmbar, batch 4",
        "| demo.jsonl, batch 8",
        "| llmbar, batch 8",
    ]


def test_bench_train_table_orders_cells_and_pairs_counts(tmp_path, monkeypatch):
    """The grid without training: batch size outer, data inner, one --pairs count reused for all."""
    import rewardlab.bench.train as bt

    calls = []

    def fake_cell(*, model, data, pairs, batch_size, **common):
        calls.append((batch_size, data, pairs, common["engines"]))
        r = {"layout": "packed", "pairs": pairs, "steps": pairs // batch_size, "pairs_per_s": 1.0}
        r |= {"real_tokens_per_s": 10.0, "positions": 100, "padding_share": 0.1, "peak_rss_mb": 5.0}
        r |= {"final_loss": 0.69, "mean_loss": None, "mfu": 0.5}
        return {"command": {"data": data, "batch_size": batch_size}, "engines": {"native": r}}

    monkeypatch.setattr(bt, "bench_train", fake_cell)
    out = tmp_path / "t.json"
    result = bt.bench_train_table(
        model="m",
        data=["a/test.jsonl", "b.jsonl"],
        batch_sizes=[8, 32],
        pairs=[64],
        out=str(out),
        engines=["native"],
    )
    assert calls == [(8, "a/test.jsonl", 64, ["native"]), (8, "b.jsonl", 64, ["native"])] + [
        (32, "a/test.jsonl", 64, ["native"]),
        (32, "b.jsonl", 64, ["native"]),
    ]
    assert json.loads(out.read_text()) == result and len(result["runs"]) == 4
    rows = out.with_suffix(".md").read_text().splitlines()
    assert (
        rows[2]
        == "| a, batch 8 | native (packed, fp32) | 64 / 8 | 1.00 | 10 | 100 | 10.0% | 5 | 0.6900 / n/a "
        "| 50.0% |"
    )
    assert rows[5].startswith("| b.jsonl, batch 32 | native (packed, fp32) | 64 / 2 |")


def test_bench_train_gives_lora_options_to_every_engine(demo_file, tmp_path, monkeypatch):
    """``--lora --lora-dropout 0`` reaches each engine's training config; without it the default stays."""
    import subprocess

    import rewardlab.bench.train as bt

    specs: dict[str, dict] = {}

    def fake_worker(cmd, **kw):  # the worker process: record its spec, answer a minimal result
        spec = json.loads(open(cmd[-2]).read())["train"]
        specs[spec["engine"] + ("-bf16" if spec["precision"] == "bf16" else "")] = spec
        r = {"layout": "x", "pairs": 8, "steps": 1, "pairs_per_s": 1.0, "peak_rss_mb": 1.0, "positions": 9}
        open(cmd[-1], "w").write(json.dumps(r))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    pair = {"prompt": "p", "chosen": "a", "rejected": "b"}
    monkeypatch.setattr(bt, "select_pairs", lambda *a: ([pair] * 8, 0))
    monkeypatch.setattr(bt.subprocess, "run", fake_worker)
    common = {"model": "m", "data": str(demo_file), "pairs": 8, "batch_size": 8, "max_length": 64}
    report = bt.bench_train(engines=["native", "trl", "trl-bf16"], lora=True, lora_dropout=0.0, **common)
    assert sorted(specs) == ["native", "trl", "trl-bf16"]
    assert all(s["lora"] is True and s["lora_dropout"] == 0.0 for s in specs.values())
    assert report["command"]["lora_dropout"] == 0.0
    specs.clear()
    bt.bench_train(engines=["native"], lora=True, **common)
    assert "lora_dropout" not in specs["native"]  # the training default decides


def test_bench_train_rejects_bad_engines_pairs_and_sizes(demo_file, tmp_path, capsys):
    base = [
        "bench",
        "train",
        "--model",
        "tiny-llama",
        "--data",
        str(demo_file),
        "--out",
        str(tmp_path / "b.json"),
    ]
    assert main([*base, "--batch-size", "8,32", "--pairs", "64,128,256"]) == 2
    assert "one per batch size (2), not 3" in capsys.readouterr().err
    assert main([*base, "--batch-size", "8,x"]) == 2
    assert "--batch-size expects positive integers" in capsys.readouterr().err
    assert main([*base, "--engines", "native,fast"]) == 2
    assert "unknown ['fast']" in capsys.readouterr().err
    assert main([*base, "--lora", "--lora-dropout", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "--lora-dropout must be in [0, 1), got 1.5" in err and "Traceback" not in err
    assert not (tmp_path / "b.json").exists()


def test_bench_score_on_pairs_and_on_a_pool(tiny_models, demo_file, tmp_path):
    from rewardlab.data.demo import write_candidates

    pool = tmp_path / "pool.jsonl"
    write_candidates(pool, 6, 4, seed=0)
    for data, extra, distinct in ((demo_file, [], 8), (pool, ["--pool"], 4)):
        out = tmp_path / "score.json"
        args = ["bench", "score", "--model", str(tiny_models["llama"]), "--data", str(data), "--n", "16"]
        assert main([*args, "--max-length", "64", "--out", str(out), *extra]) == 0
        r = json.loads(out.read_text())
        assert r["responses"] == 16 and r["distinct_prompts"] == distinct  # pairs: 2 per prompt; pool: 4
        assert set(r["results"]) == {
            "rewardlab_score",
            "rewardlab_score_padded",
            "naive_loop",
            "transformers_pipeline",
        }
        assert r["results"]["rewardlab_score"]["layout"] == "packed" and r["command"]["pool"] == bool(extra)
        assert r["max_abs_diff_batched_vs_naive"] < 1e-5 and r["max_abs_diff_padded_vs_naive"] < 1e-5


def test_bench_serve_in_its_own_process_and_in_a_thread(tiny_models, demo_file, tmp_path):
    for extra in ([], ["--in-process"]):
        out = tmp_path / "serve.json"
        args = ["bench", "serve", "--model", str(tiny_models["llama"]), "--data", str(demo_file)]
        assert (
            main([*args, "--clients", "4", "--requests", "12", "--items", "2", "--out", str(out), *extra])
            == 0
        )
        r = json.loads(out.read_text())
        assert r["requests"] == 12 and r["errors"] == 0 and r["command"]["in_process"] == bool(extra)
        assert 1 <= r["forward_calls"] <= 12 and r["p99_ms"] >= r["p50_ms"] > 0


def test_training_flops_per_token_count_what_lora_computes(tmp_path):
    """6·N for full fine-tuning; LoRA: 4·(N + adapter) + 2·adapter, the adapter read from its file."""
    import torch
    from safetensors.torch import save_file

    from rewardlab.bench.worker import flops_per_token, non_embedding_params

    assert flops_per_token(100) == 600
    assert flops_per_token(100, adapter=10) == 4 * 110 + 20  # 460: no weight gradients for the frozen 100
    save_file(
        {"base_model.model.layers.0.q.lora_A.weight": torch.zeros(4, 16), "score.weight": torch.zeros(1, 16)}
        | {"base_model.model.embed_tokens.weight": torch.zeros(50, 16)},  # saved when a pad token was added
        str(tmp_path / "adapter_model.safetensors"),
    )
    assert non_embedding_params(tmp_path) == 64 + 16  # what a LoRA run's OUT holds: its adapter


def test_bench_train_lora_counts_the_adapter_in_its_mfu(tiny_models, demo_file, tmp_path):
    """A LoRA cell records its adapter's size and computes its MFU from LoRA's FLOPs, not 6·N."""
    from rewardlab.bench.train import bench_train
    from rewardlab.bench.worker import flops_per_token

    report = bench_train(
        model=str(tiny_models["llama"]), data=str(demo_file), pairs=8, engines=["native"], batch_size=8,
        max_length=64, lora=True, lora_dropout=0.0,
    )  # fmt: skip
    r = report["engines"]["native"]
    assert 0 < r["adapter_params"] < r["non_embedding_params"]
    expected = flops_per_token(r["non_embedding_params"], r["adapter_params"]) * r["real_tokens"]
    assert r["achieved_flops"] == pytest.approx(expected / r["train_runtime_s"])
    # not full fine-tuning's count (the tiny model's rank-16 adapter is as large as its base weights)
    assert expected != 6 * r["non_embedding_params"] * r["real_tokens"]
