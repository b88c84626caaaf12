"""Padding-free forward passes: packed rows computed at their real positions, same rewards and gradients."""

from __future__ import annotations

import json

import pytest
import torch

from rewardlab.models import backbone, unpadded
from rewardlab.models.encoding import DECODER, SequenceEncoder
from rewardlab.models.reward_model import (
    ensure_pad_token,
    forward_rewards,
    load_model_and_tokenizer,
    model_arch,
    positions_computed,
)
from rewardlab.training.batching import PaddedCollator, SharedPrefixCollator
from tests.training.test_batching import groups_for, loss_and_grads


def _setup(path, attn=None):
    model, tok = load_model_and_tokenizer(path, attn_implementation=attn)
    ensure_pad_token(tok, model, model_arch(model))
    return model.eval(), tok, SequenceEncoder(tok, DECODER, 48)


def rows_x_width(batch):
    return batch["input_ids"].numel()


def _seen_input_shapes(model, batch):
    shapes = []
    hook = model.register_forward_hook(
        lambda _m, _a, k, _out: shapes.append(tuple(k["input_ids"].shape)), with_kwargs=True
    )
    try:
        out = loss_and_grads(model, batch)
    finally:
        hook.remove()
    return shapes, out


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_packed_rows_run_padding_free_with_the_padded_rows_rewards_and_gradients(
    tiny_models, demo_rows, arch
):
    model, tok, enc = _setup(tiny_models[arch])
    groups = groups_for(demo_rows, enc)
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups)
    rows, width = packed["input_ids"].shape
    assert int(packed["n_tokens"]) < rows * width  # the rows end in padding
    ref_r, ref_loss, ref_g = loss_and_grads(model, PaddedCollator(tok.pad_token_id, "right", DECODER)(groups))
    shapes, (r, loss, g) = _seen_input_shapes(model, packed)
    assert shapes[-1] == (1, int(packed["n_tokens"]))  # one flat sequence of the real positions
    assert model.config._attn_implementation == unpadded.NAME
    assert positions_computed(model, packed) == int(packed["n_tokens"])  # what the trainer counts
    assert ref_r.std() > 0 and torch.allclose(r, ref_r, atol=1e-5)
    assert loss == pytest.approx(ref_loss, abs=1e-5)
    assert g.keys() == ref_g.keys() and all(torch.allclose(g[k], ref_g[k], atol=1e-4) for k in g)


def test_padded_rows_are_unchanged_on_a_padding_free_model(tiny_models, demo_rows):
    model, tok, enc = _setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)
    loss_and_grads(
        model, SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups)
    )  # switches the model
    assert model.config._attn_implementation == unpadded.NAME
    right = PaddedCollator(tok.pad_token_id, "right", DECODER)(groups)
    shapes, (r, _, _) = _seen_input_shapes(model, right)
    assert shapes == [tuple(right["input_ids"].shape)]  # plain SDPA on the padded rows
    fresh, _, _ = _setup(tiny_models["llama"])
    assert torch.allclose(r, loss_and_grads(fresh, right)[0], atol=1e-6)


def test_a_model_whose_attention_is_not_sdpa_keeps_its_rows(tiny_models, demo_rows):
    model, tok, enc = _setup(tiny_models["llama"], attn="eager")
    groups = groups_for(demo_rows, enc)
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups)
    shapes, (r, _, _) = _seen_input_shapes(model, packed)
    assert shapes == [tuple(packed["input_ids"].shape)]
    assert model.config._attn_implementation == "eager"
    assert positions_computed(model, packed) == rows_x_width(packed)
    ref = loss_and_grads(model, PaddedCollator(tok.pad_token_id, "right", DECODER)(groups))[0]
    assert torch.allclose(r, ref, atol=1e-5)


def test_a_failed_probe_puts_sdpa_back_and_keeps_the_rows(tiny_models, demo_rows, monkeypatch, caplog):
    model, tok, enc = _setup(tiny_models["llama"])
    real_probe = backbone._padding_free_probe

    def wrong(m, hf):
        ref, got, tol = real_probe(m, hf)
        return ref, got + 1.0, tol  # as if the flat pass gave other rewards

    monkeypatch.setattr(backbone, "_padding_free_probe", wrong)
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups_for(demo_rows, enc))
    with caplog.at_level("WARNING", logger="rewardlab.models.unpadded"):
        shapes, _ = _seen_input_shapes(model, packed)
    assert shapes[-1] == tuple(packed["input_ids"].shape)
    assert model.config._attn_implementation == "sdpa"
    # said once, with the reason: the run is slower than the docs' padding-free figures
    said = [r.getMessage() for r in caplog.records if "padding-free probe failed" in r.getMessage()]
    assert len(said) == 1 and "rewards differ by 1" in said[0]


def test_the_saved_model_does_not_name_the_padding_free_attention(tiny_models, demo_rows, tmp_path):
    model, tok, enc = _setup(tiny_models["llama"])
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups_for(demo_rows, enc))
    before = forward_rewards(model, packed).detach()
    assert model.config._attn_implementation == unpadded.NAME
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    assert unpadded.NAME not in (tmp_path / "config.json").read_text()
    assert "attn_implementation" not in json.loads((tmp_path / "config.json").read_text())
    again, _, _ = _setup(tmp_path)
    assert again.config._attn_implementation == "sdpa"
    assert torch.allclose(forward_rewards(again, packed).detach(), before, atol=1e-6)
