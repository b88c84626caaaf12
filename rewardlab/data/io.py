"""Reading raw records from files, each tagged with where it came from.

Supported: ``.jsonl``, ``.json`` (a list of records, a dict of columns, or a dict of lists of
records), either of them gzipped (``.gz``), ``.csv``/``.tsv``, ``.parquet``, and folders
written by ``datasets.Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk`` with a split).
A plain folder of such files is read file by file.

Malformed input is not fatal here: it is returned as a :class:`DataError` in the record stream,
so that the loader can apply the user's ``--on-error`` policy in one place.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError

DATA_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".csv", ".tsv", ".parquet")


class DataError(RewardlabError):
    """A problem with the input data, located by file, line or record, and field.

    Attributes:
        where: ``file, line N`` or ``file, record N`` (or just the file).
        field: The field at fault, if one is.
        reason: A short, stable category used to count drops (e.g. ``"missing field"``).
        detail: The human explanation.
    """

    def __init__(self, where: str, reason: str, detail: str, field: str | None = None) -> None:
        self.where, self.reason, self.detail, self.field = where, reason, detail, field
        located = f"{where}, field '{field}'" if field else where
        super().__init__(f"{located}: {detail}")


class StepwiseDataError(DataError):
    """Raised when a file holds step-labelled data but a pairwise/ranked loader was asked."""


@dataclass(frozen=True)
class Location:
    """Where a record came from: a line (text formats) or a record number (others), 1-based."""

    path: str
    line: int | None = None
    record: int | None = None

    def __str__(self) -> str:
        if self.line is not None:
            return f"{self.path}, line {self.line}"
        if self.record is not None:
            return f"{self.path}, record {self.record}"
        return self.path


@dataclass
class RawRecord:
    """One record as read from disk."""

    data: dict[str, Any]
    where: Location


def data_suffix(path: Path) -> str | None:
    """The supported suffix of ``path`` (``.jsonl.gz`` counts as one), or ``None``."""
    name = path.name.lower()
    for suffix in sorted(DATA_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def is_saved_dataset(path: Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def data_files(path: Path) -> list[Path]:
    """The data files that ``path`` stands for: itself, or the supported files in a folder.

    Raises:
        DataError: the path does not exist, has an unsupported suffix, or is an empty folder.
    """
    if not path.exists():
        raise DataError(str(path), "missing file", "no such file or folder")
    if path.is_file() or is_saved_dataset(path):
        if path.is_file() and data_suffix(path) is None:
            raise DataError(
                str(path),
                "unsupported file",
                f"unsupported file type; expected one of {', '.join(DATA_SUFFIXES)} "
                "or a folder written by datasets' save_to_disk",
            )
        return [path]
    try:
        found = sorted(p for p in path.iterdir() if (p.is_file() and data_suffix(p)) or is_saved_dataset(p))
    except OSError as exc:
        raise _file_error(path, exc) from exc
    if not found:
        raise DataError(str(path), "empty folder", "folder holds no supported data files")
    return found


#: The UTF-8 byte-order mark that spreadsheet exports put at the start of a file.
BOM = b"\xef\xbb\xbf"
#: What a damaged gzip stream raises (``BadGzipFile`` is an ``OSError``: test these first).
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_READ_ERRORS = (*_GZIP_ERRORS, OSError)
#: The CSV cell size limit: Python's default (131,072 characters) refuses real long responses.
CSV_FIELD_LIMIT = 2**31 - 1
#: A ``\uD800``-``\uDFFF`` escape in JSON text: it may decode to a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _file_error(path: Path, exc: BaseException) -> DataError:
    """The :class:`DataError` for an exception raised while opening or reading ``path``."""
    if isinstance(exc, _GZIP_ERRORS):
        return DataError(str(path), "unreadable file", f"not a valid gzip file: {exc}")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
    return DataError(str(path), "unreadable file", f"cannot read the file: {reason}")


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115


def _not_utf8(where: str, data: bytes, exc: UnicodeDecodeError) -> DataError:
    return DataError(
        where, "not UTF-8", f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
    )


def _decode(data: bytes, path: Path) -> str:
    """``data`` as UTF-8 text without a leading byte-order mark; a bad byte is reported by its line."""
    data = data[len(BOM) :] if data.startswith(BOM) else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _not_utf8(f"{path}, line {line}", data, exc) from None


def _read_text(path: Path) -> str:
    try:
        with _open_binary(path) as fh:
            data = fh.read()
    except _READ_ERRORS as exc:
        raise _file_error(path, exc) from exc
    return _decode(data, path)


def _surrogate_error(obj: Any, where: str) -> DataError | None:
    """An error when a string or key of ``obj`` holds a lone UTF-16 surrogate (an unpaired escape).

    Such text is not valid Unicode: it cannot be written as UTF-8 or tokenized. The search is
    iterative, so a deeply nested value cannot exhaust the stack.
    """
    for top, value in obj.items():
        stack = [top, value]
        while stack:
            v = stack.pop()
            if isinstance(v, str) and _LONE_SURROGATE.search(v):
                field = None if _LONE_SURROGATE.search(top) else top
                detail = "text holds a lone surrogate (an unpaired \\ud800-\\udfff escape): not valid Unicode"
                return DataError(where, "not valid Unicode", detail, field=field)
            if isinstance(v, dict):
                for k, x in v.items():
                    stack += (k, x)
            elif isinstance(v, list):
                stack.extend(v)
    return None


def _parse_json(text: str, where: str, whole_file: bool = False) -> Any:
    """``json.loads`` with every way it can fail turned into a :class:`DataError` at ``where``.

    For a whole file, the line of a syntax error is added to ``where``.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f"{where}, line {exc.lineno}" if whole_file else where
        raise DataError(at, "malformed JSON", f"malformed JSON: {exc.msg}") from None
    except RecursionError:
        raise DataError(where, "nested too deeply", "JSON nested too deeply to read") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise DataError(where, "malformed JSON", f"malformed JSON: {str(exc)[:80]}") from None


def _byte_lines(fh: Iterable[bytes]) -> Iterator[bytes]:
    r"""The lines of a binary file, ended by ``\n``, ``\r\n`` or a lone ``\r`` (as text mode reads them)."""
    for raw in fh:
        if b"\r" in raw.rstrip(b"\r\n"):
            yield from raw.splitlines(keepends=True)
        else:
            yield raw


def _iter_jsonl(path: Path) -> Iterator[RawRecord | DataError]:
    try:
        with _open_binary(path) as fh:
            for lineno, raw in enumerate(_byte_lines(fh), start=1):
                where = Location(str(path), line=lineno)
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    yield _not_utf8(str(where), raw, exc)
                    continue
                if not line.strip():
                    continue
                try:
                    obj = _parse_json(line, str(where))
                except DataError as err:
                    yield err
                    continue
                if not isinstance(obj, dict):
                    yield DataError(str(where), "not a record", f"expected a JSON object, got {_kind(obj)}")
                    continue
                bad = _SURROGATE_ESCAPE.search(line) and _surrogate_error(obj, str(where))
                yield bad or RawRecord(obj, where)
    except _READ_ERRORS as exc:
        raise _file_error(path, exc) from exc


def _kind(obj: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(obj), type(obj).__name__
    )


def _iter_json(path: Path) -> Iterator[RawRecord | DataError]:
    text = _read_text(path)
    if not text.strip():
        return  # an empty file holds no records (the summary warns about it)
    obj = _parse_json(text, str(path), whole_file=True)
    if isinstance(obj, list):
        records = _records_from_list(obj, str(path))
    elif isinstance(obj, dict):
        records = _records_from_dict(obj, str(path))
    else:
        raise DataError(str(path), "not a record", f"expected a list or an object, got {_kind(obj)}")
    check = _SURROGATE_ESCAPE.search(text) is not None
    for rec in records:
        bad = check and isinstance(rec, RawRecord) and _surrogate_error(rec.data, str(rec.where))
        yield bad or rec


def _records_from_list(
    items: list[Any], path: str, start: int = 1, key: str | None = None
) -> Iterator[RawRecord | DataError]:
    for i, item in enumerate(items, start=start):
        where = Location(path, record=i)
        if not isinstance(item, dict):
            yield DataError(str(where), "not a record", f"expected an object, got {_kind(item)}")
        else:
            yield RawRecord(item if key is None else {"_group": key, **item}, where)


def _records_from_dict(obj: dict[str, Any], path: str) -> Iterator[RawRecord | DataError]:
    """A dict of columns (``{"prompt": [...], "chosen": [...]}``) or of record lists."""
    values = list(obj.values())
    if values and all(isinstance(v, list) for v in values):
        if all(all(isinstance(x, dict) for x in v) for v in values) and any(values):
            # {group_key: [record, ...]}: e.g. Mr-Ben's {question_uuid: [solutions]}.
            n = 1
            for key, group in obj.items():
                yield from _records_from_list(group, path, start=n, key=key)
                n += len(group)
            return
        lengths = {k: len(v) for k, v in obj.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(
                path,
                "ragged columns",
                f"a dict of columns must have columns of one length, got {lengths}",
            )
        for i in range(len(values[0])):
            yield RawRecord({k: v[i] for k, v in obj.items()}, Location(path, record=i + 1))
        return
    # A single record stored as one object.
    yield RawRecord(obj, Location(path, record=1))


def _iter_csv(path: Path, delimiter: str) -> Iterator[RawRecord | DataError]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    start = 1  # the line where the record being read starts
    try:
        with io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if reader.fieldnames is None:
                return
            start = reader.line_num + 1
            for row in reader:
                where = Location(str(path), line=start)
                start = reader.line_num + 1
                if None in row:
                    yield DataError(str(where), "malformed row", "row has more cells than the header")
                    continue
                yield RawRecord({k: _csv_cell(v) for k, v in row.items()}, where)
    except UnicodeDecodeError:
        raise _first_bad_line(path) from None
    except csv.Error as exc:
        raise DataError(f"{path}, line {start}", "malformed CSV", f"malformed CSV: {exc}") from None
    except _READ_ERRORS as exc:
        raise _file_error(path, exc) from exc


def _first_bad_line(path: Path) -> DataError:
    """The error naming the first line of ``path`` that is not valid UTF-8 (found line by line)."""
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(_byte_lines(fh), start=1):
            try:
                raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                return _not_utf8(f"{path}, line {lineno}", raw, exc)
    return DataError(str(path), "not UTF-8", "not valid UTF-8; save the file as UTF-8")


def _csv_cell(value: str | None) -> Any:
    """CSV cells are strings; chat messages stored as JSON text are decoded."""
    if value is not None and value.startswith("[{") and value.rstrip().endswith("}]"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _iter_rows(rows: list[dict[str, Any]], path: str) -> Iterator[RawRecord]:
    for i, row in enumerate(rows, start=1):
        yield RawRecord(row, Location(path, record=i))


def _load_saved(path: Path, split: str | None) -> list[dict[str, Any]]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds.keys())
        if split is None:
            if len(names) != 1:
                raise DataError(
                    str(path), "split needed", f"this dataset has splits {names}: pick one with --split"
                )
            split = names[0]
        if split not in ds:
            raise DataError(str(path), "unknown split", f"no split '{split}'; it has {names}")
        ds = ds[split]
    return ds.to_list()


def iter_records(path: Path, split: str | None = None) -> Iterator[RawRecord | DataError]:
    """Yield every record of one data file (or saved dataset folder), tagged with its location.

    Args:
        path: A data file or a ``save_to_disk`` folder.
        split: The split to read from a saved ``DatasetDict``.

    Raises:
        DataError: for a problem with the file as a whole (unreadable, unsupported).
    """
    if is_saved_dataset(path):
        try:
            rows = _load_saved(path, split)
        except DataError:
            raise
        except Exception as exc:  # datasets and pyarrow raise many unrelated types for damaged folders
            raise DataError(str(path), "unreadable file", f"cannot read the saved dataset: {exc}") from exc
        yield from _iter_rows(rows, str(path))
        return
    suffix = data_suffix(path)
    if suffix in (".jsonl", ".jsonl.gz"):
        yield from _iter_jsonl(path)
    elif suffix in (".json", ".json.gz"):
        yield from _iter_json(path)
    elif suffix in (".csv", ".tsv"):
        yield from _iter_csv(path, "," if suffix == ".csv" else "\t")
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several unrelated types for bad files
            raise DataError(str(path), "unreadable file", f"cannot read parquet: {exc}") from exc
        yield from _iter_rows(rows, str(path))
    else:
        raise DataError(str(path), "unsupported file", "unsupported file type")
