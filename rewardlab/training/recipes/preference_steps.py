"""The data steps of the recipes that train on preference data (outcome, TRL, embedding heads).

:func:`load_preference_data` reads the training data (``--data``) and the held-out data
(``--eval-data``, or a share of ``--data``'s prompts: :func:`load_preference_split`) and
summarises the training data; :func:`write_preference_summary` writes that summary into OUT
(``data_summary.json``, ``data_summary.md``). :func:`refuse_cpu_flex_attention` refuses, before a
model loads, an attention kernel the CPU cannot train with. Not a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.config import parse_assignments
from rewardlab.errors import RewardlabError


@dataclass
class PreferenceSplit:
    """A run's preference data: the training and held-out sets, how they were split, the summary.

    Args:
        train: The training :class:`~rewardlab.data.PreferenceData`.
        evals: The held-out data (empty with ``--eval-split 0``).
        split: How: ``{"eval_data": ...}`` or ``{"eval_split": ..., "split_by": "prompt"}``.
        summary: The training data's summary (:func:`rewardlab.data.summary.summarize`).
    """

    train: Any
    evals: Any
    split: dict[str, Any]
    summary: dict[str, Any]


def load_preference_split(cfg: Any) -> tuple[Any, Any, dict[str, Any]]:
    """The training and held-out preference data (``--eval-data``, or a split by prompt) and how."""
    from rewardlab.data import load_preferences
    from rewardlab.data.split import split_by_prompt

    kwargs = {"format": cfg.format, "mapping": parse_assignments(cfg.map, "--map"), "on_error": cfg.on_error}
    data = load_preferences(cfg.data, **kwargs)
    if cfg.eval_data:
        train, evals = data, load_preferences(cfg.eval_data, **kwargs)
        how = {"eval_data": cfg.eval_data}
    else:
        train, evals = split_by_prompt(data, cfg.eval_split or 0.0, cfg.seed)
        how = {"eval_split": cfg.eval_split, "split_by": "prompt"}
    if getattr(cfg, "max_pairs", None):
        how["max_pairs"] = cfg.max_pairs
        how["sampled_from"] = sample_pairs(train, cfg.max_pairs, cfg.seed)
    return train, evals, how


def sample_pairs(data: Any, n: int, seed: int) -> int:
    """Keep a seeded random sample of ``n`` of ``data``'s pairs and ranked lists, in their order.

    Returns how many there were before.
    """
    from rewardlab.data.split import seeded_sample

    items = [("p", p) for p in data.pairs] + [("l", x) for x in data.lists]
    kept = seeded_sample(items, n, seed)
    data.pairs[:] = [p for kind, p in kept if kind == "p"]
    data.lists[:] = [x for kind, x in kept if kind == "l"]
    return len(items)


def load_preference_data(cfg: Any) -> PreferenceSplit:
    """The preference data of a run, its split and the training data's summary; nothing is written."""
    from rewardlab.data.summary import summarize

    train, evals, split = load_preference_split(cfg)
    return PreferenceSplit(train, evals, split, summarize(train, source=cfg.data))


#: The held-out pairs of a run that split them from ``--data`` (``--eval-split``), for ``rewardlab eval``.
HELD_OUT_FILE = "heldout.jsonl"


def write_preference_summary(data: PreferenceSplit, out: Path, say: Any = None) -> None:
    """``data_summary.json`` and ``data_summary.md`` in ``out``, and the held-out pairs split from ``--data``.

    With ``--eval-split`` the held-out pairs go to ``heldout.jsonl`` (explicit rows, ties marked), so
    ``rewardlab eval --model OUT --data OUT/heldout.jsonl`` scores the very pairs the run held out.
    """
    from rewardlab.data.split import write_pairs
    from rewardlab.data.summary import write_summary

    write_summary(data.summary, out)
    if "eval_split" in data.split and data.evals.pairs:
        write_pairs(data.evals.pairs, out / HELD_OUT_FILE)
        written = {"file": HELD_OUT_FILE, "pairs": len(data.evals.pairs)}
        if data.evals.lists:  # a ranked list has no explicit-pair row: counted and said, not dropped silently
            written["ranked_lists_not_written"] = len(data.evals.lists)
            if say is not None:
                say(
                    f"{HELD_OUT_FILE}: {len(data.evals.pairs)} held-out pairs written; "
                    f"{len(data.evals.lists)} held-out ranked lists are not (the file holds pairs only)"
                )
        data.split["held_out_written"] = written


def refuse_cpu_flex_attention(cfg: Any) -> None:
    """FlexAttention has no backward on the CPU: refuse it before the model loads."""
    if cfg.attn_implementation == "flex_attention":
        import torch

        if not torch.cuda.is_available():
            raise RewardlabError(
                "--attn-implementation flex_attention: PyTorch has no FlexAttention backward on the CPU; "
                "train with it on a GPU (scoring on the CPU works)"
            )
