"""Default learning rate and epochs by model size: the size read, the rule, the record.

The config reads no file: the recipe fills the defaults when it loads the model
(:func:`rewardlab.training.size_defaults.resolve_size_defaults`).

Run: ``pytest tests/training/test_size_defaults.py -q``.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from rewardlab.models import size
from rewardlab.training.config import TrainConfig
from rewardlab.training.size_defaults import (
    FULL_LR,
    LARGE_EPOCHS,
    LORA_LR,
    SMALL_EPOCHS,
    SMALL_LORA_EPOCHS,
    SMALL_LORA_LR,
    SMALL_LR,
    SMALL_MODEL_PARAMS,
    resolve_size_defaults,
)


def config(**kw):
    """The config as the recipe has it once the model loads, and the record of the defaults filled."""
    cfg, record = resolve_size_defaults(TrainConfig(data="d", out="o", **kw))
    cfg.size_defaults = record
    return cfg


def test_a_config_reads_no_file(monkeypatch):
    """Building a config for a model that is not there reads nothing; the recipe fills the defaults."""
    import builtins
    import io
    import os
    import pathlib

    def refuse(*args, **kwargs):
        raise AssertionError(f"the config touched the disk: {args[:1]}")

    TrainConfig(model="m", data="d", out="o")  # imports the recipes' modules (their checks) first

    for owner, name in [(builtins, "open"), (io, "open"), (os, "stat"), (os, "listdir"), (os, "scandir")]:
        monkeypatch.setattr(owner, name, refuse)
    monkeypatch.setattr(pathlib.Path, "exists", refuse)
    monkeypatch.setattr(size, "parameter_count", refuse)
    cfg = TrainConfig(model="/nonexistent", data="d", out="o")
    lora = TrainConfig(model="/nonexistent", data="d", out="o", lora=True, kind="prm")
    monkeypatch.undo()
    assert (cfg.learning_rate, cfg.epochs, lora.learning_rate, lora.epochs) == (None, None, None, None)
    assert not hasattr(cfg, "size_defaults")
    filled, record = resolve_size_defaults(cfg)  # what the recipe does once the model is to load
    assert (filled.learning_rate, filled.epochs) == (FULL_LR, LARGE_EPOCHS)
    assert "model size unknown" in record["why"]
    assert (cfg.learning_rate, cfg.epochs) == (None, None)  # a new config: the one given is kept


def test_parameter_count_reads_the_safetensors_headers(tmp_path):
    save_file(
        {"embed.weight": torch.zeros(10, 4), "layer.weight": torch.zeros(3, 5)}, tmp_path / "a.safetensors"
    )
    save_file({"head.bias": torch.zeros(7)}, tmp_path / "b.safetensors")
    assert size.parameter_count(tmp_path) == 40 + 15 + 7
    assert size.parameter_count(tmp_path, skip_embeddings=True) == 15 + 7
    assert size.parameter_count(tmp_path / "missing") is None
    assert size.parameter_count(tmp_path / "b.safetensors") is None  # a file, not a model folder


def test_minilm_gets_the_small_model_recipe():
    assert SMALL_MODEL_PARAMS[0] <= size.parameter_count("minilm") < SMALL_MODEL_PARAMS[1]
    c = config(model="minilm")
    assert (c.learning_rate, c.epochs) == (SMALL_LR, SMALL_EPOCHS) != (FULL_LR, LARGE_EPOCHS)
    assert c.size_defaults["chosen"] == {"learning_rate": SMALL_LR, "epochs": SMALL_EPOCHS}
    assert "22.7 M parameters" in c.size_defaults["why"] and "small-model recipe" in c.size_defaults["why"]
    lora = config(model="minilm", lora=True)
    assert (lora.learning_rate, lora.epochs) == (SMALL_LORA_LR, SMALL_LORA_EPOCHS) != (LORA_LR, LARGE_EPOCHS)
    assert "small-model LoRA recipe" in lora.size_defaults["why"]


def test_given_values_are_kept_and_only_the_rest_is_chosen():
    c = config(model="minilm", learning_rate=3e-5)
    assert (c.learning_rate, c.epochs) == (3e-5, SMALL_EPOCHS)
    assert c.size_defaults["chosen"] == {"epochs": SMALL_EPOCHS}
    c = config(model="minilm", learning_rate=3e-5, epochs=2)
    assert (c.learning_rate, c.epochs, c.size_defaults) == (3e-5, 2, None)


@pytest.mark.parametrize(
    ("n", "kw", "expected"),
    [
        (2_000_000, {}, (FULL_LR, LARGE_EPOCHS)),  # a toy model below the measured range
        (135_000_000, {}, (FULL_LR, LARGE_EPOCHS)),  # SmolLM2-135M and larger: the large-model rule
        (None, {}, (FULL_LR, LARGE_EPOCHS)),  # size unknown
        (22_000_000, {"lora": True}, (SMALL_LORA_LR, SMALL_LORA_EPOCHS)),  # MiniLM's LoRA sweep
        (135_000_000, {"lora": True}, (LORA_LR, LARGE_EPOCHS)),
        (None, {"lora": True}, (LORA_LR, LARGE_EPOCHS)),
        (22_000_000, {"lora": True, "kind": "prm"}, (LORA_LR, LARGE_EPOCHS)),
        (22_000_000, {"kind": "prm"}, (FULL_LR, LARGE_EPOCHS)),  # nor were PRMs
        (22_000_000, {}, (SMALL_LR, SMALL_EPOCHS)),
    ],
)
def test_the_rule_by_size(monkeypatch, n, kw, expected):
    monkeypatch.setattr(size, "parameter_count", lambda model: n)
    c = config(model="m", **kw)
    assert (c.learning_rate, c.epochs) == expected
    assert c.size_defaults["why"]


def test_embedding_method_has_no_learning_rate_and_one_epoch():
    c = config(method="embedding")
    assert (c.learning_rate, c.epochs, c.size_defaults) == (None, LARGE_EPOCHS, None)


def test_train_summary_records_the_chosen_defaults(tiny_models, demo_file, tmp_path):
    from rewardlab.training.run import train

    cfg = TrainConfig(
        model=str(tiny_models["bert"]), data=str(demo_file), out=str(tmp_path / "o"), max_length=32,
        max_steps=1, eval_split=0.0, save_steps=1000, norm_samples=8,
    )  # fmt: skip
    train(cfg)
    record = json.loads((tmp_path / "o" / "train_summary.json").read_text())["size_defaults"]
    assert record["chosen"] == {"learning_rate": FULL_LR, "epochs": LARGE_EPOCHS}
    assert "outside" in record["why"] and "large-model rule" in record["why"]
