"""``--debias-length`` for full and LoRA fine-tuning: the batches' weights and log lengths, a run, resume.

In this process; 2 data-parallel processes are in tests/integration/test_training_processes.py.

Run: ``pytest tests/training/test_debias_finetune.py -q`` (tiny random models on the CPU, about a minute).
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, TrainingArguments

from rewardlab.data import PreferenceData, PreferencePair, RankedList
from rewardlab.data.demo import write_demo
from rewardlab.models.encoding import DECODER, SequenceEncoder
from rewardlab.models.reward_model import (
    ensure_pad_token,
    forward_rewards,
    load_model_and_tokenizer,
    model_arch,
)
from rewardlab.training.batching import PaddedCollator, SharedPrefixCollator
from rewardlab.training.config import TrainConfig
from rewardlab.training.dataset import encode_groups, length_balanced
from rewardlab.training.debias import LENGTH_COEF_FILE, LengthDebias
from rewardlab.training.losses import Comparisons, comparison_loss
from rewardlab.training.run import train
from rewardlab.training.trainer import RewardTrainer
from tests.training.helpers import length_coef as _coef

LIST_RESPONSES = ["Thanks!", "Go away.", "Sorry for the wait, I can help.", "ok"]


def _groups(tiny_models):
    """Three chosen-longer pairs, one chosen-shorter pair and a ranked list of four, encoded."""
    model, tok = load_model_and_tokenizer(tiny_models["llama"])
    arch = model_arch(model)
    ensure_pad_token(tok, model, arch)
    pairs = [
        PreferencePair("Say hi.", "Hello there, friend.", "Hi."),
        PreferencePair("Name a colour.", "Blue, like the sky.", "Red"),
        PreferencePair("Count to three.", "One, two, three.", "One."),
        PreferencePair("Be brief.", "Ok.", "Certainly, I will keep this short."),
    ]
    lists = [RankedList("Reply politely.", LIST_RESPONSES, [3.0, 0.0, 4.0, 1.0])]
    data = PreferenceData(pairs=pairs, lists=lists)
    groups, _ = encode_groups(data, SequenceEncoder(tok, arch, 48))
    return tok, pairs, groups


def test_balanced_weights_and_log_lengths_are_the_same_in_padded_and_packed_batches(tiny_models):
    tok, pairs, groups = _groups(tiny_models)
    texts = [t for p in pairs for t in (p.chosen, p.rejected)] + LIST_RESPONSES
    expected_log_len = torch.tensor([math.log1p(len(t)) for t in texts])

    balanced = length_balanced(groups)
    # 3 chosen-longer and 1 chosen-shorter pairs: 4 / (2 * 3) and 4 / (2 * 1); the list keeps 1
    assert [g.weight for g in balanced] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0, 1.0])
    assert [g.weight for g in groups] == [1.0] * 5  # the originals are untouched

    layouts = {
        "padded": PaddedCollator(tok.pad_token_id, "right", DECODER),
        "packed": SharedPrefixCollator(tok.pad_token_id, pack_tokens=64),
    }
    for name, collate in layouts.items():
        plain, batch = collate(groups), collate(balanced)
        assert torch.allclose(batch["log_len"], expected_log_len), name
        assert plain["weight"].sum().item() == pytest.approx(1.0), name
        # a pair's one comparison: its factor / 5 groups; the list's 6 comparisons share 1 / 5
        pair_w = [2 / 15, 2 / 15, 2 / 15, 2 / 5]
        assert batch["weight"].tolist() == pytest.approx(pair_w + [1 / 30] * 6), name
        # chosen-longer and chosen-shorter pairs now weigh the same
        assert sum(pair_w[:3]) == pytest.approx(pair_w[3])
    padded, packed = (layouts[k](balanced) for k in ("padded", "packed"))
    for key in ("better", "worse", "weight", "log_len"):
        assert torch.equal(padded[key], packed[key]), key


def test_factors_average_one_so_accumulated_batches_keep_the_balance(tiny_models):
    """Half-batches' weights add up to the whole batch's (x 2): the balance is not undone per batch."""
    tok, _, groups = _groups(tiny_models)
    balanced = length_balanced(groups[:4])  # the pairs only
    collate = PaddedCollator(tok.pad_token_id, "right", DECODER)
    whole = collate(balanced)["weight"]
    halves = torch.cat([collate(balanced[:2])["weight"], collate(balanced[2:])["weight"]])
    assert whole.sum().item() == pytest.approx(1.0)
    assert torch.allclose(halves / 2, whole)


@pytest.mark.parametrize("weight", [0.0, 0.7])
def test_odin_penalty_is_the_batch_correlation_of_rewards_and_log_lengths(tiny_models, tmp_path, weight):
    """The training loss adds λ |Pearson(rewards, log_len)| over the batch's responses (ODIN)."""
    model, tok = load_model_and_tokenizer(tiny_models["llama"])
    ensure_pad_token(tok, model, DECODER)
    model.train()  # the penalty is for training; LLaMA's dropout is 0, so the same rewards twice
    _, pairs, _ = _groups(tiny_models)
    groups, _ = encode_groups(PreferenceData(pairs=pairs), SequenceEncoder(tok, DECODER, 48))
    batch = PaddedCollator(tok.pad_token_id, "right", DECODER)(length_balanced(groups))
    args = TrainingArguments(output_dir=str(tmp_path / "t"), use_cpu=True, report_to="none")
    length = LengthDebias(None, torch.nn.Parameter(torch.zeros(())), corr_weight=weight)
    trainer = RewardTrainer(model=model, args=args, debias=length)
    with torch.no_grad():
        loss = trainer._loss(model, batch)[0].item()
        rewards = forward_rewards(model, batch)
        comps = Comparisons(batch["better"], batch["worse"], batch["margin"], batch["weight"])
        bt = comparison_loss(rewards, comps).item()  # the length coefficient starts at 0
    corr = abs(np.corrcoef(rewards.numpy(), batch["log_len"].numpy())[0, 1])
    assert corr > 0.01  # else the check below would not see the penalty
    assert loss == pytest.approx(bt + weight * corr, rel=1e-5)
    model.eval()  # evaluation losses leave the penalty out (and never all-reduce)
    with torch.no_grad():
        assert trainer._loss(model, batch)[0].item() == pytest.approx(bt, rel=1e-6)


def _cfg(model, data, out, **kw):
    base = {
        "max_length": 64,
        "batch_size": 4,
        "learning_rate": 1e-3,
        "logging_steps": 1,
        "max_steps": 6,
        "save_steps": 3,
        "save_total_limit": 3,
        "eval_split": 0.2,
        "norm_samples": 16,
        "debias_length": True,
    }
    base.update(kw)
    return TrainConfig(model=str(model), data=str(data), out=str(out), **base)


@pytest.mark.parametrize("arch,lora", [("llama", False), ("bert", True)])
def test_fine_tuning_learns_a_length_reward_it_does_not_save(tiny_models, tmp_path, arch, lora):
    data = write_demo(tmp_path / "confounded.jsonl", n=80, seed=1, longer_chosen=0.9)
    out = tmp_path / "run"
    result = train(_cfg(tiny_models[arch], data, out, lora=lora, merge=lora))

    record = json.loads((out / "rewardlab.json").read_text())["debias_length"]
    coef = record["length_coef"]
    assert (
        record["method"] == "length-reward-and-balanced-pairs-and-decorrelation"
        and "log(1 + response" in record["length_reward"]
        and record["decorrelation"].startswith("0.1 * |corr(reward, log length)|")
    )
    assert TrainConfig.length_corr_weight == 0.1  # the measured default (training/options.py)
    assert coef != 0.0 and math.isfinite(coef)
    assert result.summary["debias_length"] == record
    assert _coef(out) == coef == _coef(out / "checkpoints" / "checkpoint-6")
    assert _coef(out / "checkpoints" / "checkpoint-3") not in (0.0, coef)

    logs = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["length_coef"] for r in logs if "loss" in r][-1] == coef
    ev = result.summary["eval_metrics"]
    assert {"eval_loss", "eval_accuracy", "eval_loss_with_length", "eval_accuracy_with_length"} <= set(ev)

    model, info = AutoModelForSequenceClassification.from_pretrained(str(out), output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"]
    assert not any("length" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_the_configs_decorrelation_weight_reaches_the_trainer(tiny_models, tmp_path, monkeypatch, weight):
    """--length-corr-weight is the weight the trainer uses and the records name (0: no penalty)."""
    from rewardlab.training import trainer as trainer_module

    used = []
    real = trainer_module.length_correlation

    def spy(*args, **kwargs):
        used.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "length_correlation", spy)
    data = write_demo(tmp_path / "confounded.jsonl", n=40, seed=1, longer_chosen=0.9)
    out = tmp_path / "run"
    cfg = _cfg(tiny_models["llama"], data, out, max_steps=2, save_steps=10, length_corr_weight=weight)
    result = train(cfg)
    record = json.loads((out / "rewardlab.json").read_text())["debias_length"]
    assert result.summary["debias_length"] == record
    if weight:
        assert record["decorrelation"].startswith("0.5 * |corr(reward, log length)|") and used
        assert record["method"].endswith("-and-decorrelation")
    else:  # the length reward and the balanced pairs only: the penalty is never computed
        assert "decorrelation" not in record and not used
        assert record["method"] == "length-reward-and-balanced-pairs"


@pytest.mark.parametrize("bad", [-0.1, float("inf"), "high"])
def test_a_bad_decorrelation_weight_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match=r"^--length-corr-weight must be a finite number >= 0, got "):
        TrainConfig(
            model="m", data="d.jsonl", out=str(tmp_path / "o"), debias_length=True, length_corr_weight=bad
        )


def test_resume_restores_the_length_coefficient(tiny_models, tmp_path):
    data = write_demo(tmp_path / "confounded.jsonl", n=80, seed=1, longer_chosen=0.9)
    full = tmp_path / "full"
    train(_cfg(tiny_models["llama"], data, full))
    resumed = tmp_path / "resumed"
    shutil.copytree(full, resumed)
    shutil.rmtree(resumed / "checkpoints" / "checkpoint-6")  # as if stopped after step 5
    train(_cfg(tiny_models["llama"], data, resumed, resume=True))
    assert _coef(full / "checkpoints" / "checkpoint-3") != 0.0
    # restarted from 0 at step 3, the coefficient would end about that much lower
    assert _coef(resumed / "checkpoints" / "checkpoint-6") == pytest.approx(_coef(full), abs=1e-5)
    assert _coef(resumed) == pytest.approx(_coef(full), abs=1e-5)


def test_without_the_option_nothing_changes(tiny_models, tmp_path):
    data = write_demo(tmp_path / "confounded.jsonl", n=40, seed=1, longer_chosen=0.9)
    out = tmp_path / "plain"
    result = train(_cfg(tiny_models["llama"], data, out, debias_length=False, max_steps=2))
    assert result.summary["debias_length"] is None
    assert not (out / LENGTH_COEF_FILE).exists()
    assert "eval_loss_with_length" not in result.summary["eval_metrics"]


@pytest.mark.parametrize("kw", [{"engine": "trl"}, {"kind": "prm"}], ids=["engine-trl", "kind-prm"])
def test_debias_length_is_refused_for_trl_and_prm(tmp_path, kw):
    with pytest.raises(ValueError, match="--debias-length trains outcome reward models"):
        TrainConfig(model="m", data="d.jsonl", out=str(tmp_path / "o"), debias_length=True, **kw)
