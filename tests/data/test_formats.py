"""Format recognition and conversion, on small records written here."""

from __future__ import annotations

import json
import re

import pytest

from rewardlab.data import DataError, StepwiseDataError, load_preferences
from rewardlab.data.formats import split_implicit
from tests.conftest import write_jsonl

HH_CHOSEN = (
    "\n\nHuman: Hi, can you help me plan a trip?"
    "\n\nAssistant: Sure, where would you like to go?"
    "\n\nHuman: Somewhere warm in winter."
    "\n\nAssistant: I think the Canary Islands are a good choice in January."
)
HH_REJECTED = (
    "\n\nHuman: Hi, can you help me plan a trip?"
    "\n\nAssistant: Sure, where would you like to go?"
    "\n\nHuman: Somewhere warm in winter."
    "\n\nAssistant: I don't know."
)


def load_rows(tmp_path, rows, **kw):
    return load_preferences(write_jsonl(tmp_path / "d.jsonl", rows), **kw)


def test_explicit_strings_with_margin_category_tie(tmp_path):
    data = load_rows(
        tmp_path,
        [
            {"prompt": "p1", "chosen": "good", "rejected": "bad", "margin": 2, "category": "chat"},
            {"prompt": "p2", "chosen": "x", "rejected": "y", "tie": True, "subset": "math"},
        ],
    )
    a, b = data.pairs
    assert (a.prompt, a.chosen, a.rejected, a.margin, a.category, a.tie) == (
        "p1",
        "good",
        "bad",
        2.0,
        "chat",
        False,
    )
    assert b.tie and b.category == "math" and not b.usable
    assert data.files[0].format == "explicit"
    assert a.origin.endswith("d.jsonl, line 1")
    assert [p.chosen for p in data.training_pairs()] == ["good"]


def test_explicit_messages(tmp_path):
    row = {
        "prompt": [{"role": "user", "content": "What is 2+2?"}],
        "chosen": [{"role": "assistant", "content": "4"}],
        "rejected": [{"role": "assistant", "content": "5"}],
    }
    (pair,) = load_rows(tmp_path, [row]).pairs
    assert pair.prompt == row["prompt"] and pair.chosen == row["chosen"] and pair.rejected == row["rejected"]


def test_implicit_hh_splits_at_last_turn_boundary_not_mid_turn(tmp_path):
    data = load_rows(tmp_path, [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}])
    (pair,) = data.pairs
    assert data.files[0].format == "implicit"
    assert pair.prompt.endswith("\n\nHuman: Somewhere warm in winter.\n\nAssistant:")
    # Both answers start with "I": a raw common-prefix split would have cut the shared " I".
    assert pair.chosen == " I think the Canary Islands are a good choice in January."
    assert pair.rejected == " I don't know."
    assert pair.prompt + pair.chosen == HH_CHOSEN and pair.prompt + pair.rejected == HH_REJECTED
    assert pair.prompt.count("\n\nHuman:") == 2


def test_implicit_transcripts_differing_early_keep_several_turns(tmp_path):
    rejected = HH_CHOSEN.replace("Sure, where would you like to go?", "No.")
    data = load_rows(tmp_path, [{"chosen": HH_CHOSEN, "rejected": rejected}])
    (pair,) = data.pairs
    assert pair.prompt == "\n\nHuman: Hi, can you help me plan a trip?\n\nAssistant:"
    assert pair.rejected.startswith(" No.\n\nHuman: Somewhere warm")
    assert any("span several turns" in n for n in data.files[0].notes)


def test_implicit_without_turn_boundary_names_line_and_field(tmp_path):
    rows = [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, {"chosen": "abc", "rejected": "abd"}]
    with pytest.raises(DataError) as exc:
        load_rows(tmp_path, rows)
    assert "line 2" in str(exc.value) and "'chosen'" in str(exc.value)
    assert "turn boundary" in str(exc.value)


def test_implicit_chat_template_text_and_messages():
    p, c, r = split_implicit(
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello there<|im_end|>",
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhey<|im_end|>",
        "x",
    )
    assert p.endswith("<|im_start|>assistant\n") and c == "hello there<|im_end|>" and r == "hey<|im_end|>"
    user = {"role": "user", "content": "hi"}
    p, c, r = split_implicit(
        [user, {"role": "assistant", "content": "hello"}],
        [user, {"role": "assistant", "content": "go away"}],
        "x",
    )
    assert p == [user] and c == [{"role": "assistant", "content": "hello"}]
    assert r == [{"role": "assistant", "content": "go away"}]


def test_labelled_three_annotators_majority_ties_and_votes(tmp_path):
    base = {"instruction": "Say hi", "input": "", "response1": "hi", "response2": "yo"}
    rows = [
        {**base, "annotator1": 2, "annotator2": 2, "annotator3": 1},  # second wins 2:1
        {**base, "annotator1": 0, "annotator2": 0, "annotator3": 0},  # tie
        {**base, "annotator1": 1, "annotator2": 2, "annotator3": 0},  # no strict majority: tie
        {**base, "annotator1": 1, "annotator2": 1, "annotator3": 1},
    ]
    data = load_rows(tmp_path, rows)
    won2, tie, split, won1 = data.pairs
    assert (won2.chosen, won2.rejected, won2.swapped, won2.tie) == ("yo", "hi", True, False)
    assert won2.votes == (1, 1, -1) and won2.agreement == pytest.approx(2 / 3)
    assert won2.source_votes() == (2, 2, 1)
    assert tie.tie and tie.votes == (0, 0, 0) and tie.agreement == 1.0
    assert split.tie and split.source_votes() == (1, 2, 0) and split.agreement == pytest.approx(1 / 3)
    assert (won1.chosen, won1.swapped, won1.votes) == ("hi", False, (1, 1, 1))
    assert any("no strict majority" in n for n in data.files[0].notes)
    assert any("1→first" in n and "2→second" in n for n in data.files[0].notes)


def test_labelled_llmbar_label_2_means_output_2_is_better(tmp_path):
    rows = [{"input": "Q", "output_1": "wrong", "output_2": "right", "label": 2}]
    (pair,) = load_rows(tmp_path, rows).pairs
    assert pair.chosen == "right" and pair.rejected == "wrong" and pair.votes is None
    assert pair.prompt == "Q"


def test_labelled_winner_strings(tmp_path):
    rows = [
        {"prompt": "q", "response_a": "A", "response_b": "B", "winner": "model_b"},
        {"prompt": "q", "response_a": "A", "response_b": "B", "winner": "tie (bothbad)"},
    ]
    b, t = load_rows(tmp_path, rows).pairs
    assert b.chosen == "B" and t.tie


def test_labelled_unknown_label_value_names_field(tmp_path):
    rows = [
        {"input": "Q", "output_1": "a", "output_2": "b", "label": 2},
        {"input": "Q", "output_1": "a", "output_2": "b", "label": "maybe"},
    ]
    with pytest.raises(DataError) as exc:
        load_rows(tmp_path, rows)
    assert "line 2" in str(exc.value) and "field 'label'" in str(exc.value) and "'maybe'" in str(exc.value)


def test_labelled_zero_one_labels_are_ambiguous_until_mapped(tmp_path):
    rows = [
        {"input": "Q", "output_1": "a", "output_2": "b", "label": 0},
        {"input": "Q", "output_1": "c", "output_2": "d", "label": 1},
    ]
    with pytest.raises(DataError, match="ambiguous|only the values 0 and 1"):
        load_rows(tmp_path, rows)
    data = load_rows(tmp_path, rows, labels={"0": "first", "1": "second"})
    assert [p.chosen for p in data.pairs] == ["a", "d"]


def test_ranked_wide_scores_and_ranks(tmp_path):
    rows = [
        {"prompt": "q", "responses": ["r1", "r2", "r3"], "scores": [0.1, 0.9, 0.1]},
        {"prompt": "q2", "responses": ["a", "b"], "ranks": [2, 1]},
    ]
    data = load_rows(tmp_path, rows)
    first, second = data.lists
    pairs = first.pairs()
    assert {(p.chosen, p.rejected) for p in pairs} == {("r2", "r1"), ("r2", "r3")}
    assert first.tied_pairs() == 1
    assert len(first.pairs(include_ties=True)) == 3
    assert [(p.chosen, p.rejected) for p in second.pairs()] == [("b", "a")]
    assert len(data.all_pairs(include_ties=False)) == 3


def test_ranked_long_rows_grouped_with_score_object(tmp_path):
    rows = [
        {
            "source": "ctx A",
            "system_output": "x",
            "system_id": "s1",
            "scores": {"overall": 1.0, "fluency": 3},
        },
        {
            "source": "ctx A",
            "system_output": "y",
            "system_id": "s2",
            "scores": {"overall": 3.0, "fluency": 1},
        },
        {
            "source": "ctx B",
            "system_output": "z",
            "system_id": "s1",
            "scores": {"overall": 2.0, "fluency": 2},
        },
    ]
    data = load_rows(tmp_path, rows)
    (lst,) = data.lists
    assert lst.responses == ["x", "y"] and lst.scores == [1.0, 3.0] and lst.systems == ["s1", "s2"]
    assert [d.reason for d in data.drops] == ["fewer than 2 responses"]
    data = load_rows(tmp_path, rows, score_key="fluency")
    assert [(p.chosen, p.rejected) for p in data.lists[0].pairs()] == [("x", "y")]


def test_ranked_candidate_objects_gsm8k_style(tmp_path):
    rows = [
        {
            "question": "1+1?",
            "ground_truth": "2",
            "m1": {"solution": "2", "is_correct": True},
            "m2": {"solution": "3", "is_correct": False},
        }
    ]
    data = load_rows(tmp_path, rows)
    (lst,) = data.lists
    assert lst.scores == [1.0, 0.0] and lst.systems == ["m1", "m2"]
    assert data.files[0].unused_fields == ["ground_truth"]


@pytest.mark.parametrize(
    "row",
    [
        {"input": "q", "steps": ["a", "b"], "target": "x", "answer": "x", "mistake_index": 1},
        {"Question": "q", "Model_Solution_Steps": ["a"], "Model_Solution_First_Error_Step": "1"},
        {"question": {"problem": "q"}, "label": {"steps": []}},
        {"input": "q Step 1: a ки\nStep 2: b ки", "label": "q Step 1: a +\nStep 2: b -"},
        {"prompt": "q", "completions": ["a", "b"], "labels": [True, False]},
    ],
)
def test_stepwise_data_gets_a_clear_message(tmp_path, row):
    with pytest.raises(StepwiseDataError, match="rewardlab train --kind prm"):
        load_rows(tmp_path, [row])


def test_field_mapping_and_missing_mapped_field(tmp_path):
    rows = [{"question": "q", "good": "g", "bad": "b"}]
    (pair,) = load_rows(
        tmp_path, rows, mapping={"prompt": "question", "chosen": "good", "rejected": "bad"}
    ).pairs
    assert (pair.prompt, pair.chosen, pair.rejected) == ("q", "g", "b")
    with pytest.raises(DataError, match="field 'nope'"):
        load_rows(tmp_path, rows, mapping={"prompt": "nope"})


def test_forced_format_that_does_not_fit(tmp_path):
    with pytest.raises(DataError, match="format labelled needs"):
        load_rows(tmp_path, [{"prompt": "q", "chosen": "a", "rejected": "b"}], format="labelled")
    # implicit forced on explicit-looking data is allowed when the fields are there
    data = load_rows(tmp_path, [{"prompt": "q", "chosen": HH_CHOSEN, "rejected": HH_REJECTED}], format="hh")
    assert data.files[0].format == "implicit"


def test_unknown_format_lists_the_fields(tmp_path):
    with pytest.raises(DataError) as exc:
        load_rows(tmp_path, [{"foo": 1, "bar": 2}])
    assert "['bar', 'foo']" in str(exc.value) and "--map" in str(exc.value)


def test_flipped_pair_negates_votes_and_keeps_agreement(tmp_path):
    rows = [
        {
            "instruction": "i",
            "input": "in",
            "response1": "a",
            "response2": "b",
            "annotator1": 1,
            "annotator2": 1,
            "annotator3": 2,
        }
    ]
    (pair,) = load_rows(tmp_path, rows).pairs
    assert pair.prompt == "i\n\nin"
    flipped = pair.flipped()
    assert (flipped.chosen, flipped.rejected) == ("b", "a")
    assert flipped.votes == (-1, -1, 1)
    assert flipped.source_votes() == pair.source_votes() == (1, 1, 2)
    assert flipped.flipped() == pair


def test_blank_instruction_uses_input_alone(tmp_path):
    rows = [
        {"instruction": " ", "input": "Truthfulness", "response1": "a", "response2": "b", "annotator1": 1},
        {"instruction": "Say", "input": "", "response1": "a", "response2": "b", "annotator1": 2},
    ]
    assert [p.prompt for p in load_rows(tmp_path, rows).pairs] == ["Truthfulness", "Say"]


def test_messages_with_bad_shape_are_rejected(tmp_path):
    rows = [{"prompt": [{"role": "user"}], "chosen": "a", "rejected": "b"}]
    with pytest.raises(DataError, match="field 'prompt'.*content"):
        load_rows(tmp_path, rows)
    rows = [{"prompt": "q", "chosen": json.loads('[{"content": "x"}]'), "rejected": "b"}]
    with pytest.raises(DataError, match="field 'chosen'"):
        load_rows(tmp_path, rows)


# --------------------------------------------------------------------------- non-finite numbers

NON_FINITE_CASES = [  # (a good record, the same record with {x} where a number goes, the field named)
    ('{"prompt": "p", "chosen": "c", "rejected": "r", "margin": 1}', "margin", "margin"),
    ('{"prompt": "p", "responses": ["a", "b"], "scores": [1, 2]}', "scores", "scores[1]"),
    ('{"prompt": "p", "responses": ["a", "b"], "ranks": [1, 2]}', "ranks", "ranks[1]"),
    ('{"prompt": "p", "response": "a", "score": 1}', "score", "score"),
    ('{"prompt": "p", "response": "a", "rank": 1}', "rank", "rank"),
    ('{"prompt": "p", "response_a": "a", "response_b": "b", "winner": 1}', "winner", "winner"),
    ('{"prompt": "p", "response1": "a", "response2": "b", "votes": [1, 2]}', "votes", "votes"),
    (
        '{"question": "q", "s1": {"solution": "a", "is_correct": 1}, '
        '"s2": {"solution": "b", "is_correct": 0}}',
        "is_correct",
        "s2.is_correct",
    ),
]


def _with_bad_number(good: str, field: str, bad: str) -> str:
    """``good`` with the last number of ``field`` (a number or a list of numbers) replaced by ``bad``."""
    head, tail = good.rsplit(f'"{field}": ', 1)
    if tail.startswith("["):
        return head + f'"{field}": ' + tail[: tail.rindex(",") + 2] + bad + tail[tail.index("]") :]
    rest = tail[len(tail.split(",")[0].split("}")[0]) :]
    return head + f'"{field}": ' + bad + rest


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400"])
@pytest.mark.parametrize(("good", "field", "shown"), NON_FINITE_CASES)
def test_non_finite_numbers_are_refused_in_every_format(tmp_path, good, field, shown, bad):
    path = tmp_path / "n.jsonl"
    other = good.replace('"a"', '"a2"')  # long rows: a second response to the prompt
    path.write_text("\n".join([good, other, _with_bad_number(good, field, bad), ""]))
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    assert exc.value.reason == "non-finite number", str(exc.value)
    assert str(exc.value).startswith(f"{path}, line 3, field '{shown}': non-finite number")
    report = load_preferences(path, on_error="skip").files[0]
    assert report.drop_counts() == {"non-finite number": 1} and report.records == 3


@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity", "1e400", " NaN "])
def test_non_finite_numbers_as_csv_strings_are_refused(tmp_path, cell):
    path = tmp_path / "n.csv"
    path.write_text(f"prompt,chosen,rejected,margin\np,c,r,1.5\np,c,r,{cell}\n")
    with pytest.raises(DataError, match=r"n\.csv, line 3, field 'margin': non-finite number"):
        load_preferences(path)
    data = load_preferences(path, on_error="skip")
    assert [p.margin for p in data.pairs] == [1.5] and data.files[0].drop_counts() == {"non-finite number": 1}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ('{"prompt": "q", "completions": ["a", "b"], "labels": [true, NaN]}', "labels[1]"),
        (
            '{"question": {"problem": "q"}, "label": {"steps": [{"completions": '
            '[{"text": "a", "rating": Infinity}], "chosen_completion": 0}]}}',
            "label.steps[0].completions[0].rating",
        ),
    ],
)
def test_non_finite_step_labels_are_refused(tmp_path, record, field):
    from rewardlab.data.stepwise import load_stepwise

    path = tmp_path / "s.jsonl"
    path.write_text(record + "\n")
    with pytest.raises(DataError) as exc:
        load_stepwise(path)
    assert exc.value.reason == "non-finite number" and f"line 1, field '{field}'" in str(exc.value)
    assert load_stepwise(path, on_error="skip").drops[0].reason == "non-finite number"


def test_a_huge_bad_value_is_shown_short_in_the_error(tmp_path):
    path = write_jsonl(
        tmp_path / "h.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r", "margin": "x" * 10**6}]
    )
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    assert exc.value.reason == "not a number" and len(str(exc.value)) < 300


@pytest.mark.parametrize(
    ("label", "field"),
    [("null", "label"), ('{"steps": 5}', "label.steps"), ('{"steps": [7]}', "label.steps[0]")],
)
def test_prm800k_record_with_a_broken_label_is_a_data_error(tmp_path, label, field):
    from rewardlab.data.stepwise import load_stepwise

    step = '{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0}'
    good = f'{{"question": {{"problem": "q"}}, "label": {{"steps": [{step}]}}}}'
    path = tmp_path / "prm.jsonl"
    path.write_text(f'{good}\n{{"question": {{"problem": "q"}}, "label": {label}}}\n')
    with pytest.raises(DataError, match=rf"line 2, field '{re.escape(field)}'"):
        load_stepwise(path)
    assert len(load_stepwise(path, on_error="skip").examples) == 1
