"""The command line as a user runs it, through the importable ``main(argv)``."""

from __future__ import annotations

import json

from rewardlab.cli import main
from tests.conftest import write_jsonl


def test_demo_then_summarize(tmp_path, word_tokenizer, capsys):
    demo = tmp_path / "demo.jsonl"
    assert main(["data", "demo", "--n", "100", "--seed", "0", "--out", str(demo)]) == 0
    out = tmp_path / "summary"
    args = [
        "data",
        "summarize",
        str(demo),
        "--out",
        str(out),
        "--tokenizer",
        str(word_tokenizer.saved_folder),
        "--max-length",
        "8",
    ]
    assert main(args) == 0
    s = json.loads((out / "data_summary.json").read_text())
    assert s["counts"]["pairs"] == 100 and s["counts"]["usable_pairs"] == 100
    assert s["length_bias_chars"]["chosen_longer_share"] == 0.7
    assert s["truncation"]["max_length"] == 8 and s["lengths_tokens"] is not None
    assert set(s["categories"]) == {"arithmetic", "word_limit", "keyword", "politeness", "safety"}
    assert (out / "data_summary.md").read_text().startswith("# Data summary")
    printed = capsys.readouterr().out
    assert "usable pairs" in printed and "data_summary.json" in printed


def test_options_reach_the_loader(tmp_path):
    rows = [
        {"question": "q", "a": "x", "b": "y", "verdict": 0},
        {"question": "q", "a": "z", "b": "w", "verdict": 1},
    ]
    path = write_jsonl(tmp_path / "custom.jsonl", rows)
    out = tmp_path / "o"
    code = main(
        [
            "data",
            "summarize",
            str(path),
            "--out",
            str(out),
            "--format",
            "labelled",
            "--map",
            "prompt=question",
            "--map",
            "response1=a",
            "--map",
            "response2=b",
            "--map",
            "label=verdict",
            "--label",
            "0=first",
            "--label",
            "1=second",
        ]
    )
    assert code == 0
    s = json.loads((out / "data_summary.json").read_text())
    assert s["counts"]["usable_pairs"] == 2 and s["files"][0]["format"] == "labelled"


def test_bad_data_gives_located_error_and_keeps_earlier_output(tmp_path, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])
    out = tmp_path / "out"
    assert main(["data", "summarize", str(good), "--out", str(out)]) == 0
    before = (out / "data_summary.json").read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "p", "chosen": "c", "rejected": "r"}\n{"prompt": "p", "chosen": 3, "rejected": "r"}\n'
    )
    capsys.readouterr()
    assert main(["data", "summarize", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl, line 2, field 'chosen'" in err and "Traceback" not in err
    assert (out / "data_summary.json").read_text() == before
    assert main(["data", "summarize", str(bad), "--out", str(out), "--on-error", "skip"]) == 0
    s = json.loads((out / "data_summary.json").read_text())
    assert s["counts"]["dropped"] == 1 and s["counts"]["drop_reasons"] == {"not text": 1}


def test_stepwise_file_message(tmp_path, capsys):
    path = write_jsonl(tmp_path / "s.jsonl", [{"input": "q", "steps": ["a"], "mistake_index": None}])
    assert main(["data", "summarize", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "stepwise data" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    path = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])
    assert main(["data", "summarize", str(path), "--out", str(tmp_path), "--max-length", "10"]) == 2
    assert "--max-length needs --tokenizer" in capsys.readouterr().err
    assert main(["data", "summarize", str(path), "--out", str(tmp_path), "--map", "oops"]) == 2
    assert main(["data", "summarize", str(path), "--out", str(tmp_path), "--tokenizer", "/no/such"]) == 2
    assert "no such local model folder" in capsys.readouterr().err
    assert main(["data", "summarize", "--out", str(tmp_path)]) == 2  # missing PATH
    capsys.readouterr()
    assert main(["data", "summarize", "--help"]) == 0
    assert "--max-length" in capsys.readouterr().out
