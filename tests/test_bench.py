"""``rewardlab bench train`` on a tiny model: both engines, the same pairs, a complete report."""

from __future__ import annotations

import json

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


def test_bench_rejects_unknown_engine(tmp_path, demo_file, capsys):
    code = main(
        [
            "bench",
            "train",
            "--model",
            "tiny-llama",
            "--data",
            str(demo_file),
            "--engines",
            "native,fast",
            "--out",
            str(tmp_path / "b.json"),
        ]
    )
    assert code == 2 and "unknown ['fast']" in capsys.readouterr().err


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
