"""Official benchmark files as their repositories publish them, made into the records ``--suite`` scores.

:mod:`rewardlab.evaluation.suites` scores records with ``prompt``, ``chosen``, ``rejected`` and a
group (``domain`` or ``subset``). The published files do not all look like that:

* RM-Bench's per-domain files (``data/chat_filtered.json``, ``code_filtered.json``,
  ``math_filtered.json``, ``safety-refuse_filtered.json``, ``safety-response_filtered.json`` in
  github.com/THU-KEG/RM-Bench) carry a ``subset`` (e.g. ``alpacaeval``) and no ``domain``: the
  domain is read from the file name, else from the subset name (:data:`RM_BENCH_SUBSET_DOMAINS`).
  Its combined ``total_dataset.json`` has ``domain`` and is read as it is.
* LLMBar (github.com/princeton-nlp/LLMBar, ``Dataset/LLMBar/Natural/dataset.json`` and
  ``Dataset/LLMBar/Adversarial/{Neighbor,GPTInst,GPTOut,Manual}/dataset.json``) has ``input``,
  ``output_1``, ``output_2`` and ``label`` (1 or 2): under ``--suite rewardbench`` each file is the
  RewardBench v1 subset its path names (``llmbar-natural``, ``llmbar-adver-neighbor`` …); files
  whose path names none (the ``Processed`` sets) are read and counted as unscored. Under another
  suite such a record is refused with a message saying where it belongs.

Used by :func:`rewardlab.evaluation.suites.load_suite`; tested on fixtures of each shape in
tests/evaluation/test_suite_shapes.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardlab.data.io import DataError

RM_BENCH_FILE_DOMAINS = ("chat", "code", "math", "safety-refuse", "safety-response", "safety")
#: RM-Bench subset-name prefixes (the source benchmarks of its prompts) and the domain each belongs to.
RM_BENCH_SUBSET_DOMAINS = (
    ("alpacaeval", "chat"),
    ("mt-bench", "chat"),
    ("llmbar", "chat"),
    ("hep", "code"),
    ("humaneval", "code"),
    ("math", "math"),
    ("gsm", "math"),
    ("refusals", "safety"),
    ("xstest", "safety"),
    ("donotanswer", "safety"),
    ("safety", "safety"),
)
#: Words of an LLMBar file's path and the RewardBench v1 subset that file is.
LLMBAR_SUBSETS = (
    ("natural", "llmbar-natural"),
    ("neighbor", "llmbar-adver-neighbor"),
    ("gptinst", "llmbar-adver-GPTInst"),
    ("gptout", "llmbar-adver-GPTOut"),
    ("manual", "llmbar-adver-manual"),
)
LLMBAR_FIELDS = ("input", "output_1", "output_2", "label")


def _stem(source: Path) -> str:
    name = source.name.lower()
    for suffix in (".gz", ".jsonl", ".json", ".parquet", ".csv", ".tsv"):
        name = name.removesuffix(suffix)
    return name


def rm_bench_domain(rec: dict[str, Any], source: Path | None) -> str | None:
    """The domain of an RM-Bench record: its ``domain``, else its file's name, else its ``subset``."""
    domain = rec.get("domain")
    if isinstance(domain, str) and domain.strip():
        return None  # read as it is
    if source is not None:
        stem = _stem(source).removesuffix("_filtered")
        if stem in RM_BENCH_FILE_DOMAINS:
            return stem
    subset = rec.get("subset")
    if isinstance(subset, str) and subset.strip():
        name = subset.strip().lower()
        for prefix, dom in RM_BENCH_SUBSET_DOMAINS:
            if name.startswith(prefix):
                return dom
    return None


def is_llmbar(rec: dict[str, Any]) -> bool:
    """A raw LLMBar record (``input``, ``output_1``, ``output_2``, ``label``) without a ``prompt``."""
    return "prompt" not in rec and all(k in rec for k in LLMBAR_FIELDS)


def llmbar_subset(source: Path | None) -> str:
    """The RewardBench v1 subset an LLMBar file is, from its path; else a name of its own (unscored)."""
    if source is None:
        return "llmbar"
    path = source.as_posix().lower()
    if "llmbar" in path:
        for word, subset in LLMBAR_SUBSETS:
            if word in path:
                return subset
    stem = source.name.split(".")[0]
    return source.parent.name if stem == "dataset" and source.parent.name else stem


def from_llmbar(rec: dict[str, Any], where: str, source: Path | None) -> dict[str, Any]:
    """A raw LLMBar record as a RewardBench v1 record (the output ``label`` names is chosen)."""
    label = rec["label"]
    if label not in (1, 2, "1", "2") or isinstance(label, bool):
        raise DataError(where, "bad field", f"an LLMBar label is 1 or 2, got {label!r}", field="label")
    first = str(label) == "1"
    return {
        "id": rec.get("id", where),
        "prompt": rec["input"],
        "chosen": rec["output_1"] if first else rec["output_2"],
        "rejected": rec["output_2"] if first else rec["output_1"],
        "subset": llmbar_subset(source),
    }


def official_record(suite: str, rec: dict[str, Any], where: str, source: Path | None) -> dict[str, Any]:
    """``rec`` in the shape :func:`rewardlab.evaluation.suites.read_item` reads.

    Raises:
        DataError: a raw LLMBar record under a suite that has no LLMBar subsets, or a bad label.
    """
    if is_llmbar(rec):
        if suite != "rewardbench":
            raise DataError(
                where,
                "bad shape",
                f"an LLMBar record (input, output_1, output_2, label): LLMBar is part of --suite "
                f"rewardbench (its llmbar-* subsets), not of {suite}; or evaluate it without --suite",
            )
        return from_llmbar(rec, where, source)
    if suite == "rm-bench":
        domain = rm_bench_domain(rec, source)
        if domain is not None:
            return {**rec, "domain": domain}
    return rec
