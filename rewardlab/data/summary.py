"""Summarise preference data before anyone trains on it: ``rewardlab data summarize``.

The summary is a JSON-ready dict (keys documented in the README, section "data_summary.json")
and a Markdown rendering of it. Pairs analysed are the explicit pairs plus the pairs derived
from ranked lists (all C(K, 2) per list, equal scores as ties).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rewardlab import __version__
from rewardlab.data.schema import PreferenceData, PreferencePair, text_chars, text_key
from rewardlab.data.textnorm import normal_digest
from rewardlab.data.tokens import TRUNCATION_STRATEGIES, TokenCounter, truncate_group
from rewardlab.metrics import describe, fleiss_kappa, krippendorff_alpha_nominal, raw_agreement

#: Below this raw annotator agreement the summary warns (label noise is likely high).
AGREEMENT_WARNING = 0.70
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def _norm_prompt(key: str) -> str | bytes:
    """Normal form (as a digest) for near-duplicate prompts: lower case, letters and digits only."""
    return normal_digest(key, _NOT_ALNUM)


def summarize(
    data: PreferenceData,
    tokenizer: Any = None,
    max_length: int | None = None,
    source: str = "",
) -> dict[str, Any]:
    """Compute the data summary.

    Args:
        data: Loaded data (see :func:`rewardlab.data.load_preferences`).
        tokenizer: Optional Hugging Face tokenizer for token lengths and cut shares.
        max_length: Token budget per sequence (prompt + response, special tokens included);
            needs ``tokenizer``.
        source: The path the data came from, recorded in the summary.

    Returns:
        The summary dict.
    """
    if max_length is not None and tokenizer is None:
        raise ValueError("max_length needs a tokenizer")
    pairs = data.all_pairs(include_ties=True)
    decided = [p for p in pairs if not p.tie]
    usable = [p for p in decided if not p.identical]
    drops = Counter(d.reason for d in data.drops)
    prompts = {text_key(p.prompt) for p in data.pairs} | {text_key(lst.prompt) for lst in data.lists}
    empty = sum(1 for p in pairs for r in (p.chosen, p.rejected) if not text_key(r).strip())
    summary: dict[str, Any] = {
        "rewardlab_version": __version__,
        "source": source,
        "files": [f.to_dict() for f in data.files],
        "counts": {
            "records": sum(f.records for f in data.files),
            "pairs": len(data.pairs),
            "ranked_lists": len(data.lists),
            "pairs_from_lists": sum(len(lst.pairs()) for lst in data.lists),
            "pairs_total": len(pairs),
            "usable_pairs": len(usable),
            "prompts": len(prompts),
            "ties": sum(p.tie for p in pairs),
            "identical_chosen_rejected": sum(p.identical for p in pairs),
            "empty_responses": empty,
            "dropped": sum(drops.values()),
            "drop_reasons": dict(drops),
        },
        "duplicates": _duplicates(pairs),
        "lengths_chars": _lengths(pairs, text_chars),
        "length_bias_chars": _length_bias(usable, lambda p, r: text_chars(r)),
        "lengths_tokens": None,
        "length_bias_tokens": None,
        "truncation": None,
        "agreement": _agreement(data.pairs),
        "prompts": _prompt_diversity(data, pairs),
        "categories": _categories(pairs),
        "ranked_lists": _ranked(data),
        "warnings": [],
    }
    if tokenizer is not None:
        counter = TokenCounter(tokenizer)
        summary["lengths_tokens"] = _lengths(
            pairs,
            lambda t: len(counter.prompt_ids(t)),
            lambda p, r: len(counter.response_ids(p.prompt, r)),
        )
        summary["length_bias_tokens"] = _length_bias(
            usable, lambda p, r: len(counter.response_ids(p.prompt, r))
        )
        if max_length is not None:
            summary["truncation"] = _truncation(pairs, counter, max_length)
    summary["warnings"] = _warnings(summary)
    return summary


def _duplicates(pairs: list[PreferencePair]) -> dict[str, int]:
    keys = [(text_key(p.prompt), text_key(p.chosen), text_key(p.rejected), p.tie) for p in pairs]
    directed = {(k[0], k[1], k[2]) for k in keys if not k[3] and k[1] != k[2]}
    contradictions = sum(1 for (pr, a, b) in directed if (pr, b, a) in directed) // 2
    return {
        "exact_duplicate_pairs": len(keys) - len(set(keys)),
        "contradictory_pairs": contradictions,
    }


def _lengths(pairs: list[PreferencePair], prompt_len, response_len=None) -> dict[str, Any]:  # noqa: ANN001
    response_len = response_len or (lambda p, r: prompt_len(r))
    seen: dict[str, int] = {}
    for p in pairs:
        seen.setdefault(text_key(p.prompt), prompt_len(p.prompt))
    return {
        "prompt": describe(list(seen.values())),
        "chosen": describe([response_len(p, p.chosen) for p in pairs]),
        "rejected": describe([response_len(p, p.rejected) for p in pairs]),
    }


def _length_bias(usable: list[PreferencePair], length) -> dict[str, Any] | None:  # noqa: ANN001
    if not usable:
        return None
    c = Counter()
    for p in usable:
        a, b = length(p, p.chosen), length(p, p.rejected)
        c["longer" if a > b else "shorter" if a < b else "equal"] += 1
    n = len(usable)
    return {
        "pairs": n,
        "chosen_longer_share": c["longer"] / n,
        "chosen_shorter_share": c["shorter"] / n,
        "equal_length_share": c["equal"] / n,
    }


def _truncation(pairs: list[PreferencePair], counter: TokenCounter, max_length: int) -> dict[str, Any]:
    cut = 0
    identical = dict.fromkeys(TRUNCATION_STRATEGIES, 0)
    for p in pairs:
        budget = counter.budget(max_length, p.prompt)
        pid = counter.prompt_ids(p.prompt)
        cid = counter.response_ids(p.prompt, p.chosen)
        rid = counter.response_ids(p.prompt, p.rejected)
        if max(len(cid), len(rid)) + len(pid) <= budget:
            continue
        cut += 1
        if p.identical:
            continue
        for strategy in TRUNCATION_STRATEGIES:
            kept, (a, b) = truncate_group(pid, [cid, rid], budget, strategy)
            identical[strategy] += a == b
    n = len(pairs) or 1
    return {
        "max_length": max_length,
        "pairs_cut": cut,
        "pairs_cut_share": cut / n,
        "identical_after_cut": identical,
        "identical_after_cut_share": {k: v / n for k, v in identical.items()},
        "default_strategy": TRUNCATION_STRATEGIES[0],
    }


def _agreement(pairs: list[PreferencePair]) -> dict[str, Any] | None:
    ratings = [p.source_votes() for p in pairs if p.votes and len(p.votes) >= 2]
    if not ratings:
        return None
    raw = raw_agreement(ratings)
    labels = Counter(v for r in ratings for v in r)
    return {
        "pairs_with_votes": len(ratings),
        "annotators_per_pair": dict(Counter(len(r) for r in ratings)),
        "vote_counts": {"first": labels[1], "second": labels[2], "tie": labels[0]},
        "raw_agreement": raw,
        "unanimous_share": sum(len(set(r)) == 1 for r in ratings) / len(ratings),
        "fleiss_kappa": fleiss_kappa(ratings),
        "krippendorff_alpha": krippendorff_alpha_nominal(ratings),
        "majority_agreement_mean": sum(p.agreement or 0 for p in pairs if p.votes and len(p.votes) >= 2)
        / len(ratings),
    }


def _prompt_diversity(data: PreferenceData, pairs: list[PreferencePair]) -> dict[str, Any]:
    keys = [text_key(p.prompt) for p in data.pairs] + [text_key(lst.prompt) for lst in data.lists]
    unique = set(keys)
    groups: dict[str | bytes, set[str]] = defaultdict(set)
    for k in unique:
        groups[_norm_prompt(k)].add(k)
    near = [g for g in groups.values() if len(g) > 1]
    per_prompt = Counter(text_key(p.prompt) for p in pairs)
    return {
        "unique": len(unique),
        "unique_share": len(unique) / len(keys) if keys else None,
        "near_duplicate_groups": len(near),
        "prompts_in_near_duplicate_groups": sum(len(g) for g in near),
        "pairs_per_prompt": describe(list(per_prompt.values())),
    }


def _categories(pairs: list[PreferencePair]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = defaultdict(Counter)
    for p in pairs:
        c = out[p.category or "(none)"]
        c["pairs"] += 1
        c["usable"] += p.usable
        c["ties"] += p.tie
    if set(out) == {"(none)"}:
        return {}
    return {k: dict(v) for k, v in sorted(out.items())}


def _ranked(data: PreferenceData) -> dict[str, Any] | None:
    if not data.lists:
        return None
    return {
        "lists": len(data.lists),
        "responses_per_list": describe([len(lst.responses) for lst in data.lists]),
        "responses": sum(len(lst.responses) for lst in data.lists),
        "tied_score_pairs": sum(lst.tied_pairs() for lst in data.lists),
    }


def _warnings(s: dict[str, Any]) -> list[str]:
    out = []
    for f in s["files"]:
        if not f["records"]:
            out.append(f"{f['path']}: empty file (no records)")
        elif not f["usable_pairs"]:
            why = {"ties": f["ties"], "identical chosen and rejected": f["identical_chosen_rejected"]}
            why |= {f"dropped ({k})": n for k, n in f["drop_reasons"].items()}
            reasons = ", ".join(f"{n} {k}" for k, n in why.items() if n)
            out.append(f"{f['path']}: 0 usable pairs ({f['records']} records: {reasons or 'none usable'})")
    c = s["counts"]
    if c["dropped"]:
        out.append(f"{c['dropped']} records dropped: {c['drop_reasons']}")
    if c["identical_chosen_rejected"]:
        out.append(f"{c['identical_chosen_rejected']} pairs have identical chosen and rejected")
    if c["empty_responses"]:
        out.append(f"{c['empty_responses']} responses are empty")
    if s["duplicates"]["contradictory_pairs"]:
        out.append(f"{s['duplicates']['contradictory_pairs']} contradictory pairs (A≻B and B≻A)")
    agreement = s["agreement"]
    if agreement and agreement["raw_agreement"] < AGREEMENT_WARNING:
        out.append(
            f"annotator agreement {agreement['raw_agreement']:.1%} is below "
            f"{AGREEMENT_WARNING:.0%}: expect noisy labels"
        )
    bias = s["length_bias_tokens"] or s["length_bias_chars"]
    if bias and bias["chosen_longer_share"] > 0.6:
        out.append(
            f"the chosen response is the longer one in {bias['chosen_longer_share']:.1%} of pairs: "
            "a reward model may learn length"
        )
    t = s["truncation"]
    if t and t["identical_after_cut"]["keep_end"]:
        out.append(f"{t['identical_after_cut']['keep_end']} pairs become identical when cut")
    return out


# --------------------------------------------------------------------------- rendering


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def _length_table(lengths: dict[str, Any], unit: str) -> list[str]:
    cols = ["count", "mean", "min", "p50", "p90", "p95", "p99", "max"]
    rows = [f"| {unit} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for part in ("prompt", "chosen", "rejected"):
        d = lengths[part] or {}
        rows.append(f"| {part} | " + " | ".join(_fmt(d.get(c)) for c in cols) + " |")
    return rows


def render_markdown(s: dict[str, Any]) -> str:
    """A readable Markdown page of a summary from :func:`summarize`."""
    c = s["counts"]
    lines = [f"# Data summary: {s['source']}", ""]
    if s["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in s["warnings"]] + [""]
    lines += ["## Counts", "", "| what | count |", "|---|---|"]
    for k, v in c.items():
        if k != "drop_reasons":
            lines.append(f"| {k} | {v} |")
    for reason, n in c["drop_reasons"].items():
        lines.append(f"| dropped: {reason} | {n} |")
    lines += ["", "## Files", ""]
    for f in s["files"]:
        lines.append(
            f"- `{f['path']}`: {f['format']} ({f['detected_because']}); "
            f"{f['records']} records, {f['pairs']} pairs, {f['lists']} lists, {f['dropped']} dropped"
        )
        for note in f["notes"]:
            lines.append(f"  - {note}")
        if f["unused_fields"]:
            lines.append(f"  - fields not used: {', '.join(f['unused_fields'])}")
        for ex in f["drop_examples"]:
            lines.append(f"  - dropped: {ex}")
    d = s["duplicates"]
    lines += [
        "",
        "## Duplicates and contradictions",
        "",
        f"- exact duplicate pairs: {d['exact_duplicate_pairs']}",
        f"- contradictory pairs (A≻B and B≻A for one prompt): {d['contradictory_pairs']}",
        f"- identical chosen/rejected: {c['identical_chosen_rejected']}",
        "",
        "## Lengths",
        "",
    ]
    lines += _length_table(s["lengths_chars"], "characters")
    if s["lengths_tokens"]:
        lines += [""] + _length_table(s["lengths_tokens"], "tokens")
    for unit in ("chars", "tokens"):
        b = s[f"length_bias_{unit}"]
        if b:
            lines.append(
                f"\nChosen response longer ({unit}): {b['chosen_longer_share']:.1%}, shorter: "
                f"{b['chosen_shorter_share']:.1%}, equal: {b['equal_length_share']:.1%} "
                f"of {b['pairs']} usable pairs."
            )
    t = s["truncation"]
    if t:
        lines += [
            "",
            f"## Truncation at {t['max_length']} tokens",
            "",
            f"- pairs with a sequence over the limit: {t['pairs_cut']} ({t['pairs_cut_share']:.1%})",
        ]
        for k, v in t["identical_after_cut"].items():
            lines.append(
                f"- identical after cutting with `{k}`: {v} ({t['identical_after_cut_share'][k]:.1%})"
            )
    a = s["agreement"]
    if a:
        lines += [
            "",
            "## Annotator agreement",
            "",
            f"- pairs with several votes: {a['pairs_with_votes']} "
            f"(annotators per pair: {a['annotators_per_pair']})",
            f"- votes: {a['vote_counts']}",
            f"- raw (pairwise) agreement: {_fmt(a['raw_agreement'])}",
            f"- unanimous: {_fmt(a['unanimous_share'])}",
            f"- Fleiss' κ: {_fmt(a['fleiss_kappa'])}",
            f"- Krippendorff's α (nominal): {_fmt(a['krippendorff_alpha'])}",
        ]
    pr = s["prompts"]
    lines += [
        "",
        "## Prompts",
        "",
        f"- unique prompts: {pr['unique']}",
        f"- near-duplicate groups (same letters and digits, case and punctuation ignored): "
        f"{pr['near_duplicate_groups']} ({pr['prompts_in_near_duplicate_groups']} prompts)",
    ]
    r = s["ranked_lists"]
    if r:
        lines += [
            "",
            "## Ranked lists",
            "",
            f"- lists: {r['lists']}, responses: {r['responses']}",
            f"- response pairs with equal scores (ties): {r['tied_score_pairs']}",
        ]
    if s["categories"]:
        lines += ["", "## Categories", "", "| category | pairs | usable | ties |", "|---|---|---|---|"]
        for k, v in s["categories"].items():
            lines.append(f"| {k} | {v.get('pairs', 0)} | {v.get('usable', 0)} | {v.get('ties', 0)} |")
    return "\n".join(lines) + "\n"


def write_summary(summary: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``data_summary.json`` and ``data_summary.md`` into ``out`` (each atomically)."""
    from rewardlab.io_utils import write_json, write_text

    out = Path(out)
    return (
        write_json(out / "data_summary.json", summary),
        write_text(out / "data_summary.md", render_markdown(summary)),
    )
