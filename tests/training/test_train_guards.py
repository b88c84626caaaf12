"""``rewardlab train`` refuses what would harm a run: bad numbers, non-finite training, clobbered outputs."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.training.config import TrainConfig
from rewardlab.training.finite import NonFiniteError
from rewardlab.training.run import train
from tests.conftest import write_jsonl

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -5),
        ("grad_accum", 0),
        ("epochs", -1.0),
        ("epochs", NAN),
        ("max_steps", 0),
        ("learning_rate", 0.0),
        ("learning_rate", INF),
        ("learning_rate", NAN),
        ("weight_decay", -0.1),
        ("warmup_ratio", 1.5),
        ("max_length", 4),
        ("lora_r", 0),
        ("lora_dropout", 1.0),
        ("center_rewards_coefficient", NAN),
        ("logging_steps", 0),
        ("eval_steps", -1),
        ("save_steps", 0),
        ("save_total_limit", 0),
        ("seed", -1),
        ("norm_samples", 0),
        ("pack_tokens", 8),
    ],
)
def test_every_numeric_option_is_checked_once_in_the_config(option, value):
    with pytest.raises(ValueError, match=f"^--{option.replace('_', '-')} must be ") as err:
        TrainConfig(model="m", data="d", out="o", **{option: value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("option", "value"), [("ensemble", 0), ("l2", -1.0), ("embed_layers", 0)])
def test_embedding_numeric_options_are_checked(option, value):
    with pytest.raises(ValueError, match=f"^--{option.replace('_', '-')} must be "):
        TrainConfig(data="d", out="o", method="embedding", **{option: value})


def test_cli_batch_size_zero_is_one_line_error(tmp_path, capsys):
    code = main(["train", "--model", "m", "--data", "d", "--out", str(tmp_path / "o"), "--batch-size", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: options: --batch-size must be at least 1, got 0"
    assert not (tmp_path / "o").exists()


@pytest.fixture
def tiny_pairs(tmp_path, demo_rows):
    return write_jsonl(tmp_path / "pairs.jsonl", demo_rows[:48])


def test_nan_loss_stops_the_run_keeps_earlier_checkpoints_and_writes_no_model(
    tiny_models, tiny_pairs, tmp_path, monkeypatch
):
    import rewardlab.training.trainer as trainer_module

    real, calls = trainer_module.comparison_loss, []

    def nan_from_step_3(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * NAN if len(calls) >= 3 else loss

    monkeypatch.setattr(trainer_module, "comparison_loss", nan_from_step_3)
    out = tmp_path / "run"
    config = TrainConfig(
        model=str(tiny_models["llama"]), data=str(tiny_pairs), out=str(out), max_length=48, batch_size=4,
        learning_rate=1e-3, max_steps=5, save_steps=1, logging_steps=1, eval_split=0.0,
    )  # fmt: skip
    with pytest.raises(
        NonFiniteError, match=r"^step 3: the training loss is nan .*learning rate too high"
    ) as e:
        train(config)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]
    assert not (out / "rewardlab.json").exists() and not list(out.glob("*.safetensors"))


def test_logged_non_finite_loss_stops_the_run():
    from rewardlab.training.finite import FiniteLogCallback

    stopped = []
    callback = FiniteLogCallback(lambda: stopped.append(True))

    class State:
        global_step = 7

    callback.on_log(None, State(), None, logs={"loss": 0.5, "grad_norm": 1.0})
    with pytest.raises(NonFiniteError, match="^step 7: the logged grad_norm is inf"):
        callback.on_log(None, State(), None, logs={"loss": 0.5, "grad_norm": INF})
    assert stopped == [True]


def test_weights_and_normalisation_are_checked_before_saving():
    from rewardlab.training.finite import check_values, check_weights

    layer = torch.nn.Linear(3, 1)
    check_weights(layer, "step 4")
    with torch.no_grad():
        layer.bias.fill_(NAN)
    with pytest.raises(NonFiniteError, match=r"^step 4: the weights \(bias\) is not finite"):
        check_weights(layer, "step 4")
    check_values({"mean": 0.1, "std": 1.0, "samples": 10}, "the reward normalisation", "here")
    with pytest.raises(NonFiniteError, match="the reward normalisation std is nan"):
        check_values({"mean": 0.1, "std": NAN}, "the reward normalisation", "here")


def test_embedding_head_refuses_a_nan_margin():
    from rewardlab.training.embedding_heads import train_head

    xc, xr = torch.randn(20, 4), torch.randn(20, 4)
    margin = torch.zeros(20)
    margin[3] = NAN
    with pytest.raises(NonFiniteError, match="L-BFGS step 1: the head's training loss is nan"):
        train_head(xc, xr, margin, l2=0.1)


def _nan_margin_loader(monkeypatch):
    """Pairs whose first margin is NaN, as if the data layer had let it through."""
    import rewardlab.data as data_module

    real = data_module.load_preferences

    def load(*args, **kwargs):
        data = real(*args, **kwargs)
        data.pairs[0].margin = NAN
        return data

    monkeypatch.setattr(data_module, "load_preferences", load)


def test_embedding_run_with_a_nan_margin_fails_and_writes_nothing(
    tiny_models, tiny_pairs, tmp_path, monkeypatch, capsys
):
    _nan_margin_loader(monkeypatch)
    out = tmp_path / "emb"
    code = main(
        ["train", "--method", "embedding", "--model", str(tiny_models["bert"]), "--data", str(tiny_pairs),
         "--out", str(out), "--max-length", "32", "--eval-split", "0"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error: L-BFGS ") and "loss is nan" in err and "no model was written" in err
    assert not out.exists()  # not even the config or the data summary


@pytest.fixture
def finished(embedding_checkpoint, tmp_path):
    """A copy of a finished embedding model, and the bytes of its files."""
    out = shutil.copytree(embedding_checkpoint, tmp_path / "finished")
    return out, {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _emb_args(tiny_models, data, out, *extra):
    return ["train", "--method", "embedding", "--model", str(tiny_models["bert"]), "--data", str(data),
            "--out", str(out), "--max-length", "64", *extra]  # fmt: skip


def test_a_finished_model_is_never_replaced_by_accident(tiny_models, tiny_pairs, finished, tmp_path, capsys):
    out, before = finished
    ties = write_jsonl(
        tmp_path / "ties.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b", "tie": True}] * 4
    )
    assert main(_emb_args(tiny_models, tiny_pairs, out)) == 2
    assert "already holds a training run: use --resume to continue it, --overwrite" in capsys.readouterr().err
    assert main(_emb_args(tiny_models, tiny_pairs, out, "--resume")) == 2
    assert "--method embedding writes no checkpoints" in capsys.readouterr().err
    assert main(_emb_args(tiny_models, ties, out, "--overwrite")) == 2  # bad data: nothing touched
    assert "no usable training pairs" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert main(_emb_args(tiny_models, tiny_pairs, out, "--overwrite", "--ensemble", "1")) == 0
    info = json.loads((out / "rewardlab.json").read_text())
    assert info["head"]["ensemble"] == 1 and info["train_config"]["data"] == str(tiny_pairs)
    assert all(math.isfinite(info["normalization"][k]) for k in ("mean", "std"))


def test_resume_and_overwrite_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        TrainConfig(model="m", data="d", out="o", resume=True, overwrite=True)


def test_resume_trims_the_log_to_the_checkpoint_step(tmp_path):
    from rewardlab.training.outdir import checkpoint_step, trim_log

    log = tmp_path / "train_log.jsonl"
    rows = [{"step": s, "loss": 1.0} for s in range(1, 7)] + [{"step": 4, "eval_loss": 0.5}]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 7, "lo')  # a cut last line
    assert trim_log(log, 4) == 3
    assert [json.loads(x) for x in log.read_text().splitlines()] == rows[:4] + rows[-1:]
    assert trim_log(log, 4) == 0
    ckpt = tmp_path / "checkpoint-12"
    ckpt.mkdir()
    assert checkpoint_step(ckpt) == 12
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 10}))
    assert checkpoint_step(ckpt) == 10


def test_resume_is_refused_without_a_checkpoint_before_anything_is_written(tiny_models, tiny_pairs, tmp_path):
    with pytest.raises(RewardlabError, match="no complete checkpoint"):
        train(
            TrainConfig(
                model=str(tiny_models["llama"]), data=str(tiny_pairs), out=str(tmp_path / "none"),
                max_length=48, max_steps=1, resume=True,
            )
        )  # fmt: skip
    assert not (tmp_path / "none").exists()


def test_prm_nan_loss_stops_the_run_and_writes_no_model(tmp_path, monkeypatch):
    import rewardlab.training.prm_trainer as prm_module
    from rewardlab.data.demo import generate_steps
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    rows = generate_steps(40, seed=0)
    data = write_jsonl(tmp_path / "steps.jsonl", rows)
    tok = train_tokenizer([r["prompt"] for r in rows] + [s for r in rows for s in r["completions"]],
                          tmp_path / "tok", style="llama")  # fmt: skip
    model = build_tiny_model("llama", tok, tmp_path / "llama")
    real, calls = prm_module.step_loss, []

    def nan_from_step_2(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs) * (NAN if len(calls) >= 2 else 1.0)

    monkeypatch.setattr(prm_module, "step_loss", nan_from_step_2)
    out = tmp_path / "prm"
    config = TrainConfig(
        kind="prm", model=str(model), data=str(data), out=str(out), max_length=48, batch_size=4,
        learning_rate=1e-3, max_steps=3, save_steps=1, logging_steps=1, eval_split=0.0,
    )  # fmt: skip
    with pytest.raises(NonFiniteError, match="^step 2: the training loss is nan"):
        train(config)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-1"]
    assert not (out / "rewardlab.json").exists() and not list(out.glob("*.safetensors"))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"precision": "fp8"}, "--precision must be one of"),
        ({"merge": True}, "--merge needs --lora"),
        ({"epochs": 0}, "give --epochs > 0 or --max-steps > 0"),
    ],
)
def test_options_embedding_ignores_are_still_checked(extra, words):
    from rewardlab.config import build

    with pytest.raises(RewardlabError, match=words):
        build(TrainConfig, {"data": "d", "out": "o", "method": "embedding", **extra})
