"""One reward wherever it is computed: the input-format contract from training to every scoring path.

A checkpoint records how its training pairs were rendered (``input_format`` in rewardlab.json); every
path turns its input into that rendering. The table test trains tiny models on HH-RLHF text and on chat
messages, then scores one set of conversations through every path (the Python API, ``RewardFunction``,
the ``score`` command, ``serve``'s ``/score``, ``/classify`` with messages and with whole texts, and
OpenRLHF's ``/get_reward`` with pad tokens) in every input form, and asks for the same reward (1e-4).
"""

from __future__ import annotations

import json

import pytest

from rewardlab.errors import RewardlabError
from rewardlab.models.input_format import conform, describe, read_rendered, strip_padding
from tests.conftest import write_jsonl

HH = {"render": "text", "style": "hh"}
PLAIN = {"render": "text", "style": "plain"}
CHAT = {"render": "chat_template", "style": None}
USER = [{"role": "user", "content": "What is 2 + 3?"}]
ANSWER = [{"role": "assistant", "content": "It is 5."}]
HH_PROMPT = "\n\nHuman: What is 2 + 3?\n\nAssistant:"


def test_hh_models_get_hh_text_from_any_form():
    want = (HH_PROMPT, " It is 5.")
    assert conform(HH_PROMPT, " It is 5.", HH) == want
    assert conform(USER, ANSWER, HH) == want
    assert conform(USER, "It is 5.", HH) == want  # a response as a string or as a message: the same
    assert conform("What is 2 + 3?", "It is 5.", HH) == want  # a bare question is one human turn
    assert conform("", HH_PROMPT + " It is 5.", HH) == want  # a whole transcript is split
    with pytest.raises(RewardlabError, match="a 'system' message has no place"):
        conform([{"role": "system", "content": "Be brief."}, *USER], ANSWER, HH)


def test_plain_and_chat_models():
    assert conform(USER, ANSWER, PLAIN) == ("What is 2 + 3?", "It is 5.")
    with pytest.raises(RewardlabError, match="a prompt of 3 messages cannot be given"):
        conform([*USER, *ANSWER, *USER], ANSWER, PLAIN)
    with pytest.raises(RewardlabError, match="cannot tell where the response starts"):
        conform("", "What is 2 + 3? It is 5.", PLAIN)
    assert conform(HH_PROMPT, " It is 5.", CHAT) == (USER, ANSWER)
    chatml = "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\nIt is 5.<|im_end|>\n"
    assert read_rendered(chatml) == [*USER, *ANSWER] and conform("", chatml, CHAT) == (USER, ANSWER)
    assert conform(HH_PROMPT, " x", None) == (HH_PROMPT, " x")  # an older checkpoint: as it comes


def test_describe_reads_the_training_rendering():
    fmt = describe([HH_PROMPT] * 9 + ["plain"], False, max_length=64, truncation="keep_end", end_token="</s>",
                   arch="decoder")  # fmt: skip
    assert (fmt["render"], fmt["style"], fmt["end_token"]) == ("text", "hh", "</s>")
    assert (
        describe(["a", "b"], True, max_length=8, truncation="keep_end", end_token=None, arch="encoder")[
            "style"
        ]
        == "plain"
    )
    assert describe([USER], True, max_length=8, truncation="keep_end", end_token=None, arch="d")[
        "render"
    ] == ("chat_template")
    assert (
        describe([USER, "x"], True, max_length=8, truncation="keep_end", end_token=None, arch="d")["render"]
        == "mixed"
    )


def test_pad_strings_are_removed_from_the_ends_only():
    p, r = strip_padding("<pad><pad>Question", "Answer<pad></s>", ["<pad>", "</s>"])
    assert (p, r) == ("Question", "Answer")
    assert strip_padding("a<pad>b", "c", ["<pad>"]) == ("a<pad>b", "c")


# --------------------------------------------------------------------------- the table over paths


def _hh_rows(rows):
    return [
        {"chosen": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['chosen']}",
         "rejected": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['rejected']}"}
        for r in rows
    ]  # fmt: skip


def _chat_rows(rows):
    return [
        {"prompt": [{"role": "user", "content": r["prompt"]}],
         "chosen": [{"role": "assistant", "content": r["chosen"]}],
         "rejected": [{"role": "assistant", "content": r["rejected"]}]}
        for r in rows
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_models, demo_rows, tmp_path_factory):
    """Tiny models trained on HH text (LLaMA without a chat template, BERT embeddings) and on messages."""
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    root = tmp_path_factory.mktemp("contract")
    hh = write_jsonl(root / "hh.jsonl", _hh_rows(demo_rows[:120]))
    chat = write_jsonl(root / "chat.jsonl", _chat_rows(demo_rows[:120]))
    runs = {
        "llama-hh": dict(data=str(hh), model=str(tiny_models["llama"]), max_steps=2),
        "qwen2-chat": dict(data=str(chat), model=str(tiny_models["qwen2"]), max_steps=2),
        "emb-hh": dict(data=str(hh), model=str(tiny_models["bert"]), method="embedding"),
    }
    out = {}
    for name, kw in runs.items():
        folder = root / name
        train(TrainConfig(out=str(folder), max_length=64, **kw))
        out[name] = folder
    return out


CONVERSATIONS = [("What is 2 + 3?", "It is 5."), ("Name a colour.", "Blue, like the sea.")]


def _forms(q, a):
    """Every form of one conversation: (prompt, response) as a client may send it."""
    msgs = [{"role": "user", "content": q}]
    return {
        "hh text": (f"\n\nHuman: {q}\n\nAssistant:", f" {a}"),
        "messages": (msgs, [{"role": "assistant", "content": a}]),
        "messages + text response": (msgs, a),
        "bare question": (q, a),
    }


@pytest.mark.parametrize("name", ["llama-hh", "qwen2-chat", "emb-hh"])
def test_every_path_and_form_gives_the_same_reward(trained, name, tmp_path):
    from fastapi.testclient import TestClient

    from rewardlab.cli import main
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.rl import RewardFunction
    from rewardlab.serving.server import create_app

    folder = trained[name]
    info = json.loads((folder / "rewardlab.json").read_text())
    assert info["input_format"]["render"] == ("chat_template" if name == "qwen2-chat" else "text")
    rm = RewardModel.from_pretrained(folder, device="cpu")
    fn = RewardFunction(str(folder), normalize=False)
    client = TestClient(create_app(ServeConfig(model=[str(folder)], device="cpu", batch_window_ms=0.0)))
    for q, a in CONVERSATIONS:
        forms = _forms(q, a)
        ref = rm.score(*[[x] for x in forms["hh text"]])[0]
        got = {}
        for form, (p, r) in forms.items():
            got[f"api {form}"] = rm.score([p], [r])[0]
            got[f"RewardFunction {form}"] = fn([p], [r])[0]
            body = client.post("/score", json={"prompts": [p], "responses": [r]}).json()
            got[f"/score {form}"] = body["rewards"][0]
        conv = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        got["/classify messages"] = client.post("/classify", json={"messages": conv}).json()["data"][0][
            "probs"
        ][0]
        whole = client.post("/classify", json={"input": [f"\n\nHuman: {q}\n\nAssistant: {a}"]}).json()
        got["/classify whole hh text"] = whole["data"][0]["probs"][0]
        pad = (rm.embedder.tokenizer if name == "emb-hh" else rm.tokenizer).pad_token or ""
        query = f"{pad}{pad}\n\nHuman: {q}\n\nAssistant: {a}{pad}"
        body = {"query": [query], "prompts": [f"{pad}{pad}\n\nHuman: {q}\n\nAssistant:"]}
        got["/get_reward padded"] = client.post("/get_reward", json=body).json()["rewards"][0]
        rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": p, "response": r} for p, r in forms.values()])
        out = tmp_path / "scores.jsonl"
        assert main(["score", "--model", str(folder), "--data", str(rows), "--out", str(out)]) == 0
        for form, line in zip(forms, out.read_text().splitlines(), strict=True):
            got[f"score command {form}"] = json.loads(line)["reward"]
        out.unlink()
        skew = {path: v - ref for path, v in got.items() if abs(v - ref) > 1e-4}
        assert not skew, f"{name}: rewards differ from the API's on HH text ({ref:.6f}): {skew}"
