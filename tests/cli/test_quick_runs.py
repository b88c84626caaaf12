"""Quick-run options for a first hour: one test split, a sample of pairs, the held-out pairs for eval."""

from __future__ import annotations

import json

from rewardlab.cli import main
from rewardlab.data import load_preferences
from rewardlab.data.schema import text_key
from tests.conftest import write_jsonl


def test_data_split_test_share_holds_out_prompts_not_pairs(demo_rows, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", demo_rows[:200])
    assert main(["data", "split", str(data), "--test-share", "0.2", "--out", str(tmp_path / "s")]) == 0
    train = load_preferences(tmp_path / "s" / "train.jsonl").all_pairs()
    test = load_preferences(tmp_path / "s" / "test.jsonl").all_pairs()
    assert len(train) + len(test) == 200 and 0 < len(test) < 80
    assert not {text_key(p.prompt) for p in train} & {text_key(p.prompt) for p in test}
    record = json.loads((tmp_path / "s" / "split.json").read_text())
    assert record["test_pairs"] == len(test) and record["test_share"] == 0.2
    assert main(["data", "split", str(data), "--test-share", "1.5", "--out", str(tmp_path / "t")]) == 2


def test_train_max_pairs_samples_and_writes_the_held_out_pairs_for_eval(tiny_models, demo_rows, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", demo_rows[:200])
    out = tmp_path / "run"
    args = ["train", "--method", "embedding", "--model", str(tiny_models["bert"]), "--data", str(data),
            "--out", str(out), "--max-length", "64", "--max-pairs", "50"]  # fmt: skip
    assert main(args) == 0
    split = json.loads((out / "train_summary.json").read_text())["data"]["split"]
    assert split["max_pairs"] == 50 and split["sampled_from"] > 50
    held = load_preferences(out / "heldout.jsonl").all_pairs()
    assert split["held_out_written"] == {"file": "heldout.jsonl", "pairs": len(held)}
    train_prompts = {text_key(p.prompt) for p in load_preferences(data).all_pairs()}
    assert held and {text_key(p.prompt) for p in held} <= train_prompts
    ev = tmp_path / "ev"
    cmd = [
        "eval",
        "--model",
        str(out),
        "--data",
        str(out / "heldout.jsonl"),
        "--out",
        str(ev),
        "--max-pairs",
        "5",
    ]
    assert main(cmd) == 0
    record = json.loads((ev / "metrics.json").read_text())["datasets"]["heldout"]
    assert record["pairs_loaded"] == 5 and record["sampled_from"] == len(held)
