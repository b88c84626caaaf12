"""A bf16 LoRA run holds its frozen linear weights in bf16 once: dtypes, equal losses, saved weights.

Tiny random LLaMA models (CPU, seconds each).

Run: ``pytest tests/training/test_frozen_weights.py -q``.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.models.reward_model import RewardModel
from rewardlab.training import frozen_weights
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

#: Old path (autocast casts the float32 weights at each forward) against the new (held in bf16): the
#: same bf16 products, so the losses agree to float32 rounding; a wrong cast (embeddings or norms in
#: bf16, trainable weights in bf16) moves them by 1e-3 or more on these models.
LOSS_TOL = 1e-5


def cfg(model, data, out, **kw):
    base = {
        "max_length": 64, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1000,
        "lora": True, "lora_r": 4, "max_steps": 4, "eval_split": 0.0, "precision": "bf16", "seed": 0,
    }  # fmt: skip
    base.update(kw)
    return TrainConfig(model=str(model), data=str(data), out=str(out), **base)


def _peft_model(path):
    from peft import get_peft_model

    from rewardlab.models.reward_model import load_model_and_tokenizer, model_arch
    from rewardlab.training.trainer_setup import lora_config

    model, _ = load_model_and_tokenizer(str(path))
    return get_peft_model(model, lora_config(cfg(path, path, path), model_arch(model)))


def test_frozen_linear_weights_held_in_bf16_and_trainable_ones_float32(tiny_models):
    model = _peft_model(tiny_models["llama"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    held = frozen_weights.hold_frozen_for_run(model, lora=True, bf16=True)
    assert held.count > 0
    linear = {f"{n}.weight" for n, _ in frozen_weights.linear_modules(model)}
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.dtype == torch.float32, name  # adapters and the score head
        elif name in linear:
            assert p.dtype == torch.bfloat16, name  # the base layers
        else:
            assert p.dtype == torch.float32, name  # embeddings, norms
        if p.dtype == torch.bfloat16:
            assert torch.equal(p, before[name].to(torch.bfloat16))
    assert any("base_layer" in n for n in held.originals)
    assert not any("lora_" in n for n in held.originals)
    held.restore()
    for name, p in model.named_parameters():
        assert p.dtype == torch.float32 and torch.equal(p, before[name]), name  # exactly the originals


def test_nothing_held_without_lora_or_bf16(tiny_models):
    model = _peft_model(tiny_models["llama"])
    assert frozen_weights.hold_frozen_for_run(model, lora=True, bf16=False).count == 0
    assert frozen_weights.hold_frozen_for_run(model, lora=False, bf16=True).count == 0
    assert all(p.dtype == torch.float32 for p in model.parameters())


def _losses(out):
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in log if "loss" in r]


def test_held_run_trains_as_the_autocast_run_and_saves_float32(
    tiny_models, small_demo, tmp_path, monkeypatch, demo_rows
):
    seen = {}
    hold = frozen_weights.hold_frozen_for_run

    def watched(model, lora, bf16):
        held = hold(model, lora, bf16)
        seen["dtypes"] = {p.dtype for p in model.parameters() if not p.requires_grad}
        return held

    monkeypatch.setattr("rewardlab.training.recipes.outcome.hold_frozen_for_run", watched)
    new = tmp_path / "new"
    res = train(cfg(tiny_models["llama"], small_demo, new, merge=True))
    assert torch.bfloat16 in seen["dtypes"]
    assert res.summary["precision"]["frozen_linear"]["dtype"] == "bfloat16"
    monkeypatch.setattr(
        "rewardlab.training.recipes.outcome.hold_frozen_for_run", lambda *a: frozen_weights.FrozenWeights()
    )
    old = tmp_path / "old"
    train(cfg(tiny_models["llama"], small_demo, old, merge=True))
    new_losses, old_losses = _losses(new), _losses(old)
    assert len(new_losses) == 4
    assert new_losses == pytest.approx(old_losses, abs=LOSS_TOL)
    assert new_losses[0] != new_losses[-1]  # it trained
    for folder in (new / "adapter", new):  # the adapter and the merged model, as before: float32
        weights = load_file(
            folder / ("adapter_model.safetensors" if folder.name == "adapter" else "model.safetensors")
        )
        assert {t.dtype for t in weights.values()} == {torch.float32}
    prompts = [r["prompt"] for r in demo_rows[:4]]
    responses = [r["chosen"] for r in demo_rows[:4]]
    rewards_new = RewardModel.from_pretrained(new).score(prompts, responses)
    rewards_old = RewardModel.from_pretrained(old).score(prompts, responses)
    assert rewards_new == pytest.approx(rewards_old, abs=LOSS_TOL)  # merged onto the float32 base
