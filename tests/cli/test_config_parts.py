"""Configs composed from shared parts: flat option names, one validation, own options listed first."""

from __future__ import annotations

import dataclasses

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


#: A bad value of each part's option, and the message the part's check gives (the same as before
#: the options were split into parts).
PART_CASES = [
    ("SequenceOptions", {"truncation": "middle"}, r"--truncation must be one of \("),
    ("SequenceOptions", {"max_length": 4}, r"--max-length must be at least 8, got 4$"),
    (
        "FineTuneOptions",
        {"precision": "fp8"},
        r"--precision must be one of \('auto', 'fp32', 'bf16', 'fp16'\)$",
    ),
    ("FineTuneOptions", {"epochs": 0}, r"^give --epochs > 0 or --max-steps > 0$"),
    ("FineTuneOptions", {"warmup_ratio": 1.0}, r"--warmup-ratio must be in \[0, 1\), got 1.0$"),
    ("LoraOptions", {"merge": True}, r"^--merge needs --lora$"),
    ("LoraOptions", {"lora_dropout": 1.5}, r"--lora-dropout must be in \[0, 1\), got 1.5$"),
    ("HeadInitOptions", {"head_init": "random"}, r"--head-init must be one of \('model', 'zero', 'probe'\)$"),
    ("PreferenceLossOptions", {"label_smoothing": 0.5}, r"--label-smoothing must be in \[0, 0.5\), got 0.5$"),
    ("DebiasOptions", {"length_corr_weight": -1.0}, r"--length-corr-weight must be a finite number >= 0"),
    ("ProcessOptions", {"aggregation": "max"}, r"^--aggregation must be min, prod, last or mean$"),
    ("EmbeddingTrainOptions", {"head": "tree"}, r"^--head must be linear or mlp, --objective bt or"),
    ("EmbeddingTrainOptions", {"ensemble": 0}, r"--ensemble must be at least 1, got 0$"),
]


@pytest.mark.parametrize(("part", "bad", "message"), PART_CASES, ids=lambda v: str(v)[:30])
def test_each_part_checks_its_own_options(part, bad, message):
    """The part's check rejects its bad value alone; the config built for its method says the same."""
    from types import SimpleNamespace

    from rewardlab.training import options

    cls = getattr(options, part)
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    alone = SimpleNamespace(**{**fields, **bad})  # only this part's options: its check needs no other
    with pytest.raises(ValueError, match=message):
        options.PART_CHECKS[cls](alone)
    options.PART_CHECKS[cls](SimpleNamespace(**fields))  # its defaults pass
    method = {"ProcessOptions": {"kind": "prm"}, "EmbeddingTrainOptions": {"method": "embedding"}}.get(
        part, {}
    )
    with pytest.raises(RewardlabError, match=message.lstrip("^")):
        build(TrainConfig, {**REQUIRED[TrainConfig], **method, **bad})


def test_every_part_is_in_the_config_and_its_numbers_are_checked():
    from rewardlab.training import config, options

    assert set(options.PART_CHECKS) == set(config.PARTS) <= set(TrainConfig.__mro__)
    numeric = {n for part in config.PARTS for n in part.numeric_rules}
    assert numeric <= set(config.NUMERIC_RULES) and {"seed", "eval_split"} <= set(config.NUMERIC_RULES)
    # every option has its place in --help and the YAML, and the order is the one users know
    assert set(TrainConfig.option_order) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig.option_order[-2:] == ("format", "on_error")
