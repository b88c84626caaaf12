"""``--compile`` (rewardlab.training.regional_compile): compiled training equals eager, the option validates.

A tiny random LLaMA trained a few steps with and without its decoder layers compiled (full, LoRA,
with gradient checkpointing): the losses, rewards and margins logged at every step, and the rewards
of the saved model, must agree to 1e-4 (fp32; the compiled kernels reorder sums, so they are not
bitwise equal). Skipped where torch.compile cannot run (no C++ compiler, no dynamo). Compiling the
tiny layer's forward and backward takes 20-100 s (less when inductor's on-disk cache has it), so
the comparison is marked ``slow`` (``pytest -m slow``).

Run: ``pytest tests/training/test_regional_compile.py -q -m 'slow or not slow'``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rewardlab.models.reward_model import RewardModel, load_model_and_tokenizer
from rewardlab.training import regional_compile
from rewardlab.training.config import TrainConfig
from rewardlab.training.regional_compile import (
    RegionalCompileCallback,
    auto_compile,
    compile_unavailable,
    repeated_layers,
)
from rewardlab.training.run import train

#: Agreement of compiled and eager fp32 training (losses, rewards): kernels reorder float sums.
TOL = 1e-4


def _cfg(model, data, out, **kw):
    base = {"max_length": 64, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 1000}
    base |= {"max_steps": 4, "precision": "fp32"}
    base |= kw
    return TrainConfig(model=str(model), data=str(data), out=str(out), **base)


def _log(out):
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [(r["loss"], r["reward_mean"], r["margin_mean"]) for r in rows if "loss" in r]


def test_compile_option_validates(tiny_models, small_demo, tmp_path):
    with pytest.raises(ValueError, match="--compile must be true, false or left out"):
        _cfg(tiny_models["llama"], small_demo, tmp_path / "x", compile="yes")
    assert _cfg(tiny_models["llama"], small_demo, tmp_path / "y").compile is None  # decided per run
    with pytest.raises(ValueError, match="--compile"):  # no layers are trained: refused, not ignored
        TrainConfig(
            model="minilm", data=str(small_demo), out=str(tmp_path / "z"), method="embedding", compile=True
        )


def test_repeated_layers_are_the_decoder_layers(tiny_models):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["llama"], num_labels=1)
    layers = repeated_layers(model)
    assert layers and layers == list(model.model.layers)


def test_auto_compiles_only_where_it_was_measured_faster(tiny_models, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["llama"], num_labels=1)
    full = {"engine": "native"}
    on, why = auto_compile(model, 10_000, **full)
    assert not on and "parameters" in why  # a tiny model: its steps are too short to repay a compile
    monkeypatch.setattr(regional_compile, "AUTO_COMPILE_MIN_PARAMS", 0)
    on, why = auto_compile(model, regional_compile.AUTO_COMPILE_MIN_STEPS - 1, **full)
    assert not on and "optimizer steps" in why
    assert not auto_compile(model, 10_000, engine="trl")[0]
    assert not auto_compile(model, 10_000, kind="prm", **full)[0]
    monkeypatch.setattr(regional_compile, "cpu_flags", lambda: {"avx2", "avx512f"})
    on, why = auto_compile(model, regional_compile.AUTO_COMPILE_MIN_STEPS, **full)
    assert on == (compile_unavailable() is None), why
    monkeypatch.setattr(regional_compile, "cpu_flags", lambda: {"avx2", "fma"})  # measured slower there
    on, why = auto_compile(model, regional_compile.AUTO_COMPILE_MIN_STEPS, **full)
    assert not on and "avx512f" in why


def test_left_out_the_run_says_why_it_did_not_compile(tiny_models, small_demo, tmp_path, capsys):
    res = train(_cfg(tiny_models["llama"], small_demo, tmp_path / "auto", max_steps=2))
    decision = json.loads((tmp_path / "auto" / "train_summary.json").read_text())["compile"]
    assert decision["auto"] is True and decision["compiled"] is False and "parameters" in decision["why"]
    assert res.summary["compile"] == decision
    said = capsys.readouterr()
    assert "compile: off (" in said.out + said.err
    train(_cfg(tiny_models["llama"], small_demo, tmp_path / "off", max_steps=2, compile=False))
    assert json.loads((tmp_path / "off" / "train_summary.json").read_text())["compile"] is None


@pytest.mark.slow  # compiling forward and backward takes 30-100 s per run on a busy 2-core CPU
def test_auto_compile_compiles_a_run_that_qualifies(tiny_models, small_demo, tmp_path, monkeypatch):
    reason = compile_unavailable()
    if reason:
        pytest.skip(f"torch.compile unavailable: {reason}")
    monkeypatch.setattr(regional_compile, "AUTO_COMPILE_MIN_PARAMS", 0)
    monkeypatch.setattr(regional_compile, "AUTO_COMPILE_MIN_STEPS", 3)
    monkeypatch.setattr(regional_compile, "cpu_flags", lambda: {"avx512f"})
    train(_cfg(tiny_models["llama"], small_demo, tmp_path / "auto"))
    decision = json.loads((tmp_path / "auto" / "train_summary.json").read_text())["compile"]
    assert decision["auto"] is True and decision["compiled"] is True and decision["layers"] >= 1
    import torch._dynamo

    assert torch._dynamo.config.suppress_errors is False  # set for the run only


@pytest.mark.slow  # compiling forward and backward takes 30-100 s per run on a busy 2-core CPU
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"lora": True, "lora_dropout": 0.0},
        {"gradient_checkpointing": True},
    ],  # dropout draws differ compiled
    ids=["full", "lora", "checkpointing"],
)
def test_compiled_training_equals_eager(tiny_models, small_demo, tmp_path, demo_rows, capsys, kw):
    reason = compile_unavailable()
    if reason:
        pytest.skip(f"torch.compile unavailable: {reason}")
    train(_cfg(tiny_models["llama"], small_demo, tmp_path / "eager", compile=False, **kw))
    train(_cfg(tiny_models["llama"], small_demo, tmp_path / "compiled", compile=True, **kw))
    said = capsys.readouterr()
    assert "compiled regionally" in said.out + said.err and "compile cost about" in said.out + said.err
    eager, compiled = _log(tmp_path / "eager"), _log(tmp_path / "compiled")
    assert len(eager) == len(compiled) == 4
    for e, c in zip(eager, compiled, strict=True):
        assert c == pytest.approx(e, abs=TOL)
    prompts = [r["prompt"] for r in demo_rows[:6]]
    responses = [r["chosen"] for r in demo_rows[:6]]
    runs = ("eager", "compiled")
    rewards = [RewardModel.from_pretrained(tmp_path / d).score(prompts, responses) for d in runs]
    assert rewards[1] == pytest.approx(rewards[0], abs=TOL)


def test_an_auto_compile_keeps_failed_compiles_eager_until_the_run_ends(tiny_models, small_demo, tmp_path):
    """The held-out evaluation and normalisation after training run the compiled layers too."""
    import torch._dynamo

    if reason := compile_unavailable():
        pytest.skip(f"torch.compile unavailable: {reason}")
    from rewardlab.training.recipe import Recipe, TrainResult, run_recipe

    model, _ = load_model_and_tokenizer(str(tiny_models["llama"]))
    callback = RegionalCompileCallback(lambda _msg: None, None)
    state = SimpleNamespace(max_steps=10**6, global_step=0)
    seen = {}

    class AfterTraining(Recipe):
        def load_data(self):
            pass

        def load_model(self):
            pass

        def train(self):
            with pytest.MonkeyPatch.context() as mp:  # the rule says "on" for the tiny model here
                mp.setattr(regional_compile, "auto_compile", lambda *a, **k: (True, "test"))
                callback.on_train_begin(None, state, None, model=model)
            callback.on_train_end(None, state, None)
            seen["after training"] = torch._dynamo.config.suppress_errors

        def save(self) -> TrainResult:
            seen["while saving"] = torch._dynamo.config.suppress_errors
            raise RuntimeError("failed after training")

    assert torch._dynamo.config.suppress_errors is False
    cfg = _cfg(tiny_models["llama"], small_demo, tmp_path / "out", max_steps=1)
    with pytest.raises(RuntimeError, match="failed after training"):
        run_recipe(AfterTraining(cfg))
    assert callback.layers and seen == {"after training": True, "while saving": True}
    assert torch._dynamo.config.suppress_errors is False  # put back when the run ended, even failing
