"""``rewardlab merge`` (WARM weight averaging) and the ``ensemble:AGG:PATH,PATH`` model spec.

Two tiny LLaMA reward models are trained for two steps with different seeds (so their weights
differ) on the same data; the tests merge them and score them as an ensemble.

Run: ``pytest tests/training/test_merge.py -q`` (tiny random models on the CPU, under a minute).
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from rewardlab.cli import main
from rewardlab.data.demo import write_demo
from rewardlab.models.loading import load_reward
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.tiny import build_tiny_model
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

PROMPTS = ["Say hi.", "Name a colour.", "Count to three."]
RESPONSES = ["Hello there, friend.", "Blue, like the sky.", "One."]


def _train(model, data, held_out, out, seed):
    train(
        TrainConfig(
            model=str(model),
            data=str(data),
            eval_data=str(held_out),  # no split: both members train on the same responses
            out=str(out),
            max_length=256,  # nothing is cut: pairs and single responses encode alike
            batch_size=4,
            learning_rate=1e-3,
            max_steps=2,
            save_steps=100,
            norm_samples=500,  # more than the training responses: every member scores all of them
            seed=seed,
            precision="fp32",
        )
    )
    return out


@pytest.fixture(scope="module")
def members(tiny_models, tmp_path_factory):
    """Two tiny LLaMA reward models fine-tuned from one base with seeds 1 and 2."""
    root = tmp_path_factory.mktemp("merge")
    data = write_demo(root / "train.jsonl", n=24, seed=1)
    held_out = write_demo(root / "held.jsonl", n=8, seed=2)
    a = _train(tiny_models["llama"], data, held_out, root / "a", seed=1)
    b = _train(tiny_models["llama"], data, held_out, root / "b", seed=2)
    return a, b, held_out


def _merge(a, b, out, *extra):
    return main(["merge", "--model", str(a), "--model", str(b), "--out", str(out), *extra])


def _norm(folder):
    return json.loads((folder / "rewardlab.json").read_text())["normalization"]


def test_merged_weights_are_the_weighted_average(members, tmp_path, capsys):
    a, b, _ = members
    out = tmp_path / "warm"
    assert _merge(a, b, out, "--weights", "0.25,0.75") == 0
    printed = capsys.readouterr().out
    assert "merged 2 models (weights 0.25, 0.75)" in printed and " s; " in printed and "MiB" in printed

    wa, wb, merged = (load_file(str(f / "model.safetensors")) for f in (a, b, out))
    assert set(merged) == set(wa) == set(wb)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # the seeds gave different members
    for key, value in merged.items():
        expected = 0.25 * wa[key].double() + 0.75 * wb[key].double()
        assert value.dtype == wa[key].dtype
        assert torch.allclose(value.double(), expected, atol=1e-6), key

    info = json.loads((out / "rewardlab.json").read_text())
    assert info["method"] == "warm" and info["kind"] == "orm"
    assert info["merged_from"] == [
        {"path": str(a.resolve()), "weight": 0.25},
        {"path": str(b.resolve()), "weight": 0.75},
    ]
    assert "train_config" not in info and "metrics" not in info
    assert info["normalization"]["samples"] > 0 and "training samples" in info["normalization"]["measured_on"]


def test_merged_folder_loads_with_rewardlab_and_transformers(members, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    a, b, held_out = members
    out = tmp_path / "warm"
    assert _merge(a, b, out) == 0
    rm = RewardModel.from_pretrained(out, device="cpu")
    scores = rm.score(PROMPTS, RESPONSES)
    assert len(scores) == 3 and all(s == s for s in scores)
    assert rm.info["method"] == "warm"

    plain = AutoModelForSequenceClassification.from_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(out))
    for key, value in plain.state_dict().items():
        if key in rm.model.state_dict():
            assert torch.equal(value, rm.model.state_dict()[key]), key

    evals = tmp_path / "eval"
    assert main(["eval", "--model", str(out), "--data", str(held_out), "--out", str(evals)]) == 0
    assert json.loads((evals / "metrics.json").read_text())["models"]["warm"]["method"] == "warm"


def test_weights_one_and_zero_reproduce_member_a(members, tmp_path):
    a, b, _ = members
    out = tmp_path / "only-a"
    assert _merge(a, b, out, "--weights", "1,0") == 0
    merged = RewardModel.from_pretrained(out, device="cpu").score(PROMPTS, RESPONSES)
    alone = RewardModel.from_pretrained(a, device="cpu").score(PROMPTS, RESPONSES)
    assert merged == pytest.approx(alone, abs=1e-6)
    # both members' samples are all the training responses, so the normalisation is A's again
    assert _norm(out)["mean"] == pytest.approx(_norm(a)["mean"], abs=1e-4)
    assert _norm(out)["std"] == pytest.approx(_norm(a)["std"], abs=1e-4)


def test_merged_model_gets_its_own_feature_statistics(members, tmp_path):
    from rewardlab.models.feature_stats import FEATURE_STATS_FILE
    from rewardlab.models.signals import score_with_signals

    a, b, held_out = members
    out = tmp_path / "warm"
    assert _merge(a, b, out) == 0
    info = json.loads((out / "rewardlab.json").read_text())
    assert (out / FEATURE_STATS_FILE).is_file() and info["feature_stats"]["samples"] == _norm(out)["samples"]
    assert "feature_stats" not in info["normalization"]
    rm = RewardModel.from_pretrained(out, device="cpu")
    rewards, signals = score_with_signals(rm, PROMPTS, RESPONSES)
    assert rewards == rm.score(PROMPTS, RESPONSES) and len(signals["feature_distance"]) == 3
    assert _merge(a, b, out, "--overwrite", "--norm-data", str(held_out)) == 0
    record = json.loads((out / "rewardlab.json").read_text())["feature_stats"]
    assert record["fitted_on"] == f"--norm-data {held_out}"


def _copy_with_info(src, dst, **changes):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
    info = json.loads((dst / "rewardlab.json").read_text())
    (dst / "rewardlab.json").write_text(json.dumps({**info, **changes}))
    return dst


def test_refusals_name_the_member_and_write_nothing(
    members, embedding_checkpoint, tiny_models, tmp_path, capsys
):
    a, b, held_out = members
    out = tmp_path / "warm"

    assert main(["merge", "--model", str(a), "--out", str(out)]) == 2
    assert "needs at least 2 --model members" in capsys.readouterr().err

    assert _merge(a, embedding_checkpoint, out) == 2
    err = capsys.readouterr().err
    assert str(embedding_checkpoint) in err and "embedding reward model" in err

    lora = _copy_with_info(b, tmp_path / "lora", method="lora")
    assert _merge(a, lora, out) == 2
    assert "lora is a LoRA adapter" in capsys.readouterr().err

    prm = _copy_with_info(b, tmp_path / "prm", kind="prm")
    assert _merge(a, prm, out) == 2
    assert "a process and an outcome reward model cannot be averaged" in capsys.readouterr().err

    # another base model (half the width): refused by its base before its shapes are read
    other_base = build_tiny_model("llama", tiny_models["llama"], tmp_path / "narrow", hidden=32)
    other = _train(other_base, held_out, held_out, tmp_path / "other", seed=1)
    assert _merge(a, other, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(other) in err and "base_model" in err

    # same base, a parameter of another shape
    cut = _copy_with_info(b, tmp_path / "cut")
    weights = load_file(str(cut / "model.safetensors"))
    weights["score.weight"] = weights["score.weight"][:, :32].contiguous()
    save_file(weights, str(cut / "model.safetensors"), metadata={"format": "pt"})
    assert _merge(a, cut, out) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(cut) in err and "score.weight has shape [1, 32]" in err

    assert _merge(a, b, out, "--weights", "0.5") == 2
    assert "1 weights for 2 members" in capsys.readouterr().err
    assert not out.exists()  # nothing half-written

    assert _merge(a, b, out) == 0
    assert _merge(a, b, out) == 2  # an existing model is replaced only with --overwrite
    assert "use --overwrite" in capsys.readouterr().err


def test_ensemble_spec_is_the_mean_of_normalised_members(members, tmp_path):
    a, b, held_out = members
    by_hand = []
    for folder in (a, b):
        norm = _norm(folder)
        raw = RewardModel.from_pretrained(folder, device="cpu").score(PROMPTS, RESPONSES)
        by_hand.append([(r - norm["mean"]) / norm["std"] for r in raw])
    mean = [(x + y) / 2 for x, y in zip(*by_hand, strict=True)]

    ens = load_reward(f"ensemble:mean:{a},{b}", device="cpu")
    assert ens.info["kind"] == "ensemble" and len(ens.members) == 2
    assert ens.score(PROMPTS, RESPONSES) == pytest.approx(mean, abs=1e-5)
    lowest = [min(x, y) for x, y in zip(*by_hand, strict=True)]
    assert load_reward(f"ensemble:min:{a},{b}", device="cpu").score(PROMPTS, RESPONSES) == pytest.approx(
        lowest, abs=1e-5
    )

    spec = f"ensemble:mean:{a},{b}"
    out = tmp_path / "eval"
    assert main(["eval", "--model", spec, "--data", str(held_out), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    from rewardlab.data import load_preferences

    pairs = load_preferences(held_out).pairs
    for row in rows:
        pair = pairs[row["index"]]
        (got,) = row["rewards"].values()  # the one model: the ensemble
        expected = ens.score([pair.prompt, pair.prompt], [pair.chosen, pair.rejected])
        assert [got["chosen"], got["rejected"]] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(
    ("members_text", "message"),
    [
        ("{a},/no/such:dir", "a member contains ':'"),
        ("{a},/no/such,dir", "member '/no/such' is not a checkpoint folder"),
        ("{a}", "give two or more member folders"),
        ("{a},", "give two or more member folders"),
    ],
)
def test_ensemble_spec_refuses_what_it_cannot_split(members, tmp_path, capsys, members_text, message):
    a, _, held_out = members
    spec = "ensemble:mean:" + members_text.format(a=a)
    assert main(["eval", "--model", spec, "--data", str(held_out), "--out", str(tmp_path / "e")]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert (
        main(
            [
                "eval",
                "--model",
                f"ensemble:avg:{a},{a}",
                "--data",
                str(held_out),
                "--out",
                str(tmp_path / "e2"),
            ]
        )
        == 2
    )
    assert "an ensemble is written ensemble:mean|min|uwo" in capsys.readouterr().err


def test_without_the_members_data_norm_data_or_a_warning(members, tmp_path, capsys):
    from rewardlab.data import load_preferences

    a, b, held_out = members
    moved = []
    for folder in (a, b):
        info = json.loads((folder / "rewardlab.json").read_text())
        cfg = {**info["train_config"], "data": str(tmp_path / "gone.jsonl")}
        moved.append(_copy_with_info(folder, tmp_path / folder.name, train_config=cfg))

    out = tmp_path / "warm"
    assert _merge(*moved, out) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "no reward normalisation" in printed and "gone.jsonl is gone" in printed
    assert "normalization" not in json.loads((out / "rewardlab.json").read_text())

    assert _merge(*moved, out, "--overwrite", "--norm-data", str(held_out)) == 0
    pairs = load_preferences(held_out).pairs
    rewards = RewardModel.from_pretrained(out, device="cpu").score(
        [p.prompt for p in pairs for _ in (0, 1)], [r for p in pairs for r in (p.chosen, p.rejected)]
    )
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    norm = _norm(out)
    assert norm["measured_on"] == f"--norm-data {held_out}" and norm["samples"] == len(rewards)
    assert norm["mean"] == pytest.approx(mean, abs=1e-5) and norm["std"] == pytest.approx(std, abs=1e-5)
