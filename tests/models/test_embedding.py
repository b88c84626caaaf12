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


def test_cut_sequences_are_counted_from_the_cache_too(tiny_models, pairs, tmp_path):
    prompts, responses = pairs
    prompts, responses = [*prompts, "Hi.", "Hi."], [*responses, "Hello.", "Hello."]  # short ones: not cut
    first = Embedder(tiny_models["bert"], max_length=24, cache_dir=tmp_path)
    first.embed(prompts, responses)
    expected = sum(first.encoder.encode(p, r).cut for p, r in zip(prompts, responses, strict=True))
    assert 0 < expected < len(prompts) and first.last_cut == expected
    again = Embedder(tiny_models["bert"], max_length=24, cache_dir=tmp_path)
    again.embed(prompts, responses)
    assert again.embedded == 0 and again.last_cut == expected  # all from the cache, flags included
    (shard,) = again.cache_file.glob("*.pt")
    saved = torch.load(shard, weights_only=True)
    del saved["cut"]  # a one-file cache of earlier versions, written before the flags were kept
    torch.save(saved, again.cache_file.with_suffix(".pt"))
    shard.unlink()
    old = Embedder(tiny_models["bert"], max_length=24, cache_dir=tmp_path)
    old.embed(prompts, responses)
    assert old.embedded == 0 and old.last_cut == expected
    (filled,) = old.cache_file.glob("*.pt")  # the flags, filled in, appended as a shard
    assert torch.load(filled, weights_only=True)["cut"].tolist() == [
        int(first.encoder.encode(p, r).cut) for p, r in dict.fromkeys(zip(prompts, responses, strict=True))
    ]


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
    assert emb.layers == 6 and v.shape == (2, 6 * 384) and not torch.allclose(v[0], v[1])
    last = Embedder(cache_dir=tmp_path, max_length=64, layers=1)  # the plain sentence embedding
    w = last.embed(["What is 2 + 2?"], ["4"])
    assert w.shape == (1, 384) and torch.allclose(w[0], v[0, -384:], atol=1e-5)
    # a sentence-transformers check: MiniLM's last layer, mean-pooled, puts the paraphrase nearer
    a, b, c = last.embed(
        ["Q"] * 3, ["The cat sat on the mat.", "A cat was sitting on a mat.", "Stocks fell."]
    )
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b, dim=0) > cos(a, c, dim=0) + 0.3


def test_last_user_turn():
    from rewardlab.data.formats import last_user_turn

    hh = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: How do I boil an egg?\n\nAssistant:"
    assert last_user_turn(hh) == "How do I boil an egg?"
    chatml = (
        "<|im_start|>user\nfirst<|im_end|>\n<|im_start|>assistant\nok<|im_end|>\n"
        "<|im_start|>user\nsecond<|im_end|>\n"
    )
    assert last_user_turn(chatml) == "second"
    llama3 = (
        "<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert last_user_turn(llama3) == "Why?"
    assert last_user_turn("[INST] Translate this [/INST]") == "Translate this"
    assert last_user_turn("No turn markers here.") == "No turn markers here."
    msgs = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
    ]
    assert last_user_turn(msgs) == [msgs[2]]


def test_prompt_view_and_layers_are_part_of_the_cache_key(tiny_models, tmp_path):
    hh = "\n\nHuman: earlier question\n\nAssistant: earlier answer\n\nHuman: last question\n\nAssistant:"
    turn = Embedder(tiny_models["bert"], max_length=64, cache_dir=tmp_path)
    full = Embedder(tiny_models["bert"], max_length=64, cache_dir=tmp_path, prompt_view="full")
    a, b = turn.embed([hh], ["an answer"]), full.embed([hh], ["an answer"])
    assert full.embedded == 1 and not torch.allclose(a, b)
    # last_turn embeds exactly what the last turn alone embeds
    assert torch.allclose(a, full.embed(["last question"], ["an answer"]), atol=1e-6)
    one = Embedder(tiny_models["bert"], max_length=64, cache_dir=tmp_path, layers=1)
    c = one.embed([hh], ["an answer"])
    assert one.embedded == 1 and c.shape[1] * turn.layers == a.shape[1]
    assert torch.allclose(c[0], a[0, -c.shape[1] :], atol=1e-6)


def test_head_learns_a_planted_linear_preference():
    from rewardlab.training.embedding_heads import train_head

    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, generator=g)
    a, b = torch.randn(400, 16, generator=g), torch.randn(400, 16, generator=g)
    better = (a @ w > b @ w).unsqueeze(1)
    xc, xr = torch.where(better, a, b), torch.where(better, b, a)
    for objective in ("bt", "classification"):
        head, hist = train_head(xc[:300], xr[:300], torch.zeros(300), objective=objective, seed=0)
        with torch.no_grad():
            acc = (head(xc[300:]) > head(xr[300:])).float().mean().item()
        assert acc > 0.9, (objective, acc)
        # the L2 was chosen on the validation pairs: the one with the lowest validation loss
        assert len(hist["val_losses"]) > 1
        assert hist["l2"] == float(min(hist["val_losses"], key=hist["val_losses"].get))
    # the learnt direction is the planted one
    cos = torch.nn.functional.cosine_similarity(head.net.weight[0] / head.std, w, dim=0)
    assert cos > 0.9


def test_l2_is_chosen_on_held_out_pairs_weak_for_signal_strong_for_noise():
    from rewardlab.training.embedding_heads import train_ensemble

    g = torch.Generator().manual_seed(3)
    w = torch.randn(32, generator=g)
    a, b = torch.randn(300, 32, generator=g), torch.randn(300, 32, generator=g)
    better = (a @ w > b @ w).unsqueeze(1)
    signal = train_ensemble(torch.where(better, a, b), torch.where(better, b, a), torch.zeros(300), k=3)[1]
    noise = train_ensemble(a, b, torch.zeros(300), k=3)[1]  # labels unrelated to the features
    assert max(h["l2"] for h in signal) <= 0.1
    assert min(h["l2"] for h in noise) >= 1.0


def test_early_stopping_stops_an_unregularised_head_on_noise():
    from rewardlab.training.embedding_heads import train_head

    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(200, 64, generator=g), torch.randn(200, 64, generator=g)  # labels carry no signal
    _, hist = train_head(a, b, torch.zeros(200), l2=0.0, max_rounds=20)
    # training loss keeps falling while the validation loss rises: the kept state is an early one
    assert hist["l2"] == 0.0 and hist["rounds"] < 20 and list(hist["val_rounds"]) == ["0.0"]


def test_ensemble_spread_is_zero_for_identical_heads_and_positive_otherwise(tmp_path):
    import copy

    from rewardlab.models.embedding import EmbeddingRewardModel, RewardHead
    from rewardlab.training.embedding_heads import train_ensemble

    g = torch.Generator().manual_seed(1)
    xc, xr = torch.randn(60, 8, generator=g) + 0.5, torch.randn(60, 8, generator=g)
    heads, _ = train_ensemble(xc, xr, torch.zeros(60), k=3, seed=0)

    class Fixed:
        def embed(self, prompts, responses, progress=False):
            return xc[: len(prompts)]

    same = EmbeddingRewardModel(Fixed(), [heads[0], copy.deepcopy(heads[0])], {})
    mean, spread = same.score_ensemble(["p"] * 5, ["r"] * 5)
    assert spread == [0.0] * 5
    varied = EmbeddingRewardModel(Fixed(), heads, {})
    mean, spread = varied.score_ensemble(["p"] * 5, ["r"] * 5)
    assert all(s > 0 for s in spread)
    assert mean == pytest.approx(torch.stack([h(xc[:5]) for h in heads]).mean(0).tolist(), abs=1e-6)
    assert isinstance(heads[0], RewardHead)


def test_embedding_checkpoint_reloads_and_scores_identically(tiny_models, demo_file, tmp_path, demo_rows):
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = tmp_path / "emb"
    res = train(
        TrainConfig(
            data=str(demo_file),
            out=str(out),
            method="embedding",
            model=str(tiny_models["bert"]),
            ensemble=3,
            head="mlp",
            max_length=64,
        )
    )
    assert res.summary["train_pairs"]["used"] + res.summary["eval_pairs"]["used"] == 600
    cut = res.summary["train_pairs"]["sequences_cut"]  # at 64 tokens, some demo responses are cut
    assert cut > 0 and any(f"{cut} of " in w for w in res.summary["warnings"])
    info = (out / "rewardlab.json").read_text()
    assert '"method": "embedding"' in info
    prompts = [r["prompt"] for r in demo_rows[:6]]
    responses = [r["rejected"] for r in demo_rows[:6]]
    rm = RewardModel.from_pretrained(out)  # one loading API for every kind of reward model
    again = RewardModel.from_pretrained(out)
    assert rm.score(prompts, responses) == again.score(prompts, responses)
    mean, spread = rm.score_ensemble(prompts, responses)
    assert mean == pytest.approx(rm.score(prompts, responses)) and max(spread) > 0
    assert 0.0 <= res.summary["eval_metrics"]["eval_accuracy"] <= 1.0


def test_bench_embedding_cross_validation(tiny_models, demo_file, tmp_path):
    import json

    from rewardlab.cli import main

    out = tmp_path / "cv.json"
    assert (
        main(
            [
                "bench",
                "embedding",
                "--data",
                str(demo_file),
                "--model",
                str(tiny_models["bert"]),
                "--folds",
                "3",
                "--ensemble",
                "1",
                "--max-length",
                "64",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    r = json.loads(out.read_text())
    assert len(r["folds"]) == 3 and sum(f["pairs"] for f in r["folds"]) == r["pairs"] == 600
    assert all(0 <= f["accuracy"] <= 1 and 0 <= f["length_baseline"] <= 1 for f in r["folds"])
    assert r["accuracy_mean"] == pytest.approx(sum(f["accuracy"] for f in r["folds"]) / 3)
    # the demo was generated with the chosen response longer in exactly 70 % of pairs
    assert r["length_baseline_mean"] == pytest.approx(0.7, abs=0.05)


def test_memory_cache_stays_within_its_byte_budget(tiny_models, demo_rows, tmp_path):
    from rewardlab.models.embedding_cache import ENTRY_OVERHEAD

    probe = Embedder(tiny_models["bert"], max_length=32, use_cache=False)
    budget = 10 * (probe.dim * 4 + ENTRY_OVERHEAD)  # ten embeddings
    emb = Embedder(tiny_models["bert"], max_length=32, cache_dir=tmp_path, cache_max_bytes=budget)
    prompts = [r["prompt"] for r in demo_rows[:48]]
    responses = [f"{r['chosen']} {i}" for i, r in enumerate(demo_rows[:48])]  # all unique
    rows = [emb.embed(prompts[i : i + 8], responses[i : i + 8]) for i in range(0, 48, 8)]
    assert emb.embedded == 48 and len(emb._cache) == 10 and emb._cache.bytes <= budget
    assert torch.equal(emb.embed(prompts[38:], responses[38:]), torch.cat(rows)[38:])
    assert emb.embedded == 48  # the ten newest are remembered
    emb.cache_file = None  # memory only: the forgotten ones run again
    big = emb.embed(prompts[:24], responses[:24])  # one call needing more than the budget holds
    assert torch.allclose(big, torch.cat(rows[:3]), atol=1e-6) and emb.embedded == 48 + 24
    assert len(emb._cache) == 10 and emb._cache.bytes <= budget


def test_disk_cache_is_shared_and_append_only(tiny_models, demo_rows, tmp_path):
    prompts = [r["prompt"] for r in demo_rows[:12]]
    responses = [r["chosen"] for r in demo_rows[:12]]
    first = Embedder(tiny_models["bert"], max_length=32, cache_dir=tmp_path)
    a = first.embed(prompts[:8], responses[:8])
    (shard,) = first.cache_file.glob("*.pt")
    before = (shard.stat().st_size, shard.stat().st_mtime_ns)
    second = Embedder(tiny_models["bert"], max_length=32, cache_dir=tmp_path)  # reads what first wrote
    b = second.embed(prompts, responses)
    assert second.embedded == 4 and torch.equal(b[:8], a)
    shards = sorted(second.cache_file.glob("*.pt"))
    assert len(shards) == 2 and (shard.stat().st_size, shard.stat().st_mtime_ns) == before
    assert len(torch.load(shards[1], weights_only=True)["keys"]) == 4  # only the new entries
    reader = Embedder(tiny_models["bert"], max_length=32, cache_dir=tmp_path, cache_writes=False)
    reader.embed(["a new prompt"], ["a new response"])
    assert reader.embedded == 1 and len(list(reader.cache_file.glob("*.pt"))) == 2  # nothing written


def test_small_shards_are_compacted_and_a_damaged_one_is_reported(tmp_path, monkeypatch):
    from rewardlab.models import embedding_cache as ec

    monkeypatch.setattr(ec, "COMPACT_AT", 3)
    store = ec.ShardStore(tmp_path / "c")
    for i in range(4):
        store.append([(f"k{i}", (torch.full((4,), float(i)), i % 2 == 0))])
    assert len(store.shards()) == 1  # four small shards merged into one
    (store.folder / "0-damaged.pt").write_bytes(b"not a torch file")
    cache = ec.BoundedCache()
    with pytest.warns(UserWarning, match="0-damaged.pt cannot be read"):
        assert store.load_into(cache) == 4
    assert store.damaged == [store.folder / "0-damaged.pt"]
    assert cache["k3"][0].tolist() == [3.0] * 4 and cache["k2"][1] is True and cache["k1"][1] is False


def test_damaged_heads_file_is_a_one_line_error(embedding_checkpoint, tmp_path):
    import shutil

    from rewardlab.errors import RewardlabError
    from rewardlab.models.reward_model import RewardModel

    copy = shutil.copytree(embedding_checkpoint, tmp_path / "emb")
    heads = copy / "heads.safetensors"
    heads.write_bytes(heads.read_bytes()[:-100])  # truncated
    with pytest.raises(RewardlabError, match="heads.safetensors: damaged checkpoint") as err:
        RewardModel.from_pretrained(copy)
    assert "\n" not in str(err.value)
