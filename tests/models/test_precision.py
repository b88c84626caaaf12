"""Precision ``auto``: bf16 where the CPU computes it natively, and what it does to rewards and training.

The CPU's choice is forced with ``REWARDLAB_CPU_BF16`` (tests/conftest.py makes fp32 the default), so
both branches are tested on every machine whatever its flags.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rewardlab.errors import RewardlabError
from rewardlab.models.backbone import check_shared_layout
from rewardlab.models.mixed_precision import (
    AUTOCAST_PROBE_TOLERANCE,
    PROBE_TOLERANCE,
    is_bf16_autocast,
    is_bf16_mixed,
)
from rewardlab.models.reward_model import RewardModel, dtype_choice
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

#: How far a bf16 precision's rewards may lie from float32's, as shares of the float32 rewards'
#: spread (std over the sample): (typical: the median absolute difference; near-tie: the float32
#: margin below which a pair may flip). Measured on 96 HH-RLHF helpful pairs with the tiny LLaMA
#: trained (fp32) under 12 seeds on a CPU without native bf16 (avx2/fma): median difference
#: bf16-mixed 1.6e-4-9.4e-4, bf16-autocast 1.9e-4-1.05e-3, bfloat16 weights 1.8e-3-5.0e-3; no pair
#: with a float32 margin above 2 % of the spread flipped in any precision; rank correlation >= 0.99996
#: (bfloat16: >= 0.998). The largest single difference is no fit bound: it ranged 0.005-0.076 of the
#: spread for bf16-mixed (up to 0.1 for bf16-autocast, 0.15 for bfloat16) from one seed to the next,
#: one long response rounding differently; a 1 % limit on it, set from one training run on another
#: CPU (0.0065 there), failed on this one (0.013). Each typical limit is about twice the worst seed's;
#: the near-tie limits leave bf16-autocast (one near-tie flip under 3 % on the avx512_bf16 CPU) and
#: bfloat16 weights (about 3x the others' differences) more room than the 2 % that held here. The
#: typical limit does not tell bf16-mixed from bfloat16 weights on every seed (1.8e-3 on seed 42):
#: test_bf16_mixed_casts_only_the_matrix_multiplies checks what bf16-mixed keeps in float32.
BF16_LIMITS = {"bfloat16": (0.01, 0.1), "bf16-mixed": (0.002, 0.02), "bf16-autocast": (0.002, 0.03)}


def test_dtype_auto_follows_the_cpu_choice(tiny_models, monkeypatch):
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "1")
    assert dtype_choice("auto", "cpu")[0] == "bfloat16"
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="auto")
    assert rm.model.dtype == torch.bfloat16 and rm.dtype_note.startswith("bfloat16 (auto: forced")
    default = RewardModel.from_pretrained(tiny_models["llama"], device="cpu").model
    assert default.dtype == torch.float32 and not is_bf16_mixed(default)
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "0")
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="auto")
    assert rm.model.dtype == torch.float32 and rm.dtype_note.startswith("float32 (auto")
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bfloat16")
    assert rm.model.dtype == torch.bfloat16 and "--dtype bfloat16" in rm.dtype_note
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bf16-mixed")
    assert is_bf16_mixed(rm.model) and "--dtype bf16-mixed" in rm.dtype_note
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bf16-autocast")
    assert is_bf16_autocast(rm.model) and "--dtype bf16-autocast" in rm.dtype_note
    assert not is_bf16_autocast(default)


def test_bf16_mixed_casts_only_the_matrix_multiplies(tiny_models):
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bf16-mixed")
    hf = rm.model
    dtypes = {name: p.dtype for name, p in hf.named_parameters()}
    assert dtypes["score.weight"] == torch.float32  # the head
    assert all(d == torch.float32 for n, d in dtypes.items() if "norm" in n or "embed" in n)
    linear = [n for n, m in hf.named_modules() if type(m) is torch.nn.Linear and n != "score"]
    assert linear and all(dtypes[f"{n}.weight"] == torch.bfloat16 for n in linear)
    out = hf(torch.tensor([[1, 2, 3]])).logits
    assert out.dtype == torch.float32  # the residual stream and head stay float32
    with pytest.raises(RewardlabError, match="bf16-mixed"):
        RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bf16")


@pytest.fixture(scope="module")
def trained_llama(tiny_models, demo_file, tmp_path_factory):
    """A tiny LLaMA trained (fp32) on the demo pairs, so its rewards carry signal worth comparing."""
    out = tmp_path_factory.mktemp("prec") / "rm"
    train(
        TrainConfig(
            data=str(demo_file),
            out=str(out),
            model=str(tiny_models["llama"]),
            max_length=64,
            epochs=1,
            learning_rate=3e-3,
            batch_size=16,
            eval_split=0.0,
            precision="fp32",
        )
    )
    return out


def _rows(shared_data, demo_rows):
    """A real-data sample (HH-RLHF helpful pairs) when ../shared/data is present, else the demo rows."""
    from rewardlab.data import load_preferences

    path = shared_data / "hh-rlhf-helpful-base" / "test.jsonl.gz" if shared_data else None
    if path is not None and path.exists():
        pairs = load_preferences(str(path)).training_pairs()[:96]
        return [p.prompt for p in pairs], [p.chosen for p in pairs], [p.rejected for p in pairs]
    return (
        [r["prompt"] for r in demo_rows[:96]],
        [r["chosen"] for r in demo_rows[:96]],
        [r["rejected"] for r in demo_rows[:96]],
    )


def _against_fp32(model, dtype: str, shared_data, demo_rows, layout: str) -> tuple:
    """(chosen, rejected) rewards in float32 and in ``dtype``, and the float32 rewards' spread."""
    prompts, chosen, rejected = _rows(shared_data, demo_rows)
    scored = [
        tuple(map(np.array, RewardModel.from_pretrained(model, device="cpu", dtype=d).score_pairs(
            prompts, chosen, rejected, layout=layout
        )))
        for d in ("float32", dtype)
    ]  # fmt: skip
    return scored[0], scored[1], np.concatenate(scored[0]).std()


def _assert_order_of_fp32(model_dir, dtype, shared_data, demo_rows, layout, clear_share, rho_min):
    """Typical difference from float32 within :data:`BF16_LIMITS`, no pair clear of a near-tie flipped."""
    typical, near_tie = BF16_LIMITS[dtype]
    (c32, r32), (c, r), spread = _against_fp32(model_dir, dtype, shared_data, demo_rows, layout)
    assert spread > 0
    diff = np.abs(np.r_[c, r] - np.r_[c32, r32]) / spread
    assert 0 < np.median(diff) <= typical, f"{dtype}: median difference {np.median(diff):.5f} of the spread"
    m32, m = c32 - r32, c - r
    clear = np.abs(m32) > near_tie * spread
    assert clear.sum() >= clear_share * len(m32)  # the flip check below is about most pairs
    assert np.array_equal(m32[clear] > 0, m[clear] > 0), f"{dtype} flipped a pair clear of a near-tie"
    rho = np.corrcoef(np.argsort(np.argsort(np.r_[c32, r32])), np.argsort(np.argsort(np.r_[c, r])))[0, 1]
    assert rho > rho_min


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_bf16_rewards_and_decisions_agree_with_fp32(trained_llama, shared_data, demo_rows, layout):
    # 0.4: pairs with a float32 margin above 10 % of the spread were 52-89 of 96 over the 12 seeds.
    _assert_order_of_fp32(trained_llama, "bfloat16", shared_data, demo_rows, layout, 0.4, 0.99)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_bf16_mixed_gives_the_order_of_fp32(trained_llama, shared_data, demo_rows, layout):
    # 0.75: how many pairs are clear of a near-tie is the trained model's, not bf16-mixed's (81-96 of
    # 96 over the 12 seeds); the test is that none of them flips.
    _assert_order_of_fp32(trained_llama, "bf16-mixed", shared_data, demo_rows, layout, 0.75, 0.999)


def test_bf16_mixed_passes_the_packed_layout_probe(trained_llama):
    mixed = RewardModel.from_pretrained(trained_llama, device="cpu", dtype="bf16-mixed")
    assert mixed.score_layout("auto") == "packed", mixed.layout_note
    assert "probed in float32 before the bf16-mixed conversion" in mixed.layout_note
    ok, why = check_shared_layout(mixed.model, mixed.encoder, mixed.tokenizer.pad_token_id)
    diff = float(why.rpartition("difference ")[2].rstrip(")"))
    assert ok and diff < PROBE_TOLERANCE


def test_bf16_autocast_runs_attention_in_bf16_and_the_head_in_float32(tiny_models):
    rm = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bf16-autocast")
    hf, seen = rm.model, {}
    o_proj = hf.model.layers[0].self_attn.o_proj
    hooks = [
        hf.score.register_forward_hook(lambda m, i, o: seen.update(head=(i[0].dtype, o.dtype))),
        o_proj.register_forward_hook(lambda m, i, o: seen.update(attn=i[0].dtype)),
        hf.model.norm.register_forward_hook(lambda m, i, o: seen.update(norm=(i[0].dtype, o.dtype))),
    ]
    out = hf(torch.tensor([[1, 2, 3]])).logits
    for h in hooks:
        h.remove()
    assert seen["attn"] == torch.bfloat16  # attention's output, in bf16 under autocast
    assert seen["norm"] == (torch.float32, torch.float32)  # residual stream and final norm float32
    assert seen["head"] == (torch.float32, torch.float32) and out.dtype == torch.float32
    assert hf.score.weight.dtype == torch.float32 and o_proj.weight.dtype == torch.bfloat16
    with pytest.raises(RewardlabError, match="bf16-autocast"):
        RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="autocast")


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_bf16_autocast_gives_the_order_of_fp32(trained_llama, shared_data, demo_rows, layout):
    # 0.7: pairs with a float32 margin above 3 % of the spread were 73-95 of 96 over the 12 seeds.
    _assert_order_of_fp32(trained_llama, "bf16-autocast", shared_data, demo_rows, layout, 0.7, 0.999)


def test_bf16_autocast_passes_the_packed_layout_probe(trained_llama):
    rm = RewardModel.from_pretrained(trained_llama, device="cpu", dtype="bf16-autocast")
    assert rm.score_layout("auto") == "packed" and "probed in float32" in rm.layout_note
    ok, why = check_shared_layout(rm.model, rm.encoder, rm.tokenizer.pad_token_id)
    diff = float(why.rpartition("difference ")[2].rstrip(")"))
    assert ok and diff < AUTOCAST_PROBE_TOLERANCE


def test_bf16_training_lowers_the_loss_like_fp32(tiny_models, demo_file, tmp_path, monkeypatch):
    losses = {}
    for precision in ("fp32", "bf16"):
        out = tmp_path / precision
        res = train(
            TrainConfig(
                data=str(demo_file),
                out=str(out),
                model=str(tiny_models["llama"]),
                max_length=64,
                max_steps=24,
                learning_rate=3e-3,
                batch_size=16,
                eval_split=0.0,
                logging_steps=1,
                precision=precision,
            )
        )
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        losses[precision] = [r["loss"] for r in log if "loss" in r]
        assert res.summary["precision"]["precision"] == precision
    for curve in losses.values():
        assert np.mean(curve[-6:]) < np.mean(curve[:6]) - 0.05  # it learns
    assert abs(np.mean(losses["bf16"][-6:]) - np.mean(losses["fp32"][-6:])) < 0.05


def test_auto_precision_is_recorded_in_the_train_summary(tiny_models, demo_file, tmp_path, monkeypatch):
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "1")
    res = train(
        TrainConfig(
            data=str(demo_file),
            out=str(tmp_path / "a"),
            model=str(tiny_models["llama"]),
            max_length=64,
            max_steps=2,
            batch_size=8,
            eval_split=0.0,
        )
    )
    recorded = json.loads((tmp_path / "a" / "train_summary.json").read_text())["precision"]
    assert recorded == res.summary["precision"]
    assert recorded["precision"] == "bf16" and "REWARDLAB_CPU_BF16" in recorded["reason"]
