"""The output folder of ``rewardlab train``: an earlier run is never replaced by accident.

The rule, for every method and kind: an OUT that holds a run (``rewardlab.json`` or
``heads.safetensors``: a finished model; ``checkpoints/``: a started one) is continued with
``--resume`` (outcome and process models, from their checkpoints) or replaced with ``--overwrite``;
without either the run is refused before anything is loaded (:func:`check_out`). Nothing is written
into OUT until the config, the data and the model have loaded (:func:`open_out`, called by
:func:`rewardlab.training.recipe.run_recipe` right before a method trains, or after it for
embedding heads); with ``--overwrite`` that is also when the earlier run's folder is
removed. On ``--resume``, :func:`trim_log` keeps the JSONL log up to the checkpoint's step, so
the steps redone after it are not logged twice.

``--overwrite`` removes only what an earlier run wrote. Every run records, in :data:`MANIFEST`, the
entries OUT held before it wrote anything; those are the user's and are kept. A folder with no
record (a run of an older rewardlab, or a folder someone made) gives up only the names rewardlab
writes (:data:`rewardlab.io_utils.MODEL_FOLDER_ENTRIES`), and any other entry there makes
``--overwrite`` refuse, naming it. An input of the run (``--data``, ``--eval-data``) that would be
removed is refused too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.io_utils import is_model_folder_entry, write_json

#: Files and folders that only a training run writes into OUT.
RUN_MARKERS = ("rewardlab.json", "heads.safetensors", "checkpoints")
CONFIG_FILE = "train_config.yaml"
#: The record of a run's OUT: ``{"preexisting": [names OUT held before the run wrote anything]}``.
MANIFEST = ".rewardlab-run.json"


def holds_run(out: Path) -> bool:
    """Whether ``out`` holds a finished or started training run."""
    return any((out / name).exists() for name in RUN_MARKERS)


def check_out(cfg: Any) -> None:
    """Refuse a bad OUT before anything loads.

    A file; a run without ``--resume`` or ``--overwrite``; ``--resume`` without a complete checkpoint.
    """
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise RewardlabError(f"--out {out} is a file, not a folder")
    if cfg.overwrite and holds_run(out) and Path.cwd().resolve().is_relative_to(out.resolve()):
        raise RewardlabError(
            f"--overwrite would remove {out}, which holds the current folder: give another --out"
        )
    if holds_run(out) and not (cfg.resume or cfg.overwrite):
        raise RewardlabError(
            f"{out} already holds a training run: use --resume to continue it, --overwrite to replace it, "
            "or another --out"
        )
    if cfg.overwrite and holds_run(out):
        check_overwrite(out, [p for p in (cfg.data, getattr(cfg, "eval_data", None)) if p])
    if cfg.resume:
        if last_complete_checkpoint(out / "checkpoints")[0] is None:
            raise RewardlabError(
                f"--resume: {out / 'checkpoints'} holds no complete checkpoint (the run stopped before its "
                f"first save; one is written every --save-steps {getattr(cfg, 'save_steps', '?')} steps): "
                "start it again with --overwrite"
            )


def earlier_run(out: Path) -> tuple[list[Path], list[str], bool]:
    """(entries of OUT an earlier run wrote, names it did not, whether OUT has the run's record)."""
    try:
        kept = set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["preexisting"])
        recorded = True
    except (OSError, ValueError, KeyError, TypeError):
        kept, recorded = set(), False
    ours, others = [], []
    for entry in sorted(out.iterdir()):
        if (entry.name not in kept) if recorded else is_model_folder_entry(entry.name):
            ours.append(entry)
        else:
            others.append(entry.name)
    return ours, others, recorded


def check_overwrite(out: Path, inputs: list[str]) -> None:
    """Refuse an ``--overwrite`` that would remove an input of the run or files of unknown origin."""
    ours, others, recorded = earlier_run(out)
    for given in inputs:
        path = Path(given).resolve()
        hit = next((e for e in ours if path == e.resolve() or path.is_relative_to(e.resolve())), None)
        if hit is not None:
            raise RewardlabError(
                f"--overwrite would remove {given}, an input of this run ({hit.name} in {out} was written by "
                "the earlier run): move it out of the folder, or give another --out"
            )
    if others and not recorded:
        listed = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise RewardlabError(
            f"--overwrite: {out} holds files rewardlab did not write ({listed}), and no record of the run "
            "that says what is its own; --overwrite removes only a run's own files: move them, or give "
            "another --out"
        )


def _remove_earlier_run(out: Path) -> None:
    """Remove what the earlier run in OUT wrote (checked by :func:`check_overwrite`), nothing else."""
    for entry in earlier_run(out)[0]:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _record_run(out: Path) -> None:
    """Write OUT's :data:`MANIFEST` once: what OUT held before this run (a resumed run keeps its record)."""
    if (out / MANIFEST).exists():
        return
    names = [p.name for p in out.iterdir()]
    # a resumed run of an older rewardlab: its own files are the names rewardlab writes
    preexisting = [n for n in names if not is_model_folder_entry(n)] if holds_run(out) else names
    write_json(out / MANIFEST, {"preexisting": sorted(preexisting)})


def open_out(cfg: Any, main_process: bool = True) -> Path:
    """Make OUT ready: remove the run it held (``--overwrite``), create it, record it, save the config.

    Only the main process writes; call it once the config, the data and the model have loaded.
    """
    from rewardlab.config import save_yaml

    out = Path(cfg.out)
    if main_process:
        if cfg.overwrite and holds_run(out):
            _remove_earlier_run(out)
        out.mkdir(parents=True, exist_ok=True)
        _record_run(out)
        save_yaml(cfg, out / CONFIG_FILE)
    return out


def checkpoint_step(checkpoint: str | Path) -> int:
    """The optimizer step of a ``checkpoint-N`` folder (from its ``trainer_state.json``, else its name)."""
    state = Path(checkpoint) / "trainer_state.json"
    try:
        return int(json.loads(state.read_text())["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def trim_log(path: Path, step: int) -> int:
    """Keep the lines of a JSONL training log up to ``step``; return how many lines were removed.

    A run resumed from the checkpoint of ``step`` logs the later steps again. Lines that are not
    JSON (e.g. the last one of a run killed while writing it) are removed too, and counted.
    """
    if not path.exists():
        return 0
    kept, removed = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            ok = isinstance(row, dict) and int(row.get("step", 0)) <= step
        except (ValueError, TypeError):
            ok = False
        if ok:
            kept.append(line + "\n")
        else:
            removed += 1
    if removed:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        tmp.replace(path)
    return removed


def last_complete_checkpoint(folder: Path) -> tuple[Path | None, list[Path]]:
    """The newest checkpoint whose ``trainer_state.json`` exists, and newer incomplete ones.

    The Trainer writes ``trainer_state.json`` last, so a run killed while saving leaves a
    newest folder without it: resuming from that folder would fail.
    """
    if not folder.is_dir():
        return None, []
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    skipped = []
    for p in found:
        if (p / "trainer_state.json").exists():
            return p, skipped
        skipped.append(p)
    return None, skipped
