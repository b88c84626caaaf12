"""Decoder features for embedding reward models (chat template, pooling, precision) and --debias-length."""

from __future__ import annotations

import json

import pytest
import torch

from rewardlab.errors import RewardlabError
from rewardlab.models.chat_view import as_chat, hh_messages
from rewardlab.models.embedding import Embedder

HH = "\n\nHuman: Hi there.\n\nAssistant: Hello! How can I help?\n\nHuman: Name a colour.\n\nAssistant:"


def test_hh_transcript_becomes_chat_messages():
    assert hh_messages(HH) == [
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a colour."},
    ]  # the empty assistant turn at the end is the template's generation prompt
    assert hh_messages("Name a colour.") is None
    assert as_chat("Name a colour.", "Blue.") == (
        [{"role": "user", "content": "Name a colour."}],
        [{"role": "assistant", "content": "Blue."}],
    )
    messages = [{"role": "user", "content": "Name a colour."}]
    assert as_chat(messages, "Blue.")[0] is messages


def test_text_is_embedded_in_the_chat_template_of_a_decoder_that_has_one(tiny_models, tmp_path):
    chat = Embedder(tiny_models["qwen2"], max_length=64, cache_dir=tmp_path, prompt_view="full")
    assert chat.chat and "chat|" in chat.key_prefix
    as_text = chat.embed([HH], ["Blue."])
    as_messages = chat.embed([hh_messages(HH)], [[{"role": "assistant", "content": "Blue."}]])
    assert chat.embedded == 1 and torch.equal(as_text, as_messages)  # the same input: one cache entry
    plain = Embedder(tiny_models["qwen2"], max_length=64, cache_dir=tmp_path, prompt_view="full", chat=False)
    assert not plain.chat and plain.cache_file != chat.cache_file
    assert not torch.allclose(plain.embed([HH], ["Blue."]), as_text)
    no_template = Embedder(tiny_models["llama"], max_length=64, use_cache=False)
    assert not no_template.chat  # nothing to apply


def _states(emb: Embedder, prompt: str, response: str) -> tuple[torch.Tensor, int]:
    enc = emb.encoder.encode(prompt, response)
    with torch.no_grad():
        out = emb.model(input_ids=torch.tensor([enc.input_ids]), output_hidden_states=True)
    return out.hidden_states[-1][0], enc.prompt_len


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_decoder_mean_pooling_averages_the_response_tokens_whatever_the_padding(tiny_models, demo_rows, arch):
    prompts = [r["prompt"] for r in demo_rows[:7]]
    responses = [r["chosen"] for r in demo_rows[:7]]
    emb = Embedder(tiny_models[arch], max_length=64, use_cache=False, layers=1, pooling="mean", batch_size=4)
    assert emb.pooling == "mean"
    together = emb.embed(prompts, responses)
    for i in (0, 3):
        states, prompt_len = _states(emb, prompts[i], responses[i])
        assert torch.allclose(together[i], states[prompt_len:].mean(0), atol=1e-5)
        assert not torch.allclose(together[i], states.mean(0), atol=1e-3)  # the prompt is left out
    last = Embedder(tiny_models[arch], max_length=64, use_cache=False, layers=1, pooling="last")
    states, _ = _states(last, prompts[0], responses[0])
    assert torch.allclose(last.embed(prompts[:1], responses[:1])[0], states[-1], atol=1e-5)


def test_pooling_and_precision_are_part_of_the_cache_key(tiny_models, demo_rows, tmp_path, monkeypatch):
    prompts = [r["prompt"] for r in demo_rows[:5]]
    responses = [r["chosen"] for r in demo_rows[:5]]
    fp32 = Embedder(tiny_models["llama"], max_length=64, cache_dir=tmp_path, dtype="float32")
    a = fp32.embed(prompts, responses)
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "1")  # what auto picks on a CPU with native bf16
    bf16 = Embedder(tiny_models["llama"], max_length=64, cache_dir=tmp_path)
    assert bf16.dtype == "bfloat16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    b = bf16.embed(prompts, responses)
    assert bf16.embedded == 5 and bf16.cache_file != fp32.cache_file  # never read from the fp32 cache
    assert b.dtype == torch.float32 and not torch.equal(a, b)
    assert torch.allclose(a, b, atol=0.1 * a.abs().max().item())  # bf16 rounding, not other features
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "0")
    again = Embedder(tiny_models["llama"], max_length=64, cache_dir=tmp_path)
    assert (
        again.dtype == "float32" and torch.equal(again.embed(prompts, responses), a) and again.embedded == 0
    )
    mean = Embedder(tiny_models["llama"], max_length=64, cache_dir=tmp_path, dtype="float32", pooling="mean")
    mean.embed(prompts, responses)
    assert mean.embedded == 5 and mean.cache_file != fp32.cache_file


def test_bad_pooling_or_precision_is_refused(tiny_models):
    with pytest.raises(RewardlabError, match="for decoders"):
        Embedder(tiny_models["bert"], use_cache=False, pooling="last")
    with pytest.raises(RewardlabError, match="pooling 'max'"):
        Embedder(tiny_models["llama"], use_cache=False, pooling="max")
    with pytest.raises(RewardlabError, match="dtype 'float16'"):
        Embedder(tiny_models["llama"], use_cache=False, dtype="float16")


def _planted_length_confound(n: int, share_longer: float, seed: int) -> tuple[torch.Tensor, ...]:
    """Features of a quality score, a cue that goes with the longer response (a closing pleasantry,
    say) and noise; the chosen response is better by the score, and longer in ``share_longer`` of pairs.
    """
    g = torch.Generator().manual_seed(seed)
    quality_gap = 0.3 + torch.rand(n, generator=g)
    q_rejected = torch.randn(n, generator=g)
    q_chosen = q_rejected + quality_gap
    chosen_longer = torch.rand(n, generator=g) < share_longer
    long_len, short_len = 5.5 + 0.3 * torch.randn(n, generator=g), 4.5 + 0.3 * torch.randn(n, generator=g)
    len_c = torch.where(chosen_longer, long_len, short_len)
    len_r = torch.where(chosen_longer, short_len, long_len)

    def features(q: torch.Tensor, is_long: torch.Tensor) -> torch.Tensor:
        cue = is_long.float() + 0.3 * torch.randn(n, generator=g)
        return torch.stack([q + 0.8 * torch.randn(n, generator=g), cue, *torch.randn(6, n, generator=g)], 1)

    return features(q_chosen, chosen_longer), features(q_rejected, ~chosen_longer), len_c, len_r


def _accuracy_by_length(heads: list, xc: torch.Tensor, xr: torch.Tensor, longer: torch.Tensor) -> tuple:
    from rewardlab.training.embedding_heads import ensemble_scores

    right = (ensemble_scores(heads, xc).mean(0) > ensemble_scores(heads, xr).mean(0)).float()
    return right.mean().item(), right[longer].mean().item(), right[~longer].mean().item()


def test_debias_length_removes_most_of_a_planted_length_preference():
    from rewardlab.training.embedding_heads import train_ensemble

    xc, xr, lc, lr = _planted_length_confound(800, 0.9, seed=0)
    tc, tr, tlc, tlr = _planted_length_confound(2000, 0.5, seed=1)  # balanced test pairs
    plain, _ = train_ensemble(xc, xr, torch.zeros(800), 1, l2=0.1)
    debiased, hist = train_ensemble(xc, xr, torch.zeros(800), 1, l2=0.1, lengths=(lc, lr))
    acc, on_longer, on_shorter = _accuracy_by_length(plain, tc, tr, tlc > tlr)
    d_acc, d_longer, d_shorter = _accuracy_by_length(debiased, tc, tr, tlc > tlr)
    assert on_longer - on_shorter > 0.15  # the planted confound is learnt without the option
    assert abs(d_longer - d_shorter) < (on_longer - on_shorter) / 3  # most of it is gone with it
    assert d_acc >= acc - 0.01
    assert "length_coef" in hist[0]


def test_train_with_debias_length_records_it_and_keeps_only_the_quality_reward(
    tiny_models, demo_file, tmp_path
):
    from rewardlab.models.embedding import EmbeddingRewardModel
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = tmp_path / "emb"
    cfg = TrainConfig(
        data=str(demo_file),
        out=str(out),
        method="embedding",
        model=str(tiny_models["bert"]),
        max_length=64,
        debias_length=True,
        ensemble=2,
        l2=1.0,  # no search: fast
    )
    train(cfg)
    info = json.loads((out / "rewardlab.json").read_text())
    record = info["debias_length"]
    assert len(record["length_coef"]) == 2 and all(isinstance(c, float) for c in record["length_coef"])
    assert info["train_config"]["debias_length"] is True and info["embedding"]["dtype"] == "float32"
    rm = EmbeddingRewardModel.from_pretrained(out, device="cpu")
    prompts, responses = ["Say hi."] * 2, ["Hi.", "Hi. " * 20]
    x = rm.embedder.embed(prompts, responses)
    heads_only = torch.stack([h(x) for h in rm.heads]).mean(0)
    assert rm.score(prompts, responses) == pytest.approx(heads_only.tolist())  # no length reward added
    with pytest.raises(ValueError, match="--debias-length trains outcome reward models"):
        TrainConfig(
            data=str(demo_file),
            out=str(out),
            model=str(tiny_models["bert"]),
            debias_length=True,
            engine="trl",
        )
