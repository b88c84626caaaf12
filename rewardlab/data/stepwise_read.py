"""Reading step-labelled data for process reward models: five real formats into :class:`StepwiseExample`.

Formats (detected per file from its first record, or forced with ``format=``):

=================  ================================================================================
``trl``            TRL's former stepwise format: ``prompt``, ``completions`` (the steps),
                   ``labels`` (one bool per step); also ``steps`` + ``labels``/``step_labels``
``prm800k``        PRM800K: ``question.problem``; per ``label.steps[i]``, the human-chosen
                   completion (``chosen_completion``) with its rating −1/0/+1, or the human-written
                   ``human_completion`` (correct by construction); a step with neither is the one
                   where the labeller stopped: its first −1 completion (the error) ends the solution
``math_shepherd``  Math-Shepherd: ``input`` holds the question and steps, each ended by ``ки``;
                   ``label`` is the same text with ``+``/``-`` in place of each tag
``bbm``            BIG-Bench-Mistake: ``input``, ``steps``, ``mistake_index`` (0-based first wrong
                   step; ``null`` when none)
``mrben``          Mr-Ben: ``Question`` (+ ``Options``), ``Model_Solution_Steps``,
                   ``Model_Solution_Correctness``, ``Model_Solution_First_Error_Step`` (1-based, or
                   for code the text of the first wrong line)
=================  ================================================================================

Labels are 1.0 (correct), 0.0 (wrong), a float in between (soft), or ``None`` (unlabelled; the
usual state of every step after the first error). A PRM800K neutral rating (0) counts as correct
(``neutral=1.0``), as Lightman et al. 2023 (arXiv 2305.20050) do when they train on "not wrong".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab.data.io import DataError, data_files, iter_records
from rewardlab.data.schema import Drop, StepwiseExample
from rewardlab.data.values import finite, shown

STEP_FORMATS = ("trl", "prm800k", "math_shepherd", "bbm", "mrben")
SHEPHERD_TAG = "ки"


@dataclass
class StepwiseData:
    """Examples read from one or more files, with what was dropped and why."""

    examples: list[StepwiseExample] = field(default_factory=list)
    drops: list[Drop] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)


def detect_step_format(rec: Mapping[str, Any]) -> str | None:
    """The stepwise format of one record (a name of :data:`STEP_FORMATS`), or ``None``."""
    keys = set(rec)
    if "Model_Solution_Steps" in keys:
        return "mrben"
    if "steps" in keys and "mistake_index" in keys:
        return "bbm"
    label = rec.get("label")
    if isinstance(label, Mapping) and "steps" in label:
        return "prm800k"
    if isinstance(rec.get("input"), str) and SHEPHERD_TAG in rec["input"] and isinstance(label, str):
        return "math_shepherd"
    if ("completions" in keys or "steps" in keys) and ("labels" in keys or "step_labels" in keys):
        return "trl"
    return None


def _label(value: Any, where: str, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, float):
        finite(value, where, name)
    if isinstance(value, int | float) and 0 <= value <= 1:
        return float(value)
    raise DataError(
        where,
        "bad label",
        f"step label must be a bool, a number in [0, 1] or null, got {shown(value)}",
        field=name,
    )


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            where, "missing field" if value is None else "not text", "expected non-empty text", field=name
        )
    return value


def _steps(value: Any, where: str, name: str) -> list[str]:
    """A list of step texts; blank steps are kept (their position counts), a string is split into lines.

    Some sources ship a Python-literal list as a string (``"['Step 1: …']"``); code solutions
    (Mr-Ben's coding set) are one string whose non-blank lines are the steps.
    """
    if isinstance(value, str):
        if value.strip().startswith("["):
            import ast

            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
                detail = f"cannot read the step list: {str(exc)[:80] or type(exc).__name__}"
                raise DataError(where, "not a list", detail, field=name) from None
        else:
            value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, list) or not value:
        raise DataError(where, "not a list", "expected a non-empty list of steps", field=name)
    for i, s in enumerate(value):
        if not isinstance(s, str):
            raise DataError(
                where, "not text", f"a step must be text, got {type(s).__name__}", field=f"{name}[{i}]"
            )
    if not any(s.strip() for s in value):
        raise DataError(where, "empty", "every step is blank", field=name)
    return list(value)


def _trl(rec: Mapping[str, Any], where: str) -> StepwiseExample:
    step_field = "completions" if "completions" in rec else "steps"
    label_field = "labels" if "labels" in rec else "step_labels"
    steps = _steps(rec.get(step_field), where, step_field)
    raw = rec.get(label_field)
    if not isinstance(raw, list) or len(raw) != len(steps):
        n = len(raw) if isinstance(raw, list) else "no"
        raise DataError(where, "length mismatch", f"{len(steps)} steps but {n} labels", field=label_field)
    labels = [_label(v, where, f"{label_field}[{i}]") for i, v in enumerate(raw)]
    return StepwiseExample(_text(rec.get("prompt"), where, "prompt"), steps, labels, origin=where)


def _mapping(value: Any, where: str, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(where, "not an object", f"expected an object, got {shown(value)}", field=name)
    return value


def _rating(value: Any, rating: dict[int, float], where: str, name: str) -> float | None:
    """A PRM800K rating (-1, 0, +1) as a label; ``None`` (unlabelled) when absent."""
    if value is None:
        return None
    if isinstance(value, float):
        finite(value, where, name)
    if isinstance(value, bool) or value not in rating:
        raise DataError(where, "bad label", f"rating must be -1, 0 or 1, got {shown(value)}", field=name)
    return rating[value]


def _prm800k(rec: Mapping[str, Any], where: str, neutral: float) -> StepwiseExample:
    question = rec.get("question")
    if not isinstance(question, Mapping):
        raise DataError(where, "missing field", "expected a question object", field="question")
    prompt = _text(question.get("problem"), where, "question.problem")
    steps: list[str] = []
    labels: list[float | None] = []
    rating = {1: 1.0, 0: neutral, -1: 0.0}
    raw_steps = _mapping(rec.get("label"), where, "label").get("steps")
    if not isinstance(raw_steps, list):
        raise DataError(where, "not a list", "expected a list of steps", field="label.steps")
    for i, step in enumerate(raw_steps):
        name = f"label.steps[{i}]"
        step = _mapping(step, where, name)
        comps = step.get("completions") or []
        if not isinstance(comps, list):
            raise DataError(
                where, "not a list", "expected a list of completions", field=f"{name}.completions"
            )
        comps = [_mapping(c, where, f"{name}.completions[{j}]") for j, c in enumerate(comps)]
        chosen = step.get("chosen_completion")
        if chosen is not None:
            if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 <= chosen < len(comps):
                detail = f"chosen_completion {shown(chosen)} of {len(comps)}"
                raise DataError(where, "bad index", detail, field=name)
            c = comps[chosen]
            steps.append(_text(c.get("text"), where, f"{name}.completions[{chosen}].text"))
            labels.append(_rating(c.get("rating"), rating, where, f"{name}.completions[{chosen}].rating"))
        elif step.get("human_completion"):
            human = _mapping(step["human_completion"], where, f"{name}.human_completion")
            steps.append(_text(human.get("text"), where, f"{name}.human_completion.text"))
            labels.append(1.0)
        else:  # the labeller stopped here: the first wrong completion is the solution's error
            wrong = next((c for c in comps if c.get("rating") == -1), None)
            if wrong is not None:
                steps.append(_text(wrong.get("text"), where, f"{name}.completions.text"))
                labels.append(0.0)
            break
    if not steps:
        raise DataError(where, "empty", "no labelled step", field="label.steps")
    return StepwiseExample(prompt, steps, labels, origin=where)


def _math_shepherd(rec: Mapping[str, Any], where: str) -> StepwiseExample:
    text, marked = _text(rec.get("input"), where, "input"), _text(rec.get("label"), where, "label")
    parts = text.split(SHEPHERD_TAG)
    if parts[-1].strip():
        raise DataError(where, "bad tags", f"text after the last {SHEPHERD_TAG} tag", field="input")
    parts = parts[:-1]
    first = parts[0]
    m = re.search(r"Step\s*1\s*:", first)
    if m is None:
        raise DataError(where, "bad tags", "no 'Step 1:' to split the question from the steps", field="input")
    prompt, parts[0] = first[: m.start()].strip(), first[m.start() :]
    labels: list[float | None] = []
    pos = 0
    for i, part in enumerate(parts):
        pos += len(part) if i else len(first)
        at = pos - i * (len(SHEPHERD_TAG) - 1)  # each earlier tag is one character shorter in ``label``
        sign = marked[at] if at < len(marked) else ""
        if sign not in "+-" or not sign:
            raise DataError(
                where,
                "bad tags",
                f"step {i + 1}: no +/- in label where input has {SHEPHERD_TAG}",
                field="label",
            )
        labels.append(1.0 if sign == "+" else 0.0)
        pos += len(SHEPHERD_TAG)
    steps = [p.strip() for p in parts]
    return StepwiseExample(_text(prompt, where, "input (question)"), steps, labels, origin=where)


def _bbm(rec: Mapping[str, Any], where: str) -> StepwiseExample:
    steps = _steps(rec.get("steps"), where, "steps")
    k = rec.get("mistake_index")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(steps)):
        raise DataError(
            where, "bad index", f"mistake_index {shown(k)} for {len(steps)} steps", field="mistake_index"
        )
    labels: list[float | None] = (
        [1.0] * len(steps) if k is None else [1.0] * k + [0.0] + [None] * (len(steps) - k - 1)
    )
    return StepwiseExample(_text(rec.get("input"), where, "input"), steps, labels, origin=where)


def _mrben(rec: Mapping[str, Any], where: str) -> StepwiseExample:
    steps = _steps(rec.get("Model_Solution_Steps"), where, "Model_Solution_Steps")
    prompt = _text(rec.get("Question"), where, "Question")
    options = rec.get("Options")
    if isinstance(options, str) and options.strip():
        prompt = f"{prompt}\n{options}"
    correct = str(rec.get("Model_Solution_Correctness", "")).strip().lower()
    first = str(rec.get("Model_Solution_First_Error_Step", "")).strip()
    if correct == "correct":
        labels: list[float | None] = [1.0] * len(steps)
    elif correct == "incorrect":
        if first.isdigit() and 1 <= int(first) <= len(steps):
            k = int(first) - 1
        else:  # code solutions name the first wrong line by its text
            matches = [i for i, s in enumerate(steps) if first and s.strip() == first]
            if not matches:
                raise DataError(
                    where,
                    "no first error",
                    f"first error step {first[:60]!r} is not one of the steps",
                    field="Model_Solution_First_Error_Step",
                )
            k = matches[0]
        labels = [1.0] * k + [0.0] + [None] * (len(steps) - k - 1)
    else:
        raise DataError(
            where, "bad label", f"correctness {shown(correct)}", field="Model_Solution_Correctness"
        )
    return StepwiseExample(prompt, steps, labels, origin=where)


def convert_step_record(
    rec: Mapping[str, Any], where: str, fmt: str, neutral: float = 1.0
) -> StepwiseExample:
    """One record of format ``fmt`` as a :class:`StepwiseExample` (raises :class:`DataError`)."""
    if fmt == "trl":
        return _trl(rec, where)
    if fmt == "prm800k":
        return _prm800k(rec, where, neutral)
    if fmt == "math_shepherd":
        return _math_shepherd(rec, where)
    if fmt == "bbm":
        return _bbm(rec, where)
    if fmt == "mrben":
        return _mrben(rec, where)
    raise ValueError(f"format must be one of {STEP_FORMATS}")


def load_stepwise(
    path: str | Path, format: str = "auto", on_error: str = "fail", neutral: float = 1.0
) -> StepwiseData:
    """Read step-labelled data from a file or folder of files.

    Args:
        path: A file or a folder.
        format: ``auto`` (per file, from its first record) or one of :data:`STEP_FORMATS`.
        on_error: ``fail`` raises at the first bad record (file, line, field); ``skip`` drops it
            and counts it in :attr:`StepwiseData.drops`.
        neutral: The label of a PRM800K neutral (0) rating.

    Raises:
        DataError: a bad record with ``on_error="fail"``, or a file in no stepwise format.
    """
    if format != "auto" and format not in STEP_FORMATS:
        raise DataError(str(path), "bad option", f"format must be auto or one of {STEP_FORMATS}")
    out = StepwiseData()
    for f in data_files(Path(path)):
        fmt = None if format == "auto" else format
        for rec in iter_records(f):
            try:
                if isinstance(rec, DataError):
                    raise rec
                if fmt is None:
                    fmt = detect_step_format(rec.data)
                    if fmt is None:
                        raise DataError(
                            str(rec.where),
                            "unknown format",
                            f"not step-labelled data (keys {sorted(rec.data)[:8]}); formats: {STEP_FORMATS}",
                        )
                    out.formats[str(f)] = fmt
                out.examples.append(convert_step_record(rec.data, str(rec.where), fmt, neutral))
            except DataError as err:
                if on_error == "fail":
                    raise
                out.drops.append(Drop(err.reason, str(err)))
    return out
