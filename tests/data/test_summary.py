"""The data summary on small data whose every number is worked out by hand below."""

from __future__ import annotations

import json
import re

import pytest

from rewardlab.data import load_preferences
from rewardlab.data.summary import render_markdown, summarize, write_summary
from rewardlab.data.tokens import truncate
from tests.conftest import REPO, write_jsonl

ROWS = [
    {"prompt": "one two", "chosen": "a b c", "rejected": "x", "category": "A"},  # R1
    {"prompt": "one two", "chosen": "a b c", "rejected": "x", "category": "A"},  # R2: duplicate of R1
    {"prompt": "one two", "chosen": "x", "rejected": "a b c", "category": "A"},  # R3: contradicts R1
    {"prompt": "three", "chosen": "z", "rejected": "z", "category": "B"},  # R4: identical
    {"prompt": "three", "chosen": "y", "rejected": "x y z", "tie": True, "category": "B"},  # R5: tie
    {"prompt": "One, two!", "chosen": "b", "rejected": "c"},  # R6: near-duplicate prompt of R1
    {"prompt": "one two three", "chosen": "four five", "rejected": "four six", "category": "B"},  # R7
]


@pytest.fixture
def data(tmp_path):
    return load_preferences(write_jsonl(tmp_path / "s.jsonl", ROWS))


def test_counts_duplicates_contradictions(data):
    s = summarize(data, source="s.jsonl")
    c = s["counts"]
    assert (c["records"], c["pairs"], c["pairs_total"]) == (7, 7, 7)
    assert c["usable_pairs"] == 5  # all but the identical R4 and the tie R5
    assert (c["ties"], c["identical_chosen_rejected"], c["prompts"], c["dropped"]) == (1, 1, 4, 0)
    assert s["duplicates"] == {"exact_duplicate_pairs": 1, "contradictory_pairs": 1}
    assert s["prompts"]["near_duplicate_groups"] == 1
    assert s["prompts"]["prompts_in_near_duplicate_groups"] == 2
    assert s["categories"] == {
        "(none)": {"pairs": 1, "usable": 1, "ties": 0},
        "A": {"pairs": 3, "usable": 3, "ties": 0},
        "B": {"pairs": 3, "usable": 1, "ties": 1},
    }
    assert any("contradictory" in w for w in s["warnings"])
    assert any("identical" in w for w in s["warnings"])


def test_character_length_bias(data):
    b = summarize(data)["length_bias_chars"]
    # usable pairs R1, R2 (5 vs 1 chars), R3 (1 vs 5), R6 (1 vs 1), R7 (9 vs 8)
    assert b == {
        "pairs": 5,
        "chosen_longer_share": 0.6,
        "chosen_shorter_share": 0.2,
        "equal_length_share": 0.2,
    }


def test_token_lengths_bias_and_truncation(data, word_tokenizer):
    s = summarize(data, tokenizer=word_tokenizer, max_length=5)
    t = s["lengths_tokens"]
    assert (t["prompt"]["count"], t["prompt"]["min"], t["prompt"]["max"]) == (4, 1, 3)
    assert t["chosen"]["max"] == 3
    b = s["length_bias_tokens"]
    # in words: R1, R2 longer (3 vs 1), R3 shorter, R6 and R7 equal (1 vs 1, 2 vs 2)
    assert (b["chosen_longer_share"], b["chosen_shorter_share"], b["equal_length_share"]) == (0.4, 0.2, 0.4)
    tr = s["truncation"]
    # budget = 5 - 2 special tokens = 3: R1, R2, R3 (2 + 3), R5 (1 + 3), R7 (3 + 2) are over it
    assert tr["pairs_cut"] == 5 and tr["pairs_cut_share"] == pytest.approx(5 / 7)
    # keeping the start keeps only R7's 3-token prompt: its two responses become identical
    assert tr["identical_after_cut"] == {"keep_end": 0, "keep_start": 1}


def test_truncate_keeps_the_response_end():
    assert truncate([1, 2, 3], [4, 5], 4) == ([2, 3], [4, 5])
    assert truncate([1, 2, 3], [4, 5, 6, 7, 8], 4) == ([], [5, 6, 7, 8])
    assert truncate([1, 2, 3], [4, 5], 5) == ([1, 2, 3], [4, 5])
    assert truncate([1, 2, 3], [4, 5], 4, "keep_start") == ([1, 2, 3], [4])
    assert truncate([1, 2, 3], [4, 5], 2, "keep_start") == ([1, 2], [])
    with pytest.raises(ValueError):
        truncate([1], [2], 1, "middle")


def test_chat_template_token_counts(tmp_path, word_tokenizer):
    import copy

    tok = copy.deepcopy(word_tokenizer)
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant {% endif %}"
    )
    rows = [
        {
            "prompt": [{"role": "user", "content": "one two"}],
            "chosen": [{"role": "assistant", "content": "a b c"}],
            "rejected": [{"role": "assistant", "content": "x"}],
        }
    ]
    s = summarize(load_preferences(write_jsonl(tmp_path / "m.jsonl", rows)), tokenizer=tok, max_length=6)
    # prompt: "user one two assistant" = 4 tokens; chosen: "a b c" = 3; rejected: "x" = 1
    assert s["lengths_tokens"]["prompt"]["max"] == 4
    assert s["lengths_tokens"]["chosen"]["max"] == 3 and s["lengths_tokens"]["rejected"]["max"] == 1
    assert s["truncation"]["pairs_cut"] == 1  # 4 + 3 > 6 (a template adds no extra special tokens)


def test_annotator_agreement_hand_computed(tmp_path):
    base = {"prompt": "q", "response1": "r1", "response2": "r2"}
    votes = [(1, 1, 1), (2, 2, 1), (0, 0, 0), (1, 2, 0)]
    rows = [{**base, "annotator1": a, "annotator2": b, "annotator3": c} for a, b, c in votes]
    s = summarize(load_preferences(write_jsonl(tmp_path / "v.jsonl", rows)))
    a = s["agreement"]
    # P_i = 1, 1/3, 1, 0 -> 7/12; shares 5/12, 3/12, 4/12 -> P_e = 25/72; kappa = 17/47
    # Krippendorff: disagreements 0 + 2 + 0 + 3 = 5, n = 12 -> alpha = 1 - 11 * 5 / 94 = 39/94
    assert a["raw_agreement"] == pytest.approx(7 / 12)
    assert a["fleiss_kappa"] == pytest.approx(17 / 47)
    assert a["krippendorff_alpha"] == pytest.approx(39 / 94)
    assert a["unanimous_share"] == 0.5 and a["vote_counts"] == {"first": 5, "second": 3, "tie": 4}
    assert s["counts"]["ties"] == 2
    assert any("agreement 58.3% is below 70%" in w for w in s["warnings"])


def test_ranked_lists_in_summary(tmp_path):
    rows = [{"prompt": "q", "responses": ["a", "bb", "ccc"], "scores": [1, 2, 2]}]
    s = summarize(load_preferences(write_jsonl(tmp_path / "r.jsonl", rows)))
    assert s["counts"]["ranked_lists"] == 1 and s["counts"]["pairs_from_lists"] == 2
    assert s["counts"]["pairs_total"] == 3 and s["counts"]["ties"] == 1 and s["counts"]["usable_pairs"] == 2
    assert s["ranked_lists"]["tied_score_pairs"] == 1 and s["ranked_lists"]["responses"] == 3


def test_drops_are_counted_in_summary(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{oops\n")
    s = summarize(load_preferences(path, on_error="skip"))
    assert s["counts"]["dropped"] == 1 and s["counts"]["drop_reasons"] == {"malformed JSON": 1}
    assert "line 2" in s["files"][0]["drop_examples"][0]


def test_max_length_needs_tokenizer(data):
    with pytest.raises(ValueError):
        summarize(data, max_length=10)


def test_written_files_and_readme_documents_every_key(data, word_tokenizer, tmp_path):
    s = summarize(data, tokenizer=word_tokenizer, max_length=5, source="s.jsonl")
    json_path, md_path = write_summary(s, tmp_path / "out")
    assert json.loads(json_path.read_text()) == json.loads(json.dumps(s))
    md = md_path.read_text()
    assert md == render_markdown(s) and "contradictory pairs" in md and "keep_start" in md
    readme = (REPO / "docs" / "data.md").read_text()
    section = readme.split("## data_summary.json", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_0-9]+)`", section))
    keys = set(s) | set(s["counts"]) | set(s["truncation"]) | set(s["agreement"] or {}) | set(s["prompts"])
    assert keys - documented == set()


# --------------------------------------------------------------------------- empty and unusable files


def _cli_summary(path, out, capsys):
    from rewardlab.cli import main

    assert main(["data", "summarize", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.replace("\n", "")
    return json.loads((out / "data_summary.json").read_text())["warnings"], printed


def test_empty_file_is_warned_about_by_name(tmp_path, capsys):
    folder = tmp_path / "sets"
    folder.mkdir()
    write_jsonl(folder / "full.jsonl", ROWS[:1])
    for name in ("empty.jsonl", "empty.json", "empty.csv"):
        (folder / name).write_text(" \n" if name.endswith(".json") else "")
    warnings, printed = _cli_summary(folder, tmp_path / "out", capsys)
    for name in ("empty.jsonl", "empty.json", "empty.csv"):
        expected = f"{folder / name}: empty file (no records)"
        assert expected in warnings and expected in printed
    assert not [w for w in warnings if "full.jsonl" in w]


def test_file_without_usable_pairs_is_warned_about_with_counts(tmp_path, capsys):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "tie": True},
        {"prompt": "p", "chosen": "c", "rejected": "d", "tie": True},
        {"prompt": "q", "chosen": "same", "rejected": "same"},
        {"prompt": "r", "chosen": "a", "rejected": "b", "margin": "NaN"},
    ]
    path = write_jsonl(tmp_path / "ties.jsonl", rows)
    data = load_preferences(path, on_error="skip")
    report = data.files[0].to_dict()
    assert (report["usable_pairs"], report["ties"], report["identical_chosen_rejected"]) == (0, 2, 1)
    expected = (
        f"{path}: 0 usable pairs (4 records: 2 ties, 1 identical chosen and rejected, "
        "1 dropped (non-finite number))"
    )
    assert expected in summarize(data)["warnings"]
    from rewardlab.training.dataset import no_usable_pairs_message

    message = no_usable_pairs_message(data, {"tie": 2, "identical chosen and rejected": 1})
    assert message == (
        f"no usable training pairs: {path}: 0 usable pairs of 4 records (2 ties, 1 identical chosen "
        "and rejected, 1 dropped); the training split has 3 pairs and 0 ranked lists, excluded: "
        "{'tie': 2, 'identical chosen and rejected': 1}"
    )


def test_ranked_list_usable_pairs_are_counted_per_file(tmp_path):
    rows = [
        {"prompt": "p", "responses": ["a", "b", "c"], "scores": [1, 1, 2]},  # b=a tie; c over a, c over b
        {
            "prompt": "q",
            "responses": ["a", "a", "b"],
            "scores": [1, 2, 2],
        },  # same text twice; a=b tie; b over a
    ]
    report = load_preferences(write_jsonl(tmp_path / "r.jsonl", rows)).files[0]
    assert (report.usable_pairs, report.ties, report.identical) == (3, 2, 1)


def test_huge_prompt_is_summarised_without_a_list_of_its_words(tmp_path):
    import tracemalloc

    prompt = "ab " * 400_000  # 1.2 MB of short words: a list of them would take ~20x the text
    rows = [
        {"prompt": prompt, "chosen": "c", "rejected": "r"},
        {"prompt": prompt.upper(), "chosen": "c", "rejected": "d"},
    ]
    data = load_preferences(write_jsonl(tmp_path / "big.jsonl", rows))
    tracemalloc.start()
    try:
        s = summarize(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert s["prompts"]["near_duplicate_groups"] == 1  # the upper-case copy is a near-duplicate
    assert peak < 4 * len(prompt)


def test_token_cache_is_bounded_and_keeps_recent_texts(word_tokenizer):
    from rewardlab.data.tokens import TokenCounter

    counter = TokenCounter(word_tokenizer, max_cached=3)
    first = counter.prompt_ids("hello world")
    for text in ("one", "two", "three", "four"):
        counter.response_ids("hello world", text)
        counter.prompt_ids("hello world")  # recently used: kept while the others come and go
    assert len(counter._cache) == 3
    assert counter.prompt_ids("hello world") is first  # served from the cache, not tokenized again
    assert ("t", "one") not in counter._cache and ("t", "four") in counter._cache
