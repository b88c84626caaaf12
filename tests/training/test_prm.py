"""Process reward models: stepwise formats, the step loss, aggregations, first-error F1, training, advice."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from rewardlab import metrics as M
from rewardlab.cli import main
from rewardlab.data.demo import generate_steps
from rewardlab.data.io import DataError
from rewardlab.data.stepwise import load_stepwise, summarize_steps
from rewardlab.errors import RewardlabError
from rewardlab.models.prm import StepEncoder, aggregate_steps, split_steps, step_logits
from rewardlab.training.losses import step_loss
from tests.conftest import write_jsonl

# --------------------------------------------------------------------------- formats


def test_trl_stepwise_format_and_errors(tmp_path):
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {"prompt": "p1", "completions": ["a", "b", "c"], "labels": [True, False, None]},
            {"prompt": "p2", "steps": ["x", "y"], "step_labels": [1, 0.25]},
        ],
    )
    data = load_stepwise(path)
    assert [e.labels for e in data.examples] == [[1.0, 0.0, None], [1.0, 0.25]]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "completions": ["a", "b"], "labels": [True]}])
    with pytest.raises(DataError, match=r"bad.jsonl, line 1, field 'labels': 2 steps but 1 labels"):
        load_stepwise(bad)
    assert load_stepwise(bad, on_error="skip").drops[0].reason == "length mismatch"


def test_prm800k_chosen_human_and_stopping_step(tmp_path):
    rec = {
        "question": {"problem": "What is 1+1?"},
        "label": {
            "steps": [
                {"completions": [{"text": "One plus one.", "rating": 0}], "chosen_completion": 0},
                {
                    "completions": [{"text": "It is 3.", "rating": -1}],
                    "human_completion": {"text": "It is 2."},
                },
                {"completions": [{"text": "So 5.", "rating": -1}, {"text": "So 2.", "rating": 1}]},
            ]
        },
    }
    e = load_stepwise(write_jsonl(tmp_path / "p.jsonl", [rec])).examples[0]
    # neutral counts as correct, the human step is correct, the labeller stopped at the first -1
    assert e.steps == ["One plus one.", "It is 2.", "So 5."] and e.labels == [1.0, 1.0, 0.0]
    assert load_stepwise(write_jsonl(tmp_path / "q.jsonl", [rec]), neutral=0.0).examples[0].labels[0] == 0.0


def test_math_shepherd_tags(tmp_path):
    rec = {
        "input": "Add 2 and 3. Step 1: 2 + 3 = 5. ки\nStep 2: The answer is 6. ки",
        "label": "Add 2 and 3. Step 1: 2 + 3 = 5. +\nStep 2: The answer is 6. -",
    }
    e = load_stepwise(write_jsonl(tmp_path / "m.jsonl", [rec])).examples[0]
    assert e.prompt == "Add 2 and 3." and e.steps == ["Step 1: 2 + 3 = 5.", "Step 2: The answer is 6."]
    assert e.labels == [1.0, 0.0]


def test_bbm_and_mrben_records(tmp_path):
    bbm = {"input": "1+1+1=", "steps": ["1+1=2", "2+1=4", "so 4"], "mistake_index": 1}
    assert load_stepwise(write_jsonl(tmp_path / "b.jsonl", [bbm])).examples[0].labels == [1.0, 0.0, None]
    mr = {
        "q1": [
            {
                "Question": "Q?",
                "Model_Solution_Steps": "def f(x):\n    y = x\n\n    return y + 1",
                "Model_Solution_Correctness": "incorrect",
                "Model_Solution_First_Error_Step": "    return y + 1",
            },
            {
                "Question": "Q?",
                "Options": "A: 1",
                "Model_Solution_Steps": ["Step 1: a", "Step 2: b"],
                "Model_Solution_Correctness": "correct",
                "Model_Solution_First_Error_Step": "N/A",
            },
        ]
    }
    (tmp_path / "mr.json").write_text(json.dumps(mr))
    a, b = load_stepwise(tmp_path / "mr.json").examples
    assert a.steps == ["def f(x):", "    y = x", "    return y + 1"] and a.labels == [1.0, 1.0, 0.0]
    assert b.prompt == "Q?\nA: 1" and b.labels == [1.0, 1.0]


def test_shared_stepwise_files(shared_data):
    shep = load_stepwise(shared_data / "prm-format-samples" / "math-shepherd.jsonl").examples
    assert len(shep) == 7 and shep[0].labels == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert "Step 1" not in shep[0].prompt and shep[0].steps[0].startswith("Step 1:")
    prm = load_stepwise(shared_data / "prm-format-samples" / "prm800k.jsonl").examples
    assert len(prm) == 6 and prm[0].steps[0].startswith("Let's call the price of a pencil")
    bbm = load_stepwise(shared_data / "big-bench-mistake")
    assert len(bbm.examples) == 2186 and not bbm.drops
    mr = load_stepwise(shared_data / "mr-ben", on_error="skip")
    assert len(mr.examples) + len(mr.drops) == 4534 and {d.reason for d in mr.drops} == {"no first error"}


def test_summary_flags_inconsistent_labels(tmp_path, capsys):
    rows = [
        {
            "prompt": "p",
            "completions": ["s1", "s2", "s3"],
            "labels": [True, False, True],
        },  # correct after error
        {"prompt": "q", "completions": ["Step 1: a", "b"], "labels": [True, True]},
        {"prompt": "q", "completions": ["Step 1:  a", "c"], "labels": [False, None]},  # same step both ways
    ]
    s = summarize_steps(load_stepwise(write_jsonl(tmp_path / "s.jsonl", rows)))
    assert s["inconsistent"]["correct_after_error"] == 1 and s["inconsistent"]["conflicting_steps"] == 1
    assert s["first_error_step"]["count"] == 2 and s["first_error_step"]["mean"] == 1.5
    assert s["label_balance"]["wrong_steps"] == 2 and s["counts"]["unlabelled_steps"] == 1
    assert main(["data", "summarize", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "data_summary.json").read_text())["kind"] == "stepwise"
    assert "labelled correct after their first error" in capsys.readouterr().out


# --------------------------------------------------------------------------- maths by hand


def test_step_loss_by_hand():
    logits, targets = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, 0.5])
    both = step_loss(logits, targets, torch.tensor([True, True, False]))
    assert both.item() == pytest.approx((math.log(2) + math.log(1 + math.exp(2))) / 2)
    soft = step_loss(logits, targets, torch.tensor([False, False, True]))
    # y = 0.5 at z = -1: -(0.5 log σ(-1) + 0.5 log σ(1))
    assert soft.item() == pytest.approx(-0.5 * (M.log_sigmoid(-1) + M.log_sigmoid(1)))


def test_aggregations_and_first_error_f1_by_hand():
    p = [0.9, 0.5, 0.8]
    assert aggregate_steps(p, "min") == 0.5 and aggregate_steps(p, "prod") == pytest.approx(0.36)
    assert aggregate_steps(p, "last") == 0.8 and aggregate_steps(p, "mean") == pytest.approx(2.2 / 3)
    assert M.first_error([0.9, 0.4, 0.2]) == 1 and M.first_error([0.9, 0.6]) is None
    # erroneous: 1 of 3 found exactly; correct: 1 of 1 -> F1 = 2 * (1/3) * 1 / (4/3) = 0.5
    r = M.first_error_metrics([1, None, 2, None], [1, None, 0, 3])
    assert r["accuracy_erroneous"] == pytest.approx(1 / 3) and r["accuracy_correct"] == 1.0
    assert r["f1"] == pytest.approx(0.5)
    assert split_steps("a\nb\n\n") == ["a", "b"] and split_steps("a\nb\n\nc") == ["a\nb", "c"]


def test_step_baselines_by_hand():
    # solutions: [ok, wrong] (first error 1, n=2), [ok, ok, ok] (no error, n=3), [wrong] (first error 0,
    # n=1), and an unlabelled one that is left out
    b = M.step_baselines([[1.0, 0.0], [1.0, 1.0, 1.0], [0.0], [None, None]])
    always, rand = b["every_step_correct"], b["random"]
    assert always["step_accuracy"] == pytest.approx(4 / 6) and always["wrong_step_f1"] == 0.0
    assert always["accuracy_erroneous"] == 0.0 and always["accuracy_correct"] == 1.0 and always["f1"] == 0.0
    # random: right with probability 1/(n+1): erroneous (1/3 + 1/2) / 2 = 5/12, correct 1/4
    assert rand["accuracy_erroneous"] == pytest.approx(5 / 12)
    assert rand["accuracy_correct"] == pytest.approx(0.25)
    assert rand["f1"] == pytest.approx(2 * (5 / 12) * 0.25 / (5 / 12 + 0.25))
    assert always["step_auroc"] == rand["step_auroc"] == 0.5


# --------------------------------------------------------------------------- model and training


@pytest.fixture(scope="module")
def step_setup(tmp_path_factory):
    """The synthetic step task, a tokenizer trained on it and a tiny LLaMA."""
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    root = tmp_path_factory.mktemp("prm")
    rows = generate_steps(600, seed=0)
    data = write_jsonl(root / "steps.jsonl", rows)
    held = write_jsonl(root / "held.jsonl", generate_steps(150, seed=1))
    texts = [r["prompt"] for r in rows] + [s for r in rows for s in r["completions"]]
    tok = train_tokenizer(texts, root / "tok", style="llama")
    return {"root": root, "data": data, "held": held, "model": build_tiny_model("llama", tok, root / "llama")}


def test_loss_reaches_only_the_separators(step_setup):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from rewardlab.models.prm import pad_steps, resolve_separator

    tok = AutoTokenizer.from_pretrained(str(step_setup["model"]))
    tok.pad_token = tok.unk_token
    model = AutoModelForTokenClassification.from_pretrained(str(step_setup["model"]), num_labels=1)
    _, sep = resolve_separator(tok)
    enc = StepEncoder(tok, 64, sep)
    batch = pad_steps(
        [enc.encode("List even numbers.", ["then 4", "then 7"]), enc.encode("q", ["then 1"])], 0
    )
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    out.logits.retain_grad()
    z = out.logits[..., 0][batch["step_rows"], batch["step_cols"]]
    step_loss(z, torch.tensor([1.0, 0.0, 0.0]), torch.tensor([True, True, False])).backward()
    grad = out.logits.grad[..., 0]
    hit = torch.zeros_like(grad, dtype=torch.bool)
    hit[batch["step_rows"][:2], batch["step_cols"][:2]] = True
    assert (grad[hit] != 0).all() and (grad[~hit] == 0).all()  # nothing else, not even the unlabelled step
    assert [
        batch["input_ids"][r, c].item() for r, c in zip(batch["step_rows"], batch["step_cols"], strict=True)
    ] == [sep[0]] * 3


def test_prm_layouts_give_the_same_loss_and_gradients(step_setup):
    """Padded, prefix-shared and packed PRM batches: same step logits, loss and gradients, with
    solutions sharing a prompt, an unlabelled step and a one-step solution."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from rewardlab.models.prm import resolve_separator
    from rewardlab.training.prm_trainer import StepCollator

    tok = AutoTokenizer.from_pretrained(str(step_setup["model"]))
    tok.pad_token = tok.unk_token
    model = AutoModelForTokenClassification.from_pretrained(str(step_setup["model"]), num_labels=1).eval()
    enc = StepEncoder(tok, 64, resolve_separator(tok)[1])
    q = "List even numbers, starting from 10."
    items = [
        (enc.encode(q, ["then 12", "then 15"]), [1.0, 0.0]),
        (enc.encode("List odd numbers, starting from 3.", ["then 5"]), [1.0]),
        (enc.encode(q, ["then 12", "then 14", "then 16"]), [1.0, None, 1.0]),
        (enc.encode(q, ["then 13"]), [0.0]),
    ]

    def run(layout):
        batch = StepCollator(tok.pad_token_id, layout, pack_tokens=48)(items)
        model.zero_grad()
        z = step_logits(model, batch)
        loss = step_loss(z, batch["targets"], batch["labelled"])
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return batch, sorted(z.tolist()), loss.item(), grads  # the loss checks labels follow logits

    ref_batch, ref_z, ref_loss, ref_grads = run("padded")
    for layout in ("prefix", "packed"):
        batch, z, loss, grads = run(layout)
        assert (
            batch["input_ids"].ne(tok.pad_token_id).sum() < ref_batch["input_ids"].ne(tok.pad_token_id).sum()
        )
        assert z == pytest.approx(ref_z, abs=1e-5) and loss == pytest.approx(ref_loss, abs=1e-5), layout
        assert grads.keys() == ref_grads.keys()
        assert all(torch.allclose(grads[k], ref_grads[k], atol=1e-4) for k in grads), layout


def test_truncation_keeps_labels_and_counts_what_it_cuts(step_setup):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(step_setup["model"]))
    sep = [tok.eos_token_id]
    steps = [f"then {n}" for n in range(2, 40, 2)]
    long_prompt = "List even numbers, starting from 0. " * 10
    full = StepEncoder(tok, 4096, sep).encode(long_prompt, steps)
    short = StepEncoder(tok, 40, sep).encode(long_prompt, steps)
    assert full.steps_kept == len(steps) and full.prompt_cut == 0
    assert len(short.input_ids) <= 40 and short.prompt_cut > 0 and 0 < short.steps_kept < len(steps)
    assert all(short.input_ids[p] == sep[0] for p in short.positions)
    assert short.input_ids[0] == tok.bos_token_id  # the leading special token survives the cut
    # a solution with no labelled step is left out of training, and counted
    from rewardlab.data.schema import StepwiseExample
    from rewardlab.training.prm_trainer import encode_all

    items, report = encode_all(
        [StepwiseExample("p", ["then 2"], [None]), StepwiseExample("p", ["then 2"], [1.0])],
        StepEncoder(tok, 40, sep),
    )
    assert len(items) == 1 and report["solutions_without_labelled_step"] == 1 and report["solutions"] == 2


def test_tiny_prm_learns_the_synthetic_task_and_loads(step_setup, tmp_path):
    from rewardlab.models.prm import ProcessRewardModel
    from rewardlab.models.reward_model import RewardModel

    out = tmp_path / "prm"
    code = main(
        ["train", "--kind", "prm", "--model", str(step_setup["model"]), "--data", str(step_setup["data"]),
         "--eval-data", str(step_setup["held"]), "--out", str(out), "--max-length", "64",
         "--batch-size", "16", "--learning-rate", "3e-3", "--epochs", "15", "--save-steps", "100000"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["batching"]["layout"] == "packed"  # auto, for a decoder that passes the probe
    m = summary["eval_metrics"]
    labels = [v for r in generate_steps(150, seed=1) for v in r["labels"] if v is not None]
    majority = max(sum(labels), len(labels) - sum(labels)) / len(labels)
    assert m["eval_step_auroc"] > 0.8 and m["eval_step_accuracy"] > majority + 0.03
    info = json.loads((out / "rewardlab.json").read_text())
    assert info["kind"] == "prm" and info["separator_ids"] == [2]
    prm = RewardModel.from_pretrained(out)
    assert isinstance(prm, ProcessRewardModel)
    # the loaded checkpoint's API reproduces the trainer's held-out step metrics
    rows = [json.loads(x) for x in step_setup["held"].read_text().splitlines()]
    api = prm.step_probabilities([r["prompt"] for r in rows], [r["completions"] for r in rows])
    seen = [(p, y) for r, ps in zip(rows, api, strict=True) for p, y in zip(ps, r["labels"], strict=True)]
    seen = [(math.log(p / (1 - p)), float(y)) for p, y in seen if y is not None and not math.isnan(p)]
    again = M.step_metrics([z for z, _ in seen], [y for _, y in seen])
    assert again["step_auroc"] == pytest.approx(m["eval_step_auroc"], abs=1e-4)
    assert again["step_accuracy"] == pytest.approx(m["eval_step_accuracy"], abs=1e-9)
    probs = prm.score_steps("List even numbers, starting from 10.", ["then 12", "then 15", "then 16"])
    assert len(probs) == 3 and all(0 < p < 1 for p in probs)
    sol = "then 12\nthen 15\nthen 16"
    for how in ("min", "prod", "last", "mean"):
        expected = aggregate_steps(probs, how)
        assert prm.score(["List even numbers, starting from 10."], [sol], aggregation=how)[
            0
        ] == pytest.approx(expected, abs=1e-5)
    # a token budget changes the batches (as RewardModel.score's), not the probabilities
    held = [json.loads(x) for x in step_setup["held"].read_text().splitlines()][:12]
    ps, sols = [r["prompt"] for r in held], [r["completions"] for r in held]
    shapes = []
    hook = prm.model.register_forward_hook(
        lambda m, a, k, o: shapes.append(tuple(k["input_ids"].shape)), with_kwargs=True
    )
    try:
        budget = prm.step_probabilities(ps, sols, batch_size=16, max_tokens=100, layout="padded")
    finally:
        hook.remove()
    assert len(shapes) > 1 and all(b * t <= 100 or b == 1 for b, t in shapes)
    flat = [p for probs in prm.step_probabilities(ps, sols, layout="padded") for p in probs]
    assert [p for probs in budget for p in probs] == pytest.approx(flat, abs=1e-5, nan_ok=True)
    # packed rows (the default for this decoder PRM): best-of-N solutions share their problem's
    # prompt, and every step's probability is the padded one
    assert prm.score_layout() == "packed", prm.layout_note
    ps2, sols2 = (
        [p for p in ps[:6] for _ in (0, 1)],
        [s for k in range(6) for s in (sols[k], sols[(k + 1) % 6])],
    )
    padded = [p for probs in prm.step_probabilities(ps2, sols2, layout="padded") for p in probs]
    packed = [p for probs in prm.step_probabilities(ps2, sols2, batch_size=5) for p in probs]
    assert packed == pytest.approx(padded, abs=1e-5, nan_ok=True) and len(packed) > 12
    with pytest.raises(RewardlabError, match="normalisation"):  # refused, not ignored
        prm.score(["List even numbers, starting from 10."], [sol], normalize=True)
    # INTEGRATION.md: the API and the plain-transformers snippets run as written and agree
    notes = (out / "INTEGRATION.md").read_text()
    api, plain = (block.split("```", 1)[0] for block in notes.split("```python\n")[1:3])
    scope: dict = {}
    exec(api, scope)  # noqa: S102 - the snippets we wrote into the checkpoint
    exec(plain, scope)  # noqa: S102
    assert len(scope["probs"]) == 2 and scope["step_probs"] == pytest.approx(scope["probs"], abs=1e-5)
    assert f"rewardlab serve --model {out}" in notes and "token_classify" in notes
    # eval on step-labelled data: step metrics, first-error F1, and best-of-N per aggregation
    pool = write_jsonl(
        tmp_path / "pool.jsonl",
        [
            {"prompt": "List odd numbers, starting from 3.",
             "candidates": [{"solution": "then 5\nthen 7", "is_correct": 1},
                            {"solution": "then 6\nthen 8", "is_correct": 0}]},
            {"prompt": "List even numbers, starting from 8.",
             "candidates": [{"solution": "then 11\nthen 12", "is_correct": 0},
                            {"solution": "then 10\nthen 12", "is_correct": 1}]},
        ],
    )  # fmt: skip
    ev = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                f"prm={out}",
                "--data",
                str(step_setup["held"]),
                "--candidates",
                str(pool),
                "--out",
                str(ev),
            ]
        )
        == 0
    )
    report = json.loads((ev / "metrics.json").read_text())
    r = report["results"]["held"]["prm"]
    assert r["first_error"]["f1"] > 0.5 and r["step_auroc"] > 0.8
    assert set(report["best_of_n"]["models"]["prm"]) == {"min", "prod", "last", "mean"}
    assert report["best_of_n"]["random"] == 0.5 and report["best_of_n"]["oracle"] == 1.0
    assert "first-error F1" in (ev / "report.md").read_text()
    base = report["baselines"]["held"]
    assert base["every_step_correct"]["f1"] == 0.0 and 0 < base["random"]["f1"] < r["first_error"]["f1"]
    assert "baseline: random first error" in (ev / "report.md").read_text()


def test_prm_lora_and_cut_steps_are_reported(step_setup, tmp_path):
    out = tmp_path / "lora"
    code = main(
        ["train", "--kind", "prm", "--model", str(step_setup["model"]), "--data", str(step_setup["data"]),
         "--out", str(out), "--max-length", "16", "--lora", "--max-steps", "2", "--batch-size", "4"]
    )  # fmt: skip
    assert code == 0
    enc = json.loads((out / "train_summary.json").read_text())["train_encoding"]
    assert enc["steps_cut"] > 0 and enc["labelled_steps_cut"] > 0
    assert json.loads((out / "rewardlab.json").read_text())["method"] == "lora"
    assert any("did not fit" in w for w in json.loads((out / "train_summary.json").read_text())["warnings"])


# --------------------------------------------------------------------------- advice


def test_advise_rules(tmp_path):
    from rewardlab.training.advise import advise

    long_steps = write_jsonl(tmp_path / "long.jsonl", generate_steps(50, seed=0))
    a = advise(long_steps, tmp_path / "a")
    assert a["recommendation"] == "prm" and a["aggregation"] == "min"
    assert json.loads((tmp_path / "a" / "advice.json").read_text())["command"].startswith(
        "rewardlab train --kind prm"
    )
    short = write_jsonl(
        tmp_path / "short.jsonl",
        [{"prompt": f"p{i}", "completions": ["a", "b"], "labels": [True, i % 2 == 0]} for i in range(10)],
    )
    assert advise(short)["recommendation"] == "orm"
    last = write_jsonl(
        tmp_path / "last.jsonl",
        [
            {
                "prompt": f"p{i}",
                "completions": ["x = 1 + 2", "y = 3 * 4", "z = 5"],
                "labels": [None, None, i % 2 == 0],
            }
            for i in range(10)
        ],
    )
    assert advise(last)["aggregation"] == "last"
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            {
                "prompt": f"Solve {i}",
                "chosen": "2 + 2 = 4\n4 * 3 = 12\nso 12",
                "rejected": "2 + 2 = 5\n5 * 3 = 15\nso 15",
            }
            for i in range(5)
        ],
    )
    p = advise(pairs)
    assert p["recommendation"] == "orm" and any("PRM would likely select better" in r for r in p["reasons"])


def test_prm_resume_continues_to_the_same_weights(step_setup, tmp_path, capsys):
    """An interrupted PRM run (its last checkpoint and final model gone) resumed with --resume
    ends with the weights of the uninterrupted run."""
    import shutil

    from safetensors.torch import load_file

    def run(out, *extra):
        args = ["train", "--kind", "prm", "--model", str(step_setup["model"]),
                "--data", str(step_setup["data"]), "--out", str(out), "--max-length", "48",
                "--batch-size", "4", "--max-steps", "6", "--save-steps", "2", "--save-total-limit",
                "10", "--learning-rate", "3e-3", "--logging-steps", "1", *extra]  # fmt: skip
        return main(args)

    full, cut = tmp_path / "full", tmp_path / "cut"
    assert run(full) == 0 and run(cut) == 0
    shutil.rmtree(cut / "checkpoints" / "checkpoint-6")  # as if the run died after step 4's save
    for f in ("rewardlab.json", "model.safetensors", "train_summary.json"):
        (cut / f).unlink()
    capsys.readouterr()
    assert run(cut, "--resume") == 0
    out = capsys.readouterr().out
    assert "resuming from" in out
    logged = [json.loads(x) for x in (cut / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in logged if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # the first run's lines after step 4 replaced by the resumed run's
    assert re.search(r"train_log.jsonl: \d+ lines after step 4 removed", out)
    a, b = load_file(str(full / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert json.loads((cut / "train_summary.json").read_text())["steps"] == 6
