"""The command line as a user runs it, through the importable ``main(argv)``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    # summarize reads step-labelled data with the stepwise reader ...
    assert main(["data", "summarize", str(path), "--out", str(tmp_path / "o")]) == 0
    assert '"kind": "stepwise"' in (tmp_path / "o" / "data_summary.json").read_text()
    capsys.readouterr()
    # ... and outcome-model training refuses it, pointing to --kind prm
    assert main(["train", "--model", str(tmp_path), "--data", str(path), "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "stepwise data" in err and "--kind prm" in err


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


def test_data_split_writes_disjoint_folds_by_prompt(tmp_path, capsys):
    import json

    from rewardlab.data import load_preferences

    rows = [
        {"prompt": f"q{i % 40}", "chosen": f"good {i}", "rejected": f"bad {i}", "category": "c"}
        for i in range(100)
    ]
    rows.append({"prompt": "q0", "chosen": "same", "rejected": "same"})  # identical: not written, counted
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["data", "split", str(src), "--out", str(tmp_path / "cv"), "--folds", "4"]) == 0
    assert "not written: 1 ties or identical pairs" in capsys.readouterr().out
    seen = []
    for f in range(4):
        train = load_preferences(tmp_path / "cv" / f"fold{f}" / "train.jsonl").pairs
        test = load_preferences(tmp_path / "cv" / f"fold{f}" / "test.jsonl").pairs
        assert len(train) + len(test) == 100 and test[0].category == "c"
        assert not {p.prompt for p in train} & {p.prompt for p in test}  # no prompt on both sides
        seen += [p.chosen for p in test]
    assert sorted(seen) == sorted(r["chosen"] for r in rows[:100])  # every pair tested exactly once
    record = json.loads((tmp_path / "cv" / "split.json").read_text())
    assert record["pairs"] == 100 and sum(record["test_pairs"]) == 100


def _one_error_line(err: str) -> str:
    """The single ``error:`` line of stderr (progress bars aside); no traceback."""
    errors = [line.split("\r")[-1] for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in err, err
    return errors[0]


def test_out_collisions_are_one_line_errors_before_any_work(tmp_path, capsys):
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])
    a_file, a_folder = tmp_path / "taken.txt", tmp_path / "folder"
    a_file.write_text("keep")
    a_folder.mkdir()
    cases = [
        (["data", "summarize", str(data), "--out", str(a_file)], "is a file: give a folder"),
        (["data", "summarize", str(data), "--out", str(a_file / "sub")], "taken.txt is a file, not a folder"),
        (["data", "split", str(data), "--out", str(a_file)], "is a file: give a folder"),
        (["data", "demo", "--n", "4", "--out", str(a_folder)], "is a folder: give a file path"),
        (["data", "outcome-pairs", str(data), "--out", str(a_folder)], "is a folder: give a file path"),
        (["score", "--model", "m", "--data", str(data), "--out", str(a_folder)], "is a folder"),
        (["bon", "--model", "m", "--candidates", str(data), "--out", str(a_folder)], "is a folder"),
        (["eval", "--model", "m", "--data", str(data), "--out", str(a_file)], "is a file: give a folder"),
        (["diagnose", "--model", "m", "--data", str(data), "--out", str(a_file)], "is a file: give a folder"),
        (["train", "--model", "m", "--data", str(data), "--out", str(a_file)], "is a file: give a folder"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        assert message in _one_error_line(capsys.readouterr().err), args
    assert a_file.read_text() == "keep" and not list(a_folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "folder", "taken.txt"]


def test_write_text_removes_its_temporary_file_on_any_failure(tmp_path, monkeypatch):
    from rewardlab.errors import RewardlabError
    from rewardlab.io_utils import write_json, write_text

    target = tmp_path / "out.json"
    write_text(target, "old")

    def fail(self, other):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", fail)
    with pytest.raises(RewardlabError, match="cannot write .*out.json: No space left on device"):
        write_text(target, "new")
    monkeypatch.undo()
    for interrupt in (KeyboardInterrupt, MemoryError):

        def stop(self, text, encoding=None, interrupt=interrupt):
            raise interrupt

        monkeypatch.setattr(Path, "write_text", stop)
        with pytest.raises(interrupt):
            write_text(target, "new")
        monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    # NaN is refused before anything is written, naming the file and the field
    with pytest.raises(RewardlabError, match=r"out.json: field results\.a\[1\] is nan"):
        write_json(target, {"results": {"a": [1.0, float("nan")]}})
    assert target.read_text() == "old"


def test_os_errors_on_user_paths_are_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from rewardlab.training import run

    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}])

    def unreadable(cfg):
        raise PermissionError(errno.EACCES, "Permission denied", cfg.data)

    monkeypatch.setattr(run, "train", unreadable)
    args = ["train", "--model", "m", "--data", str(data), "--out", str(tmp_path / "o")]
    data.chmod(0o000)
    try:
        assert main(args) == 2
    finally:
        data.chmod(0o644)
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot read {data}: Permission denied"

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "o" / "model.safetensors"))

    monkeypatch.setattr(run, "train", full)
    assert main(args) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write {tmp_path / 'o' / 'model.safetensors'}: No space left on device"

    def bug(cfg):
        raise ZeroDivisionError("a bug is not a user error")

    monkeypatch.setattr(run, "train", bug)
    with pytest.raises(ZeroDivisionError):  # bugs are not hidden behind a one-line message
        main(args)


def test_atomic_dir_swaps_whole_and_keeps_a_link_a_link(tmp_path):
    import os

    from rewardlab.io_utils import atomic_dir

    real = tmp_path / "real"
    real.mkdir()
    (real / "a.txt").write_text("old")
    (real / "stale.txt").write_text("from the earlier run")
    os.symlink(real, tmp_path / "link")
    with atomic_dir(tmp_path / "link", ["a.txt", "stale.txt"]) as tmp:
        (tmp / "a.txt").write_text("new")
    assert (tmp_path / "link").is_symlink() and sorted(os.listdir(tmp_path / "link")) == ["a.txt"]
    assert (real / "a.txt").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["link", "real"]


def test_summary_of_a_path_with_markup_characters_prints_it_as_is(tmp_path, capsys):
    """Rich markup in a path ("[/]" closes a tag, "[x]" is dropped) must be printed as text."""
    folder = tmp_path / "m[/]x[bold]"  # "m[" then "]x[bold]"
    folder.mkdir(parents=True)
    data = write_jsonl(folder / "e.jsonl", [{"prompt": "p", "chosen": "a b", "rejected": "a b"}])
    assert main(["data", "summarize", str(data), "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "[bold]" in out.replace("\n", "") and "warning" in out  # the zero-usable-pairs warning names it


@pytest.mark.parametrize("method", ["full", "embedding"])
def test_train_without_usable_pairs_names_the_file(tiny_models, tmp_path, capsys, method):
    data = write_jsonl(
        tmp_path / "ties.jsonl", [{"prompt": f"q{i}", "chosen": "same", "rejected": "same"} for i in range(6)]
    )
    model = tiny_models["bert" if method == "embedding" else "llama"]
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "m"),
            "--model",
            str(model),
            "--method",
            method,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no usable training pairs" in err and "ties.jsonl" in err, err
    assert not (tmp_path / "m" / "rewardlab.json").exists()
