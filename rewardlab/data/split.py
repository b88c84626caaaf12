"""K-fold splits of preference data by prompt, for cross-validation outside rewardlab.

``rewardlab data split --data PATH --folds 5 --out DIR`` writes ``DIR/fold{k}/train.jsonl`` and
``DIR/fold{k}/test.jsonl`` (explicit ``prompt``/``chosen``/``rejected`` rows, with ``margin`` and
``category`` when the pair has them) and ``DIR/split.json``. The folds are the ones
``rewardlab bench embedding`` uses, so a full fine-tune can be compared fold by fold:
``rewardlab train --data DIR/fold0/train.jsonl --eval-data DIR/fold0/test.jsonl ...``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardlab.data.schema import PreferencePair, text_key


def fold_of_prompts(keys: Iterable[str], folds: int, seed: int) -> dict[str, int]:
    """Assign each prompt key to one of ``folds`` folds: shuffled by ``seed``, then dealt in turn."""
    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    return {k: i % folds for i, k in enumerate(ordered)}


def _row(p: PreferencePair) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
    if p.margin is not None:
        row["margin"] = p.margin
    if p.category is not None:
        row["category"] = p.category
    return row


def write_pairs(pairs: list[PreferencePair], path: str | Path) -> Path:
    """Write pairs as explicit JSONL rows: prompt, chosen, rejected, and margin and category if set."""
    from rewardlab.io_utils import write_text

    return write_text(path, "".join(json.dumps(_row(p), ensure_ascii=False) + "\n" for p in pairs))


def write_folds(pairs: list[PreferencePair], out: str | Path, folds: int, seed: int) -> dict[str, Any]:
    """Write the K train/test files of ``pairs`` under ``out``; returns what ``split.json`` holds."""
    from rewardlab.io_utils import write_json

    if folds < 2:
        raise ValueError("--folds must be at least 2")
    out = Path(out)
    fold_of = fold_of_prompts((text_key(p.prompt) for p in pairs), folds, seed)
    which = [fold_of[text_key(p.prompt)] for p in pairs]
    record: dict[str, Any] = {"folds": folds, "seed": seed, "pairs": len(pairs), "test_pairs": []}
    for f in range(folds):
        for name, keep in (("train", lambda w, f=f: w != f), ("test", lambda w, f=f: w == f)):
            chosen = [p for p, w in zip(pairs, which, strict=True) if keep(w)]
            write_pairs(chosen, out / f"fold{f}" / f"{name}.jsonl")
        record["test_pairs"].append(which.count(f))
    write_json(out / "split.json", record)
    return record
