"""Splits by prompt: the held-out share of training and K-fold splits for cross-validation.

Every split by prompt shuffles the distinct prompt keys (:func:`~rewardlab.data.schema.text_key`)
with the seed (:func:`shuffled_keys`): :func:`held_out_prompts` takes the first share of them
(``rewardlab train --eval-split``, pairs and lists by :func:`split_by_prompt`, step-labelled
solutions of PRMs); :func:`fold_of_prompts` deals them into folds.

``rewardlab data split --data PATH --folds 5 --out DIR`` writes ``DIR/fold{k}/train.jsonl`` and
``DIR/fold{k}/test.jsonl`` (explicit ``prompt``/``chosen``/``rejected`` rows, with ``margin`` and
``category`` when the pair has them) and ``DIR/split.json``. The folds are the ones
``rewardlab bench embedding`` uses, so a full fine-tune can be compared fold by fold:
``rewardlab train --data DIR/fold0/train.jsonl --eval-data DIR/fold0/test.jsonl ...``. With
``--test-share S`` it writes one split instead, ``DIR/train.jsonl`` and ``DIR/test.jsonl``, by the
held-out rule of ``train --eval-split`` (:func:`write_test_split`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewardlab.data.schema import PreferenceData, PreferencePair, Text, text_key


def shuffled_keys(keys: Iterable[str], seed: int) -> list[str]:
    """The distinct ``keys``, sorted, then shuffled by ``seed`` (the same order on every machine)."""
    ordered = sorted(set(keys))
    random.Random(seed).shuffle(ordered)
    return ordered


def held_out_prompts(prompts: list[Text], share: float, seed: int) -> set[str]:
    """Keys (:func:`text_key`) of ``ceil(share × distinct prompts)`` prompts, drawn with ``seed``.

    Every split by prompt (pairs and lists here, step-labelled solutions for PRMs) uses this rule.
    """
    keys = shuffled_keys((text_key(p) for p in prompts), seed)
    return set(keys[: math.ceil(share * len(keys))]) if share > 0 else set()


def split_by_prompt(data: PreferenceData, share: float, seed: int) -> tuple[PreferenceData, PreferenceData]:
    """Hold out ``share`` of the prompts (all their pairs and lists) as evaluation data.

    Splitting by prompt keeps near-copies of a training example out of the held-out set.
    """
    held = held_out_prompts([p.prompt for p in data.pairs] + [lst.prompt for lst in data.lists], share, seed)
    train = PreferenceData(files=data.files)
    evals = PreferenceData(files=data.files)
    for p in data.pairs:
        (evals if text_key(p.prompt) in held else train).pairs.append(p)
    for lst in data.lists:
        (evals if text_key(lst.prompt) in held else train).lists.append(lst)
    return train, evals


def seeded_sample(items: list[Any], n: int | None, seed: int) -> list[Any]:
    """A seeded random sample of ``n`` of ``items``, in their order (all when ``n`` is None or not smaller).

    The one sampling rule of ``--max-pairs`` (train, eval, bench embedding): the same seed picks the
    same positions everywhere.
    """
    if n is None or len(items) <= n:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def fold_of_prompts(keys: Iterable[str], folds: int, seed: int) -> dict[str, int]:
    """Assign each prompt key to one of ``folds`` folds: shuffled by ``seed``, then dealt in turn."""
    ordered = shuffled_keys(keys, seed)
    return {k: i % folds for i, k in enumerate(ordered)}


def _row(p: PreferencePair) -> dict[str, Any]:
    row: dict[str, Any] = {"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected}
    if p.margin is not None:
        row["margin"] = p.margin
    if p.category is not None:
        row["category"] = p.category
    if p.tie:
        row["tie"] = True
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


def write_test_split(pairs: list[PreferencePair], out: str | Path, share: float, seed: int) -> dict[str, Any]:
    """Write ``out/train.jsonl`` and ``out/test.jsonl``: ``share`` of the prompts held out.

    The held-out prompts follow the rule of ``train --eval-split`` (:func:`held_out_prompts`), so the
    test file holds the pairs a training run with that share and seed evaluates on. Returns what
    ``split.json`` holds.
    """
    from rewardlab.io_utils import write_json

    out = Path(out)
    held = held_out_prompts([p.prompt for p in pairs], share, seed)
    test = [p for p in pairs if text_key(p.prompt) in held]
    train = [p for p in pairs if text_key(p.prompt) not in held]
    write_pairs(train, out / "train.jsonl")
    write_pairs(test, out / "test.jsonl")
    record = {"test_share": share, "seed": seed, "pairs": len(pairs), "train_pairs": len(train),
              "test_pairs": len(test), "test_prompts": len(held)}  # fmt: skip
    write_json(out / "split.json", record)
    return record
