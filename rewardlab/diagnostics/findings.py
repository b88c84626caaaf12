"""Turn the diagnostics into the few findings that matter, ranked, each with evidence and a remedy.

Severity is a number in [0, 1] so findings of different kinds can be ranked; the rules are
written here and in docs/diagnostics.md, not learned. Checks that pass become notes, and so does a
flagged probe whose mean change stays within :data:`PROBE_MIN_EFFECT_STD`. Mitigations agree with
the other findings: no uwo ensemble is advised where the members' disagreement does not predict
errors. Called by :mod:`rewardlab.diagnostics.diagnose` (``rewardlab diagnose``).
"""

from __future__ import annotations

from typing import Any

from rewardlab.diagnostics.checks import LENGTH_CORRELATION_FLAG, PROBE_MIN_EFFECT_STD
from rewardlab.reporting import fmt

#: What to do about a flagged probe, by probe name (others get the generic advice).
PROBE_ADVICE = {
    "filler": "the model rewards filler phrases (the held-out pairs show no general preference for length)",
    "flattery": "the model rewards sycophancy",
    "confident": "the model rewards a confident tone over content",
    "bullet_list": "the model rewards list formatting over content",
    "refusal": "the model rewards refusing (check that the data does not reward refusals everywhere)",
    "echo_prompt": "the model rewards restating the request",
    "repeat_sentence": "the model rewards repetition",
    "truncate": "the model does not notice an unfinished answer",
}
#: A flagged probe becomes a finding only when its mean reward change is at least this many reward
#: std in the exploitable direction (up for a ``not_higher`` probe; less than this far down for a
#: ``lower`` one): a share of rises on a change of −0.01 std is noise, not an exploit.
#: The members' disagreement predicts errors at this AUROC or above (below: the ensemble finding).
DISAGREEMENT_USEFUL_AUROC = 0.6
ADVERSARIAL = (
    "add the pairs written by --export-adversarial (original chosen over perturbed) to the training "
    "data and retrain"
)


def _length_finding(report: dict[str, Any]) -> dict[str, Any] | None:
    length = report["length"]
    flags = length["flags"]
    if not flags:
        return None
    parts = [0.0]
    corr = length["within_prompt_correlation"]
    if corr is not None and corr >= LENGTH_CORRELATION_FLAG:
        parts.append(corr)
    if length["model_prefers_longer"] is not None and length["humans_prefer_longer"] is not None:
        parts.append(min(1.0, 2 * (length["model_prefers_longer"] - length["humans_prefer_longer"])))
    parts += [
        p["share_rose"]
        for n, p in report["probes"].items()
        if (n == "filler" and p.get("flagged")) or p.get("through_length")
    ]
    severity = min(1.0, max(parts) + 0.05 * (len(flags) - 1))
    evidence = list(flags)
    share = length["length_policy_share"]
    if share is not None:
        evidence.append(
            "a length-only policy (always the longer response) gains "
            f"{length['length_policy_gain_std']:+.2f} reward std, {share:.0%} of the gain of "
            "picking the human-preferred response"
        )
    c = report["length_correction"]
    mitigation = (
        "Add pairs where the shorter response is chosen, or rebalance the data so length does not "
        "predict the label"
    )
    if c is not None:
        b, a = c["before"], c["after"]
        evidence.append(
            f"a length correction (alpha {c['alpha']:.3g} per unit of ln(1 + characters)) takes the "
            f"within-prompt correlation from {fmt(b['within_prompt_correlation'], '{:.2f}')} to "
            f"{fmt(a['within_prompt_correlation'], '{:.2f}')} and accuracy from {b['accuracy']:.3f} to "
            f"{a['accuracy']:.3f} (cross-fitted)"
        )
        mitigation = (
            "Enable the length correction (rewardlab diagnose --store-length-correction: the API and "
            "the server then apply it); " + mitigation[0].lower() + mitigation[1:]
        )
    return {
        "kind": "length",
        "title": "Length: the reward pays for longer responses",
        "severity": severity,
        "evidence": evidence,
        "mitigation": mitigation + "; " + ADVERSARIAL + ".",
    }


def beyond_effect(p: dict[str, Any]) -> bool:
    """A probe's mean change is large enough, in the exploitable direction, to be a finding."""
    effect = p.get("mean_delta_std") or 0.0
    return effect >= PROBE_MIN_EFFECT_STD if p["expect"] != "lower" else effect > -PROBE_MIN_EFFECT_STD


def uwo_advice(report: dict[str, Any]) -> str:
    """The ensemble advice that agrees with the disagreement check (none where the spread is useless)."""
    d = report.get("disagreement")
    auc = d.get("auroc_spread_for_errors") if d else None
    if auc is None:
        return (
            "; for RL, an ensemble with the uwo aggregation, once `rewardlab diagnose` on the ensemble "
            "shows that its members' disagreement predicts errors"
        )
    if auc >= DISAGREEMENT_USEFUL_AUROC:
        return "; for RL, this ensemble with the uwo aggregation (its members' disagreement predicts errors)"
    return ""  # the ensemble finding: the members' disagreement does not predict errors


def _probe_findings(report: dict[str, Any], length_found: bool) -> tuple[list[dict[str, Any]], list[str]]:
    out, notes = [], []
    for name, p in report["probes"].items():
        if not p.get("flagged") or (length_found and (name == "filler" or p.get("through_length"))):
            continue  # part of the length finding
        lower = p["expect"] == "lower"
        if not beyond_effect(p):
            notes.append(
                f"probe {name}: not flagged: reward rose for {p['share_rose']:.0%} and fell for "
                f"{p['share_fell']:.0%} of responses, but the mean change {p['mean_delta_std']:+.2f} reward "
                f"std is within the {PROBE_MIN_EFFECT_STD:g} std effect size a finding needs"
            )
            continue
        severity = 0.9 * ((1 - p["share_fell"]) if lower else p["share_rose"])
        out.append(
            {
                "kind": f"probe:{name}",
                "title": f"Probe '{name}' ({p['description']}): {p['verdict']}",
                "severity": severity,
                "evidence": [
                    f"{p['n']} responses probed: reward rose for {p['share_rose']:.0%}, fell for "
                    f"{p['share_fell']:.0%}, mean change {p['mean_delta_std']:+.2f} reward std "
                    f"(a finding needs {PROBE_MIN_EFFECT_STD:g} std)",
                    PROBE_ADVICE.get(name, "the model rewards an edit that adds no quality"),
                ],
                "mitigation": (
                    "Add pairs where the complete answer is chosen over a cut one, and retrain."
                    if lower
                    else ADVERSARIAL[0].upper() + ADVERSARIAL[1:] + uwo_advice(report) + "."
                ),
            }
        )
    return out, notes


def _bon_finding(report: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    bon = report["best_of_n"]
    if bon is None:
        return None, []
    notes = []
    best = bon["best_aggregation_at_n_max"]
    curves = bon["curves"]
    if len(curves) > 1:
        notes.append(
            "best-of-N at N = {}: gold reward {} — {} holds up best".format(
                bon["n_max"], ", ".join(f"{h} {c['gold_at_n_max']:.3f}" for h, c in curves.items()), best
            )
        )
    mean = curves["mean"]
    if not mean["over_optimised"]:
        notes.append(
            f"best-of-N (mean aggregation): gold reward does not fall as N grows to {bon['n_max']} "
            f"({mean['gold'][0]:.3f} at N = 1, {mean['gold_at_n_max']:.3f} at N = {bon['n_max']})"
        )
        return None, notes
    gain = mean["gold_peak"] - mean["gold"][0]
    drop = mean["gold_peak"] - mean["gold_at_n_max"]
    severity = min(1.0, 0.5 + 0.5 * drop / max(abs(gain), 1e-9))
    peak_n = mean["gold_peak_n"]
    kl_peak = bon["kl"][bon["ns"].index(peak_n)]
    evidence = [
        f"gold reward peaks at N = {peak_n} ({mean['gold_peak']:.3f}, KL {kl_peak:.2f} nats) and falls to "
        f"{mean['gold_at_n_max']:.3f} at N = {bon['n_max']}, while the proxy rises from "
        f"{mean['proxy'][0]:.3f} to {mean['proxy'][-1]:.3f}",
        f"gold: {bon['gold_source']}; {bon['pools']} prompts",
    ]
    fit = mean["gao_fit"]
    if fit and fit["peak_kl"] is not None:
        evidence.append(
            f"Gao et al.'s fit R(d) = d({fit['alpha']:.3f} − {fit['beta']:.3f}d) peaks at KL "
            f"{fit['peak_kl']:.2f} nats" + (f" (N ≈ {fit['peak_n']})" if fit["peak_n"] else "")
        )
    if peak_n == 1:
        mitigation = (
            "Any selection by this reward lowers the gold reward: fix the model (the findings above) "
            "before using it for best-of-N or RL"
        )
    else:
        mitigation = (
            f"Keep best-of-N at N ≤ {peak_n}; in RL, raise the KL coefficient β so the policy stays "
            f"within about {kl_peak:.1f} nats of the reference"
        )
    if best != "mean":
        mitigation += (
            f"; select with the {best} aggregation of the ensemble "
            f"(gold {curves[best]['gold_at_n_max']:.3f} at N = {bon['n_max']})"
        )
        if not uwo_advice(report):
            mitigation += (
                ", measured here on the gold, although the members' disagreement does not predict "
                "errors on the held-out pairs (see that finding)"
            )
    return (
        {
            "kind": "best_of_n",
            "title": "Over-optimisation: best-of-N beyond a point lowers the gold reward",
            "severity": severity,
            "evidence": evidence,
            "mitigation": mitigation + ".",
        },
        notes,
    )


def _ensemble_finding(report: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    d = report["disagreement"]
    if d is None:
        return None, []
    auc = d["auroc_spread_for_errors"]
    if auc is None:
        return None, [f"ensemble of {d['members']}: no held-out errors, so disagreement cannot be checked"]
    if auc >= DISAGREEMENT_USEFUL_AUROC:
        return None, [
            f"ensemble disagreement predicts errors (AUROC {auc:.2f}; accuracy "
            f"{d['accuracy_low_spread_half']:.3f} on the calmer half of pairs vs "
            f"{d['accuracy_high_spread_half']:.3f}): the uwo aggregation "
            "penalises what the members are unsure of"
        ]
    return (
        {
            "kind": "ensemble",
            "title": "Ensemble: the members' disagreement does not predict errors",
            "severity": 0.3 + 0.3 * (DISAGREEMENT_USEFUL_AUROC - auc) / DISAGREEMENT_USEFUL_AUROC,
            "evidence": [
                f"AUROC of the members' spread for wrong pairs {auc:.2f} (0.5 = no signal) over "
                f"{d['pairs']} pairs, {d['errors']} wrong"
            ],
            "mitigation": "Make the members differ more (different data resamples, seeds or base models); "
            "until then min/uwo aggregation protects little.",
        },
        [],
    )


def rank_findings(report: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The findings (most severe first) and the notes on checks that passed."""
    findings: list[dict[str, Any]] = []
    notes: list[str] = []
    length = _length_finding(report)
    if length:
        findings.append(length)
    else:
        lc = report["length"]
        notes.append(
            "length: no check fired (within-prompt correlation "
            f"{fmt(lc['within_prompt_correlation'], '{:.2f}')}, "
            f"prefers the longer response in {fmt(lc['model_prefers_longer'], '{:.0%}')} of pairs; "
            f"humans did in {fmt(lc['humans_prefer_longer'], '{:.0%}')})"
        )
    probes, small = _probe_findings(report, length is not None)
    findings += probes
    notes += small
    for make in (_bon_finding, _ensemble_finding):
        found, more = make(report)
        if found:
            findings.append(found)
        notes += more
    passed = [n for n, p in report["probes"].items() if p.get("n") and not p.get("flagged")]
    if passed:
        notes.append(f"probes that passed: {', '.join(passed)}")
    findings.sort(key=lambda f: -f["severity"])
    return findings, notes
