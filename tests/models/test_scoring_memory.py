"""Scoring holds no autograd graph and, in ``bench score``, one model at a time (no memory thresholds).

With the graph kept, a scoring batch held every layer's activations until its rewards were read:
SmolLM2-135M took 4.3 GB instead of 1.0 GB for 8 padded rows of 256 tokens (dev/LOG.md).
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from rewardlab.models.backbone import forward_rewards, pad_batch
from rewardlab.models.reward_model import RewardModel


def _texts(demo_rows, n=6):
    rows = demo_rows[:n]
    return [r["prompt"] for r in rows], [r["chosen"] for r in rows]


def _head_outputs(rm):
    """A list that receives, for every forward of the reward head, whether its output is in a graph."""
    seen: list[bool] = []
    handle = rm.model.score.register_forward_hook(lambda _m, _a, out: seen.append(out.requires_grad))
    return seen, handle


@pytest.mark.parametrize("layout", ["packed", "padded"])
def test_score_builds_no_autograd_graph(local, demo_rows, layout):
    prompts, responses = _texts(demo_rows)
    assert all(p.requires_grad for p in local.model.parameters())  # as loaded: trainable weights
    seen, handle = _head_outputs(local)
    try:
        local.score(prompts, responses, batch_size=4, layout=layout)
        local.score(prompts[:1], responses[:1], batch_size=1)  # bench score's naive loop
        _, feats = local.score(prompts, responses, layout=layout, return_features=True)
    finally:
        handle.remove()
    assert seen and not any(seen)
    assert torch.is_grad_enabled()  # the caller's grad mode is left as it was
    assert not feats.is_inference()  # features come back as an ordinary tensor
    feats.add_(1.0)  # which the caller may change in place


def test_score_rewards_equal_those_computed_with_autograd_on(local, demo_rows):
    """The rewards are those of the forward pass with autograd on, as scoring computed them before."""
    prompts, responses = _texts(demo_rows)
    encoded = [local.encoder.encode(p, r) for p, r in zip(*local.conform(prompts, responses), strict=True)]
    with torch.enable_grad():
        batch = pad_batch(encoded, local.tokenizer.pad_token_id, "right", local.encoder.arch)
        before = forward_rewards(local.model, batch)
    assert before.requires_grad
    for layout in ("packed", "padded"):
        got = local.score(prompts, responses, batch_size=4, layout=layout)
        assert got == pytest.approx(before.tolist(), abs=1e-5)


def test_bench_score_holds_one_model_at_a_time(tiny_models, demo_file, tmp_path, monkeypatch):
    """Another dtype than float32: its model is freed before the float32 reference loads."""
    from rewardlab.bench.scoring import bench_score

    loaded: list[weakref.ref] = []
    alive_at_load: list[int] = []
    original = RewardModel.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        gc.collect()
        alive_at_load.append(sum(ref() is not None for ref in loaded))
        model = original(cls, *args, **kwargs)
        loaded.append(weakref.ref(model.model))
        return model

    monkeypatch.setattr(RewardModel, "from_pretrained", classmethod(counting))
    report = bench_score(
        model=str(tiny_models["llama"]), data=str(demo_file), out=str(tmp_path / "s.json"), n=8,
        batch_size=4, max_length=48, device="cpu", dtype="bf16-mixed",
    )  # fmt: skip
    assert alive_at_load == [0, 0] and len(loaded) == 2  # the float32 reference loaded with none alive
    assert report["command"]["dtype_used"].startswith("bf16-mixed")
    assert list(report["results"]) == [
        "rewardlab_score",
        "rewardlab_score_padded",
        "naive_loop",
        "transformers_pipeline",
    ]
