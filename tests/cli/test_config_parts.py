"""Configs composed from shared parts: flat option names, one validation, own options listed first."""

from __future__ import annotations

import pytest

from rewardlab.config import DataOptions, ScoringOptions, build, resolve, to_dict, typer_command
from rewardlab.diagnostics.config import DiagnoseConfig
from rewardlab.errors import RewardlabError
from rewardlab.evaluation.config import EvalConfig
from rewardlab.training.config import TrainConfig

REQUIRED = {
    TrainConfig: {"data": "d.jsonl", "out": "o", "model": "m"},
    EvalConfig: {"model": ["m"], "data": ["d.jsonl"], "out": "o"},
    DiagnoseConfig: {"model": ["m"], "data": "d.jsonl", "out": "o"},
}


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_every_command_checks_the_data_options_the_same_way(cls):
    assert issubclass(cls, DataOptions)
    with pytest.raises(RewardlabError, match=r"--on-error must be fail or skip$"):
        build(cls, {**REQUIRED[cls], "on_error": "ignore"})


@pytest.mark.parametrize("cls", [EvalConfig, DiagnoseConfig], ids=lambda c: c.__name__)
def test_scoring_options_check_the_batch_size_once(cls):
    assert issubclass(cls, ScoringOptions)
    with pytest.raises(RewardlabError, match=r"--batch-size must be >= 1$"):
        build(cls, {**REQUIRED[cls], "batch_size": 0})


@pytest.mark.parametrize("cls", list(REQUIRED), ids=lambda c: c.__name__)
def test_shared_options_keep_their_flat_names_in_yaml_and_on_the_command_line(cls, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("on-error: skip\nformat: explicit\n")
    cfg = resolve(cls, {**REQUIRED[cls], "format": None}, config)
    assert (cfg.on_error, cfg.format) == ("skip", "explicit")
    command = typer_command(cls, lambda c: c, "doc")
    names = list(command.__signature__.parameters)
    assert names[:2] == ["config", "data" if cls is TrainConfig else "model"]
    # the command's own options first, the shared parts after them, and the YAML written in that order
    assert names[-2:] == (["format", "on_error"] if cls is TrainConfig else ["batch_size", "device"])
    assert list(to_dict(cfg)) == names[1:]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["data", "demo", "--longer-chosen", "nan", "--out", "x.jsonl"],
            "--longer-chosen must be a finite number, got nan",
        ),
        (
            ["diagnose", "--model", "m", "--data", "d", "--out", "o", "--uwo-lambda", "inf"],
            "--uwo-lambda must be a finite",
        ),
        (
            ["train", "--model", "m", "--data", "d", "--out", "o", "--warmup-ratio", "nan"],
            "--warmup-ratio must be a finite",
        ),
    ],
)
def test_every_command_refuses_non_finite_numbers_before_any_work(tmp_path, capsys, monkeypatch, args, words):
    from rewardlab.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_yaml_numbers_are_checked_by_type(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("batch_size: '8'\n")
    with pytest.raises(RewardlabError, match=r"--batch-size must be a whole number, got '8'"):
        resolve(TrainConfig, {"data": "d", "out": "o", "model": "m"}, config)
