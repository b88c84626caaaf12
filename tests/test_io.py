"""Every supported file type, and bad input reported by file, line and field."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from rewardlab.data import DataError, load_preferences
from tests.conftest import write_jsonl

ROWS = [
    {"prompt": "p1", "chosen": "c1", "rejected": "r1"},
    {"prompt": "p2", "chosen": "c2", "rejected": "r2"},
    {"prompt": "p3", "chosen": "c3", "rejected": "r3"},
]


def triples(data):
    return [(p.prompt, p.chosen, p.rejected) for p in data.pairs]


EXPECTED = [("p1", "c1", "r1"), ("p2", "c2", "r2"), ("p3", "c3", "r3")]


def test_jsonl_and_gzip(tmp_path):
    assert triples(load_preferences(write_jsonl(tmp_path / "a.jsonl", ROWS))) == EXPECTED
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in ROWS)
    assert triples(load_preferences(gz)) == EXPECTED


def test_json_list_dict_of_columns_and_gzip(tmp_path):
    (tmp_path / "list.json").write_text(json.dumps(ROWS))
    assert triples(load_preferences(tmp_path / "list.json")) == EXPECTED
    cols = {k: [r[k] for r in ROWS] for k in ROWS[0]}
    with gzip.open(tmp_path / "cols.json.gz", "wt", encoding="utf-8") as fh:
        json.dump(cols, fh)
    data = load_preferences(tmp_path / "cols.json.gz")
    assert triples(data) == EXPECTED
    assert data.pairs[1].origin.endswith("cols.json.gz, record 2")


def test_json_dict_of_record_lists(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps({"g1": ROWS[:2], "g2": ROWS[2:]}))
    data = load_preferences(tmp_path / "g.json")
    assert triples(data) == EXPECTED and data.files[0].unused_fields == []


def test_ragged_columns_are_an_error(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"prompt": ["a", "b"], "chosen": ["x"], "rejected": ["y"]}))
    with pytest.raises(DataError, match="one length"):
        load_preferences(tmp_path / "bad.json")


def test_csv_tsv_with_multiline_cell_and_messages(tmp_path):
    path = tmp_path / "a.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["prompt", "chosen", "rejected", "margin"])
        w.writeheader()
        w.writerow({"prompt": "line one\nline two", "chosen": "c1", "rejected": "r1", "margin": "1.5"})
        w.writerow(
            {
                "prompt": json.dumps([{"role": "user", "content": "hi"}]),
                "chosen": "c2",
                "rejected": "r2",
                "margin": "",
            }
        )
        w.writerow({"prompt": "p3", "chosen": "", "rejected": "r3", "margin": "x"})
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    # the multi-line cell of record 1 spans lines 2-3, so record 3 starts on line 5
    assert "a.csv, line 5, field 'margin'" in str(exc.value)
    data = load_preferences(path, on_error="skip")
    first, second = data.pairs
    assert first.prompt == "line one\nline two" and first.margin == 1.5 and first.origin.endswith("line 2")
    assert second.prompt == [{"role": "user", "content": "hi"}] and second.margin is None
    tsv = tmp_path / "a.tsv"
    tsv.write_text("prompt\tchosen\trejected\np\tc\tr\n")
    assert triples(load_preferences(tsv)) == [("p", "c", "r")]


def test_parquet_and_save_to_disk(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.to_parquet(str(tmp_path / "a.parquet"))
    assert triples(load_preferences(tmp_path / "a.parquet")) == EXPECTED
    ds.save_to_disk(str(tmp_path / "saved"))
    assert triples(load_preferences(tmp_path / "saved")) == EXPECTED
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="--split"):
        load_preferences(tmp_path / "dd")
    assert triples(load_preferences(tmp_path / "dd", split="test")) == EXPECTED[:1]


def test_broken_line_fails_with_line_number_or_is_skipped_and_counted(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n" + json.dumps(ROWS[1]) + "\n[1, 2]\n")
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    assert "b.jsonl, line 2" in str(exc.value) and "malformed JSON" in str(exc.value)
    data = load_preferences(path, on_error="skip")
    assert triples(data) == EXPECTED[:2]
    report = data.files[0]
    assert report.records == 4 and report.drop_counts() == {"malformed JSON": 1, "not a record": 1}
    assert "line 4" in report.to_dict()["drop_examples"][1]


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"prompt": "p", "chosen": 5, "rejected": "r"}, "chosen", "not text"),
        ({"prompt": "p", "rejected": "r", "chosen": None}, "chosen", "missing field"),
        ({"prompt": "   ", "chosen": "c", "rejected": "r"}, "prompt", "empty field"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}, "margin", "not a number"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "tie": "perhaps"}, "tie", "not a boolean"),
    ],
)
def test_bad_field_is_named(tmp_path, row, field, reason):
    path = write_jsonl(tmp_path / "f.jsonl", [ROWS[0], row])
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    assert f"f.jsonl, line 2, field '{field}'" in str(exc.value)
    assert exc.value.reason == reason
    data = load_preferences(path, on_error="skip")
    assert len(data.pairs) == 1 and data.files[0].drop_counts() == {reason: 1}


def test_empty_responses_are_kept(tmp_path):
    data = load_preferences(
        write_jsonl(tmp_path / "e.jsonl", [{"prompt": "p", "chosen": "c", "rejected": ""}])
    )
    assert data.pairs[0].rejected == "" and data.pairs[0].usable


def test_missing_unsupported_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_preferences(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataError, match="unsupported file type"):
        load_preferences(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no supported data files"):
        load_preferences(tmp_path / "empty")


def test_folder_of_files_uses_file_names_as_categories(tmp_path):
    folder = tmp_path / "sets"
    folder.mkdir()
    write_jsonl(folder / "easy.jsonl", ROWS[:2])
    write_jsonl(folder / "hard.jsonl", [{**ROWS[2], "category": "own"}])
    data = load_preferences(folder)
    assert [p.category for p in data.pairs] == ["easy", "easy", "own"]
    assert [f.path.rsplit("/", 1)[1] for f in data.files] == ["easy.jsonl", "hard.jsonl"]


def test_bad_options(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", ROWS)
    with pytest.raises(DataError, match="on_error"):
        load_preferences(path, on_error="ignore")
    with pytest.raises(DataError, match="unknown format"):
        load_preferences(path, format="xml")
    with pytest.raises(DataError, match="first, second or tie"):
        load_preferences(path, labels={"1": "winner"})
