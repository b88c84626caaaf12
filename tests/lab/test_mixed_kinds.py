"""The mixed-kinds lab experiment: kinds, conditioned features, the planted conflict, its command."""

from __future__ import annotations

import json

import pytest
import torch

from dev.experiments.mixed_kinds import (
    ARMS,
    MixedSet,
    conditioned,
    evaluate_fold,
    kind_folds,
    load_kinds,
    summarise,
)
from rewardlab.data.schema import PreferencePair
from rewardlab.errors import RewardlabError
from tests.conftest import write_jsonl


def test_conditioned_features_are_the_shared_copy_then_one_copy_per_kind():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = conditioned(x, torch.tensor([0, 1, 0]), 2)
    expected = torch.tensor(
        [[1.0, 2.0, 1.0, 2.0, 0.0, 0.0], [3.0, 4.0, 0.0, 0.0, 3.0, 4.0], [5.0, 6.0, 5.0, 6.0, 0.0, 0.0]]
    )
    assert torch.equal(out, expected)
    assert conditioned(x, torch.tensor([2, 2, 2]), 3)[:, 6:].equal(x)  # the last kind's block


def _planted(n: int = 240, dim: int = 6, seed: int = 0) -> MixedSet:
    """Two balanced kinds whose chosen-minus-rejected feature 0 has opposite signs; prompts show the kind."""
    g = torch.Generator().manual_seed(seed)
    kind = torch.arange(2 * n) // n
    sign = 1.0 - 2.0 * kind.float()
    diff = 0.3 * torch.randn(2 * n, dim, generator=g)
    diff[:, 0] = sign * (0.5 + torch.rand(2 * n, generator=g))
    base = torch.randn(2 * n, dim, generator=g)
    xp = 0.3 * torch.randn(2 * n, 4, generator=g)
    xp[:, 0] += 2.0 * sign
    lengths = torch.randint(1, 40, (2 * n, 2), generator=g).tolist()
    by_kind = {
        name: [
            PreferencePair(
                prompt=f"{name} {i}", chosen="c" * lengths[k * n + i][0], rejected="r" * lengths[k * n + i][1]
            )
            for i in range(n)
        ]
        for k, name in enumerate(["helpful", "harmless"])
    }
    return MixedSet(
        kinds=list(by_kind),
        pairs=[p for found in by_kind.values() for p in found],
        kind=kind,
        fold=torch.tensor(kind_folds(by_kind, 3, seed)),
        xc=base + diff / 2,
        xr=base - diff / 2,
        xp=xp,
    )


def test_conditioning_resolves_a_planted_conflict_that_one_linear_head_cannot():
    data = _planted()
    rows = [evaluate_fold(data, f, 1, 0) for f in range(3)]
    results = summarise(rows, data.kinds)
    for name in data.kinds:
        arms = results[name]["arms"]
        assert set(arms) == set(ARMS) and results[name]["pairs"] == 240
        assert arms["single"]["accuracy_mean"] > 0.9
        assert arms["mixed-conditioned"]["accuracy_mean"] > 0.9 and arms["mixed-conditioned"]["meets_target"]
        assert arms["mixed-routed"]["accuracy_mean"] > 0.9 and results[name]["router_accuracy"] > 0.95
        drop = arms["single"]["accuracy_mean"] - arms["mixed-linear"]["accuracy_mean"]
        assert arms["mixed-linear"]["drop_vs_single"] == pytest.approx(drop)
    # one direction serves one kind at the other's cost: at chance on average, below it on one kind
    linear = [results[name]["arms"]["mixed-linear"] for name in data.kinds]
    worse = min(linear, key=lambda a: a["accuracy_mean"])
    assert worse["accuracy_mean"] < 0.5 and worse["meets_target"] is False
    assert sum(a["accuracy_mean"] for a in linear) / 2 == pytest.approx(0.5, abs=0.1)


def test_folds_are_by_prompt_within_each_kind():
    pairs = [PreferencePair(prompt=f"p{i % 4}", chosen="a", rejected="b") for i in range(12)]
    fold = kind_folds({"a": pairs, "b": pairs[:8]}, 2, 0)
    for i, p in enumerate(pairs):
        assert fold[i] == fold[int(p.prompt[1])]  # one prompt, one fold
    assert set(fold[:12]) == {0, 1} and set(fold[12:]) == {0, 1}
    with pytest.raises(RewardlabError, match="fewer than --folds 5"):
        kind_folds({"a": pairs}, 5, 0)


def test_kinds_from_paths_or_from_the_category_field(demo_file, tmp_path):
    by_category = load_kinds([str(demo_file)], True, None, 0)
    assert list(by_category) == sorted(by_category) and len(by_category) == 5
    assert sum(map(len, by_category.values())) == 600
    sampled = load_kinds([f"x={demo_file}", f"y={demo_file}"], False, 30, 0)
    assert list(sampled) == ["x", "y"] and all(len(v) == 30 for v in sampled.values())
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    with pytest.raises(RewardlabError, match="plain.jsonl: a pair without a category"):
        load_kinds([str(plain)], True, None, 0)
    with pytest.raises(RewardlabError, match="expected KIND=PATH"):
        load_kinds([str(demo_file), str(demo_file)], False, None, 0)
    with pytest.raises(RewardlabError, match="given twice"):
        load_kinds([f"x={demo_file}", f"x={plain}"], False, None, 0)
    with pytest.raises(RewardlabError, match="at least two kinds"):
        load_kinds([f"x={demo_file}"], False, None, 0)


def test_left_out_records_and_pairs_are_counted(demo_file, tmp_path):
    rows = [
        {"prompt": "p1", "chosen": "a", "rejected": "b"},
        {"prompt": "p2", "chosen": "same", "rejected": "same"},  # identical: not trainable
        {"prompt": "p3", "chosen": "c"},  # no rejected: a bad record, skipped
    ]
    odd = write_jsonl(tmp_path / "odd.jsonl", rows)
    left_out: dict = {}
    kinds = load_kinds([f"x={demo_file}", f"y={odd}"], False, None, 0, left_out)
    assert len(kinds["y"]) == 1
    assert left_out[str(odd)] == {"records_dropped": 1, "pairs_not_trainable": 1}
    assert left_out[str(demo_file)] == {"records_dropped": 0, "pairs_not_trainable": 0}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from rewardlab.data.demo import generate_demo
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    rows = generate_demo(200, seed=0, over_refusal=0.5)
    texts = [r[k] for r in rows for k in ("prompt", "chosen", "rejected")]
    root = tmp_path_factory.mktemp("tiny-bert")
    return build_tiny_model("bert", train_tokenizer(texts, root / "tok", style="bert"), root / "bert")


def test_cli_writes_every_arm_for_every_kind(tiny_bert, tmp_path):
    from dev.experiments.mixed_kinds import main
    from rewardlab.data.demo import generate_demo

    rows = generate_demo(100, seed=1, over_refusal=0.5)
    helpful = write_jsonl(tmp_path / "helpful.jsonl", [r for r in rows if r["category"] != "safety"])
    harmless = write_jsonl(tmp_path / "harmless.jsonl", [r for r in rows if r["category"] == "safety"])
    out = tmp_path / "mixed.json"
    args = ["--data", f"helpful={helpful}", "--data", f"harmless={harmless}"]
    args += ["--model", str(tiny_bert), "--folds", "2", "--max-length", "64", "--out", str(out)]
    assert main(args) == 0
    r = json.loads(out.read_text())
    assert r["kinds"] == {"helpful": 80, "harmless": 20}
    assert set(r["results"]) == {"helpful", "harmless"} and len(r["folds"]) == 2
    for kind in r["results"].values():
        assert set(kind["arms"]) == set(ARMS)
        assert all(0 <= a["accuracy_mean"] <= 1 for a in kind["arms"].values())
        assert 0 <= kind["length_baseline"] <= 1 and 0 <= kind["router_accuracy"] <= 1
    assert r["peak_rss_mib"] > 0 and "load_average" in r and r["target_drop"] == 0.02
