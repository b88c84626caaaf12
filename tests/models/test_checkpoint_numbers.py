"""Numbers read from a checkpoint's rewardlab.json are checked before use, and numeric options before work.

A normalisation std of 0 divided by zero, a string traced back, and a negative one silently flipped the
sign of every normalised reward (and of every ensemble member using it): each is now one line naming the
file and the field. rlcheck's float options refuse nan and inf before anything loads.
"""

from __future__ import annotations

import json
import shutil

import pytest

from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.models.reward_model import RewardModel


@pytest.fixture
def checkpoint(tiny_models, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_models["llama"], folder)
    return folder


def write_info(folder, **fields):
    (folder / "rewardlab.json").write_text(json.dumps({"kind": "orm", **fields}))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"normalization": {"mean": 0.0, "std": 0.0}},
            "normalization.std must be a finite number > 0, got 0.0",
        ),
        (
            {"normalization": {"mean": 0.0, "std": -2.0}},
            "normalization.std must be a finite number > 0, got -2.0",
        ),
        (
            {"normalization": {"mean": 0.0, "std": "1"}},
            "normalization.std must be a finite number > 0, got '1'",
        ),
        (
            {"normalization": {"mean": None, "std": 1.0}},
            "normalization.mean must be a finite number, got None",
        ),
        ({"normalization": [0, 1]}, "'normalization' must be an object"),
        ({"length_correction": {"alpha": "x", "center": 1.0}}, "length_correction.alpha must be a finite"),
        ({"max_length": 0}, "max_length must be a whole number >= 1, got 0"),
    ],
)
def test_bad_numbers_in_rewardlab_json_are_one_line_errors(checkpoint, fields, words):
    write_info(checkpoint, **fields)
    with pytest.raises(RewardlabError, match=words) as caught:
        RewardModel.from_pretrained(checkpoint, device="cpu")
    assert "rewardlab.json" in str(caught.value)


def test_a_negative_std_no_longer_flips_scores_silently(checkpoint, tmp_path, capsys):
    write_info(checkpoint, normalization={"mean": 0.0, "std": -1.0})
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "p", "response": "a"}\n')
    out = tmp_path / "o.jsonl"
    assert (
        main(["score", "--model", str(checkpoint), "--data", str(rows), "--out", str(out), "--normalize"])
        == 2
    )
    err = capsys.readouterr().err
    assert "normalization.std must be a finite number > 0" in err and "Traceback" not in err
    assert not out.exists()


def test_a_good_record_still_loads(checkpoint):
    write_info(checkpoint, normalization={"mean": 1.0, "std": 2.0})
    assert RewardModel.from_pretrained(checkpoint, device="cpu").info["normalization"]["std"] == 2.0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--beta", "nan"),
        ("--learning-rate", "nan"),
        ("--uwo-lambda", "inf"),
        ("--clip", "inf"),
        ("--uwo-lambda", "-1"),
    ],
)
def test_rlcheck_refuses_non_finite_numbers_before_any_work(tmp_path, capsys, option, value):
    code = main(["rlcheck", "--reward", "builtin:demo-gold", "--out", str(tmp_path / "o"), option, value])
    err = capsys.readouterr().err
    assert code == 2 and f"{option} must be a finite number" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
