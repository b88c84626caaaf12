"""rewardlab harden: one repair round with a tiny policy and a tiny embedding reward model writes every
file (the checks, the exports, the retrained model and its data, harden.json/.md); the retraining mix
holds the original training pairs and the exploit pairs k times, never the held-out pairs; k is chosen
among the candidates; the options are checked; (slow) one real round on the demo world."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rewardlab.cli import main
from rewardlab.diagnostics.harden.config import HardenConfig
from rewardlab.diagnostics.harden.data import accuracy, mix
from rewardlab.diagnostics.harden.run import harden
from rewardlab.diagnostics.rlcheck.run import load_proxy, proxy_scorer
from rewardlab.errors import RewardlabError
from tests.diagnostics.test_rlcheck import _tiny_policy
from tests.diagnostics.test_rlcheck_world import GOLD_PY


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cfg(checkpoint: Path, root: Path, **kw: object) -> HardenConfig:
    (root / "gold.py").write_text(GOLD_PY)
    policy = root / "policy" if (root / "policy").is_dir() else _tiny_policy(root)
    return HardenConfig(**{**dict(
        reward=[str(checkpoint)], out=str(root / "out"), policy=str(policy),
        gold=f"{root / 'gold.py'}:gold", steps=3, prompts=10, prompts_per_step=2, generations=4,
        max_completion_length=12, eval_prompts=5, eval_every=2, eval_samples=2, pair_min_gap=0.05,
        repeats=[1, 3], val_share=0.5, min_val_pairs=1, learning_rate=0.05, diagnose=True,
    ), **kw})  # fmt: skip


@pytest.fixture(scope="module")
def hardened(embedding_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("harden")
    return harden(_cfg(embedding_checkpoint, root)), root / "out"


def test_one_round_writes_every_file(hardened: tuple) -> None:
    result, out = hardened
    for name in ("harden.json", "harden.md", "heldout.jsonl"):
        assert (out / name).is_file(), name
    for r in (0, 1):
        for name in ("rlcheck.json", "rlcheck.md", "completions.jsonl", "exploit_pairs.jsonl"):
            assert (out / f"round-{r}" / "check" / name).is_file(), (r, name)
    assert (out / "round-1" / "model" / "rewardlab.json").is_file()
    assert [m["round"] for m in result["rounds"]] == [0, 1] and len(result["verdict"]) >= 3
    md = (out / "harden.md").read_text()
    assert "## Before and after" in md and "## Rounds" in md and "k = " in md
    for r in (0, 1):  # --diagnose: the findings before and after
        assert (out / f"round-{r}" / "diagnose" / "diagnostics.json").is_file()
        assert isinstance(result["rounds"][r]["findings"], list)
    assert "## Diagnose findings" in md
    saved = json.loads((out / "harden.json").read_text())
    assert saved["verdict"] == result["verdict"]


def test_round_measures_and_the_choice_of_k(hardened: tuple, embedding_checkpoint: Path) -> None:
    result, out = hardened
    first, last = result["rounds"]
    for m in (first, last):
        assert 0.0 <= m["heldout_accuracy"] <= 1.0 and m["agreement_own"]["pairs"] > 0
        assert m["gold"]["gold_drop"] is not None
    # round 0's measurements are the original model's: its held-out accuracy recomputed independently
    held = _read(out / "heldout.jsonl")
    score = proxy_scorer(load_proxy([str(embedding_checkpoint)]))
    assert first["heldout_accuracy"] == pytest.approx(accuracy(score, held))
    assert first["agreement_round0_samples"] == first["agreement_own"]  # the same samples, the same model
    k = last["k"]
    assert k["k"] in (1, 3) and [t["k"] for t in k["candidates"]] == [1, 3]
    assert all(0.0 <= t["exploit_val_accuracy"] <= 1.0 for t in k["candidates"])


def test_the_retraining_mix_keeps_the_held_out_pairs_out(hardened: tuple) -> None:
    result, out = hardened
    last = result["rounds"][1]
    rows = _read(out / "round-1" / "model-train.jsonl")
    exploits = [r for r in rows if r.get("category") == "rlcheck"]
    assert len(exploits) == last["k"]["k"] * last["trained_exploit_pairs"]
    assert len(rows) - len(exploits) == result["original"]["train_pairs"]
    trained = {
        r["prompt"] for r in _read(out / "round-0" / "check" / "completions.jsonl") if r["split"] == "train"
    }
    assert {r["prompt"] for r in exploits} <= trained  # --pairs-from train: no eval prompt trained on
    held = {json.dumps(r["prompt"]) for r in _read(out / "heldout.jsonl")}
    assert held and held.isdisjoint(json.dumps(r["prompt"]) for r in rows)
    info = json.loads((out / "round-1" / "model" / "rewardlab.json").read_text())
    assert info["train_config"]["eval_data"] == str(out / "heldout.jsonl")


def test_no_exploit_pairs_stops_after_round_0(embedding_checkpoint: Path, tmp_path: Path) -> None:
    from unittest import mock

    cfg = _cfg(embedding_checkpoint, tmp_path, out=str(tmp_path / "none"), rounds=2, diagnose=False)
    with mock.patch("rewardlab.diagnostics.harden.run.new_pairs", return_value=[]):
        result = harden(cfg)
    assert [m["round"] for m in result["rounds"]] == [0] and "no exploit pairs" in result["rounds"][0][
        "stopped"
    ]
    assert result["verdict"][0].startswith("Round 0 only: no exploit pairs")
    assert not (tmp_path / "none" / "round-1").exists() and (tmp_path / "none" / "harden.md").is_file()


def test_mix_repeats_exploit_pairs_k_times() -> None:
    exploit = {"prompt": "p", "chosen": "a", "rejected": "b"}
    rows = mix([], [exploit], 3, [])
    assert rows == [{**exploit, "category": "rlcheck"}] * 3


def test_bad_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RewardlabError, match="one reward model"):
        HardenConfig(reward=["a", "b"], out="o")
    with pytest.raises(RewardlabError, match="needs a gold"):
        HardenConfig(reward=["a"], out="o", gold="none")
    with pytest.raises(RewardlabError, match="--repeats"):
        HardenConfig(reward=["a"], out="o", repeats=[0])
    assert main(["harden", "--reward", "m", "--out", "o", "--rounds", "0"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --rounds")


@pytest.mark.slow
def test_one_real_round(tmp_path: Path) -> None:
    model = os.environ.get("REWARDLAB_RLCHECK_RM", "runs/demo/model")
    if not Path(model).is_dir():
        pytest.skip(f"no demo reward model at {model} (make demo)")
    result = harden(HardenConfig(reward=[model], out=str(tmp_path / "out"), repeats=[4]))
    assert [m["round"] for m in result["rounds"]] == [0, 1]
    assert (tmp_path / "out" / "round-1" / "model" / "rewardlab.json").is_file()
    assert result["rounds"][1]["heldout_accuracy"] is not None


def test_too_few_held_out_exploit_pairs_take_the_smallest_k(
    embedding_checkpoint: Path, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from rewardlab.diagnostics.harden.data import choose_k

    exploits = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(6)]
    opts = SimpleNamespace(
        repeats=[4, 1, 16], val_share=0.5, seed=0, min_val_pairs=10, max_accuracy_drop=0.01
    )
    k = choose_k({}, [], (None, []), exploits, [], opts, None)  # nothing is trained: no search
    assert k["k"] == 1 and k["candidates"] == [] and "fewer than the 10" in k["how"]
    assert k["val_pairs"] + k["fit_pairs"] == 6
