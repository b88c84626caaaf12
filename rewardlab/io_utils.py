"""Writing output files and folders atomically, so a failed run never leaves a half-written output.

``write_text``/``write_json``/``write_jsonl`` write one file through a temporary sibling and a
rename (the temporary file is removed on any failure); ``atomic_dir`` builds a whole output folder
in a temporary sibling and swaps it in at the end. JSON is written with ``allow_nan=False``: a NaN
or infinite number is refused with an error naming the file and the field, never written.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError


def os_reason(exc: OSError) -> str:
    """The short reason of an OS error ("Permission denied"), without the errno and path."""
    return exc.strerror or str(exc)


#: Error numbers that only a write can give.
_WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EEXIST, errno.EXDEV}


def os_error_message(exc: OSError) -> str:
    """``cannot read|write PATH: REASON`` for an OS error on a named path; its own text otherwise."""
    reason = exc.strerror or " ".join(str(exc).split())
    if exc.filename is None:
        return reason
    path = os.fsdecode(exc.filename) if isinstance(exc.filename, str | bytes) else str(exc.filename)
    denied = exc.errno in (errno.EACCES, errno.EPERM)
    # a write-only error, a rename, or a refusal to create a path (rewardlab writes new files and
    # renames them into place; a refusal on an existing path is a read)
    write = exc.filename2 is not None or exc.errno in _WRITE_ERRNOS or (denied and not os.path.lexists(path))
    verb = "write" if write else "read"
    return f"cannot {verb} {path}: {reason}"


#: How safetensors (a Rust library) names OS errors in its messages, and what they mean to a user.
_SAFETENSORS_IO = {
    "StorageFull": "no space left on the device",
    "No space left": "no space left on the device",
    "PermissionDenied": "permission denied",
    "Permission denied": "permission denied",
    "NotFound": "a file is missing",
}


def weights_error_message(text: str) -> str:
    """What a ``SafetensorError`` means: an OS error while reading or writing weights, or damaged weights.

    A full disk while saving a checkpoint surfaces as ``Error while serializing: IoError(... StorageFull
    ...)``; calling that "damaged weights" sent users looking for a bad file instead of free space.
    """
    flat = " ".join(text.split())
    for marker, meaning in _SAFETENSORS_IO.items():
        if marker in flat:
            return f"cannot read or write .safetensors weights: {meaning} ({flat})"
    if "IoError" in flat:
        return f"cannot read or write .safetensors weights: an OS error ({flat})"
    return f"damaged .safetensors weights: {flat}"


#: Names (shell patterns) that rewardlab writes into a model or training-run folder: the only entries
#: ``--overwrite`` of ``train`` or ``merge`` may remove from a folder with no record of its own.
MODEL_FOLDER_ENTRIES = (
    "rewardlab.json",
    "heads.safetensors",
    "feature_stats.safetensors",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "README.md",
    "INTEGRATION.md",
    "training_args.bin",
    "data_summary.json",
    "data_summary.md",
    "heldout.jsonl",
    "train_config.yaml",
    "train_log.jsonl",
    "train_summary.json",
    "checkpoints",
    "merged",
    "runs",
    ".rewardlab-run.json",
)


def is_model_folder_entry(name: str) -> bool:
    """True when ``name`` is one of :data:`MODEL_FOLDER_ENTRIES` (or a leftover temporary file)."""
    return _is_leftover(name) or any(fnmatch.fnmatchcase(name, pattern) for pattern in MODEL_FOLDER_ENTRIES)


def _prepare_parent(path: Path) -> None:
    """Create ``path``'s parent folders; a file in the way is a user error."""
    if path.is_dir():
        raise RewardlabError(f"cannot write {path}: it is a folder (give a file path)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise RewardlabError(f"cannot write {path}: a part of its folder path is a file") from exc
    except OSError as exc:
        raise RewardlabError(f"cannot write {path}: {os_reason(exc)}") from exc


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing parent of ``path`` that is a file, not a folder."""
    return next((p for p in path.parents if p.exists() and not p.is_dir()), None)


def check_out_file(path: str | Path, option: str = "--out") -> Path:
    """Fail at once (before any work) when ``path`` cannot be written as a file; return it.

    Raises:
        RewardlabError: ``path`` is a folder, or one of its parents is a file.
    """
    path = Path(path)
    if path.is_dir():
        raise RewardlabError(f"{option} {path} is a folder: give a file path")
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise RewardlabError(f"{option} {path}: {blocker} is a file, not a folder")
    return path


def check_out_folder(path: str | Path, option: str = "--out") -> Path:
    """Fail at once (before any work) when ``path`` cannot be an output folder; return it.

    Raises:
        RewardlabError: ``path`` or one of its parents is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RewardlabError(f"{option} {path} is a file: give a folder")
    blocker = _file_in_the_way(path)
    if blocker is not None:
        raise RewardlabError(f"{option} {path}: {blocker} is a file, not a folder")
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file and a rename; create parent folders.

    Raises:
        RewardlabError: ``path`` is a folder, its parent cannot be created, or the write fails
            (the temporary file is removed on any failure).
    """
    path = Path(path)
    _prepare_parent(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise RewardlabError(f"cannot write {path}: {os_reason(exc)}") from exc
        raise
    return path


def nonfinite_field(obj: Any, at: str = "") -> tuple[str, float] | None:
    """The first NaN or infinite number in ``obj`` (nested dicts and lists): (its field path, value)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return at or "(the value)", obj
    items: Iterable[tuple[str, Any]] = ()
    if isinstance(obj, dict):
        items = ((f"{at}.{k}" if at else str(k), v) for k, v in obj.items())
    elif isinstance(obj, list | tuple):
        items = ((f"{at}[{i}]", v) for i, v in enumerate(obj))
    for where, value in items:
        found = nonfinite_field(value, where)
        if found is not None:
            return found
    return None


def dumps(obj: Any, where: str, indent: int | None = None) -> str:
    """``json.dumps`` refusing NaN and infinity (invalid JSON), naming ``where`` and the field."""
    try:
        return json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        found = nonfinite_field(obj)
        if found is None:
            raise
        field, value = found
        raise RewardlabError(
            f"{where}: field {field} is {value}, not a finite number (not valid JSON); nothing written"
        ) from exc


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically; NaN or infinity is refused, naming the field."""
    return write_text(path, dumps(obj, str(path), indent=2) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    """Write one JSON line per row, atomically; NaN or infinity is refused, naming the line and field."""
    lines = [dumps(row, f"{path}, line {i}") + "\n" for i, row in enumerate(rows, 1)]
    return write_text(path, "".join(lines))


@contextmanager
def atomic_dir(path: str | Path, own: Iterable[str] | None = None) -> Iterator[Path]:
    """Build an output folder in a temporary sibling and swap it in whole at the end.

    Yields the temporary folder to write into. When the block succeeds, ``path`` (with whatever an
    earlier run left there) is replaced by it; when it fails, the temporary folder is removed and
    ``path`` is left exactly as it was.

    Args:
        path: The output folder.
        own: Names the command writes into the folder. When given, an existing ``path`` holding
            anything else is refused (before any work), so that replacing it never deletes
            files the command did not write.

    Raises:
        RewardlabError: ``path`` is a file, holds files that are not the command's, or cannot be
            created or replaced.
    """
    shown, path = Path(path), check_out_dir(path, own)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _sibling(path, "tmp")
        tmp.mkdir()
    except (FileExistsError, NotADirectoryError) as exc:
        raise RewardlabError(f"cannot write the folder {shown}: a part of its path is a file") from exc
    except OSError as exc:
        raise RewardlabError(f"cannot write the folder {shown}: {os_reason(exc)}") from exc
    try:
        yield tmp
        _swap(tmp, path, shown)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_out_dir(path: str | Path, own: Iterable[str] | None = None) -> Path:
    """Check that ``atomic_dir`` may replace the folder ``path``; return its absolute path.

    Call it before the work, so a run that cannot write its outputs fails at once.

    Raises:
        RewardlabError: ``path`` is a file, holds the current folder, or (with ``own``) holds
            anything but the names in ``own``.
    """
    shown = check_out_folder(path)
    path = Path(os.path.realpath(path))  # a link to the folder stays a link: its target is replaced
    if path == Path(path.anchor) or Path.cwd().is_relative_to(path):
        raise RewardlabError(f"cannot replace the folder {shown}: it holds the current folder")
    if own is None or not path.is_dir():
        return path
    names = set(own)
    foreign = sorted(p.name for p in path.iterdir() if p.name not in names and not _is_leftover(p.name))
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RewardlabError(
            f"{shown} holds files this command did not write ({listed}); it replaces its output "
            "folder whole, so give a new or empty folder"
        )
    return path


def _sibling(path: Path, kind: str) -> Path:
    """A hidden, unused name beside ``path``: ``.NAME.KIND<pid>-<random>``."""
    return path.with_name(f".{path.name}.{kind}{os.getpid()}-{secrets.token_hex(4)}")


def _is_leftover(name: str) -> bool:
    """A temporary file of ``write_text`` (``.NAME.tmpPID``), left by a run that was killed."""
    return re.fullmatch(r"\..+\.tmp\d+", name) is not None


def _swap(new: Path, path: Path, shown: Path) -> None:
    """Put the folder ``new`` at ``path``; an existing ``path`` is moved aside, then removed."""
    old = _sibling(path, "old") if path.exists() else None
    try:
        if old is not None:
            path.replace(old)
        new.replace(path)
    except OSError as exc:
        if old is not None and old.exists() and not path.exists():
            old.replace(path)  # put the earlier outputs back
        raise RewardlabError(f"cannot replace the folder {shown}: {os_reason(exc)}") from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
