"""Encoding and reading rewards: the silent-bug cases of reward-model training."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rewardlab.models.encoding import DECODER, ENCODER, SequenceEncoder
from rewardlab.models.reward_model import (
    PAD_TOKEN,
    RewardModel,
    ensure_pad_token,
    forward_rewards,
    load_model_and_tokenizer,
    model_arch,
    pad_batch,
)

DECODERS = ("llama", "gpt2", "qwen2")


def loaded(path, max_length=96):
    model, tok = load_model_and_tokenizer(path)
    arch = model_arch(model)
    ensure_pad_token(tok, model, arch)
    return model.eval(), tok, SequenceEncoder(tok, arch, max_length)


def sample(demo_rows, n=6):
    return [(r["prompt"], r["chosen"]) for r in demo_rows[:n]]


def test_architectures_are_recognised(tiny_models):
    for arch, path in tiny_models.items():
        model, _, enc = loaded(path)
        assert enc.arch == (ENCODER if arch == "bert" else DECODER) == model_arch(model)


def test_decoder_sequences_end_with_eos_and_keep_bos(tiny_models, demo_rows):
    _, tok, enc = loaded(tiny_models["llama"])
    e = enc.encode(*sample(demo_rows, 1)[0])
    assert e.input_ids[0] == tok.bos_token_id and e.input_ids[-1] == tok.eos_token_id
    assert e.input_ids.count(tok.eos_token_id) == 1
    # a response that already ends with EOS does not get a second one
    e2 = enc.encode("What is 2 + 2?", "4" + tok.eos_token)
    assert e2.input_ids.count(tok.eos_token_id) == 1


def test_encoder_uses_pair_form_with_token_types(tiny_models):
    _, tok, enc = loaded(tiny_models["bert"])
    e = enc.encode("what is two plus two", "four")
    toks = tok.convert_ids_to_tokens(e.input_ids)
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]" and toks.count("[SEP]") == 2
    assert e.token_type_ids[-2:] == [1, 1] and e.token_type_ids[:2] == [0, 0]


def test_pad_equal_to_eos_gets_a_distinct_pad(tiny_models):
    model, tok = load_model_and_tokenizer(tiny_models["gpt2"])
    assert tok.pad_token_id == tok.eos_token_id  # the classic set-up
    note = ensure_pad_token(tok, model, DECODER)
    assert tok.pad_token == PAD_TOKEN and tok.pad_token_id != tok.eos_token_id and "end token" in note
    assert model.config.pad_token_id == tok.pad_token_id
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    # LLaMA style: no pad, but <unk> exists and is used instead of adding a token
    model, tok = load_model_and_tokenizer(tiny_models["llama"])
    assert ensure_pad_token(tok, model, DECODER) is not None and tok.pad_token == "<unk>"


@pytest.mark.parametrize("arch", DECODERS)
def test_left_and_right_padding_and_batching_give_the_same_rewards(tiny_models, demo_rows, arch):
    model, tok, enc = loaded(tiny_models[arch])
    encoded = [enc.encode(p, r) for p, r in sample(demo_rows)]
    assert len({len(e.input_ids) for e in encoded}) > 1  # lengths differ, so there is padding
    with torch.no_grad():
        left = forward_rewards(model, pad_batch(encoded, tok.pad_token_id, "left", DECODER))
        right = forward_rewards(model, pad_batch(encoded, tok.pad_token_id, "right", DECODER))
        alone = torch.cat(
            [forward_rewards(model, pad_batch([e], tok.pad_token_id, "right", DECODER)) for e in encoded]
        )
    assert torch.allclose(left, right, atol=1e-5) and torch.allclose(left, alone, atol=1e-5)
    assert left.std() > 0  # rewards differ between sequences: the check is not vacuous


def test_reading_at_the_pad_position_would_be_caught(tiny_models, demo_rows):
    """If pad == EOS were kept, transformers' pooling would skip the EOS: rewards would differ."""
    model, tok, enc = loaded(tiny_models["gpt2"])
    e = enc.encode(*sample(demo_rows, 1)[0])
    ids = torch.tensor([e.input_ids])
    with torch.no_grad():
        ours = forward_rewards(model, pad_batch([e], tok.pad_token_id, "right", DECODER)).item()
        model.config.pad_token_id = tok.eos_token_id  # the bug
        wrong = model(ids).logits[0, 0].item()
    assert abs(ours - wrong) > 1e-4


@pytest.mark.parametrize("arch", ("llama", "gpt2", "qwen2", "bert"))
def test_plain_transformers_reads_the_same_reward(tiny_models, demo_rows, tmp_path, arch):
    """A saved model + tokenizer, loaded with plain transformers, pools at rewardlab's token."""
    model, tok, enc = loaded(tiny_models[arch])
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    rm = RewardModel.from_pretrained(tmp_path, max_length=96)
    pairs = sample(demo_rows)
    ours = rm.score([p for p, _ in pairs], [r for _, r in pairs], batch_size=4)
    plain_model = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    plain_tok = AutoTokenizer.from_pretrained(tmp_path)
    encoded = [enc.encode(p, r) for p, r in pairs]
    width = max(len(e.input_ids) for e in encoded)
    ids = torch.full((len(encoded), width), plain_tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(encoded):  # right padding, as a plain user would batch
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
    kwargs = {}
    if arch == "bert":
        types = torch.zeros_like(ids)
        for i, e in enumerate(encoded):
            types[i, : len(e.token_type_ids)] = torch.tensor(e.token_type_ids)
        kwargs["token_type_ids"] = types
    with torch.no_grad():
        plain = plain_model(input_ids=ids, attention_mask=mask, **kwargs).logits[:, 0].tolist()
    assert ours == pytest.approx(plain, abs=1e-5)


def test_chat_template_messages(tiny_models):
    _, tok, enc = loaded(tiny_models["qwen2"])
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    e = enc.encode(prompt, [{"role": "assistant", "content": "4"}])
    text = tok.decode(e.input_ids)
    assert text.startswith("<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>")
    assert e.input_ids[-1] == tok.eos_token_id


def test_truncation_keeps_the_response_end(tiny_models):
    _, tok, enc = loaded(tiny_models["llama"], max_length=12)
    long_prompt = "Describe the ocean in at most 30 words. " * 5
    e = enc.encode(long_prompt, "The ocean is worth seeing at least once.")
    assert e.cut and len(e.input_ids) == 12
    assert tok.decode(e.input_ids[1:-1]).endswith("worth seeing at least once.")
    e_start = SequenceEncoder(tok, DECODER, 12, "keep_start").encode(long_prompt, "The ocean is calm.")
    assert "calm" not in tok.decode(e_start.input_ids)  # TRL-style cut loses the response


def test_lora_runs_never_resize_the_vocabulary(tiny_models, demo_rows):
    model, tok = load_model_and_tokenizer(tiny_models["gpt2"])
    size = model.get_input_embeddings().weight.shape[0]
    note = ensure_pad_token(tok, model, DECODER, allow_resize=False)
    assert model.get_input_embeddings().weight.shape[0] == size and PAD_TOKEN not in note
    assert tok.pad_token_id != tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    enc = SequenceEncoder(tok, DECODER, 96)
    encoded = [enc.encode(p, r) for p, r in sample(demo_rows)]
    with torch.no_grad():
        ours = forward_rewards(model.eval(), pad_batch(encoded, tok.pad_token_id, "right", DECODER))
        plain = torch.cat([model(torch.tensor([e.input_ids])).logits[:, 0] for e in encoded])
    assert torch.allclose(ours, plain, atol=1e-5)  # a regular token as pad still pools at EOS


def test_a_preset_built_by_two_processes_at_once_is_used_not_an_error(tmp_path, monkeypatch):
    """DDP ranks each build a missing preset; the one that finishes second finds it built."""
    import rewardlab.models.tiny as tiny

    monkeypatch.setenv("REWARDLAB_CACHE", str(tmp_path))
    root = tmp_path / "presets" / "tiny-llama"

    def build(arch, tokenizer, out, **size):  # the other rank finishes first, then this one
        for folder in (root, out):
            folder.mkdir(parents=True)
            (folder / "config.json").write_text("{}")

    monkeypatch.setattr(tiny, "build_tiny_model", build)
    monkeypatch.setattr("rewardlab.models.presets.resolve_model_path", lambda name: tmp_path)
    assert tiny.preset_path("tiny-llama") == root
    assert [p.name for p in root.parent.iterdir()] == ["tiny-llama"]  # our copy was removed


def test_a_chatml_response_ends_with_one_end_token_not_end_newline_end(tiny_models):
    """ChatML templates write <|im_end|> then a newline after the assistant turn: the encoder must
    not append a second END after that newline (the reward would be read at a different token)."""
    from rewardlab.models.encoding import DECODER, SequenceEncoder
    from rewardlab.models.reward_model import ensure_pad_token, load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(tiny_models["qwen2"])
    ensure_pad_token(tok, model, DECODER)
    assert tok.chat_template
    enc = SequenceEncoder(tok, DECODER, 128)
    prompt = [{"role": "user", "content": "Say hello."}]
    (e,) = enc.encode_group(prompt, [[{"role": "assistant", "content": "hello world"}]])
    end = enc.end
    assert e.input_ids[-1] == end and e.input_ids[-2] != end
    assert tok.decode(e.input_ids[-2:-1]).strip()  # the token before END is the response's text, not "\n"


#: A prompt ending in a space: a byte-level BPE reads " " + "the" as one token "Ġthe" in one text,
#: but as "Ġ" and "the" when each is tokenized alone (a prompt ending in blank lines, with SmolLM2's
#: tokenizer, the same way: every sequence of UniEval Topical-Chat).
SPACE_END_PROMPT = "Describe the ocean in at most 30 words. "


def test_a_decoder_sequence_is_the_joined_text_even_where_the_tokenizer_merges_the_boundary(tiny_models):
    _, tok, enc = loaded(tiny_models["llama"])
    responses = ["the ocean is big", "\n\nThe ocean"]  # the first merges with the prompt, the second not

    def ids(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    joined = [ids(SPACE_END_PROMPT + r) for r in responses]
    assert ids(SPACE_END_PROMPT) + ids(responses[0]) != joined[0]  # the case this test is about
    assert ids(SPACE_END_PROMPT) + ids(responses[1]) == joined[1]
    group = enc.encode_group(SPACE_END_PROMPT, responses)
    for e, j in zip(group, joined, strict=True):
        assert e.input_ids == [tok.bos_token_id, *j, enc.end]
    assert group[0].prompt_len == group[1].prompt_len < 1 + len(ids(SPACE_END_PROMPT))
    assert group[0].input_ids[: group[0].prompt_len] == group[1].input_ids[: group[1].prompt_len]
    for e, r in zip(group, responses, strict=True):
        assert enc.encode(SPACE_END_PROMPT, r).input_ids == e.input_ids  # alone as in the group


def test_a_chat_template_whose_generation_prompt_differs_from_the_turn_is_not_doubled(tiny_models):
    """A template that opens the assistant turn otherwise for generation than in a whole conversation."""
    from rewardlab.models.tiny import CHATML

    _, tok, _ = loaded(tiny_models["qwen2"])
    tok.chat_template = CHATML.replace("assistant\n{% endif %}", "assistant\n<think>\n{% endif %}")
    prompt = [{"role": "user", "content": "What is 2 + 2?"}]
    response = [{"role": "assistant", "content": "4"}]
    gen = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    whole = tok.apply_chat_template([*prompt, *response], tokenize=False)
    assert gen.endswith("<think>\n") and not whole.startswith(gen)  # the case this test is about
    e = SequenceEncoder(tok, DECODER, 128).encode(prompt, response)
    text = tok.decode(e.input_ids)
    assert text.count("What is 2 + 2?") == 1 and "<think>" not in text
    assert text.startswith(whole.rstrip("\n"))
    counter = SequenceEncoder(tok, DECODER, 128).counter  # what data summaries count: no prompt inside
    assert "What is 2 + 2?" not in tok.decode(counter.response_ids(prompt, response))
