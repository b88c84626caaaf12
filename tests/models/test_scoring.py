"""The scoring API: token-budget batches, score_pairs, ensembles and their aggregations."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from rewardlab.errors import RewardlabError
from rewardlab.models.ensemble import RewardEnsemble, aggregate
from rewardlab.models.reward_model import RewardModel, length_batches


def test_length_batches_respect_count_and_token_budget():
    lengths = [2, 3, 3, 5, 9, 20]
    order = [10, 11, 12, 13, 14, 15]
    assert length_batches(lengths, order, 4, None) == [[10, 11, 12, 13], [14, 15]]
    # budget 12: 2,3,3 -> 3*3=9 ok, +5 -> 4*5=20 > 12; 5 -> 5, +9 -> 18 > 12; 9; 20 alone (over budget)
    assert length_batches(lengths, order, 16, 12) == [[10, 11, 12], [13], [14], [15]]


@pytest.mark.parametrize("layout", ["padded", "packed"])
def test_token_budget_and_pairs_give_the_same_rewards(tiny_models, demo_rows, layout):
    rm = RewardModel.from_pretrained(tiny_models["llama"], max_length=64)
    prompts = [r["prompt"] for r in demo_rows[:24]]
    chosen = [r["chosen"] for r in demo_rows[:24]]
    rejected = [r["rejected"] for r in demo_rows[:24]]
    plain = rm.score(prompts, chosen, batch_size=8, layout="padded")
    inputs = []
    hook = rm.model.register_forward_hook(
        lambda m, a, k, out: inputs.append(k["input_ids"]), with_kwargs=True
    )
    try:
        budget = rm.score(prompts, chosen, batch_size=64, max_tokens=200, layout=layout)
    finally:
        hook.remove()
    assert budget == pytest.approx(plain, abs=1e-5)
    assert len(inputs) > 1
    if layout == "padded":  # positions: rows x the longest row
        assert all(ids.numel() <= 200 or len(ids) == 1 for ids in inputs)
    else:  # real tokens: the rows' sum
        pad = rm.tokenizer.pad_token_id
        assert all(int((ids != pad).sum()) <= 200 for ids in inputs)
    c, r = rm.score_pairs(prompts, chosen, rejected, layout=layout)
    assert c == pytest.approx(plain, abs=1e-5) and r == pytest.approx(rm.score(prompts, rejected), abs=1e-5)
    with pytest.raises(RewardlabError):
        rm.score_pairs(prompts, chosen, rejected[:3])


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_packed_scoring_equals_one_sequence_at_a_time(tiny_models, demo_rows, arch):
    """Shared prompts (pairs, a best-of-N group larger than a batch), a prompt cut by max_length,
    a one-token response and unrelated prompts: packed rewards are those of each sequence alone."""
    rm = RewardModel.from_pretrained(tiny_models[arch], max_length=48)
    rows = demo_rows[:5]
    prompts = [r["prompt"] for r in rows for _ in (0, 1)] + ["Say a number."] * 7
    responses = [r[k] for r in rows for k in ("chosen", "rejected")]
    responses += ["4", "Seven.", "I think twelve is a fine number.", "1 2", "ten", "no", "Nine!"]
    prompts.append(" ".join(r["prompt"] for r in demo_rows[:12]))  # cut to fit 48 tokens
    responses.append("A long prompt gets a short answer.")
    alone = [rm.score([p], [r], layout="padded")[0] for p, r in zip(prompts, responses, strict=True)]
    rm.score(prompts, responses, batch_size=4, layout="packed")  # one-time probes run here, not counted below
    inputs = []
    hook = rm.model.register_forward_hook(
        lambda m, a, k, out: inputs.append(k["input_ids"]), with_kwargs=True
    )
    try:
        packed = rm.score(prompts, responses, batch_size=4, layout="packed")
    finally:
        hook.remove()
    assert torch.tensor(alone).std() > 0
    assert packed == pytest.approx(alone, abs=1e-5)
    pad = rm.tokenizer.pad_token_id
    real = sum(int((ids != pad).sum()) for ids in inputs)
    whole = sum(len(rm.encoder.encode(p, r).input_ids) for p, r in zip(prompts, responses, strict=True))
    assert real < whole  # the shared prompts were computed once per group
    assert all(int((ids != pad).sum()) > 0 for ids in inputs)
    assert rm.score_layout() == "packed"


def test_encoders_score_padded_and_refuse_packing(tiny_models):
    rm = RewardModel.from_pretrained(tiny_models["bert"], max_length=48)
    assert rm.score_layout() == "padded"
    with pytest.raises(RewardlabError, match="decoder"):
        rm.score(["a"], ["b"], layout="packed")
    with pytest.raises(RewardlabError, match="layout"):
        rm.score(["a"], ["b"], layout="sideways")


def test_prompt_groups_share_only_identical_prompt_ids():
    from rewardlab.models.encoding import Encoded
    from rewardlab.models.reward_model import prompt_groups

    def enc(prompt, response):
        return Encoded([*prompt, *response], None, len(prompt), False)

    items = [enc([1, 2], [5]), enc([1, 3], [6]), enc([1, 2], [7, 8]), enc([1, 2], [9]), enc([1, 2, 4], [5])]
    assert prompt_groups(items, 16, 100) == [[0, 2, 3], [1], [4]]
    assert prompt_groups(items, 2, 100) == [[0, 2], [3], [1], [4]]  # at most 2 responses a group
    # positions: prompt 2 + responses 1 + 2 = 5 fit a budget of 5; one more response would not
    assert prompt_groups(items, 16, 5) == [[0, 2], [3], [1], [4]]
    assert prompt_groups(items, 16, 6) == [[0, 2, 3], [1], [4]]


def test_device_and_dtype_are_resolved_or_refused_clearly(tiny_models, embedding_checkpoint):
    from rewardlab.models.reward_model import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RewardlabError, match="sideways"):
        resolve_device("sideways")
    if not torch.cuda.is_available():
        with pytest.raises(RewardlabError, match="no CUDA"):
            RewardModel.from_pretrained(tiny_models["llama"], device="cuda")
    prompts, responses = ["What is 2 + 2?", "Name a colour."], ["4", "Blue, or perhaps green."]
    fp32 = RewardModel.from_pretrained(tiny_models["llama"], device="cpu")
    bf16 = RewardModel.from_pretrained(tiny_models["llama"], device="cpu", dtype="bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    assert next(fp32.model.parameters()).dtype == torch.float32
    assert bf16.score(prompts, responses) == pytest.approx(fp32.score(prompts, responses), abs=0.05)
    with pytest.raises(RewardlabError, match="float64"):
        RewardModel.from_pretrained(tiny_models["llama"], dtype="float64")
    with pytest.raises(RewardlabError, match="heads were trained on"):  # its heads fit float32 embeddings
        RewardModel.from_pretrained(embedding_checkpoint, dtype="bfloat16")


def test_aggregations_by_hand():
    members = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert aggregate(members, "mean").tolist() == [2.0, 1.0]
    assert aggregate(members, "min").tolist() == [1.0, 0.0]
    assert aggregate(members, "uwo", 1.0).tolist() == [1.0, 0.0]  # population std is 1 for both
    assert aggregate(members, "uwo", 0.5).tolist() == [1.5, 0.5]
    with pytest.raises(RewardlabError):
        aggregate(members, "max")


class Fixed:
    """A member that returns preset rewards and records whether it was asked to normalise."""

    def __init__(self, rewards):
        self.rewards, self.calls = rewards, []

    def score(self, prompts, responses, normalize=False, **kw):
        self.calls.append(normalize)
        return self.rewards[: len(prompts)]


def test_ensemble_of_checkpoints_normalises_each_member_once():
    a, b = Fixed([1.0, 2.0]), Fixed([3.0, 0.0])
    ens = RewardEnsemble([a, b], aggregation="min")
    assert ens.score(["p", "q"], ["x", "y"], normalize=True) == [1.0, 0.0]
    assert a.calls == [True] and b.calls == [True]  # each member normalised once, by the ensemble
    assert ens.score_spread(["p", "q"], ["x", "y"]) == [1.0, 1.0]
    assert RewardEnsemble([a], aggregation="uwo").score(["p"], ["x"]) == [1.0]  # one member: no spread


def test_embedding_ensemble_heads_are_the_members(embedding_checkpoint, demo_rows):
    out = embedding_checkpoint
    prompts, responses = [r["prompt"] for r in demo_rows[:5]], [r["chosen"] for r in demo_rows[:5]]
    rm = RewardModel.from_pretrained(out)
    heads = rm.score_members(prompts, responses)
    ens = RewardEnsemble.from_pretrained([out], aggregation="min")
    assert ens.score(prompts, responses) == pytest.approx(heads.min(0).values.tolist())
    mean = RewardEnsemble([rm], aggregation="mean").score(prompts, responses)
    assert mean == pytest.approx(rm.score(prompts, responses), abs=1e-6)

    # the checkpoint's INTEGRATION.md snippets work as written
    notes = (out / "INTEGRATION.md").read_text()
    api = notes.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(api, scope)  # noqa: S102 - the snippet we wrote into the checkpoint
    assert scope["rewards"] == pytest.approx(rm.score(["What is 2 + 2?"], ["4"], normalize=True))
    assert f"rewardlab serve --model {out}" in notes and "--remote_rm_url" in notes and "vLLM" in notes


def test_score_and_bon_commands(tiny_models, demo_rows, tmp_path, capsys):
    import json
    import math

    from rewardlab.cli import main
    from rewardlab.metrics import bon_kl
    from tests.conftest import write_jsonl

    model = str(tiny_models["llama"])
    rows = [{"prompt": r["prompt"], "response": r["chosen"], "id": i} for i, r in enumerate(demo_rows[:10])]
    src = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert main(["score", "--model", model, "--data", str(src), "--out", str(tmp_path / "s.jsonl")]) == 0
    got = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    rm = RewardModel.from_pretrained(model)
    direct = rm.score([r["prompt"] for r in rows], [r["response"] for r in rows])
    assert [g["id"] for g in got] == list(range(10))  # input order, extra fields kept
    assert [g["reward"] for g in got] == pytest.approx(direct, abs=1e-5)

    pool = [
        {
            "question": r["prompt"],
            "candidates": [
                {"solution": r["chosen"]},
                {"solution": r["rejected"]},
                {"solution": "ok"},
                {"solution": ""},
            ],
        }
        for r in demo_rows[:5]
    ]
    cands = write_jsonl(tmp_path / "pool.jsonl", pool)
    assert (
        main(["bon", "--model", model, "--candidates", str(cands), "--out", str(tmp_path / "b.jsonl")]) == 0
    )
    best = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    for b, p in zip(best, pool, strict=True):
        texts = [c["solution"] for c in p["candidates"]]
        scores = rm.score([p["question"]] * 4, texts)
        assert b["scores"] == pytest.approx(scores, abs=1e-5)
        assert b["best"] == texts[max(range(4), key=lambda k: scores[k])] and b["n"] == 4
        assert b["kl_bon"] == pytest.approx(math.log(4) - 3 / 4)
    assert bon_kl(1) == 0.0

    bad = write_jsonl(tmp_path / "bad.jsonl", [rows[0], {"prompt": "p", "answer": "no response field"}])
    assert main(["score", "--model", model, "--data", str(bad), "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 2" in err and "response" in err and not (tmp_path / "x.jsonl").exists()


def test_kl_shaped_rewards_by_hand():
    from rewardlab.serving.rl import kl_shaped_rewards

    lp = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -1.0, -9.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, -1.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # the second response has 2 tokens
    out = kl_shaped_rewards([2.0, -1.0], lp, ref, mask, beta=0.1)
    # row 0: -0.1*(0.5, -1, 0) + reward 2 at t=2; row 1: -0.1*(1, 0) then padding 0, reward -1 at t=1
    assert torch.allclose(out, torch.tensor([[-0.05, 0.1, 2.0], [-0.1, -1.0, 0.0]]))
    assert kl_shaped_rewards([1.0], lp[:1], lp[:1], beta=1.0).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(ValueError):
        kl_shaped_rewards([1.0, 2.0], lp, ref[:1])


@pytest.mark.parametrize("algo", ["grpo", "rloo"])
def test_reward_function_drives_trl_grpo_and_rloo_for_two_steps(tiny_models, demo_rows, tmp_path, algo):
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.serving.rl import RewardFunction

    rm = RewardModel.from_pretrained(tiny_models["llama"], max_length=64)
    fn = RewardFunction(rm, normalize=False)
    prompts = [r["prompt"] for r in demo_rows[:4]]
    direct = rm.score(prompts, ["a", "b", "c", "d"])
    assert fn(prompts=prompts, completions=["a", "b", "c", "d"]) == pytest.approx(direct)
    seen = []

    def recording(prompts, completions, **kw):
        out = fn(prompts, completions, **kw)
        seen.append(len(out))
        return out

    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    tok.pad_token = tok.pad_token or tok.eos_token
    policy = AutoModelForCausalLM.from_pretrained(tiny_models["llama"])
    config, trainer_class = {
        "grpo": (trl.GRPOConfig, trl.GRPOTrainer),
        "rloo": (trl.RLOOConfig, trl.RLOOTrainer),
    }[algo]
    args = config(
        output_dir=str(tmp_path / algo),
        beta=0.0,  # no reference model: the reward function is what is under test
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=6,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
    )
    trainer = trainer_class(
        model=policy,
        reward_funcs=[recording],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts * 2}),
        processing_class=tok,
    )
    trainer.train()
    assert seen and all(n == 4 for n in seen)  # called on every generation batch, one reward each
    assert trainer.state.global_step == 2


@pytest.fixture(scope="module")
def alibi_models(tiny_models, tmp_path_factory):
    """Tiny MPT (packed rows silently change its rewards) and BLOOM (packed rows fail)."""
    from rewardlab.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("alibi")
    return {a: build_tiny_model(a, tiny_models["llama"], root / a) for a in ("mpt", "bloom")}


@pytest.mark.parametrize("dtype", ["bf16-autocast", "bf16-mixed"])
def test_bf16_scoring_probes_the_layout_in_float32(alibi_models, dtype):
    # in bf16-autocast, the tiny MPT's packed rows differed from padded ones by 0.0007 of 0.21, inside
    # that precision's probe tolerance; in float32 by 0.0021, outside float32's: probed in float32
    mpt = RewardModel.from_pretrained(alibi_models["mpt"], max_length=48, dtype=dtype)
    assert mpt.score_layout() == "padded" and "change this model's rewards" in mpt.layout_note
    assert f"probed in float32 before the {dtype} conversion" in mpt.layout_note


def test_auto_layout_is_checked_per_model_and_falls_back_to_padded(tiny_models, alibi_models, demo_rows):
    from rewardlab.models.reward_model import check_shared_layout

    prompts = [r["prompt"] for r in demo_rows[:4] for _ in (0, 1)]
    responses = [r[k] for r in demo_rows[:4] for k in ("chosen", "rejected")]
    llama = RewardModel.from_pretrained(tiny_models["llama"], max_length=48)
    assert llama.score_layout() == "packed" and "largest difference" in llama.layout_note
    mpt = RewardModel.from_pretrained(alibi_models["mpt"], max_length=48)
    ok, note = check_shared_layout(mpt.model, mpt.encoder, mpt.tokenizer.pad_token_id)
    assert not ok and "change this model's rewards" in note  # ALiBi: wrong, not an error
    assert mpt.score_layout() == "padded" and mpt.layout_note == note
    padded = mpt.score(prompts, responses, layout="padded")
    assert mpt.score(prompts, responses) == padded  # auto scores padded rows
    forced = mpt.score(prompts, responses, layout="packed")  # what auto avoids
    assert max(abs(a - b) for a, b in zip(forced, padded, strict=True)) > 1e-4
    bloom = RewardModel.from_pretrained(alibi_models["bloom"], max_length=48)
    assert bloom.score_layout() == "padded" and "fail" in bloom.layout_note
    assert len(bloom.score(prompts, responses)) == 8


def test_training_auto_batching_falls_back_for_alibi(alibi_models, demo_file, tmp_path):
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    res = train(
        TrainConfig(
            model=str(alibi_models["mpt"]), data=str(demo_file), out=str(tmp_path / "mpt"),
            max_steps=2, batch_size=4, max_length=48, eval_split=0.0,
        )
    )  # fmt: skip
    assert (
        res.summary["batching"]["layout"] == "padded"
        and "change this model's rewards" in (res.summary["batching"]["why"])
    )
    assert any("training on padded rows" in w for w in res.warnings)


def test_flex_attention_scoring_is_refused_on_the_cpu_and_for_other_kinds(tiny_models, embedding_checkpoint):
    """FlexAttention scoring is for GPUs (tests/integration/test_gpu.py compares it with SDPA there)."""
    if not torch.cuda.is_available():
        with pytest.raises(RewardlabError, match="for GPUs"):
            RewardModel.from_pretrained(tiny_models["llama"], attn_implementation="flex_attention")
    with pytest.raises(RewardlabError, match="outcome checkpoints only"):
        RewardModel.from_pretrained(embedding_checkpoint, device="cpu", attn_implementation="sdpa")


def test_a_probe_that_gives_nan_fails(tiny_models, monkeypatch):
    import rewardlab.models.backbone as rmod

    real = rmod.forward_rewards

    def nan_when_packed(model, batch):
        out = real(model, batch)
        return out * float("nan") if batch["attention_mask"].dim() == 4 else out

    rm = RewardModel.from_pretrained(tiny_models["llama"], max_length=48)
    monkeypatch.setattr(rmod, "forward_rewards", nan_when_packed)
    ok, note = rmod.check_shared_layout(rm.model, rm.encoder, rm.tokenizer.pad_token_id)
    assert not ok and "nan" in note


def test_score_and_bon_refuse_rewards_that_are_not_finite(tiny_models, tmp_path, capsys, monkeypatch):
    from rewardlab.cli import main
    from tests.conftest import write_jsonl

    real = RewardModel.score
    given = {"bad": math.nan}

    def third_is_bad(self, prompts, responses, **kw):
        rewards = real(self, prompts, responses, **kw)
        return [given["bad"] if i == 2 else r for i, r in enumerate(rewards)]

    monkeypatch.setattr(RewardModel, "score", third_is_bad)
    model = str(tiny_models["llama"])
    rows = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": f"q{i}", "response": f"a{i}"} for i in range(4)])
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"prompt": "q", "responses": ["a", "b"]}] * 2)
    for bad in (math.nan, math.inf):
        given["bad"] = bad
        for cmd, src, where in (("score", rows, "rows.jsonl, line 3"), ("bon", pool, "pool.jsonl, line 2")):
            out = tmp_path / f"{cmd}.jsonl"
            flag = "--data" if cmd == "score" else "--candidates"
            assert main([cmd, "--model", model, flag, str(src), "--out", str(out)]) == 2
            err = capsys.readouterr().err
            errors = [line.split("\r")[-1] for line in err.splitlines() if "error:" in line]
            assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in err
            assert where in errors[0] and f"the reward {bad} (not a finite number" in errors[0]
            assert not out.exists() and not list(tmp_path.glob(".*"))  # nothing written, no temp file


def test_a_damaged_rewardlab_json_is_one_error_naming_the_file(tiny_models, tmp_path):
    llama = tmp_path / "llama"
    shutil.copytree(tiny_models["llama"], llama)
    (llama / "rewardlab.json").write_text('{\n  "kind": "orm",\n  "max_len')  # truncated
    with pytest.raises(
        RewardlabError, match=r"llama/rewardlab.json is not valid JSON \(line 3\): .* damaged"
    ):
        RewardModel.from_pretrained(llama)
    (llama / "rewardlab.json").write_text("[1, 2]")
    with pytest.raises(RewardlabError, match="rewardlab.json is not a JSON object"):
        RewardModel.from_pretrained(llama)
    (llama / "rewardlab.json").write_text('{"kind": "prm"}')  # valid JSON, fields missing
    with pytest.raises(
        RewardlabError, match="llama/rewardlab.json has no 'max_length' field: the checkpoint is"
    ):
        RewardModel.from_pretrained(llama)
