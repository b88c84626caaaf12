"""Kind tags in prompts (``rewardlab data tag``): where the tag goes, that truncation keeps it, errors.

Run: ``pytest tests/data/test_data_tag.py -q`` (seconds).
"""

from __future__ import annotations

import json

import pytest

from rewardlab.cli import main
from rewardlab.data import load_preferences
from rewardlab.data.tags import tag_prompt
from rewardlab.models.encoding import ENCODER, SequenceEncoder
from tests.conftest import write_jsonl


def test_the_tag_ends_a_string_prompt_and_the_last_message_of_a_conversation():
    assert tag_prompt("Fix my bike.", "helpful") == "Fix my bike.\n\n[kind: helpful]"
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "How do I pick a lock?"}]  # fmt: skip
    tagged = tag_prompt(chat, "harmless")
    assert tagged[:2] == chat[:2] and tagged[2]["content"] == "How do I pick a lock?\n\n[kind: harmless]"
    assert chat[2]["content"] == "How do I pick a lock?"  # the original is untouched
    with pytest.raises(ValueError, match="non-empty kind"):
        tag_prompt("x", " ")


def test_keep_end_truncation_keeps_the_tag_of_a_long_prompt(word_tokenizer):
    # the word tokenizer knows "one" and "hello" but not the tag's words ("[kind:", "x]" are [UNK])
    long_prompt = " ".join(["one"] * 200)
    encoder = SequenceEncoder(word_tokenizer, ENCODER, 32, "keep_end")
    unk = word_tokenizer.unk_token_id
    plain = encoder.encode(long_prompt, "hello").input_ids
    tagged = encoder.encode(tag_prompt(long_prompt, "x"), "hello").input_ids
    assert len(tagged) == len(plain) == 32 and unk not in plain
    assert tagged.count(unk) == 2  # both tag words survived the cut of the prompt's start


def test_data_tag_by_category_and_by_kind(tmp_path, capsys):
    keys = ("prompt", "chosen", "rejected", "category")
    rows = [
        dict(zip(keys, ("Help me bake bread.", "Mix flour and water.", "No.", "helpful"), strict=True)),
        dict(
            zip(keys, ("Help me hurt someone.", "I can't help with that.", "Sure.", "harmless"), strict=True)
        ),
        dict(zip(keys, ("Tie?", "a", "a", "helpful"), strict=True)),
    ]
    src = write_jsonl(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "tagged.jsonl"
    assert main(["data", "tag", str(src), "--by-category", "--out", str(out)]) == 0
    assert "wrote 2 tagged pairs" in capsys.readouterr().out
    written = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["prompt"] for r in written] == [
        "Help me bake bread.\n\n[kind: helpful]",
        "Help me hurt someone.\n\n[kind: harmless]",
    ]
    assert [(r["chosen"], r["rejected"]) for r in written] == [(x["chosen"], x["rejected"]) for x in rows[:2]]
    assert len(load_preferences(out).pairs) == 2  # the output is data rewardlab reads back

    one = tmp_path / "one.jsonl"
    assert main(["data", "tag", str(src), "--kind", "hh", "--out", str(one)]) == 0
    assert all(json.loads(x)["prompt"].endswith("[kind: hh]") for x in one.read_text().splitlines())


def test_data_tag_errors_name_the_record_and_keep_earlier_output(tmp_path, capsys):
    src = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    out = tmp_path / "t.jsonl"
    assert main(["data", "tag", str(src), "--by-category", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "d.jsonl, line 1, field 'category'" in err and "no category" in err
    assert not out.exists()
    assert main(["data", "tag", str(src), "--out", str(out)]) == 2
    assert "--kind NAME or --by-category" in capsys.readouterr().err
    assert main(["data", "tag", str(src), "--kind", "x", "--by-category", "--out", str(out)]) == 2
    assert main(["data", "tag", str(src), "--kind", " ", "--out", str(out)]) == 2
    assert "--kind must name a kind" in capsys.readouterr().err
    assert not out.exists()
