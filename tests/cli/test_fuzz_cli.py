"""CLI fuzz: classes of bad input for ``data summarize``, ``train --method embedding``, ``eval``, ``score``.

Every case (bad data, bad paths, ``--out`` collisions, damaged checkpoints, bad numeric options)
must end with exit status 2, exactly one ``error:`` line on stderr naming the problem, and no
traceback. A last property test feeds ``data summarize`` random bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.cli import main
from tests.conftest import write_jsonl

GOOD = {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5"}
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

#: Bad data files: name -> bytes (``None``: made by the fixture), and what the error must say.
BAD_DATA = {
    "not-json": (b"hello world\n", "line 1: malformed JSON"),
    "truncated": (b'{"prompt": "p", "chosen": "c", "rej', "line 1: malformed JSON"),
    "binary": (bytes(range(256)) * 4, "line 1"),
    "json-array": (b"[1, 2, 3]\n", "expected a JSON object"),
    "wrong-types": (b'{"prompt": 1, "chosen": [1], "rejected": {"a": 2}}\n', "field 'prompt'"),
    "nulls": (b'{"prompt": null, "chosen": null, "rejected": null}\n', "line 1"),
    "too-deep": (b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    "bad-csv": (b'a,b\n"unterminated,1\n', "bad-csv.csv"),
    "bad-gzip": (b"\x1f\x8bnot really gzip", "not a valid gzip file"),
    "bad-parquet": (b"PAR1 not really parquet", "cannot read parquet"),
}
SUFFIX = {"bad-csv": ".csv", "bad-gzip": ".jsonl.gz", "bad-parquet": ".parquet"}


@pytest.fixture(scope="module")
def fz(tmp_path_factory, tiny_models, embedding_checkpoint) -> dict[str, Path]:
    """Every path the cases name: good and bad data, damaged checkpoints, files in the way."""
    root = tmp_path_factory.mktemp("fuzz")
    p: dict[str, Path] = {"root": root}
    for name, (content, _) in BAD_DATA.items():
        p[name] = root / f"{name}{SUFFIX.get(name, '.jsonl')}"
        p[name].write_bytes(content)
    p["good"] = write_jsonl(root / "good.jsonl", [GOOD, {**GOOD, "prompt": "What is 3 + 3?"}])
    p["rows"] = write_jsonl(root / "rows.jsonl", [{"prompt": "q", "response": "a"}] * 3)
    p["empty"] = root / "empty.jsonl"
    p["empty"].write_text("")
    p["ties-only"] = write_jsonl(root / "ties.jsonl", [{"prompt": "p", "chosen": "same", "rejected": "same"}])
    p["empty-dir"] = root / "empty-dir"
    p["empty-dir"].mkdir()
    p["missing"] = root / "no-such.jsonl"
    p["unreadable"] = write_jsonl(root / "unreadable.jsonl", [GOOD])
    p["unreadable"].chmod(0o000)
    p["a-file"] = root / "taken.txt"
    p["a-file"].write_text("not a folder")
    p["a-folder"] = root / "a-folder"
    p["a-folder"].mkdir()
    p["foreign-out"] = root / "foreign-out"
    p["foreign-out"].mkdir()
    (p["foreign-out"] / "notes.txt").write_text("mine")
    p["llama"], p["bert"], p["emb"] = tiny_models["llama"], tiny_models["bert"], embedding_checkpoint

    def damaged(name: str, base: Path, file: str, content: bytes | None) -> None:
        shutil.copytree(base, root / name)
        if content is None:
            (root / name / file).unlink()
        else:
            (root / name / file).write_bytes(content)
        p[name] = root / name

    damaged("llama-bad-config", p["llama"], "config.json", b'{"model_type": "lla')
    damaged("llama-bad-info", p["llama"], "rewardlab.json", b'{\n  "kind": "orm",\n  "max_len')
    damaged("llama-bad-weights", p["llama"], "model.safetensors", b"garbage" * 10)
    damaged("llama-no-weights", p["llama"], "model.safetensors", None)
    damaged("bert-bad-config", p["bert"], "config.json", b"{")
    damaged("emb-bad-info", p["emb"], "rewardlab.json", b'{"method": "embedding", "base')
    cut = (embedding_checkpoint / "heads.safetensors").read_bytes()
    damaged("emb-cut-heads", p["emb"], "heads.safetensors", cut[: len(cut) // 2])
    damaged("emb-no-heads", p["emb"], "heads.safetensors", None)
    p["no-model"] = root / "no-model"
    p["no-model"].mkdir()
    yield p
    p["unreadable"].chmod(0o644)


def _summarize(data: str, *extra: str) -> list[str]:
    return ["data", "summarize", f"{{{data}}}", "--out", "{root}/summary", *extra]


def _train(data: str = "good", model: str = "bert", out: str = "{root}/trained", *extra: str) -> list[str]:
    return ["train", "--method", "embedding", "--model", f"{{{model}}}", "--data", f"{{{data}}}"] + [
        "--out",
        out,
        "--max-length",
        "32",
        "--ensemble",
        "1",
        *extra,
    ]


def _eval(model: str = "emb", data: str = "good", out: str = "{root}/eval", *extra: str) -> list[str]:
    return [
        "eval",
        "--model",
        f"{{{model}}}",
        "--data",
        f"{{{data}}}",
        "--out",
        out,
        "--bootstrap",
        "20",
        *extra,
    ]


def _score(
    model: str = "llama", data: str = "rows", out: str = "{root}/scores.jsonl", *extra: str
) -> list[str]:
    return ["score", "--model", f"{{{model}}}", "--data", f"{{{data}}}", "--out", out, *extra]


UNREADABLE = pytest.mark.skipif(ROOT, reason="root reads files whatever their mode")

CASES = [
    # data summarize: every class of bad data, bad paths, --out collisions, bad options
    *[pytest.param(_summarize(name), said, id=f"summarize-{name}") for name, (_, said) in BAD_DATA.items()],
    pytest.param(_summarize("missing"), "no-such.jsonl: no such file or folder", id="summarize-missing"),
    pytest.param(_summarize("empty-dir"), "holds no supported data files", id="summarize-empty-dir"),
    pytest.param(_summarize("unreadable"), "unreadable.jsonl", id="summarize-unreadable", marks=UNREADABLE),
    pytest.param(
        ["data", "summarize", "{good}", "--out", "{a-file}"],
        "is a file: give a folder",
        id="summarize-out-file",
    ),
    pytest.param(
        ["data", "summarize", "{good}", "--out", "{a-file}/sub"],
        "is a file, not a folder",
        id="summarize-out-under",
    ),
    pytest.param(_summarize("good", "--format", "nonsense"), "nonsense", id="summarize-bad-format"),
    pytest.param(_summarize("good", "--on-error", "maybe"), "--on-error", id="summarize-bad-on-error"),
    pytest.param(_summarize("good", "--map", "oops"), "--map expects KEY=VALUE", id="summarize-bad-map"),
    pytest.param(
        _summarize("good", "--max-length", "1", "--tokenizer", "{bert}"),
        "at least 2",
        id="summarize-max-length",
    ),
    pytest.param(_summarize("good", "--max-length", "x"), "'--max-length'", id="summarize-max-length-text"),
    # train --method embedding
    pytest.param(_train("not-json"), "malformed JSON", id="train-not-json"),
    pytest.param(_train("wrong-types"), "field 'prompt'", id="train-wrong-types"),
    pytest.param(_train("empty"), "no usable training pairs", id="train-empty"),
    pytest.param(_train("ties-only"), "no usable training pairs", id="train-ties-only"),
    pytest.param(_train("missing"), "no such file or folder", id="train-missing-data"),
    pytest.param(_train("unreadable"), "unreadable.jsonl", id="train-unreadable", marks=UNREADABLE),
    pytest.param(_train(model="missing"), "no such local model folder", id="train-missing-model"),
    pytest.param(_train(model="good"), "good.jsonl", id="train-model-is-a-file"),
    pytest.param(_train(model="bert-bad-config"), "config.json", id="train-damaged-config"),
    pytest.param(_train(out="{a-file}"), "is a file: give a folder", id="train-out-file"),
    pytest.param(_train("good", "bert", "{root}/t1", "--ensemble", "0"), "--ensemble", id="train-ensemble-0"),
    pytest.param(
        _train("good", "bert", "{root}/t2", "--batch-size", "0"), "--batch-size", id="train-batch-0"
    ),
    pytest.param(_train("good", "bert", "{root}/t3", "--l2", "-1"), "--l2", id="train-l2-negative"),
    pytest.param(_train("good", "bert", "{root}/t4", "--l2", "nan"), "--l2", id="train-l2-nan"),
    pytest.param(_train("good", "bert", "{root}/t5", "--seed", "x"), "'--seed'", id="train-seed-text"),
    # eval
    pytest.param(_eval(data="truncated"), "malformed JSON", id="eval-truncated-data"),
    pytest.param(_eval(data="ties-only"), "no usable", id="eval-ties-only"),
    pytest.param(_eval(data="missing"), "no such file or folder", id="eval-missing-data"),
    pytest.param(_eval(model="missing"), "no such model folder", id="eval-missing-model"),
    pytest.param(_eval(model="no-model"), "not a model folder", id="eval-empty-model-folder"),
    pytest.param(
        _eval(model="emb-bad-info"), "rewardlab.json is not valid JSON (line 1)", id="eval-damaged-info"
    ),
    pytest.param(_eval(model="emb-cut-heads"), "heads.safetensors", id="eval-truncated-heads"),
    pytest.param(_eval(model="emb-no-heads"), "heads.safetensors", id="eval-missing-heads"),
    pytest.param(_eval(model="llama-bad-weights"), "llama-bad-weights", id="eval-damaged-weights"),
    pytest.param(_eval(out="{a-file}"), "is a file: give a folder", id="eval-out-file"),
    pytest.param(_eval(out="{foreign-out}"), "notes.txt", id="eval-out-holds-other-files"),
    pytest.param(_eval("emb", "good", "{root}/e1", "--batch-size", "0"), "--batch-size", id="eval-batch-0"),
    pytest.param(_eval("emb", "good", "{root}/e2", "--bootstrap", "5"), "--bootstrap", id="eval-bootstrap-5"),
    pytest.param(
        _eval("emb", "good", "{root}/e3", "--max-length", "3"), "--max-length", id="eval-max-length-3"
    ),
    pytest.param(_eval("emb", "good", "{root}/e4", "--bins", "many"), "'--bins'", id="eval-bins-text"),
    pytest.param(
        _eval("emb", "good", "{root}/e5", "--sections", "{binary}"), "sections", id="eval-bad-sections"
    ),
    # score
    pytest.param(_score(data="binary"), "line 1", id="score-binary-data"),
    pytest.param(_score(data="good"), "no response field", id="score-no-response-field"),
    pytest.param(_score(data="empty"), "no records to score", id="score-empty"),
    pytest.param(_score(data="empty-dir"), "holds no supported data files", id="score-empty-dir"),
    pytest.param(_score(data="unreadable"), "unreadable.jsonl", id="score-unreadable", marks=UNREADABLE),
    pytest.param(_score(out="{a-folder}"), "is a folder: give a file path", id="score-out-folder"),
    pytest.param(_score(out="{a-file}/s.jsonl"), "is a file, not a folder", id="score-out-under-file"),
    pytest.param(_score(model="missing"), "no such local model folder", id="score-missing-model"),
    pytest.param(_score(model="llama-bad-config"), "config.json", id="score-damaged-config"),
    pytest.param(
        _score(model="llama-bad-info"),
        "rewardlab.json is not valid JSON (line 3): the checkpoint is damaged",
        id="score-damaged-info",
    ),
    pytest.param(_score(model="llama-bad-weights"), "llama-bad-weights", id="score-damaged-weights"),
    pytest.param(_score(model="llama-no-weights"), "llama-no-weights", id="score-no-weights"),
    pytest.param(_score(model="emb-cut-heads"), "heads.safetensors", id="score-truncated-heads"),
    pytest.param(
        _score("llama", "rows", "{root}/s1.jsonl", "--batch-size", "0"), "--batch-size", id="score-batch-0"
    ),
    pytest.param(
        _score("llama", "rows", "{root}/s2.jsonl", "--batch-size", "-4"), "--batch-size", id="score-batch-neg"
    ),
    pytest.param(
        _score("llama", "rows", "{root}/s3.jsonl", "--batch-size", "1.5"),
        "'--batch-size'",
        id="score-batch-float",
    ),
    pytest.param(
        _score("llama", "rows", "{root}/s4.jsonl", "--layout", "weird"), "layout 'weird'", id="score-layout"
    ),
    pytest.param(
        _score("llama", "rows", "{root}/s5.jsonl", "--dtype", "float8"), "dtype 'float8'", id="score-dtype"
    ),
    pytest.param(
        _score("llama", "rows", "{root}/s6.jsonl", "--device", "tpu"), "device 'tpu'", id="score-device"
    ),
]


def error_line(err: str) -> str:
    """The one ``error:`` line of stderr (progress bars aside); fails on a traceback or several."""
    assert "Traceback" not in err, err
    errors = [line.split("\r")[-1] for line in err.splitlines() if "error:" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    return errors[0]


@pytest.mark.parametrize(("argv", "said"), CASES)
def test_bad_input_is_one_error_line(fz, argv, said, capsys):
    args = [a.format_map({k: str(v) for k, v in fz.items()}) for a in argv]
    before = sorted(p.name for p in fz["root"].iterdir())
    assert main(args) == 2, args
    line = error_line(capsys.readouterr().err)
    assert said in line, line
    assert sorted(p.name for p in fz["root"].iterdir()) == before  # nothing written, no temporary file left
    assert (fz["a-file"]).read_text() == "not a folder" and not list(fz["a-folder"].iterdir())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda d: json.dumps(d).encode(),
                st.dictionaries(
                    st.sampled_from(["prompt", "chosen", "rejected", "response", "label", "score"]),
                    st.one_of(
                        st.none(), st.integers(), st.floats(), st.text(max_size=8), st.lists(st.integers())
                    ),
                ),
            ),
        ),
        max_size=6,
    ),
    gz=st.booleans(),
)
def test_summarize_random_files_never_trace_back(lines, gz, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        raw = b"\n".join(lines)
        path = Path(tmp) / ("d.jsonl.gz" if gz else "d.jsonl")
        path.write_bytes(gzip.compress(raw) if gz else raw)
        code = main(["data", "summarize", str(path), "--out", str(Path(tmp) / "out")])
        captured = capsys.readouterr()
        assert code in (0, 2), captured.err
        if code == 2:
            assert str(path) in error_line(captured.err)  # the message names the file
        else:
            assert "Traceback" not in captured.err and (Path(tmp) / "out" / "data_summary.json").exists()
