"""Per-sample signals (rewardlab.models.signals) and the feature statistics behind feature_distance.

Tiny random-initialised models trained for a few steps on the CPU. Run:
``pytest tests/models/test_signals.py -q``.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from rewardlab.cli import main
from rewardlab.models.feature_stats import (
    FEATURE_STATS_FILE,
    fit_feature_stats,
    load_feature_stats,
    outlier_probability,
    save_feature_stats,
)
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.signals import (
    SIGNALS,
    available_signals,
    score_with_signals,
    signal_means,
    signal_scorer,
    text_signals,
)
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

#: Inputs far from the demo world's: words the tiny tokenizers never saw, at length.
ODD = ["qzx vvk jjjw " * 12, "|||| #### @@@@ ~~~~ " * 8, "0x7f 0x3a 0x11 0xff " * 10]


def _train(tiny_models, data, out, arch="llama", **kw):
    base = {"max_length": 64, "batch_size": 8, "learning_rate": 1e-3, "max_steps": 4, "eval_split": 0.0}
    train(TrainConfig(model=str(tiny_models[arch]), data=str(data), out=str(out), **{**base, **kw}))
    return out


@pytest.fixture(scope="module")
def outcome(tiny_models, demo_file, tmp_path_factory):
    """A full fine-tuned tiny LLaMA (demo data), and the prompts/responses it was fitted on."""
    return _train(tiny_models, demo_file, tmp_path_factory.mktemp("sig") / "full")


def _pairs(rows, n=24):
    return [r["prompt"] for r in rows[:n]], [r["chosen"] for r in rows[:n]]


def test_text_signals_count_words_and_find_refusals():
    s = text_signals(
        ["one two  three", "I CAN’T help with that.", [{"role": "assistant", "content": "As an AI, no"}]]
    )
    assert s["length"] == [3.0, 5.0, 4.0]
    assert s["refusal"] == [0.0, 1.0, 1.0]
    assert signal_means({"a": [1.0, None, 3.0], "b": [None]}) == {"a": 2.0}
    sorry = text_signals(["I'm sorry, but I can't share that.", "I'm sorry, but I can help: try this."])
    assert sorry["refusal"] == [1.0, 0.0]


def test_distance_with_every_direction_kept_is_the_shrunk_mahalanobis():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=g, dtype=torch.float64) * torch.linspace(
        0.5, 3, 12, dtype=torch.float64
    )
    stats = fit_feature_stats(x, rank=12)
    z = x - x.mean(0)
    s = z.T @ z / len(x)
    m = s.trace() / 12
    cov = (1 - stats.shrinkage) * s + stats.shrinkage * m * torch.eye(12, dtype=torch.float64)
    probe = torch.randn(5, 12, generator=g, dtype=torch.float64) * 4
    d = probe - x.mean(0)
    want = ((d @ torch.linalg.inv(cov)) * d).sum(1).sqrt()
    assert torch.allclose(stats.distance(probe), want, rtol=1e-6)
    assert 0 <= stats.shrinkage < 0.5  # 300 samples of 12 dims need little shrinkage


def test_fewer_samples_than_dimensions_still_separate_outliers():
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(8, 64, generator=g)
    x = torch.randn(40, 8, generator=g) @ basis + 0.1 * torch.randn(40, 64, generator=g)
    stats = fit_feature_stats(x, rank=16)
    assert stats.components.shape == (16, 64) and 0 < stats.shrinkage <= 1
    fresh = torch.randn(20, 8, generator=g) @ basis + 0.1 * torch.randn(20, 64, generator=g)
    away = fresh + 3 * torch.randn(20, 64, generator=g)  # off the training subspace
    assert stats.distance(fresh).max() < stats.distance(away).min()
    p = outlier_probability(stats.distance(away), stats.dim)
    assert float(p.min()) > 0.99


def test_statistics_round_trip_through_the_checkpoint_file(tmp_path):
    x = torch.randn(50, 10, generator=torch.Generator().manual_seed(2))
    stats = fit_feature_stats(x, rank=4)
    record = save_feature_stats(tmp_path, stats, "test features", "50 rows")
    loaded = load_feature_stats(tmp_path, {"feature_stats": record})
    assert record["rank"] == 4 and record["dim"] == 10
    assert torch.allclose(loaded.distance(x), stats.distance(x), rtol=1e-5)
    assert load_feature_stats(tmp_path, {}) is None


def test_outcome_training_stores_statistics_and_signals_keep_the_rewards(outcome, demo_rows):
    info = json.loads((outcome / "rewardlab.json").read_text())
    record = info["feature_stats"]
    assert record["file"] == FEATURE_STATS_FILE and (outcome / FEATURE_STATS_FILE).is_file()
    assert record["samples"] == info["normalization"]["samples"]
    model = RewardModel.from_pretrained(outcome, device="cpu")
    assert model.feature_stats is not None and model.feature_stats.dim == record["dim"]
    prompts, responses = _pairs(demo_rows)
    for kw in ({}, {"normalize": True}, {"layout": "padded", "batch_size": 3}):
        rewards, signals = score_with_signals(model, prompts, responses, **kw)
        assert rewards == model.score(prompts, responses, **kw)  # exactly, not approximately
    signals = score_with_signals(model, prompts, responses)[1]
    assert set(signals) == {"length", "refusal", "feature_distance"} and set(signals) <= set(SIGNALS)
    assert available_signals(model) == list(signals)
    assert all(len(v) == len(prompts) for v in signals.values())
    assert signal_scorer(model)(prompts, responses) == signals


def test_a_training_sample_is_nearer_than_an_odd_input(outcome, demo_rows):
    model = RewardModel.from_pretrained(outcome, device="cpu")
    prompts, responses = _pairs(demo_rows, 32)
    near = score_with_signals(model, prompts, responses)[1]["feature_distance"]
    far = score_with_signals(model, prompts[: len(ODD)], ODD)[1]["feature_distance"]
    assert sorted(near)[len(near) // 2] < min(far), (near, far)


def test_older_checkpoint_gets_statistics_from_the_fit_command(outcome, demo_file, tmp_path, demo_rows):
    old = tmp_path / "old"
    shutil.copytree(outcome, old)
    (old / FEATURE_STATS_FILE).unlink()
    info = json.loads((old / "rewardlab.json").read_text())
    del info["feature_stats"]
    (old / "rewardlab.json").write_text(json.dumps(info))
    model = RewardModel.from_pretrained(old, device="cpu")
    prompts, responses = _pairs(demo_rows)
    assert "feature_distance" not in score_with_signals(model, prompts, responses)[1]
    assert main(["signals", "fit", "--model", str(old), "--data", str(demo_file), "--samples", "300"]) == 0
    record = json.loads((old / "rewardlab.json").read_text())["feature_stats"]
    assert record["samples"] == 300 and (old / FEATURE_STATS_FILE).is_file()
    refit = RewardModel.from_pretrained(old, device="cpu")
    near = score_with_signals(refit, prompts, responses)[1]["feature_distance"]
    far = score_with_signals(refit, prompts[: len(ODD)], ODD)[1]["feature_distance"]
    assert sorted(near)[len(near) // 2] < min(far)


def test_a_missing_statistics_file_only_drops_the_signal(outcome, tmp_path, demo_rows, caplog):
    copy = tmp_path / "copy"
    shutil.copytree(outcome, copy)
    (copy / FEATURE_STATS_FILE).write_bytes(b"not safetensors")
    model = RewardModel.from_pretrained(copy, device="cpu")
    assert model.feature_stats is None and "damaged" in caplog.text
    (copy / FEATURE_STATS_FILE).unlink()
    model = RewardModel.from_pretrained(copy, device="cpu")
    prompts, responses = _pairs(demo_rows, 4)
    assert "feature_distance" not in score_with_signals(model, prompts, responses)[1]
    assert "missing" in caplog.text


def test_fit_command_fits_an_embedding_model(embedding_checkpoint, demo_file, tmp_path):
    old = tmp_path / "emb"
    shutil.copytree(embedding_checkpoint, old)
    assert main(["signals", "fit", "--model", str(old), "--data", str(demo_file), "--samples", "64"]) == 0
    record = json.loads((old / "rewardlab.json").read_text())["feature_stats"]
    assert record["features"] == "embedding" and record["samples"] == 64
    assert RewardModel.from_pretrained(old, device="cpu").feature_stats.samples == 64


def test_fit_command_refuses_a_missing_checkpoint(demo_file, tmp_path):
    assert main(["signals", "fit", "--model", str(tmp_path / "nope"), "--data", str(demo_file)]) == 2


@pytest.mark.parametrize("merge", [False, True])
def test_lora_checkpoints_store_statistics(tiny_models, small_demo, tmp_path, demo_rows, merge):
    out = _train(tiny_models, small_demo, tmp_path / "lora", lora=True, lora_r=4, merge=merge, max_steps=2)
    model = RewardModel.from_pretrained(out, device="cpu")
    assert model.feature_stats is not None
    prompts, responses = _pairs(demo_rows, 8)
    rewards, signals = score_with_signals(model, prompts, responses)
    assert rewards == model.score(prompts, responses)
    assert all(math.isfinite(d) for d in signals["feature_distance"])


def test_export_carries_the_statistics(outcome, tmp_path, demo_rows):
    from rewardlab.models.export import export_checkpoint

    export_checkpoint(outcome, tmp_path / "exp")
    assert (tmp_path / "exp" / FEATURE_STATS_FILE).is_file()
    src = RewardModel.from_pretrained(outcome, device="cpu")
    exp = RewardModel.from_pretrained(tmp_path / "exp", device="cpu")
    prompts, responses = _pairs(demo_rows, 8)
    a = score_with_signals(src, prompts, responses)[1]["feature_distance"]
    b = score_with_signals(exp, prompts, responses)[1]["feature_distance"]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3


def test_encoder_checkpoint_reads_the_classifier_input(tiny_models, small_demo, tmp_path, demo_rows):
    out = _train(tiny_models, small_demo, tmp_path / "bert", arch="bert", max_steps=2)
    model = RewardModel.from_pretrained(out, device="cpu")
    prompts, responses = _pairs(demo_rows, 8)
    rewards, features = model.score(prompts, responses, return_features=True)
    assert rewards == model.score(prompts, responses)
    assert features.shape == (8, model.model.config.hidden_size)
    assert "feature_distance" in score_with_signals(model, prompts, responses)[1]


def test_embedding_model_gives_spread_and_distance(embedding_checkpoint, demo_rows):
    model = RewardModel.from_pretrained(embedding_checkpoint, device="cpu")
    assert (
        json.loads((embedding_checkpoint / "rewardlab.json").read_text())["feature_stats"]["features"]
        == "embedding"
    )
    prompts, responses = _pairs(demo_rows)
    rewards, signals = score_with_signals(model, prompts, responses, normalize=True)
    assert rewards == model.score(prompts, responses, normalize=True)
    assert signals["spread"] == pytest.approx(model.score_ensemble(prompts, responses)[1], abs=1e-6)
    far = score_with_signals(model, prompts[: len(ODD)], ODD)[1]["feature_distance"]
    assert sorted(signals["feature_distance"])[len(prompts) // 2] < min(far)


def test_ensemble_of_checkpoints_gives_spread(outcome, tiny_models, small_demo, tmp_path, demo_rows):
    from rewardlab.models.ensemble import RewardEnsemble

    other = _train(tiny_models, small_demo, tmp_path / "second", seed=7, max_steps=2)
    ens = RewardEnsemble.from_pretrained([outcome, other], aggregation="uwo", device="cpu")
    prompts, responses = _pairs(demo_rows, 8)
    rewards, signals = score_with_signals(ens, prompts, responses)
    assert rewards == ens.score(prompts, responses)
    assert signals["spread"] == pytest.approx(ens.score_spread(prompts, responses))
    assert "feature_distance" not in signals and available_signals(ens) == list(signals)
