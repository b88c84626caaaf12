"""``--head-init``: zero and linear-probe (LP-FT) heads on tiny decoders and encoders, and a run.

Run: ``pytest tests/training/test_head_init.py -q`` (tiny random models on the CPU, under a minute).
"""

from __future__ import annotations

import json

import pytest
import torch

from rewardlab.data import load_preferences
from rewardlab.models.encoding import SequenceEncoder
from rewardlab.models.reward_model import (
    RewardModel,
    ensure_pad_token,
    forward_rewards,
    load_model_and_tokenizer,
    model_arch,
)
from rewardlab.training.batching import PaddedCollator, SharedPrefixCollator
from rewardlab.training.config import TrainConfig
from rewardlab.training.dataset import Group, encode_groups
from rewardlab.training.head_init import head_features, head_linear, init_head
from rewardlab.training.run import train
from tests.conftest import write_jsonl


def _groups(tiny_models, demo_rows, arch, tmp_path, n=60):
    """The tiny model ``arch`` (with a safe pad token) and the first ``n`` demo pairs, encoded."""
    model, tok = load_model_and_tokenizer(tiny_models[arch])
    kind = model_arch(model)
    ensure_pad_token(tok, model, kind)
    path = write_jsonl(tmp_path / "pairs.jsonl", demo_rows[:n])
    groups, _ = encode_groups(load_preferences(str(path)), SequenceEncoder(tok, kind, 64))
    return model, tok, kind, groups


def _rewards(model, groups, collator):
    """The model's reward of every response, one group at a time."""
    model.eval()
    out = []
    with torch.no_grad():
        for g in groups:
            out.append(forward_rewards(model, collator([Group(g.encoded, [0.0] * len(g.encoded))])))
    return out


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_probe_head_scores_the_training_pairs_as_the_probe_does(tiny_models, demo_rows, arch, tmp_path):
    model, tok, kind, groups = _groups(tiny_models, demo_rows, arch, tmp_path)
    collator = PaddedCollator(tok.pad_token_id, "right", kind)
    before = head_linear(model).weight.detach().clone()
    record = init_head(model, "probe", groups, collator, seed=0)
    probe = record["probe"]
    assert record["how"] == "probe" and probe["comparisons"] == len(groups)
    assert not torch.equal(before, head_linear(model).weight)
    rewards = _rewards(model, groups, collator)
    # the model with the probe as its head agrees with the probe on every training pair: a wrongly
    # folded standardisation (scaled, shifted or per-dimension mixed weights) would change this
    agree = sum(float(r[0] > r[1]) for r in rewards) / len(rewards)
    assert agree == pytest.approx(probe["train_accuracy"], abs=1e-9)
    assert agree > 0.5


def test_head_features_are_the_same_in_padded_and_packed_batches(tiny_models, demo_rows, tmp_path):
    model, tok, kind, groups = _groups(tiny_models, demo_rows, "llama", tmp_path, n=12)
    padded = head_features(model, groups, PaddedCollator(tok.pad_token_id, "right", kind), batch_size=5)
    packed = head_features(model, groups, SharedPrefixCollator(tok.pad_token_id, pack_tokens=128))
    assert len(padded) == len(groups) == len(packed)
    for a, b in zip(padded, packed, strict=True):
        assert a.shape == (2, model.config.hidden_size)
        assert torch.allclose(a, b, atol=1e-4)
    # the features are the head's input: the head applied to them gives the model's rewards
    head = head_linear(model)
    rewards = _rewards(model, groups, PaddedCollator(tok.pad_token_id, "right", kind))
    for x, r in zip(padded, rewards, strict=True):
        assert torch.allclose(head(x)[:, 0], r, atol=1e-4)


def test_zero_head_gives_every_response_the_same_reward(tiny_models, demo_rows, tmp_path):
    model, tok, kind, groups = _groups(tiny_models, demo_rows, "bert", tmp_path, n=8)
    collator = PaddedCollator(tok.pad_token_id, "right", kind)
    assert len({round(float(v), 6) for r in _rewards(model, groups, collator) for v in r}) > 1
    assert init_head(model, "zero", groups, collator, seed=0) == {"how": "zero"}
    assert {float(v) for r in _rewards(model, groups, collator) for v in r} == {0.0}


@pytest.mark.parametrize(("lora", "engine"), [(True, "native"), (False, "trl")])
def test_a_run_starts_from_the_probe_and_records_it(tiny_models, demo_rows, tmp_path, lora, engine):
    data = write_jsonl(tmp_path / "train.jsonl", demo_rows[:40])
    held = write_jsonl(tmp_path / "held.jsonl", demo_rows[40:60])
    common = {
        "data": str(data),
        "eval_data": str(held),
        "model": str(tiny_models["llama"]),
        "max_length": 64,
        "max_steps": 1,
        "learning_rate": 1e-9,  # the head stays where it started
        "lora": lora,
        "engine": engine,
        "norm_samples": 8,
    }
    train(TrainConfig(out=str(tmp_path / "probe"), head_init="probe", **common))
    train(TrainConfig(out=str(tmp_path / "plain"), **common))
    summary = json.loads((tmp_path / "probe" / "train_summary.json").read_text())
    assert summary["head_init"]["how"] == "probe" and summary["head_init"]["probe"]["comparisons"] == 40
    info = json.loads((tmp_path / "probe" / "rewardlab.json").read_text())
    assert info["train_config"]["head_init"] == "probe"
    plain = json.loads((tmp_path / "plain" / "train_summary.json").read_text())
    assert plain["head_init"] == {"how": "model"}

    # the saved head is the probe fitted on the same training pairs, not the model's random head
    model, tok, kind, groups = _groups(tiny_models, demo_rows, "llama", tmp_path, n=40)
    init_head(model, "probe", groups, PaddedCollator(tok.pad_token_id, "right", kind), seed=42)
    expected = head_linear(model).weight.detach()[0]
    for name, similar in (("probe", True), ("plain", False)):
        saved = head_linear(RewardModel.from_pretrained(str(tmp_path / name)).model).weight.detach()[0]
        cos = torch.nn.functional.cosine_similarity(saved, expected, dim=0).item()
        assert (cos > 0.99) is similar, (name, cos)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"head_init": "ones"}, "--head-init must be one of"),
        ({"head_init": "probe", "method": "embedding"}, "--method embedding fits its own heads"),
        ({"head_init": "zero", "kind": "prm"}, "PRMs start from the model's"),
    ],
)
def test_head_init_options_are_checked(extra, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(data="d.jsonl", out="o", model="m", **extra)


def test_a_zero_head_run_explains_its_small_rewards(tiny_models, demo_rows, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", demo_rows[:24])
    common = {"data": str(data), "model": str(tiny_models["bert"]), "max_length": 48, "max_steps": 3}
    common |= {"learning_rate": 1e-9, "logging_steps": 1, "eval_split": 0.0, "norm_samples": 8}
    zero = train(TrainConfig(out=str(tmp_path / "zero"), head_init="zero", **common))
    collapsed = [w for w in zero.warnings if "collapsed" in w]
    assert len(collapsed) == 1 and "--head-init zero starts every reward at 0" in collapsed[0]
    plain = train(TrainConfig(out=str(tmp_path / "plain"), **common))
    assert not any("collapsed" in w for w in plain.warnings)
