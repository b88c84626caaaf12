"""Checks that need a CUDA GPU: skipped on a machine without one (CI included).

Run on a lent GPU machine by ``scripts/gpu_checks.sh`` (``pytest -m gpu``). They cover what the
CPU cannot: FlexAttention's backward pass through rewardlab's prefix-shared/packed layout,
scoring on the device in fp32 and bf16, and a short training run with FlexAttention.
"""

from __future__ import annotations

import math

import pytest
import torch

from rewardlab.models.encoding import DECODER
from rewardlab.models.reward_model import RewardModel, load_model_and_tokenizer
from rewardlab.training.batching import PaddedCollator, SharedPrefixCollator
from tests.training.test_batching import groups_for, loss_and_grads, setup

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(autouse=True)
def _exact_matmuls():
    """TF32 would blur fp32 comparisons; these tests compare layouts, not speed."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def on_gpu(batch):
    return {k: v.cuda() for k, v in batch.items()}


def test_flex_attention_gradients_match_padded_rows(tiny_models, demo_rows):
    model, tok, enc = setup(tiny_models["llama"])
    model.cuda()
    groups = groups_for(demo_rows, enc)
    padded = on_gpu(PaddedCollator(tok.pad_token_id, "right", DECODER)(groups))
    packed = on_gpu(SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups))
    flex, _ = load_model_and_tokenizer(tiny_models["llama"], attn_implementation="flex_attention")
    flex.config.pad_token_id = tok.pad_token_id
    flex.cuda().eval()
    ref_r, ref_loss, ref_g = loss_and_grads(model, padded)
    r, loss, g = loss_and_grads(flex, packed)
    assert ref_r.std() > 0
    assert torch.allclose(r, ref_r, atol=1e-4) and loss == pytest.approx(ref_loss, abs=1e-4)
    assert g.keys() == ref_g.keys()
    for k in g:
        assert torch.allclose(g[k], ref_g[k], atol=1e-3), k


def test_scoring_on_the_gpu_matches_the_cpu(tiny_models, demo_rows):
    prompts = [r["prompt"] for r in demo_rows[:12] for _ in (0, 1)]
    responses = [r[k] for r in demo_rows[:12] for k in ("chosen", "rejected")]
    cpu = RewardModel.from_pretrained(tiny_models["llama"], device="cpu").score(prompts, responses)
    gpu = RewardModel.from_pretrained(tiny_models["llama"], device="cuda")
    assert next(gpu.model.parameters()).is_cuda
    assert gpu.score(prompts, responses) == pytest.approx(cpu, abs=1e-4)
    assert gpu.score(prompts, responses, layout="padded") == pytest.approx(cpu, abs=1e-4)
    bf16 = RewardModel.from_pretrained(tiny_models["llama"], device="cuda", dtype="bfloat16")
    assert bf16.score(prompts, responses) == pytest.approx(cpu, abs=0.05)


def test_flex_attention_scoring_gives_the_sdpa_rewards(tiny_models, demo_rows):
    prompts = [r["prompt"] for r in demo_rows[:6] for _ in (0, 1)]
    responses = [r[k] for r in demo_rows[:6] for k in ("chosen", "rejected")]
    sdpa = RewardModel.from_pretrained(tiny_models["llama"], max_length=48, device="cuda")
    flex = RewardModel.from_pretrained(
        tiny_models["llama"], max_length=48, device="cuda", attn_implementation="flex_attention"
    )
    assert flex.score_layout() == "packed", flex.layout_note
    expected = sdpa.score(prompts, responses, layout="padded")
    assert flex.score(prompts, responses) == pytest.approx(expected, abs=1e-4)


def test_embeddings_on_the_gpu_match_the_cpu(tiny_models, demo_rows):
    from rewardlab.models.embedding import Embedder

    prompts, responses = [r["prompt"] for r in demo_rows[:8]], [r["chosen"] for r in demo_rows[:8]]
    cpu = Embedder(tiny_models["bert"], max_length=64, use_cache=False, device="cpu").embed(
        prompts, responses
    )
    gpu = Embedder(tiny_models["bert"], max_length=64, use_cache=False, device="cuda").embed(
        prompts, responses
    )
    assert gpu.device.type == "cpu" and torch.allclose(gpu, cpu, atol=1e-4)


def test_flex_attention_training_runs(tiny_models, demo_file, tmp_path):
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = tmp_path / "flex"
    res = train(
        TrainConfig(
            model=str(tiny_models["llama"]),
            data=str(demo_file),
            out=str(out),
            attn_implementation="flex_attention",
            max_steps=4,
            batch_size=8,
            max_length=64,
            precision="fp32",
            logging_steps=1,
        )
    )
    assert res.summary["steps"] == 4 and res.summary["batching"]["layout"] == "packed"
    assert math.isfinite(res.summary["train_metrics"]["train_loss"])
    rm = RewardModel.from_pretrained(out, device="cuda")
    assert all(math.isfinite(r) for r in rm.score(["What is 2 + 2?"], ["4"]))
