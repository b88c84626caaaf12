"""One way to declare a command: every command's options are a dataclass, shared parts declared once."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rewardlab import config as parts
from rewardlab.cli import app, main
from rewardlab.config import option_fields
from rewardlab.serving.config import RewardSpecOptions, ServeConfig
from tests.conftest import write_jsonl

COMMANDS = {
    "train", "eval", "diagnose", "rlcheck", "harden", "serve", "advise", "score", "bon", "merge", "export",
    "demo",
    "data demo", "data summarize", "data split", "data tag", "data outcome-pairs",
    "bench train", "bench score", "bench serve", "bench embedding",
}  # fmt: skip


def _commands() -> dict[str, object]:
    """Every registered command's callback, by its name as typed (``data summarize``)."""
    found = {info.name: info.callback for info in app.registered_commands}
    for group in app.registered_groups:
        found |= {f"{group.name} {i.name}": i.callback for i in group.typer_instance.registered_commands}
    return found


def _config(name: str) -> type:
    return _commands()[name].config_class


def _owner(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO that declares the field ``name``."""
    return next(k for k in cls.__mro__ if name in k.__dict__.get("__annotations__", {}))


def test_every_command_is_built_from_a_dataclass():
    commands = _commands()
    assert set(commands) == COMMANDS
    for name, callback in commands.items():
        cls = getattr(callback, "config_class", None)
        assert cls is not None and dataclasses.is_dataclass(cls), name
        options = [p for p in callback.__signature__.parameters if p not in ("ctx", "config")]
        assert options == [f.name for f in option_fields(cls)], name
        assert all(f.metadata.get("help") for f in dataclasses.fields(cls)), f"{name}: a field without help"


SHARED = {
    "device": parts.DeviceOptions,
    "dtype": parts.DtypeOptions,
    "batch_size": parts.BatchOptions,
    "attn_implementation": parts.ModelRuntimeOptions,
    "layout": parts.LayoutOptions,
    "format": parts.FormatOptions,
    "on_error": parts.OnErrorOptions,
    "split": parts.SplitOptions,
}
RUNTIME_USERS = ["score", "bon", "serve", "bench score", "eval", "diagnose"]


@pytest.mark.parametrize("name", RUNTIME_USERS + ["bench serve", "data summarize", "advise"])
def test_shared_options_come_from_their_part(name):
    cls = _config(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    for field, part in SHARED.items():
        if field not in fields:
            continue
        if (name, field) == ("serve", "batch_size"):  # a larger default, same type: an override
            assert ServeConfig.__dataclass_fields__["batch_size"].default == 32
            assert issubclass(ServeConfig, part)
            continue
        assert _owner(cls, field) is part, (name, field)


def test_device_is_declared_by_one_part_only():
    configs = {_config(n) for n in COMMANDS}
    owners = {k for cls in configs for k in cls.__mro__ if "device" in k.__dict__.get("__annotations__", {})}
    assert owners == {parts.DeviceOptions}
    assert {_config(n) for n in RUNTIME_USERS} <= {c for c in configs if issubclass(c, parts.DeviceOptions)}


def test_score_and_bon_share_the_reward_and_runtime_parts():
    for name in ("score", "bon"):
        cls = _config(name)
        assert _owner(cls, "model") is RewardSpecOptions and _owner(cls, "normalize") is RewardSpecOptions
        assert issubclass(cls, parts.ModelRuntimeOptions) and issubclass(cls, parts.LayoutOptions)
        assert cls.__dataclass_fields__["dtype"].default == "float32"
    embedding = _config("bench embedding")
    assert all(
        _owner(embedding, f.name) is parts.EmbeddingOptions
        for f in dataclasses.fields(parts.EmbeddingOptions)
    )


def test_a_positional_argument_and_a_short_flag(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    assert main(["data", "demo", "--n", "20", "--out", str(data)]) == 0
    out = tmp_path / "s"
    assert main(["data", "summarize", str(data), "-f", "explicit", "--out", str(out)]) == 0
    summary = json.loads((out / "data_summary.json").read_text())
    assert {f["format"] for f in summary["files"]} == {"explicit"}
    assert main(["data", "summarize", str(data), "-f", "ranked", "--out", str(tmp_path / "r")]) == 2
    capsys.readouterr()
    assert main(["data", "summarize", "--out", str(tmp_path / "x")]) == 2
    assert "Missing argument 'path'" in capsys.readouterr().err
    # the positional argument may come from the YAML file like any option
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"path: {data}\nout: {tmp_path / 'y'}\nformat: explicit\n")
    assert main(["data", "summarize", "--config", str(cfg)]) == 0
    assert (tmp_path / "y" / "data_summary.json").exists()


def test_a_repeatable_option_and_a_comma_list_stay_as_they_were(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    write_jsonl(data, [{"question": "q", "chosen": "a", "rejected": "b"}])
    args = ["data", "summarize", str(data), "--out", str(tmp_path / "s"), "--map", "prompt=question"]
    assert main([*args, "--map", "chosen=chosen"]) == 0
    assert main(["bench", "train", "--model", "m", "--data", str(data), "--out", str(tmp_path / "b.json"),
                 "--batch-size", "8,x"]) == 2  # fmt: skip
    assert "--batch-size expects positive integers" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["score", "bon"])
def test_score_and_bon_reject_a_zero_batch_size_alike(command, tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    write_jsonl(data, [{"prompt": "p", "response": "r", "candidates": ["a", "b"]}])
    source = "--data" if command == "score" else "--candidates"
    out = tmp_path / "out.jsonl"
    argv = [
        command,
        "--model",
        "builtin:demo-gold",
        source,
        str(data),
        "--out",
        str(out),
        "--batch-size",
        "0",
    ]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["error: --batch-size must be at least 1, got 0"]
    assert captured.out == "" and not out.exists()
