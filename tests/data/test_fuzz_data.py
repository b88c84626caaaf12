"""Fuzzing the data layer: any file either loads or fails with a DataError, never another exception.

Records get random field types and values (texts with lone surrogates and control characters,
NaN and infinities, huge integers, nested lists and objects, missing fields, numbers where text
belongs), written in every supported suffix; files also get random or damaged bytes. Loading must
succeed or raise :class:`DataError`, and ``rewardlab data summarize`` must return 0 or 2 with no
traceback.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.cli import main
from rewardlab.data import DataError, load_preferences
from rewardlab.data.stepwise import load_stepwise

SETTINGS = settings(
    max_examples=int(os.environ.get("REWARDLAB_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".csv", ".tsv", ".parquet")

#: Field names the formats look for, so that random records reach the converters.
FIELDS = (
    "prompt", "chosen", "rejected", "margin", "tie", "category", "instruction", "input", "question",
    "response_a", "response_b", "response1", "response2", "winner", "label", "labels", "votes",
    "annotator1", "annotator2", "responses", "scores", "ranks", "response", "score", "rank", "system",
    "completions", "steps", "step_labels", "mistake_index", "Model_Solution_Steps", "Question",
    "Model_Solution_Correctness", "Model_Solution_First_Error_Step", "s1", "s2",
)  # fmt: skip

pieces = st.one_of(
    st.characters(), st.sampled_from(["\ud800", "\udfff", "\x00", "\r", "\n", "\u2028", "\ufeff"])
)
texts = st.lists(pieces | st.sampled_from(["ки", "[{", "}]", "Step 1: "]), max_size=12).map(
    "".join
) | st.sampled_from(
    ["", " ", "a", "b", "1", "0", "nan", "inf", "true", "first", "tie", "\n\nHuman: q\n\nAssistant: a"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers()
    | st.just(10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["role", "content", "text", "solution", "is_correct", "steps"]) | texts,
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(FIELDS) | texts, values, max_size=7)


#: One valid record per format: the fuzzer changes or removes one field of each.
TEMPLATES = (
    {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 1.0, "tie": False, "category": "c"},
    {"chosen": "\n\nHuman: q\n\nAssistant: a", "rejected": "\n\nHuman: q\n\nAssistant: b"},
    {"prompt": "p", "response_a": "a", "response_b": "b", "winner": "a"},
    {"instruction": "i", "input": "x", "response1": "a", "response2": "b", "annotator1": 1, "annotator2": 2},
    {"prompt": "p", "output_1": "a", "output_2": "b", "votes": [1, 2, 1]},
    {"prompt": "p", "responses": ["a", "b", "c"], "scores": [1, 2, 3]},
    {"prompt": "p", "responses": ["a", "b"], "ranks": [2, 1]},
    {"prompt": "p", "response": "a", "score": {"overall": 2}, "system": "s"},
    {"prompt": "p", "response": "a", "rank": 1},
    {"question": "q", "s1": {"solution": "a", "is_correct": True}, "s2": {"solution": "b", "is_correct": 0}},
    {"prompt": "p", "completions": ["s1", "s2"], "labels": [True, False]},
    {"input": "q", "steps": ["s1", "s2"], "mistake_index": 1},
    {"input": "q Step 1: a ки Step 2: b ки", "label": "q Step 1: a + Step 2: b -"},
    {
        "question": {"problem": "q"},
        "label": {"steps": [{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 0}]},
    },
    {
        "Question": "q",
        "Model_Solution_Steps": ["a", "b"],
        "Model_Solution_Correctness": "incorrect",
        "Model_Solution_First_Error_Step": "2",
    },
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict:
    """A template record with one field changed to a random value, or removed."""
    rec = dict(draw(st.sampled_from(TEMPLATES)))
    field = draw(st.sampled_from(sorted(rec)))
    if draw(st.booleans()):
        del rec[field]
    else:
        rec[field] = draw(values)
    return rec


def _json_line(record: dict) -> str:
    return json.dumps(record, default=str)  # NaN, Infinity and lone surrogates (as \\ud800) pass


def _encode(path: Path, rows: list[dict]) -> bytes:
    """``rows`` written in the format of ``path``'s suffix (parquet: the cells as strings)."""
    name = path.name
    if name.endswith((".csv", ".tsv")):
        buf = io.StringIO()
        keys = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.writer(buf, delimiter="\t" if name.endswith(".tsv") else ",")
        writer.writerow(keys)
        for r in rows:
            writer.writerow([json.dumps(r[k], default=str) if k in r else "" for k in keys])
        return buf.getvalue().encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys = list(dict.fromkeys(k for r in rows for k in r if k.encode("utf-8", "replace").decode() == k))
        cols = {
            k: [None if k not in r else str(r[k]).encode("utf-8", "replace").decode() for r in rows]
            for k in keys
        }
        out = pa.BufferOutputStream()
        pq.write_table(pa.table(cols) if keys else pa.table({"x": [1]}), out)
        return out.getvalue().to_pybytes()
    if ".jsonl" in name:
        data = "".join(_json_line(r) + "\n" for r in rows).encode()
    else:
        data = json.dumps(rows, default=str).encode()
    return gzip.compress(data) if name.endswith(".gz") else data


def _check(path: Path) -> None:
    """Load ``path`` every way (both error policies, pairs and steps), then summarise it through the CLI."""
    for on_error in ("fail", "skip"):
        try:
            load_preferences(path, on_error=on_error)
        except DataError:
            pass
        try:
            load_stepwise(path, on_error=on_error)
        except DataError:
            pass
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["data", "summarize", str(path), "--out", str(path.parent / "out"), "--on-error", "skip"])
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code == 2:
        assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1


@SETTINGS
@given(rows=st.lists(records | near_valid(), min_size=1, max_size=4), suffix=st.sampled_from(SUFFIXES))
def test_random_records_load_or_fail_with_a_data_error(rows, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(_encode(path, rows))
        _check(path)


@SETTINGS
@given(
    raw=st.binary(max_size=300),
    suffix=st.sampled_from(SUFFIXES),
    how=st.sampled_from(["raw", "gzip", "bom", "flip"]),
    at=st.integers(0, 10**6),
)
def test_random_and_damaged_bytes_load_or_fail_with_a_data_error(raw, suffix, how, at):
    good = b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n' * 3
    data = {"raw": raw, "gzip": gzip.compress(raw), "bom": b"\xef\xbb\xbf" + raw}.get(how)
    if how == "flip":  # a good file with one byte changed
        plain = good if "json" in suffix else b"prompt,chosen,rejected\np,a,b\n"
        data = bytearray(gzip.compress(plain) if suffix.endswith(".gz") else plain)
        data[at % len(data)] ^= 1 + at % 255
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(bytes(data))
        _check(path)
