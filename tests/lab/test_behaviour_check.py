"""dev/behaviour_check.py: the normaliser and the comparer on small in-memory examples (no command is run)."""

from __future__ import annotations

import json

from dev.behaviour_check.compare import compare_records, diff_file, diff_values, drop_volatile, normalise_text


def _record(root: str, files: list[str], stdout: str = "", code: int = 0) -> dict:
    cmd = {"name": "train", "argv": [], "exit_code": code, "stdout": stdout, "stderr": "", "files": files}
    return {"root": root, "source": "/src", "commands": [cmd], "help": {"train": "Usage: train"}}


def test_timings_paths_and_progress_frames_are_normalised_but_warnings_kept() -> None:
    a = "\x1b[1mdone\x1b[0m in 12.3 s\nwrote /rec/a/work/out.json\n50%|##   | 1/2\r100%|####| 2/2 45.6 it/s\n"
    b = "done in 0.4 s\nwrote /rec/b/work/out.json\ntrain ━━━━ 4/4 loss 0.71\n"
    warning = "/src/rewardlab/x.py:12: UserWarning: careful"
    assert normalise_text(a + warning, "/rec/a", "/src") == normalise_text(b + warning, "/rec/b", "/src")
    assert normalise_text(a + warning, "/rec/a", "/src") == [
        "done in <TIME>",
        "wrote <DIR>/work/out.json",
        "<SRC>/rewardlab/x.py:<L>: UserWarning: careful",
    ]
    assert normalise_text("peak 439.7 MiB on 2026-12-06 20:25:27 after 0:01:02") == [
        "peak <MEM> on <DATE> after <DURATION>"
    ]
    assert normalise_text("loss 0.7157, 1,016 positions, 2.92×", volatile_numbers=True) == [
        "loss <N>, <N> positions, <N>"
    ]
    assert normalise_text("loss 0.7157") != normalise_text("loss 0.7158")  # a real value is not hidden


def test_a_changed_json_value_is_reported_with_its_path() -> None:
    base = {"metrics": {"accuracy": 0.75, "n": 10}, "models": ["a", "b"]}
    new = {"metrics": {"accuracy": 0.5, "n": 10}, "models": ["a"], "extra": 1}
    found = diff_values(base, new)
    assert "$.metrics.accuracy: 0.75 != 0.5" in found
    assert "$.models: 2 items, now 1" in found
    assert any(d.startswith("$.extra: added") for d in found)


def test_float_tolerance_is_respected() -> None:
    assert diff_values({"x": 1.0}, {"x": 1.0 + 1e-9}) == []
    assert diff_values({"x": 0.0}, {"x": 5e-8}) == []  # within the absolute tolerance
    assert diff_values({"x": 1.0}, {"x": 1.001}) != []
    assert diff_values({"x": float("nan")}, {"x": float("nan")}) == []
    assert diff_values({"x": True}, {"x": 1}) != []  # a bool is not a number here


def test_volatile_keys_are_dropped_and_strings_normalised(tmp_path) -> None:
    assert drop_volatile(
        {"seconds": 3.2, "peak_rss_mb": 500, "loss": 0.7, "inner": [{"train_runtime": 1}]}
    ) == {
        "loss": 0.7,
        "inner": [{}],
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.json").write_text(json.dumps({"out": "/rec/a/work/x", "time_s": 1, "acc": 0.5}))
    (tmp_path / "b" / "m.json").write_text(json.dumps({"out": "/rec/b/work/x", "time_s": 9, "acc": 0.5}))
    na, nb = (lambda s: normalise_text(s, "/rec/a")), (lambda s: normalise_text(s, "/rec/b"))
    assert diff_file(tmp_path / "a" / "m.json", tmp_path / "b" / "m.json", na, nb) == []
    (tmp_path / "b" / "m.json").write_text(json.dumps({"out": "/rec/b/work/x", "time_s": 9, "acc": 0.6}))
    assert diff_file(tmp_path / "a" / "m.json", tmp_path / "b" / "m.json", na, nb) == ["$.acc: 0.5 != 0.6"]


def test_missing_file_exit_code_and_console_line_are_reported_help_only_as_information() -> None:
    base = _record("/rec/a", ["out/a.json", "out/b.md"], stdout="wrote 2 files in 1.0 s\n")
    new = _record("/rec/b", ["out/a.json", "out/c.md"], stdout="wrote 3 files in 2.5 s\n", code=2)
    new["help"]["train"] = "Usage: train [OPTIONS]"
    diffs, helps = compare_records(base, {**new, "commands": [{**new["commands"][0], "files": ["out/b.md"]}]})
    assert "[train] file missing: out/a.json" in diffs
    assert "[train] exit code 0 != 2" in diffs
    assert (
        "[train] stdout: - wrote 2 files in <TIME>" in diffs
        and "[train] stdout: + wrote 3 files in <TIME>" in diffs
    )
    assert helps and not any("help" in d for d in diffs)
    diffs, helps = compare_records(base, new, strict_help=True)
    assert "[train] file added: out/c.md" in diffs and any(d.startswith("[help train]") for d in diffs)
    assert compare_records(base, _record("/rec/c", ["out/a.json", "out/b.md"], "wrote 2 files in 9 s")) == (
        [],
        [],
    )


def test_only_differences_made_on_purpose_are_excused():
    from dev.behaviour_check.compare import split_expected

    diffs = ["[serve] exit code 0 != 130", "[serve] exit code 0 != 1", "[eval] x.json: $.results.a: 1 != 2"]
    unexpected, expected = split_expected(diffs)
    assert unexpected == diffs[1:] and len(expected) == 1 and "[expected: " in expected[0]
