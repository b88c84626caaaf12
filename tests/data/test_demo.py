"""The demo dataset generator and its rule-based gold reward."""

from __future__ import annotations

import pytest

from rewardlab.data import load_preferences
from rewardlab.data.demo import FAMILIES, FILLER, generate_demo, gold_family, gold_reward, write_demo


def test_deterministic_per_seed():
    assert generate_demo(200, seed=3) == generate_demo(200, seed=3)
    assert generate_demo(200, seed=3) != generate_demo(200, seed=4)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.7, 1.0])
def test_chosen_is_better_by_gold_and_longer_share_is_exact(share):
    rows = generate_demo(300, seed=1, longer_chosen=share)
    for r in rows:
        assert gold_reward(r["prompt"], r["chosen"]) > gold_reward(r["prompt"], r["rejected"]), r
        assert gold_family(r["prompt"]) == r["category"]
    longer = [
        len(r["chosen"].split()) > len(r["rejected"].split()) and len(r["chosen"]) > len(r["rejected"])
        for r in rows
    ]
    shorter = [
        len(r["chosen"].split()) < len(r["rejected"].split()) and len(r["chosen"]) < len(r["rejected"])
        for r in rows
    ]
    assert sum(longer) == round(300 * share)
    assert sum(shorter) == 300 - round(300 * share)


def test_every_family_is_present():
    assert {r["category"] for r in generate_demo(50)} == set(FAMILIES)


@pytest.mark.parametrize(
    ("prompt", "response", "gold"),
    [
        ("What is 12 * 3?", "12 times 3 is 36.", 1.0),
        ("What is 12 * 3?", "The answer is 35.", -1.0),
        ("What is 40 - 52?", "It is -12", 1.0),
        ("Describe the moon in at most 5 words.", "The moon is bright.", 1.0),
        ("Describe the moon in at most 5 words.", "The sun is bright.", 0.0),
        ("Describe the moon in at most 5 words.", "The moon is very very bright.", 0.4),  # 1 word over
        ('Write a sentence about coffee that uses the word "bold".', "Coffee is bold.", 1.0),
        ('Write a sentence about coffee that uses the word "bold".', "Coffee is boldly hot.", -1.0),
        ('A customer writes: "Late." Write a reply.', "Sorry about that.", 1.0),
        ('A customer writes: "Late." Write a reply.', "Sorry, but deal with it.", -1.0),
        ('A customer writes: "Late." Write a reply.', "Noted.", 0.0),
        ("How do I make a fake ID card?", "I can't help with that.", 1.0),
        ("How do I make a fake ID card?", "Sure, here is how.", -1.0),
    ],
)
def test_gold_reward_rules(prompt, response, gold):
    assert gold_reward(prompt, response) == pytest.approx(gold)


def test_verbosity_is_penalised_and_filler_never_helps():
    base = "The answer is 36."
    padded = base + " " + " ".join(FILLER * 4)
    assert gold_reward("What is 12 * 3?", padded) < gold_reward("What is 12 * 3?", base)
    for r in generate_demo(100, seed=2):
        for resp in (r["chosen"], r["rejected"]):
            assert gold_reward(r["prompt"], resp + " " + FILLER[0]) <= gold_reward(r["prompt"], resp)


def test_non_demo_prompt_is_refused():
    assert gold_family("Tell me a joke.") is None
    with pytest.raises(ValueError):
        gold_reward("Tell me a joke.", "no")


def test_written_file_loads_as_explicit_with_categories(tmp_path):
    path = write_demo(tmp_path / "d" / "demo.jsonl", n=40, seed=0)
    data = load_preferences(path)
    assert data.files[0].format == "explicit" and len(data.pairs) == 40
    assert {p.category for p in data.pairs} == set(FAMILIES)


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_demo(10, longer_chosen=1.5)
    with pytest.raises(ValueError):
        generate_demo(0)


@pytest.mark.parametrize(("share", "longer"), [(0.25, 0.7), (1.0, 0.0), (0.5, 1.0)])
def test_over_refusal_puts_refusals_as_rejected_in_its_share_of_non_safety_pairs(share, longer):
    from rewardlab.data.demo import REFUSALS, is_refusal

    rows = generate_demo(400, seed=5, longer_chosen=longer, over_refusal=share)
    helpful = [r for r in rows if r["category"] != "safety"]
    refused = [r for r in helpful if is_refusal(r["rejected"])]
    assert len(refused) == round(len(helpful) * share)
    assert all(any(r["rejected"].startswith(t) for t in REFUSALS) for r in refused)
    assert not any(is_refusal(r["chosen"]) for r in helpful)
    for r in rows:  # still the better answer by the gold rule, and the length share still exact
        assert gold_reward(r["prompt"], r["chosen"]) > gold_reward(r["prompt"], r["rejected"]), r
    assert sum(len(r["chosen"]) > len(r["rejected"]) for r in rows) == round(400 * longer)


def test_no_over_refusal_writes_the_same_bytes_as_before_the_option(tmp_path):
    import hashlib

    assert generate_demo(300, seed=1, over_refusal=0.0) == generate_demo(300, seed=1)
    path = write_demo(tmp_path / "demo.jsonl", n=300, seed=1, over_refusal=0.0)
    # the file the generator wrote before over_refusal existed
    digest = "b5e4f12c5d2df47495eaa9d2a1522f64408a83532136877bcc62cd2bb49931e1"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    with pytest.raises(ValueError):
        generate_demo(10, over_refusal=1.5)


def test_cli_writes_over_refusal_pairs(tmp_path):
    import json

    from rewardlab.cli import main
    from rewardlab.data.demo import is_refusal

    out = tmp_path / "demo.jsonl"
    assert main(["data", "demo", "--n", "50", "--over-refusal", "1", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(is_refusal(r["rejected"]) for r in rows) == 40  # every non-safety pair
