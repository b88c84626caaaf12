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


# --------------------------------------------------------------------------- damaged and unusual files

GOOD_LINE = json.dumps(ROWS[0]) + "\n"
BOM = b"\xef\xbb\xbf"


def _corrupt_gzip(data: bytes) -> bytes:
    """Gzip ``data`` and spoil the first deflate byte: reading raises ``zlib.error``."""
    raw = bytearray(gzip.compress(data))
    raw[10] = 0xFF  # after the 10-byte header: an invalid deflate block type
    return bytes(raw)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("a.jsonl.gz", _corrupt_gzip),
        ("a.json.gz", _corrupt_gzip),
        ("b.jsonl.gz", lambda data: gzip.compress(data)[:-12]),  # cut short: EOFError
        ("c.json.gz", lambda data: b"not gzip at all"),  # BadGzipFile
    ],
)
def test_damaged_gzip_is_one_data_error(tmp_path, name, damage):
    path = tmp_path / name
    content = (json.dumps(ROWS) if name.endswith(".json.gz") else GOOD_LINE * 40).encode()
    path.write_bytes(damage(content))
    with pytest.raises(DataError) as exc:
        load_preferences(path, on_error="skip")
    assert str(exc.value).startswith(f"{path}: ") and "gzip" in str(exc.value)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_non_utf8_file_names_the_line(tmp_path, suffix):
    path = tmp_path / f"latin{suffix}"
    lines = [GOOD_LINE, GOOD_LINE] if suffix == ".jsonl" else ["prompt,chosen,rejected\n", "p,c,r\n"]
    bad = '{"prompt": "p", "chosen": "café", "rejected": "r"}\n' if suffix == ".jsonl" else "p,café,r\n"
    path.write_bytes("".join(lines).encode() + bad.encode("latin-1"))
    with pytest.raises(DataError) as exc:
        load_preferences(path)
    assert str(exc.value) == f"{path}, line 3: not valid UTF-8 (byte 0xe9); save the file as UTF-8"


def test_non_utf8_jsonl_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(GOOD_LINE.encode() + b'{"prompt": "\xe9"}\n' + GOOD_LINE.encode())
    data = load_preferences(path, on_error="skip")
    assert len(data.pairs) == 2 and data.files[0].drop_counts() == {"not UTF-8": 1}


@pytest.mark.parametrize("name", ["a.csv", "a.tsv", "a.jsonl", "a.json", "a.jsonl.gz", "a.json.gz"])
def test_utf8_bom_is_accepted(tmp_path, name):
    sep = "\t" if name.endswith(".tsv") else ","
    text = {
        ".csv": f"prompt{sep}chosen{sep}rejected\np1{sep}c1{sep}r1\n",
        ".json": json.dumps(ROWS[:1]),
        ".jsonl": GOOD_LINE,
    }[".csv" if name.endswith((".csv", ".tsv")) else ".json" if ".json." in name + "." else ".jsonl"]
    raw = BOM + text.encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    data = load_preferences(path)
    assert triples(data) == EXPECTED[:1] and data.files[0].unused_fields == []


def test_long_csv_cell_loads_and_other_csv_errors_are_data_errors(tmp_path, monkeypatch):
    path = tmp_path / "long.csv"
    long = "x" * 200_000  # over Python's default cell limit of 131,072 characters
    path.write_text(f"prompt,chosen,rejected\np,{long},r\n")
    assert load_preferences(path).pairs[0].chosen == long
    limit = csv.field_size_limit()
    try:  # a CSV error that remains (here: a cell over a lowered limit) names the file and line
        monkeypatch.setattr("rewardlab.data.io.CSV_FIELD_LIMIT", 1000)
        csv.field_size_limit(1000)
        with pytest.raises(DataError, match=r"long\.csv, line 2: malformed CSV: field larger"):
            load_preferences(path)
    finally:
        csv.field_size_limit(limit)


def test_deeply_nested_json_is_a_data_error(tmp_path):
    deep = "[" * 100_000
    path = tmp_path / "deep.jsonl"
    path.write_text(GOOD_LINE + deep + "\n" + GOOD_LINE)
    with pytest.raises(DataError, match=r"deep\.jsonl, line 2: JSON nested too deeply"):
        load_preferences(path)
    assert load_preferences(path, on_error="skip").files[0].drop_counts() == {"nested too deeply": 1}
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(DataError, match="nested too deeply"):
        load_preferences(tmp_path / "deep.json")


def test_lone_surrogate_is_refused_and_a_pair_is_kept(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(
        GOOD_LINE
        + '{"prompt": "p", "chosen": "\\ud800 broken", "rejected": "r"}\n'
        + '{"prompt": "p", "chosen": "smile \\ud83d\\ude00", "rejected": "r"}\n'
    )
    with pytest.raises(DataError, match=r"s\.jsonl, line 2, field 'chosen': .*lone surrogate"):
        load_preferences(path)
    data = load_preferences(path, on_error="skip")
    assert data.pairs[1].chosen == "smile \U0001f600" and data.files[0].drop_counts() == {
        "not valid Unicode": 1
    }


@pytest.mark.parametrize(
    "error", [PermissionError(13, "Permission denied"), IsADirectoryError(21, "Is a directory")]
)
def test_unreadable_file_names_the_file_and_the_reason(tmp_path, monkeypatch, error):
    paths = [write_jsonl(tmp_path / "a.jsonl", ROWS), tmp_path / "a.csv", tmp_path / "a.json"]
    paths[1].write_text("prompt,chosen,rejected\np,c,r\n")
    paths[2].write_text(json.dumps(ROWS))

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr("rewardlab.data.io.open", refuse, raising=False)
    for path in paths:
        with pytest.raises(DataError) as exc:
            load_preferences(path)
        assert str(exc.value) == f"{path}: cannot read the file: {error.strerror}"


def test_chmod_000_file_is_a_data_error(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode (the monkeypatched test above covers this)")
    path = write_jsonl(tmp_path / "locked.jsonl", ROWS)
    path.chmod(0)
    try:
        with pytest.raises(DataError, match="locked.jsonl: cannot read the file: Permission denied"):
            load_preferences(path)
    finally:
        path.chmod(0o644)


def test_malformed_json_file_names_its_line_whatever_the_folder_is_called(tmp_path):
    folder = tmp_path / "pipeline"  # a path holding the word "line"
    folder.mkdir()
    (folder / "bad.json").write_text('[\n{"prompt": "p",\n oops}\n]')
    with pytest.raises(DataError, match=r"bad\.json, line 3: malformed JSON"):
        load_preferences(folder / "bad.json")


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_jsonl_line_endings_keep_line_numbers(tmp_path, newline):
    path = tmp_path / "n.jsonl"
    path.write_bytes(newline.join([json.dumps(ROWS[0]), json.dumps(ROWS[1]), "{bad", ""]).encode())
    with pytest.raises(DataError, match=r"n\.jsonl, line 3: malformed JSON"):
        load_preferences(path)
    assert triples(load_preferences(path, on_error="skip")) == EXPECTED[:2]


def test_a_full_disk_while_saving_weights_is_not_called_damaged_weights():
    from rewardlab.io_utils import weights_error_message

    full = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left" })'
    assert weights_error_message(full).startswith("cannot read or write .safetensors weights: no space left")
    denied = 'Error while serializing: IoError(Os { code: 13, kind: PermissionDenied, message: "x" })'
    assert "permission denied" in weights_error_message(denied)
    assert weights_error_message("Error while deserializing header: HeaderTooLarge").startswith("damaged")
