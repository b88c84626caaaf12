"""Load preference data from any supported file or folder into :class:`PreferenceData`.

Every record ends up as a pair, as part of a ranked list, or as a counted drop with its
reason: nothing is dropped silently. With ``on_error="fail"`` (the default) the first bad
record stops the load with an error naming the file, the line or record, and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rewardlab.data.formats import (
    FORMATS,
    Converter,
    canonical_format,
    detect_format,
    label_values_of,
    make_converter,
    stepwise_signature,
)
from rewardlab.data.io import (
    DataError,
    RawRecord,
    StepwiseDataError,
    data_files,
    is_saved_dataset,
    iter_records,
)
from rewardlab.data.schema import Drop, FileReport, PreferenceData, PreferencePair, RankedList

ON_ERROR = ("fail", "skip")


def load_preferences(
    path: str | Path,
    *,
    format: str = "auto",
    mapping: Mapping[str, str] | None = None,
    on_error: str = "fail",
    split: str | None = None,
    labels: Mapping[str, str] | None = None,
    score_key: str | None = None,
) -> PreferenceData:
    """Read pairs and ranked lists from a file, a saved dataset, or a folder of files.

    Args:
        path: A data file, a ``save_to_disk`` folder, or a folder of data files (each file's
            name becomes the category of records that have none).
        format: ``auto`` or one of ``explicit``, ``implicit``, ``labelled``, ``ranked``
            (aliases ``trl``, ``hh``).
        mapping: Field renames ``{new: old}``: read field ``new`` from the source's ``old``.
        on_error: ``fail`` stops at the first bad record; ``skip`` drops it and counts it.
        split: The split of a saved ``DatasetDict``.
        labels: Extra label meanings for labelled pairs, ``{value: first|second|tie}``.
        score_key: Which key of a per-response ``scores`` object to rank by.

    Returns:
        The loaded data with one :class:`FileReport` per file.

    Raises:
        DataError: a bad record (with ``on_error="fail"``) or a file that cannot be read.
        StepwiseDataError: the data is step-labelled (use the PRM commands).
    """
    if on_error not in ON_ERROR:
        raise DataError("--on-error", "bad option", f"on_error must be one of {ON_ERROR}")
    fmt = canonical_format(format)
    for value in (labels or {}).values():
        if value not in ("first", "second", "tie"):
            raise DataError("--label", "bad option", f"a label must mean first, second or tie, not {value!r}")
    path = Path(path)
    files = data_files(path)
    folder = path.is_dir() and not is_saved_dataset(path)
    data = PreferenceData()
    for file in files:
        report = _load_file(
            file,
            data,
            fmt=fmt,
            mapping=mapping or {},
            on_error=on_error,
            split=split,
            labels=labels,
            score_key=score_key,
            default_category=file.name.split(".")[0] if folder else None,
        )
        data.files.append(report)
    return data


def _apply_mapping(rec: RawRecord, mapping: Mapping[str, str]) -> dict[str, Any]:
    out = dict(rec.data)
    for new, old in mapping.items():
        if old not in out:
            raise DataError(
                str(rec.where), "missing field", f"missing field (mapped to '{new}' by --map)", field=old
            )
        out[new] = out.pop(old)
    return out


def _load_file(
    file: Path,
    data: PreferenceData,
    *,
    fmt: str,
    mapping: Mapping[str, str],
    on_error: str,
    split: str | None,
    labels: Mapping[str, str] | None,
    score_key: str | None,
    default_category: str | None,
) -> FileReport:
    report = FileReport(path=str(file), format="", detected_because="")

    def drop(err: DataError) -> None:
        if on_error == "fail":
            raise err
        report.drops.append(Drop(err.reason, str(err)))

    items: list[tuple[dict[str, Any], str] | DataError] = []
    for item in iter_records(file, split=split):
        report.records += 1
        if isinstance(item, DataError):
            items.append(item)
            continue
        try:
            items.append((_apply_mapping(item, mapping), str(item.where)))
        except DataError as err:
            items.append(err)
    good = [it for it in items if not isinstance(it, DataError)]
    if not good:
        for it in items:
            drop(it)  # type: ignore[arg-type]
        report.format = "empty"
        report.detected_because = "no readable records"
        return report

    first, first_where = good[0]
    converter = _converter_for(fmt, first, first_where, [r for r, _ in good], labels, score_key)
    report.format = converter.name
    report.detected_because = converter.because

    seen_keys: set[str] = set()
    for it in items:
        if isinstance(it, DataError):
            drop(it)
            continue
        rec, where = it
        seen_keys.update(rec)
        try:
            out = converter.convert(rec, where)
        except DataError as err:
            drop(err)
            continue
        _collect(out, data, report, default_category)
    lists, late_drops = converter.finish()
    _collect(lists, data, report, default_category)
    for reason, where, detail in late_drops:
        report.drops.append(Drop(reason, f"{where}: {detail}"))
    report.unused_fields = sorted(seen_keys - converter.used - {"_group"})
    report.notes.extend(converter.notes)
    return report


def _converter_for(
    fmt: str,
    first: dict[str, Any],
    where: str,
    records: list[dict[str, Any]],
    labels: Mapping[str, str] | None,
    score_key: str | None,
) -> Converter:
    """Detect (or check) the file's format on its first record and build its converter."""
    try:
        if fmt == "auto":
            fmt, because = detect_format(first)
        else:
            step = stepwise_signature(set(first), first)
            if step:
                detect_format(first)  # raises the stepwise message
            because = f"--format {fmt}"
        assert fmt in FORMATS
        values = label_values_of(records) if fmt == "labelled" else set()
        return make_converter(fmt, first, because, labels, values, score_key)
    except StepwiseDataError as err:
        raise StepwiseDataError(where.rsplit(",", 1)[0], err.reason, err.detail) from None
    except DataError as err:
        raise DataError(err.where or where, err.reason, err.detail, err.field) from None


def _collect(
    out: list[PreferencePair | RankedList],
    data: PreferenceData,
    report: FileReport,
    default_category: str | None,
) -> None:
    for ex in out:
        if default_category and ex.category is None:
            ex.category = default_category
        if isinstance(ex, PreferencePair):
            data.pairs.append(ex)
            report.pairs += 1
            report.count(ex)
        else:
            data.lists.append(ex)
            report.lists += 1
            report.count_list(ex)
