"""``rewardlab train`` end to end on tiny random-initialised models (CPU, seconds each).

In this process; a run killed and resumed, and 2 data-parallel processes, are in
tests/integration/test_training_processes.py.

Run: ``pytest tests/training/test_training.py -q``.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from transformers import AutoModelForSequenceClassification

from rewardlab.cli import main
from rewardlab.config import resolve
from rewardlab.errors import RewardlabError
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train
from rewardlab.training.size_defaults import resolve_size_defaults
from tests.conftest import write_jsonl


def cfg(model, data, out, **kw):
    base = {"max_length": 64, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1000}
    base.update(kw)
    return TrainConfig(model=str(model), data=str(data), out=str(out), **base)


def _grads(trainer, model, batches):
    model.zero_grad()
    trainer.current_gradient_accumulation_steps = len(batches)  # what the training loop sets
    for batch in batches:
        trainer.training_step(model, batch)
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_gradient_accumulation_equals_the_bigger_batch(tiny_models, demo_rows, tmp_path, arch):
    """Gradients, not weights: Adam would hide a wrongly scaled gradient in the weights."""
    from transformers import TrainingArguments

    from rewardlab.data import PreferenceData
    from rewardlab.data.schema import PreferencePair
    from rewardlab.models.encoding import SequenceEncoder
    from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer, model_arch
    from rewardlab.training.batching import PaddedCollator
    from rewardlab.training.dataset import encode_groups
    from rewardlab.training.trainer import RewardTrainer

    model, tok = load_model_and_tokenizer(tiny_models[arch])
    kind = model_arch(model)
    ensure_pad_token(tok, model, kind)
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    model.train()
    for m in model.modules():  # deterministic forward passes
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    pairs = [
        PreferencePair(r["prompt"], r["chosen"], r["rejected"], margin=i % 3 * 0.5)
        for i, r in enumerate(demo_rows[:8])
    ]
    groups, _ = encode_groups(PreferenceData(pairs=pairs), SequenceEncoder(tok, kind, 64))
    collate = PaddedCollator(tok.pad_token_id, "right", kind)

    def trainer(ga):
        args = TrainingArguments(
            output_dir=str(tmp_path / f"ga{ga}"),
            gradient_accumulation_steps=ga,
            use_cpu=True,
            report_to="none",
        )
        return RewardTrainer(model=model, args=args, data_collator=collate)

    big = _grads(trainer(1), model, [collate(groups)])
    accumulated = _grads(trainer(2), model, [collate(groups[:4]), collate(groups[4:])])
    other = _grads(trainer(1), model, [collate(groups[:4])])
    assert big.keys() == accumulated.keys()
    for name in big:
        assert torch.allclose(big[name], accumulated[name], atol=1e-6, rtol=1e-4), name
    assert any(not torch.allclose(big[n], other[n], atol=1e-6, rtol=1e-4) for n in big)


def test_run_outputs_and_plain_reload(tiny_models, demo_file, tmp_path, demo_rows):
    out = tmp_path / "run"
    res = train(cfg(tiny_models["gpt2"], demo_file, out, max_steps=6, eval_steps=3))
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "rewardlab.json",
        "train_summary.json",
        "train_log.jsonl",
        "train_config.yaml",
        "data_summary.json",
        "data_summary.md",
    ):
        assert (out / name).exists(), name
    info = json.loads((out / "rewardlab.json").read_text())
    assert info["kind"] == "orm" and info["arch"] == "decoder" and info["max_length"] == 64
    assert info["normalization"]["std"] > 0 and info["train_config"]["learning_rate"] == 1e-3
    assert info["pad_token"] == "<|pad|>"
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    train_rows = [r for r in log if "loss" in r]
    assert train_rows and all(
        {"accuracy", "margin_mean", "reward_mean", "reward_std"} <= r.keys() for r in train_rows
    )
    assert any("eval_accuracy" in r for r in log)
    assert res.summary["steps"] == 6
    prompts = [r["prompt"] for r in demo_rows[:5]]
    responses = [r["rejected"] for r in demo_rows[:5]]
    rm = RewardModel.from_pretrained(out)
    ours = rm.score(prompts, responses)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    with torch.no_grad():
        theirs = [
            plain(torch.tensor([rm.encoder.encode(p, r).input_ids])).logits[0, 0].item()
            for p, r in zip(prompts, responses, strict=True)
        ]
    assert ours == pytest.approx(theirs, abs=1e-5)
    norm = rm.score(prompts, responses, normalize=True)
    n = info["normalization"]
    assert norm == pytest.approx([(x - n["mean"]) / n["std"] for x in ours])


def test_over_long_pairs_are_cut_not_dropped(tiny_models, tmp_path):
    rows = [
        {
            "prompt": "Describe the ocean in detail. " * 20,
            "chosen": f"The ocean is deep {i}.",
            "rejected": "No.",
        }
        for i in range(12)
    ]
    rows.append({"prompt": "p", "chosen": "same", "rejected": "same"})
    rows.append({"prompt": "q", "chosen": "a", "rejected": "b", "tie": True})
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    res = train(cfg(tiny_models["llama"], data, tmp_path / "o", max_length=16, max_steps=2, eval_split=0.0))
    groups = res.summary["train_groups"]
    assert groups["pairs_in"] == 14 and groups["groups"] == 12  # every usable pair is kept
    assert groups["sequences_cut"] == 24 and groups["groups_with_cut"] == 12
    assert groups["excluded"] == {"identical chosen and rejected": 1, "tie": 1}


def test_lora_checkpoint_reloads_with_identical_rewards(tiny_models, small_demo, tmp_path, demo_rows):
    out = tmp_path / "lora"
    train(cfg(tiny_models["llama"], small_demo, out, lora=True, lora_r=4, max_steps=4, eval_split=0.0))
    assert (out / "adapter_config.json").exists() and json.loads((out / "rewardlab.json").read_text())[
        "method"
    ] == "lora"
    # no dropout by default (PEFT's default): its masks cost a third of a CPU LoRA step (benchmarks)
    assert json.loads((out / "adapter_config.json").read_text())["lora_dropout"] == 0.0
    prompts = [r["prompt"] for r in demo_rows[:4]]
    responses = [r["chosen"] for r in demo_rows[:4]]
    rm = RewardModel.from_pretrained(out)
    first = rm.score(prompts, responses)
    again = RewardModel.from_pretrained(out).score(prompts, responses)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()  # transformers + PEFT
    with torch.no_grad():
        theirs = [
            plain(torch.tensor([rm.encoder.encode(p, r).input_ids])).logits[0, 0].item()
            for p, r in zip(prompts, responses, strict=True)
        ]
    assert theirs == pytest.approx(first, abs=1e-5)
    base = RewardModel.from_pretrained(tiny_models["llama"], max_length=64).score(prompts, responses)
    assert first == again
    assert max(abs(a - b) for a, b in zip(first, base, strict=True)) > 1e-4  # the trained head was kept
    merged = tmp_path / "merged"
    train(
        cfg(
            tiny_models["llama"],
            small_demo,
            merged,
            lora=True,
            lora_r=4,
            max_steps=4,
            eval_split=0.0,
            merge=True,
        )
    )
    assert (
        not (merged / "adapter_config.json").exists()
        and (merged / "adapter" / "adapter_config.json").exists()
    )
    assert RewardModel.from_pretrained(merged).score(prompts, responses) == pytest.approx(first, abs=1e-5)


def test_lora_with_pad_equal_to_eos_reloads_on_the_unchanged_base(tiny_models, small_demo, tmp_path):
    out = tmp_path / "gpt2-lora"
    res = train(cfg(tiny_models["gpt2"], small_demo, out, lora=True, lora_r=4, max_steps=2, eval_split=0.0))
    assert any("model.config.pad_token_id" in w for w in res.warnings)
    rm = RewardModel.from_pretrained(out)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    plain.config.pad_token_id = rm.tokenizer.pad_token_id  # what the warning tells the user
    ids = rm.encoder.encode("What is 2 + 2?", "4").input_ids
    with torch.no_grad():
        assert plain(torch.tensor([ids])).logits[0, 0].item() == pytest.approx(
            rm.score(["What is 2 + 2?"], ["4"])[0]
        )


def test_encoder_and_ranked_lists_train(tiny_models, tmp_path):
    rows = [
        {
            "prompt": f"Rate reply {i}",
            "responses": ["Thanks, happy to help.", "Go away.", "Fine."],
            "scores": [3, 1, 2],
        }
        for i in range(16)
    ]
    data = write_jsonl(tmp_path / "ranked.jsonl", rows)
    res = train(cfg(tiny_models["bert"], data, tmp_path / "o", max_steps=3, eval_split=0.25))
    assert res.summary["train_groups"]["lists_in"] == 12 and res.summary["train_groups"]["sequences"] == 36
    assert json.loads((tmp_path / "o" / "rewardlab.json").read_text())["arch"] == "encoder"
    assert 0.0 <= res.summary["eval_metrics"]["eval_accuracy"] <= 1.0


def test_learns_the_demo_data(demo_file, tmp_path):
    res = train(cfg("tiny-llama", demo_file, tmp_path / "learn", epochs=3, batch_size=16, logging_steps=10))
    assert res.summary["eval_metrics"]["eval_accuracy"] >= 0.9
    assert not any("below 0.65" in w for w in res.warnings)


def test_low_accuracy_points_to_the_data(tiny_models, tmp_path):
    rows = [
        {"prompt": f"q{i % 4}", "chosen": "aaa" if i % 2 else "bbb", "rejected": "bbb" if i % 2 else "aaa"}
        for i in range(40)
    ]
    data = write_jsonl(tmp_path / "noise.jsonl", rows)
    res = train(cfg(tiny_models["llama"], data, tmp_path / "o", max_steps=3, eval_split=0.5))
    assert any("below 0.65" in w and "contradictory pairs" in w for w in res.warnings)


def test_config_file_flags_override_and_contradictions(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"model": "m", "data": "d", "out": "o", "batch_size": 2, "max_length": 128})
    )
    c = resolve(TrainConfig, {"batch_size": 16, "max_length": None}, path)
    assert (c.batch_size, c.max_length, c.eval_split, c.learning_rate) == (16, 128, 0.1, None)
    # the learning rate left out is filled by the recipe, by the model's size (model "m": unknown)
    assert resolve_size_defaults(c)[0].learning_rate == 1e-5
    assert resolve_size_defaults(resolve(TrainConfig, {"lora": True}, path))[0].learning_rate == 1e-4
    with pytest.raises(RewardlabError, match="not both"):
        resolve(TrainConfig, {"eval_data": "x", "eval_split": 0.2}, path)
    with pytest.raises(RewardlabError, match="--merge needs --lora"):
        resolve(TrainConfig, {"merge": True}, path)
    path.write_text(yaml.safe_dump({"model": "m", "data": "d", "out": "o", "bach_size": 2}))
    with pytest.raises(RewardlabError, match="bach_size"):
        resolve(TrainConfig, {}, path)
    with pytest.raises(RewardlabError, match="--out"):
        resolve(TrainConfig, {"model": "m", "data": "d"})


def test_cli_train_saves_resolved_config_and_refuses_to_overwrite(tiny_models, small_demo, tmp_path, capsys):
    out = tmp_path / "cli"
    conf = tmp_path / "c.yaml"
    conf.write_text(yaml.safe_dump({"max_length": 48, "batch_size": 4, "learning_rate": 0.001}))
    args = [
        "train",
        "--config",
        str(conf),
        "--model",
        str(tiny_models["qwen2"]),
        "--data",
        str(small_demo),
        "--out",
        str(out),
        "--max-steps",
        "2",
        "--logging-steps",
        "1",
    ]
    assert main(args) == 0
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["max_length"] == 48 and saved["max_steps"] == 2 and saved["eval_split"] == 0.1
    assert main(args) == 2
    assert "already holds a training run" in capsys.readouterr().err


def test_trl_engine_runs_and_reports_what_it_dropped(tiny_models, small_demo, tmp_path):
    out = tmp_path / "trl"
    res = train(cfg(tiny_models["llama"], small_demo, out, engine="trl", max_length=24, max_steps=2))
    groups = res.summary["train_groups"]
    dropped = groups["excluded"]["longer than max_length (dropped by TRL)"]
    assert dropped > 0 and groups["groups"] + dropped == groups["pairs_in"]
    assert any("TRL dropped" in w for w in res.warnings)
    info = json.loads((out / "rewardlab.json").read_text())
    assert info["engine"] == "trl" and RewardModel.from_pretrained(out).score(["q"], ["a"])


def test_health_warnings():
    from types import SimpleNamespace

    from rewardlab.training.callbacks import PLATEAU_LOGS, HealthCallback

    def run(margins, stds=None, evals=None):
        said = []
        cb = HealthCallback(said.append)
        args = SimpleNamespace(warmup_steps=0.0)
        for i, m in enumerate(margins):
            state = SimpleNamespace(global_step=10 * (i + 1), max_steps=1000, is_world_process_zero=True)
            cb.on_log(
                args, state, None, logs={"margin_mean": m, "reward_std": (stds or [1.0] * len(margins))[i]}
            )
            if evals and i in evals:
                cb.on_log(args, state, None, logs={"eval_margin_mean": evals[i]})
        return said

    growing = [0.1 * i for i in range(3 * PLATEAU_LOGS)]
    assert run(growing) == []
    flat = growing[: 2 * PLATEAU_LOGS] + [growing[PLATEAU_LOGS]] * PLATEAU_LOGS
    assert any("stopped growing" in w for w in run(flat))
    noisy_but_growing = [0.1 * i + (0.3 if i % 2 else -0.3) for i in range(3 * PLATEAU_LOGS)]
    assert run(noisy_but_growing) == []
    # with evaluations, the held-out margin decides
    assert any("held-out margin stopped growing" in w for w in run(growing, evals={3: 0.5, 6: 0.4}))
    collapsed = run(growing, stds=[1.0] * 5 + [1e-5] * (3 * PLATEAU_LOGS - 5))
    assert sum("collapsed" in w for w in collapsed) == 1


@pytest.mark.parametrize("engine", ["native", "trl"])
def test_a_bf16_run_measures_its_normalisation_as_float32_scoring_does(
    tiny_models, small_demo, tmp_path, monkeypatch, engine
):
    """accelerate leaves a bf16 run's forward in autocast; the normalisation must not go through it."""
    from rewardlab.training.recipes import outcome_steps

    seen, calls = [], {}
    measure = outcome_steps.training_sample

    def spy(model, groups, collator, n, seed):
        hook = model.score.register_forward_pre_hook(
            lambda _m, _a: seen.append(torch.is_autocast_enabled("cpu"))
        )
        try:
            calls.update(groups=groups, collator=collator, n=n, seed=seed)
            return measure(model, groups, collator, n, seed)
        finally:
            hook.remove()

    monkeypatch.setattr(outcome_steps, "training_sample", spy)
    out = tmp_path / engine
    cfg = dict(data=str(small_demo), out=str(out), model=str(tiny_models["llama"]), max_length=64)
    train(TrainConfig(**cfg, max_steps=2, batch_size=4, precision="bf16", engine=engine))
    assert seen and not any(seen)
    stored = json.loads((out / "rewardlab.json").read_text())["normalization"]
    plain = AutoModelForSequenceClassification.from_pretrained(out, dtype=torch.float32).eval()
    rewards, _ = measure(plain, **calls)  # the saved model in float32, on the same responses
    assert stored["samples"] == len(rewards)
    assert stored["mean"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-5)
