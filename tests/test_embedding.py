"""The embedder of embedding reward models: pooling, truncation, and the on-disk cache."""

from __future__ import annotations

import pytest
import torch

from rewardlab.models.embedding import Embedder
from rewardlab.models.encoding import DECODER, ENCODER


@pytest.fixture
def pairs(demo_rows):
    return [r["prompt"] for r in demo_rows[:12]], [r["chosen"] for r in demo_rows[:12]]


def test_cache_hit_skips_the_model(tiny_models, pairs, tmp_path):
    prompts, responses = pairs
    first = Embedder(tiny_models["bert"], max_length=64, cache_dir=tmp_path)
    a = first.embed(prompts, responses)
    assert first.embedded == 12 and a.shape == (12, first.dim)
    again = Embedder(tiny_models["bert"], max_length=64, cache_dir=tmp_path)  # a new run, same texts
    b = again.embed(prompts + prompts[:1], responses + ["A new response."])
    assert again.embedded == 1  # only the unseen text ran through the model
    assert torch.equal(b[:12], a) and torch.equal(b[12], again.embed([prompts[0]], ["A new response."])[0])
    other = Embedder(tiny_models["bert"], max_length=32, cache_dir=tmp_path)  # truncation is in the key
    other.embed(prompts[:2], responses[:2])
    assert other.embedded == 2


@pytest.mark.parametrize(("arch", "kind"), [("bert", ENCODER), ("llama", DECODER), ("gpt2", DECODER)])
def test_batched_equals_alone_whatever_the_padding(tiny_models, pairs, arch, kind):
    prompts, responses = pairs
    emb = Embedder(tiny_models[arch], max_length=64, use_cache=False, batch_size=5)
    assert emb.arch == kind and emb.pooling == ("mean" if kind == ENCODER else "last")
    together = emb.embed(prompts, responses)
    alone = torch.cat([emb.embed([p], [r]) for p, r in zip(prompts, responses, strict=True)])
    assert torch.allclose(together, alone, atol=1e-5)
    assert together.std(0).mean() > 0  # different texts, different embeddings


def test_default_minilm_embeds_offline(tmp_path):
    emb = Embedder(cache_dir=tmp_path, max_length=64)
    v = emb.embed(["What is 2 + 2?", "What is 2 + 2?"], ["4", "I don't know."])
    assert v.shape == (2, 384) and not torch.allclose(v[0], v[1])
