"""The HH world's splits: disjoint by prompt, RL prompts single-turn and out of both training sets."""

from __future__ import annotations

import json

from dev.experiments.hh_world import split_world, train_commands
from tests.conftest import write_jsonl


def _hh(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        turns = f"\n\nHuman: question {i}?" + ("\n\nAssistant: ok.\n\nHuman: and more?" if i % 3 == 0 else "")
        rows.append(
            {"chosen": f"{turns}\n\nAssistant: good {i}", "rejected": f"{turns}\n\nAssistant: bad {i}"}
        )
    return rows


def _prompts(path) -> set[str]:
    return {json.loads(line)["prompt"] for line in path.read_text().splitlines()}


def test_split_world_is_disjoint_seeded_and_keeps_rl_prompts_out_of_training(tmp_path):
    data = write_jsonl(tmp_path / "hh.jsonl", _hh(60))
    rec = split_world(data, tmp_path / "w", test_share=0.2, rl_prompts=10, proxy_pairs=15, seed=3)
    assert rec["test_pairs"] == 12 and rec["rl_prompt_pairs"] == 10
    assert rec["gold_train_pairs"] == 60 - 12 - 10 and rec["proxy_train_pairs"] == 15
    test, rl, gold, proxy = (
        _prompts(tmp_path / "w" / f"{n}.jsonl") for n in ("test", "rl_prompts", "gold_train", "proxy_train")
    )
    assert not (test & rl) and not (test & gold) and not (rl & gold)
    assert proxy <= gold and len(proxy) == 15
    assert all(p.count("Human:") == 1 for p in rl)  # the policy gets a plain question
    again = split_world(data, tmp_path / "w2", test_share=0.2, rl_prompts=10, proxy_pairs=15, seed=3)
    assert again == {**rec} and _prompts(tmp_path / "w2" / "rl_prompts.jsonl") == rl
    other = split_world(data, tmp_path / "w3", test_share=0.2, rl_prompts=10, proxy_pairs=15, seed=4)
    assert other["test_pairs"] == 12 and _prompts(tmp_path / "w3" / "rl_prompts.jsonl") != rl


def test_train_commands_train_gold_ensemble_and_one_head_proxy_on_their_files(tmp_path):
    gold, proxy = train_commands(tmp_path)
    assert gold[gold.index("--ensemble") + 1] == "5" and gold[gold.index("--data") + 1].endswith(
        "gold_train.jsonl"
    )
    assert "--ensemble" not in proxy and proxy[proxy.index("--data") + 1].endswith("proxy_train.jsonl")
    assert all(c[c.index("--eval-data") + 1].endswith("test.jsonl") for c in (gold, proxy))
