"""Padded, prefix-shared and packed layouts give the same rewards, loss and gradients."""

from __future__ import annotations

import pytest
import torch

from rewardlab.data import PreferenceData, PreferencePair, RankedList
from rewardlab.models.encoding import DECODER, ENCODER, SequenceEncoder
from rewardlab.models.reward_model import (
    ensure_pad_token,
    forward_rewards,
    load_model_and_tokenizer,
    model_arch,
)
from rewardlab.training.batching import (
    LengthGroupedSampler,
    PaddedCollator,
    SharedPrefixCollator,
    choose_batching,
    group_batches,
    group_length,
    sample_groups,
)
from rewardlab.training.dataset import Group, encode_groups
from rewardlab.training.losses import Comparisons, comparison_loss


def setup(path, max_length=48):
    model, tok = load_model_and_tokenizer(path)
    arch = model_arch(model)
    ensure_pad_token(tok, model, arch)
    return model.eval(), tok, SequenceEncoder(tok, arch, max_length)


def groups_for(demo_rows, enc):
    pairs = [
        PreferencePair(r["prompt"], r["chosen"], r["rejected"], margin=0.25 * (i % 3))
        for i, r in enumerate(demo_rows[:7])
    ]  # an odd number of pairs, odd lengths
    pairs.append(PreferencePair("What is 2 + 2?", "4", "The answer is five."))  # a one-token response
    lists = [
        RankedList(
            "Reply politely.",
            ["Thanks!", "Go away.", "Sorry for the wait, I can help.", "ok"],
            [3.0, 0.0, 4.0, 1.0],
        )
    ]
    groups, _ = encode_groups(PreferenceData(pairs=pairs, lists=lists), enc)
    return groups


def loss_and_grads(model, batch):
    model.zero_grad()
    rewards = forward_rewards(model, batch)
    comps = Comparisons(batch["better"], batch["worse"], batch["margin"], batch["weight"])
    loss = comparison_loss(rewards, comps, center=0.01)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return rewards.detach(), loss.item(), grads


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_layouts_agree(tiny_models, demo_rows, arch):
    model, tok, enc = setup(tiny_models[arch])
    groups = groups_for(demo_rows, enc)
    one_token = [g for g in groups if any(len(e.input_ids) - e.prompt_len == 2 for e in g.encoded)]
    assert one_token, "the single-token response (plus EOS) is in the batch"
    layouts = {
        "right": PaddedCollator(tok.pad_token_id, "right", DECODER),
        "left": PaddedCollator(tok.pad_token_id, "left", DECODER),
        "prefix": SharedPrefixCollator(tok.pad_token_id),
        "packed": SharedPrefixCollator(tok.pad_token_id, pack_tokens=96),
    }
    results = {name: loss_and_grads(model, col(groups)) for name, col in layouts.items()}
    ref_r, ref_loss, ref_g = results["right"]
    assert ref_r.std() > 0
    for name, (r, loss, g) in results.items():
        assert torch.allclose(r, ref_r, atol=1e-5), name
        assert loss == pytest.approx(ref_loss, abs=1e-5), name
        assert g.keys() == ref_g.keys()
        for k in g:
            assert torch.allclose(g[k], ref_g[k], atol=1e-4), (name, k)


def test_shared_layouts_compute_fewer_positions(tiny_models, demo_rows):
    model, tok, enc = setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)
    padded = PaddedCollator(tok.pad_token_id, "right", DECODER)(groups)
    prefix = SharedPrefixCollator(tok.pad_token_id)(groups)
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups)
    assert packed["input_ids"].numel() < prefix["input_ids"].numel() < padded["input_ids"].numel()
    assert prefix["n_tokens"] == packed["n_tokens"] < padded["n_tokens"]  # each prompt computed once
    # every packed row stays within its budget unless one group alone is longer
    longest = max(group_length(g, "prefix") for g in groups)
    assert packed["input_ids"].shape[1] <= max(96, longest)


def test_sample_groups_takes_whole_groups_until_n_responses(tiny_models, demo_rows):
    _, _, enc = setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)  # 8 pairs and a list of 4: 20 responses
    total = sum(len(g.encoded) for g in groups)
    picked = sample_groups(groups, 7, seed=3)
    assert sum(len(g.encoded) for g in picked) == 7  # the last group cut to fit
    assert all(len(g.encoded) == len(g.scores) for g in picked)
    whole = {id(e) for g in groups for e in g.encoded}
    assert {id(e) for g in picked for e in g.encoded} <= whole
    firsts = [g.encoded[0] for g in picked]  # each picked group starts where its source group starts
    assert all(any(f is g.encoded[0] for g in groups) for f in firsts)
    assert [g.encoded for g in sample_groups(groups, 7, seed=3)] == [g.encoded for g in picked]
    assert [g.encoded for g in sample_groups(groups, 7, seed=4)] != [g.encoded for g in picked]
    everything = sample_groups(groups, 10 * total, seed=3)
    assert sorted(id(e) for g in everything for e in g.encoded) == sorted(whole)


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_group_batches_score_every_response_once_as_alone(tiny_models, demo_rows, layout):
    """Whole groups per batch (prompts shared) give each response the reward it gets scored alone."""
    model, tok, enc = setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)
    flat = [e for g in groups for e in g.encoded]
    if layout == "padded":
        collator = PaddedCollator(tok.pad_token_id, "right", DECODER)
    else:
        collator = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)
    alone = torch.cat([forward_rewards(model, collator([Group([e], [0.0])])) for e in flat])
    places, rewards, positions = [], [], 0
    with torch.no_grad():
        for batch, where in group_batches(groups, collator, "cpu", size=5):
            assert len(where) <= 5 or len(where) == max(len(g.encoded) for g in groups)
            places += where
            rewards.append(forward_rewards(model, batch))
            positions += int(batch["n_tokens"])
    assert sorted(places) == list(range(len(flat)))
    got = torch.cat(rewards)[torch.argsort(torch.tensor(places))]
    assert alone.std() > 0 and torch.allclose(got, alone, atol=1e-5)
    one_each = sum(len(e.input_ids) for e in flat)
    assert positions < one_each if layout == "packed" else positions == one_each


def test_mask_blocks_the_other_response(tiny_models):
    model, tok, enc = setup(tiny_models["llama"])
    (g,) = encode_groups(PreferenceData(pairs=[PreferencePair("What is 1 + 1?", "2", "It is 3.")]), enc)[0]
    b = SharedPrefixCollator(tok.pad_token_id)([g])
    mask = b["attention_mask"][0, 0]
    p = g.encoded[0].prompt_len
    c_end = b["reward_cols"][0].item()
    r_end = b["reward_cols"][1].item()
    assert (
        mask[r_end, :p].all() and not mask[r_end, p : c_end + 1].any()
    )  # rejected sees the prompt, not chosen
    assert b["position_ids"][0, c_end + 1].item() == p  # positions restart after the prompt


def test_choice_by_model_type():
    assert choose_batching("auto", DECODER)[0] == "packed"
    assert choose_batching("auto", ENCODER)[0] == "padded"
    with pytest.raises(ValueError, match="decoder"):
        choose_batching("prefix", ENCODER)


def test_length_grouped_sampler_is_a_reproducible_permutation():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10] * 3
    s = LengthGroupedSampler(lengths, batch_size=2, seed=0, mega=2)
    order = list(s)
    assert sorted(order) == list(range(30)) and order == list(s)
    first = [lengths[i] for i in order[:4]]
    assert first == sorted(first, reverse=True)  # sorted within a mega-batch
    s.set_epoch(1)
    assert list(s) != order


def test_flex_attention_block_mask_gives_the_same_rewards_and_loss(tiny_models, demo_rows):
    """FlexAttention (the GPU path) with the id-based block mask, run on the CPU.

    PyTorch has no FlexAttention backward on the CPU, so gradients through it can only be checked
    on a GPU; here the forward pass (rewards and loss) is compared with padded rows.
    """
    model, tok, enc = setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)
    padded = PaddedCollator(tok.pad_token_id, "right", DECODER)(groups)
    packed = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)(groups)
    flex, _ = load_model_and_tokenizer(tiny_models["llama"], attn_implementation="flex_attention")
    flex.config.pad_token_id = tok.pad_token_id
    flex.eval()
    with torch.no_grad():
        ref = forward_rewards(model, padded)
        got = forward_rewards(flex, packed)
        ref_loss = comparison_loss(
            ref, Comparisons(padded["better"], padded["worse"], padded["margin"], padded["weight"])
        )
        loss = comparison_loss(
            got, Comparisons(packed["better"], packed["worse"], packed["margin"], packed["weight"])
        )
    assert torch.allclose(got, ref, atol=1e-5) and loss.item() == pytest.approx(ref_loss.item(), abs=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_gradient_checkpointing_gives_the_same_gradients_in_every_layout(tiny_models, demo_rows, lora):
    """--gradient-checkpointing recomputes each layer in the backward pass with the layout's 4-D mask
    and position ids: the gradients must be those of a normal backward pass, for every layout."""
    model, tok, enc = setup(tiny_models["llama"])
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS")
        )
    model.train()
    groups = groups_for(demo_rows, enc)
    layouts = {
        "right": PaddedCollator(tok.pad_token_id, "right", DECODER),
        "prefix": SharedPrefixCollator(tok.pad_token_id),
        "packed": SharedPrefixCollator(tok.pad_token_id, pack_tokens=96),
    }
    plain = {name: loss_and_grads(model, col(groups)) for name, col in layouts.items()}
    base = model.get_base_model() if lora else model
    base.activation_checkpointing_enable({"use_reentrant": False})  # what the Trainer calls
    if lora:
        base.enable_input_require_grads()
    assert base.is_gradient_checkpointing
    layer, runs = base.model.layers[0], []
    checkpoint = layer._gradient_checkpointing_func

    def counted(fn, *args, **kwargs):  # counts the layer's runs: its forward, then its recompute
        def run(*a, **k):
            runs.append(1)
            return fn(*a, **k)

        return checkpoint(run, *args, **kwargs)

    layer._gradient_checkpointing_func = counted
    checkpointed = {name: loss_and_grads(model, col(groups)) for name, col in layouts.items()}
    assert len(runs) == 2 * len(layouts)  # the layer ran again in each backward pass
    for name in layouts:
        (r0, l0, g0), (r1, l1, g1) = plain[name], checkpointed[name]
        assert torch.allclose(r0, r1, atol=1e-6) and l0 == pytest.approx(l1, abs=1e-6), name
        assert g0.keys() == g1.keys() and g0
        for k in g0:
            assert torch.allclose(g0[k], g1[k], atol=1e-6), (name, k)


@pytest.mark.parametrize("batching", ["padded", "packed"])
def test_training_with_gradient_checkpointing_logs_the_same_losses(
    tiny_models, demo_file, tmp_path, batching
):
    """The whole run (LoRA, the Trainer's own checkpointing switch): the same losses step by step."""
    import json

    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    curves = []
    for checkpointing in (False, True):
        out = tmp_path / f"gc{checkpointing}"
        train(
            TrainConfig(
                data=str(demo_file),
                out=str(out),
                model=str(tiny_models["llama"]),
                max_length=64,
                max_steps=3,
                batch_size=8,
                eval_split=0.0,
                logging_steps=1,
                lora=True,
                batching=batching,
                gradient_checkpointing=checkpointing,
                learning_rate=1e-3,
            )
        )
        log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
        curves.append([r["loss"] for r in log if "loss" in r])
    assert len(curves[0]) == 3 and curves[0] == pytest.approx(curves[1], abs=1e-5)


def test_training_sample_returns_the_sampled_responses_group_by_group(tiny_models, demo_rows):
    from rewardlab.training.recipes.outcome_steps import training_sample

    model, tok, enc = setup(tiny_models["llama"])
    groups = groups_for(demo_rows, enc)
    collator = SharedPrefixCollator(tok.pad_token_id, pack_tokens=96)
    rewards, features = training_sample(model, groups, collator, 9, seed=1)
    picked = [e for g in sample_groups(groups, 9, seed=1) for e in g.encoded]
    with torch.no_grad():
        alone = torch.cat([forward_rewards(model, collator([Group([e], [0.0])])) for e in picked])
    assert len(rewards) == features.shape[0] == 9
    assert torch.allclose(torch.tensor(rewards), alone, atol=1e-5)
