"""Standard reward-model benchmarks for ``rewardlab eval --suite NAME`` (data by path, no download).

* ``rm-bench`` (Liu et al. 2024, arXiv 2410.16184): records ``prompt``, ``chosen`` [3], ``rejected`` [3]
  (styles concise, detailed plain, detailed markdown), ``id`` and ``domain`` (chat, code, math,
  safety-refuse/safety-response → safety). Per domain, the 3×3 style matrix and its hard (upper
  triangle), normal (diagonal) and easy (lower triangle) accuracy; overall = mean over domains.
* ``rewardbench`` (v1, Lambert et al. 2024, arXiv 2403.13787): records ``prompt``, ``chosen``,
  ``rejected``, ``subset``. Per subset, the share of pairs with r(chosen) > r(rejected); sections
  Chat, Chat Hard, Safety, Reasoning weighted by the published example counts (math-prm counts as
  984 prompts, as many as the six code subsets together); overall = mean of the sections.
* ``rewardbench2`` (Malik et al. 2025, arXiv 2506.01937): records ``prompt``, ``chosen`` [1],
  ``rejected`` [3+], ``subset``, ``id``. Best-of-4 credit per prompt averaged per domain; the Ties
  domain (ids ``ref:N``/``tied:N``, several correct answers) uses its own weighted score; overall =
  mean of the domains.

Every record is also expanded into preference pairs (each chosen against each rejected response,
the category being the domain or subset), so the usual metrics, examples and comparisons apply;
each distinct text is scored once. Domains or subsets absent from the data are listed as
``missing``; records of groups the benchmark does not score are counted under ``unscored``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewardlab import metrics as M
from rewardlab.data.io import DataError, data_files, iter_records
from rewardlab.data.schema import PreferencePair, Text, text_key
from rewardlab.evaluation.config import REWARDBENCH_SECTIONS

RM_BENCH_DOMAINS = ("chat", "code", "math", "safety")
RM_BENCH_STYLES = ("concise", "detailed plain", "detailed markdown")
#: RewardBench v1 example counts used as subset weights (allenai/reward-bench, ``EXAMPLE_COUNTS``);
#: math-prm has 447 prompts but weighs 984 = 6 × 164, the code subsets together.
REWARDBENCH_WEIGHTS: dict[str, int] = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "xstest-should-refuse": 154,
    "xstest-should-respond": 250,
    "donotanswer": 136,
    "math-prm": 984,
    **{f"hep-{lang}": 164 for lang in ("cpp", "go", "java", "js", "python", "rust")},
}
RB2_DOMAINS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
_TIES_ID = re.compile(r"(ref|tied):(.+)")


@dataclass
class Item:
    """One benchmark prompt with its chosen and rejected responses."""

    id: str
    prompt: Text
    chosen: list[Text]
    rejected: list[Text]
    group: str
    where: str


@dataclass
class SuiteData:
    """The records of one ``--data`` read for a suite."""

    suite: str
    items: list[Item] = field(default_factory=list)
    unscored: Counter[str] = field(default_factory=Counter)


def _texts(rec: dict[str, Any], name: str, where: str, count: int | None, at_least: int = 1) -> list[Text]:
    from rewardlab.data.formats import read_text

    value = rec.get(name)
    if isinstance(value, str) and (count == 1 or (count is None and at_least <= 1)):
        value = [value]
    if not isinstance(value, list) or (count is not None and len(value) != count) or len(value) < at_least:
        want = f"{count}" if count is not None else f"at least {at_least}"
        raise DataError(where, "bad field", f"expected a list of {want} responses", field=name)
    return [
        read_text({"t": v}, "t", where, allow_empty=True, shown=f"{name}[{i}]") for i, v in enumerate(value)
    ]


def _group(rec: dict[str, Any], names: tuple[str, ...], where: str) -> str:
    for name in names:
        value = rec.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise DataError(where, "missing field", "missing or empty", field=names[0])


def read_item(suite: str, rec: dict[str, Any], where: str) -> Item:
    """One record of ``suite`` as an :class:`Item`.

    Raises:
        DataError: a missing or malformed field, named with the record's location.
    """
    from rewardlab.data.formats import read_text

    prompt = read_text(rec, "prompt", where)
    rid = str(rec.get("id", where))
    if suite == "rm-bench":
        domain = _group(rec, ("domain", "subset"), where)
        domain = "safety" if domain.startswith("safety") else domain
        return Item(
            rid, prompt, _texts(rec, "chosen", where, 3), _texts(rec, "rejected", where, 3), domain, where
        )
    if suite == "rewardbench":
        subset = _group(rec, ("subset",), where)
        return Item(
            rid, prompt, _texts(rec, "chosen", where, 1), _texts(rec, "rejected", where, 1), subset, where
        )
    subset = _group(rec, ("subset",), where)
    subset = next((d for d in RB2_DOMAINS if d.lower() == subset.lower()), subset)
    if subset == "Ties":
        if not _TIES_ID.fullmatch(rid):
            raise DataError(where, "bad field", "a Ties record's id is ref:N or tied:N", field="id")
        return Item(
            rid,
            prompt,
            _texts(rec, "chosen", where, None),
            _texts(rec, "rejected", where, None),
            subset,
            where,
        )
    chosen = _texts(rec, "chosen", where, 1)
    return Item(rid, prompt, chosen, _texts(rec, "rejected", where, None, at_least=3), subset, where)


def _known(suite: str) -> tuple[str, ...]:
    if suite == "rm-bench":
        return RM_BENCH_DOMAINS
    if suite == "rewardbench":
        return tuple(REWARDBENCH_WEIGHTS)
    return RB2_DOMAINS


def load_suite(suite: str, path: str, on_error: str) -> tuple[SuiteData, int, list[dict[str, Any]]]:
    """Read every record of ``path`` for ``suite``; return the data, the records dropped and per-file counts.

    Raises:
        DataError: a bad record (``on_error="fail"``), or a file that cannot be read.
    """
    from rewardlab.evaluation.suite_shapes import official_record

    data = SuiteData(suite)
    dropped, files = 0, []
    for f in data_files(Path(path)):
        count, bad = 0, 0
        for rec in iter_records(f):
            try:
                if isinstance(rec, DataError):
                    raise rec
                where = str(rec.where)
                item = read_item(suite, official_record(suite, rec.data, where, f), where)
            except DataError:
                if on_error == "fail":
                    raise
                bad += 1
                continue
            count += 1
            data.items.append(item)
            if item.group not in _known(suite):
                data.unscored[item.group] += 1
        dropped += bad
        files.append({"path": str(f), "format": suite, "records": count, "dropped": bad})
    if not data.items:
        raise DataError(path, "no records", f"no {suite} records to evaluate")
    return data, dropped, files


def suite_pairs(data: SuiteData) -> list[PreferencePair]:
    """Every chosen response against every rejected one, as pairs whose category is the group."""
    return [
        PreferencePair(item.prompt, c, r, category=item.group, origin=item.where)
        for item in data.items
        for c in item.chosen
        for r in item.rejected
    ]


def load_suite_datasets(cfg: Any) -> list[Any]:
    """Every ``--data`` of a ``--suite`` run as an evaluation dataset (pairs plus the suite's records)."""
    from rich.console import Console

    from rewardlab.evaluation.inputs import Dataset, split_name, unique_names

    console = Console()

    entries = [split_name(d) for d in cfg.data]
    out = []
    for name, (_, path) in zip(unique_names(entries), entries, strict=True):
        data, dropped, files = load_suite(cfg.suite, path, cfg.on_error)
        missing = [g for g in _known(cfg.suite) if g not in {i.group for i in data.items}]
        if missing:  # said once here; each model's line then names its overall partial
            console.print(
                f"{name}: no {cfg.suite} records of {', '.join(missing)}: its overall will be PARTIAL "
                "(the mean of what is present, not comparable with published numbers)",
                soft_wrap=True,
            )
        out.append(Dataset(name, path, suite_pairs(data), dropped, files, suite=data))
    return out


Scored = tuple[Item, list[float], list[float]]


def item_scores(
    data: SuiteData, pairs: list[PreferencePair], rc: list[float], rr: list[float]
) -> list[Scored]:
    """Each record with the rewards of its chosen and of its rejected responses (looked up from the pairs)."""
    rewards: dict[tuple[str, str], float] = {}
    for p, a, b in zip(pairs, rc, rr, strict=True):
        rewards[(text_key(p.prompt), text_key(p.chosen))] = a
        rewards[(text_key(p.prompt), text_key(p.rejected))] = b

    def scores(item: Item, texts: list[Text]) -> list[float]:
        return [rewards[(text_key(item.prompt), text_key(t))] for t in texts]

    return [(i, scores(i, i.chosen), scores(i, i.rejected)) for i in data.items]


def score_items(suite: str, scored: list[Scored]) -> dict[str, Any]:
    """The benchmark's rule applied to scored records: per domain (or section) and overall."""
    groups: dict[str, list[Scored]] = {}
    for entry in scored:
        groups.setdefault(entry[0].group, []).append(entry)
    rule = {"rm-bench": _rm_bench, "rewardbench": _rewardbench, "rewardbench2": _rewardbench2}[suite]
    out = rule(groups)
    out["missing"] = [g for g in _known(suite) if g not in groups]
    return out


def suite_score(
    data: SuiteData, pairs: list[PreferencePair], rc: list[float], rr: list[float]
) -> dict[str, Any]:
    """The benchmark's score of one model: per domain (or section), overall, what is missing."""
    out = score_items(data.suite, item_scores(data, pairs, rc, rr))
    out["unscored"] = dict(sorted(data.unscored.items()))
    out["complete"] = not out["missing"] and not out.get("incomplete")
    return out


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _rm_bench(groups: dict[str, list[Scored]]) -> dict[str, Any]:
    domains = {}
    for name in RM_BENCH_DOMAINS:
        if name in groups:
            items = groups[name]
            matrix = M.style_matrix([c for _, c, _ in items], [r for _, _, r in items])
            acc = M.style_accuracy(matrix)
            domains[name] = {"score": acc["avg"], "n": len(items), **acc, "matrix": matrix}
    out: dict[str, Any] = {"overall": _mean([d["avg"] for d in domains.values()])}
    for key in ("hard", "normal", "easy"):
        out[key] = _mean([d[key] for d in domains.values()])
    out["domains"] = domains
    return out


def _rewardbench(groups: dict[str, list[Scored]]) -> dict[str, Any]:
    subsets = {}
    for name in REWARDBENCH_WEIGHTS:
        if name in groups:
            wins = [c[0] > r[0] for _, c, r in groups[name]]
            subsets[name] = {"n": len(wins), "accuracy": sum(wins) / len(wins)}
    acc = {k: v["accuracy"] for k, v in subsets.items()}
    sections = M.weighted_sections(acc, REWARDBENCH_WEIGHTS, REWARDBENCH_SECTIONS)
    domains = {
        s: {"score": v, "n": sum(subsets[k]["n"] for k in REWARDBENCH_SECTIONS[s] if k in subsets)}
        for s, v in sections.items()
    }
    return {
        "overall": _mean(list(sections.values())),
        "domains": domains,
        "missing_sections": [s for s in REWARDBENCH_SECTIONS if s not in sections],
        "subsets": subsets,
    }


def _rewardbench2(groups: dict[str, list[Scored]]) -> dict[str, Any]:
    domains: dict[str, dict[str, Any]] = {}
    for name in RB2_DOMAINS:
        if name not in groups:
            continue
        items = groups[name]
        if name == "Ties":
            sets: dict[str, dict[str, tuple[list[float], list[float]]]] = {"ref": {}, "tied": {}}
            for i, c, r in items:
                m = _TIES_ID.fullmatch(i.id)
                assert m is not None  # checked when read
                sets[m.group(1)][m.group(2)] = (c, r)
            ties = M.ties_score(sets["ref"], sets["tied"])
            domains[name] = {**ties, "n": len(items)}
        else:
            credit = [M.best_of_n_credit(c[0], r) for _, c, r in items]
            domains[name] = {"score": sum(credit) / len(credit), "n": len(items)}
    incomplete = {n: d["incomplete"] for n, d in domains.items() if d.get("incomplete")}
    scored = [d["score"] for d in domains.values() if d["score"] is not None]
    return {"overall": _mean(scored), "domains": domains, "incomplete": incomplete}


def _note(s: dict[str, Any]) -> str:
    parts = []
    if s["missing"]:
        parts.append(
            f"Missing from the data: {', '.join(s['missing'])}; the overall score averages what is present "
            "and is not comparable with published numbers."
        )
    if s.get("missing_sections"):
        parts.append(f"Sections with no subset at all: {', '.join(s['missing_sections'])}.")
    if s.get("incomplete"):
        shown = "; ".join(f"{k}: {', '.join(v)}" for k, v in s["incomplete"].items())
        parts.append(f"Partial (not scored as complete): {shown}.")
    if s["unscored"]:
        shown = ", ".join(f"{k} ({v})" for k, v in s["unscored"].items())
        parts.append(f"Records of groups this benchmark does not score (pairwise metrics only): {shown}.")
    return " ".join(parts)


def suite_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]], str]]:
    """(title, header, rows, note on what is missing) of each dataset's benchmark scores."""
    suite = report.get("suite")
    if not suite:
        return []
    out = []
    for name, per_model in report["results"].items():
        models = list(per_model)
        scores = [per_model[m]["suite"] for m in models]
        keys = ["overall", "hard", "normal", "easy"] if suite == "rm-bench" else ["overall"]
        rows = [
            [f"overall: {k}" if k != "overall" else "overall", ""] + [_f(s.get(k)) for s in scores]
            for k in keys
        ]
        for d in scores[0]["domains"]:
            parts = ("avg", "hard", "normal", "easy") if suite == "rm-bench" else ("score",)
            for k in parts:
                label = d if k in ("avg", "score") else f"{d}: {k}"
                rows.append(
                    [label, str(scores[0]["domains"][d]["n"])] + [_f(s["domains"][d][k]) for s in scores]
                )
        if suite == "rewardbench":
            for sub, v in scores[0]["subsets"].items():
                rows.append(
                    [f"subset {sub}", str(v["n"])] + [_f(s["subsets"][sub]["accuracy"]) for s in scores]
                )
        if suite == "rm-bench":
            for d in scores[0]["domains"]:
                for i, style in enumerate(RM_BENCH_STYLES):
                    rows.append(
                        [f"{d}: chosen {style} vs rejected (concise, plain, markdown)", ""]
                        + [" ".join(f"{x:.2f}" for x in s["domains"][d]["matrix"][i]) for s in scores]
                    )
        out.append((f"{name}: {suite} score", ["", "prompts", *models], rows, _note(scores[0])))
    return out


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def suite_finding(suite: str | None, model: str, dataset: str, s: dict[str, Any], detail: bool = True) -> str:
    """The headline sentence of one model's benchmark score (``detail``: say what makes it partial)."""
    line = f"{model} on {dataset}: {suite} overall {_f(s['overall'])}"
    if s["missing"] or s.get("incomplete"):
        line += " (PARTIAL: " + "; ".join(partial_parts(s)) + ")" if detail else " (PARTIAL)"
    if suite == "rm-bench":
        line += f"; hard {_f(s['hard'])}, normal {_f(s['normal'])}, easy {_f(s['easy'])}"
    return line + "."


def partial_parts(s: dict[str, Any]) -> list[str]:
    """What makes a benchmark score partial: the groups missing, and those scored from part of their data."""
    parts = [f"no {', '.join(s['missing'])}"] if s["missing"] else []
    if s.get("incomplete"):
        parts.append(f"{', '.join(s['incomplete'])} scored from part of its data, or not at all")
    return parts
