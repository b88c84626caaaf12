"""Integration: every real file in ../shared/data loads with the source's documented counts.

Expected values are recomputed here from the raw files with plain ``json``, independently of
the loader, or taken from the sources' documentation (2,354 HH pairs, 999 PandaLM rows, …).
Skipped cleanly when the shared data folder is absent.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter

import pytest

from rewardlab.cli import main
from rewardlab.data import StepwiseDataError, load_preferences


def test_hh_rlhf_helpful_implicit_split(shared_data):
    path = shared_data / "hh-rlhf-helpful-base" / "test.jsonl.gz"
    raw = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    data = load_preferences(path)
    assert len(raw) == len(data.pairs) == 2354
    assert data.files[0].format == "implicit"
    for r, p in zip(raw, data.pairs, strict=True):
        assert p.prompt + p.chosen == r["chosen"] and p.prompt + p.rejected == r["rejected"]
        assert p.prompt.endswith("\n\nAssistant:")
        shared = os.path.commonprefix([r["chosen"], r["rejected"]])
        # the split is the last assistant-turn boundary inside the shared prefix
        assert "\n\nAssistant:" not in shared[len(p.prompt) :]
    assert sum(p.identical for p in data.pairs) == sum(r["chosen"] == r["rejected"] for r in raw)


def test_hh_summary_with_real_tokenizer(shared_data, tmp_path):
    out = tmp_path / "hh"
    path = shared_data / "hh-rlhf-helpful-base" / "test.jsonl.gz"
    assert (
        main(
            [
                "data",
                "summarize",
                str(path),
                "--tokenizer",
                "minilm",
                "--max-length",
                "256",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    s = json.loads((out / "data_summary.json").read_text())
    c = s["counts"]
    assert (c["records"], c["pairs"], c["prompts"], c["dropped"]) == (2354, 2354, 2354, 0)
    assert c["usable_pairs"] == 2354 - c["identical_chosen_rejected"]
    t = s["truncation"]
    assert 0 < t["pairs_cut"] < 2354
    assert t["identical_after_cut"]["keep_end"] == 0  # the response ends always survive
    assert t["identical_after_cut"]["keep_start"] > 0  # cutting the end makes some pairs identical


def _majority(labels):
    counts = Counter(labels)
    top = max(counts.values())
    winners = [k for k, v in counts.items() if v == top]
    return winners[0] if len(winners) == 1 else 0


def test_pandalm_three_annotators(shared_data, tmp_path, capsys):
    path = shared_data / "pandalm" / "testset-v1.json"
    raw = json.loads(path.read_text())
    assert len(raw) == 999
    # six responses are JSON booleans, not text: the default stops at the first with its location
    assert main(["data", "summarize", str(path), "--out", str(tmp_path / "fail")]) == 2
    assert "record 158, field 'response1'" in capsys.readouterr().err
    assert main(["data", "summarize", str(path), "--on-error", "skip", "--out", str(tmp_path / "p")]) == 0
    s = json.loads((tmp_path / "p" / "data_summary.json").read_text())
    kept = [r for r in raw if isinstance(r["response1"], str) and isinstance(r["response2"], str)]
    assert s["counts"]["records"] == 999 and s["counts"]["dropped"] == 999 - len(kept) == 6
    assert s["counts"]["pairs"] == len(kept)
    votes = [(r["annotator1"], r["annotator2"], r["annotator3"]) for r in kept]
    assert s["counts"]["ties"] == sum(_majority(v) == 0 for v in votes)
    raw_agreement = sum(sum(a == b for a, b in ((v[0], v[1]), (v[0], v[2]), (v[1], v[2]))) / 3 for v in votes)
    assert s["agreement"]["raw_agreement"] == pytest.approx(raw_agreement / len(votes))
    assert 0.8 < s["agreement"]["fleiss_kappa"] < 1 and 0.8 < s["agreement"]["krippendorff_alpha"] < 1
    # chosen is the majority's pick, never read backwards
    data = load_preferences(path, on_error="skip")
    for r, p in zip(kept, data.pairs, strict=True):
        m = _majority((r["annotator1"], r["annotator2"], r["annotator3"]))
        if m:
            assert p.chosen == r[f"response{m}"] and p.rejected == r[f"response{3 - m}"]


def test_llmbar_counts_and_label_direction(shared_data):
    folder = shared_data / "llmbar"
    data = load_preferences(folder)
    by_file = {f.path.rsplit("/", 1)[1]: f.pairs for f in data.files}
    assert by_file["LLMBar-Natural.json"] == 100
    assert sum(v for k, v in by_file.items() if "Adversarial" in k) == 319
    assert sum(v for k, v in by_file.items() if k.startswith("Processed")) == 466
    raw = [r for f in sorted(folder.glob("*.json")) for r in json.loads(f.read_text())]
    for r, p in zip(raw, data.pairs, strict=True):
        assert p.chosen == r[f"output_{r['label']}"] and p.prompt == r["input"]
    assert {p.category for p in data.pairs} >= {"LLMBar-Natural", "Processed-MT-Bench"}


def test_unieval_scored_lists(shared_data):
    data = load_preferences(shared_data / "unieval-topical-chat" / "topical_chat.json")
    assert len(data.lists) == 60 and sum(len(lst.responses) for lst in data.lists) == 360
    assert all(len(lst.responses) == 6 for lst in data.lists)


def test_gsm8k_candidate_pools(shared_data):
    path = shared_data / "gsm8k-model-solutions" / "example_model_solutions.jsonl"
    raw = [json.loads(line) for line in path.open()]
    data = load_preferences(path)
    assert len(data.lists) == len(raw) == 1319
    for r, lst in zip(raw, data.lists, strict=True):
        assert lst.scores == [float(r[s]["is_correct"]) for s in lst.systems]
        assert lst.prompt == r["question"]


@pytest.mark.parametrize(
    "rel",
    [
        "big-bench-mistake/word_sorting.jsonl",
        "mr-ben/math.json",
        "prm-format-samples/prm800k.jsonl",
        "prm-format-samples/math-shepherd.jsonl",
    ],
)
def test_stepwise_sets_are_refused_clearly(shared_data, rel):
    with pytest.raises(StepwiseDataError, match="rewardlab train --kind prm"):
        load_preferences(shared_data / rel)
