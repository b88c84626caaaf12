"""Combined rewards, ``--model sum:[WEIGHT*][norm:]SPEC,...``: values, parts, bad specs, ``score`` output.

Run: ``pytest tests/models/test_combined.py -q``.
"""

from __future__ import annotations

import json
import shutil

import pytest

from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.models.combined import CombinedReward, Part, parse_combined
from rewardlab.models.loading import load_reward, reward_kind

REWARDS = """
def length(prompts, completions, **kwargs):
    return [float(len(c)) for c in completions]

def matches(prompts, completions, answer=None, **kwargs):
    return [1.0 if a in c else 0.0 for a, c in zip(answer, completions)]
"""
MEAN, STD = 0.5, 4.0


@pytest.fixture(scope="module")
def reward_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fn") / "rewards.py"
    path.write_text(REWARDS)
    return path


@pytest.fixture(scope="module")
def checkpoint(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sum") / "rm"
    shutil.copytree(tiny_models["llama"], folder)
    (folder / "rewardlab.json").write_text(
        json.dumps({"kind": "orm", "normalization": {"mean": MEAN, "std": STD}})
    )
    return folder


def test_parse_reads_weights_normalisation_and_defaults():
    parts = parse_combined("sum:0.5*norm:runs/rm, 1.0*builtin:math?references=r.jsonl,my.py:fn,-2e-1*m:f")
    assert parts == [
        Part("runs/rm", 0.5, True),
        Part("builtin:math?references=r.jsonl", 1.0, False),
        Part("my.py:fn", 1.0, False),
        Part("m:f", -0.2, False),
    ]
    assert reward_kind("sum:a:f") == "combined"


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("sum:", "no parts"),
        ("sum:  ", "no parts"),
        ("sum:1*a:f,,b:g", "part 2 is empty"),
        ("sum:nan*a:f", "the weight must be a finite number, got 'nan'"),
        ("sum:1*a:f,inf*b:g", "part 2: the weight must be a finite number, got 'inf'"),
        ("sum:1e999*a:f", "the weight must be a finite number"),
        ("sum:heavy*a:f", "the weight 'heavy' is not a number"),
        ("sum:1*", "part 1 names no reward"),
        ("sum:1*norm:", "part 1 names no reward"),
        ("sum:1*sum:a:f", "sum: cannot be a part"),
        ("sum:ensemble:mean:a,b", "ensemble: cannot be a part"),
        ("sum:a:f,2*a:f", "part 'a:f' is named twice"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(RewardlabError, match=words.replace("*", r"\*")) as caught:
        load_reward(spec)
    assert "\n" not in str(caught.value) and spec in str(caught.value)


def test_a_part_that_does_not_load_is_named(reward_file):
    with pytest.raises(RewardlabError, match=r"part 2 \(no_such_module_xyz:fn\): .*cannot import"):
        load_reward(f"sum:{reward_file}:length,no_such_module_xyz:fn")
    with pytest.raises(RewardlabError, match=r"part 1 \(no/such/folder\): no/such/folder: no such local"):
        load_reward("sum:no/such/folder")


def test_norm_needs_a_stored_normalisation(reward_file):
    with pytest.raises(RewardlabError, match=r"part 1 .* stores no reward normalisation .*drop its norm:"):
        load_reward(f"sum:norm:{reward_file}:length")


def test_values_are_the_weighted_sum_and_parts_are_given(reward_file, checkpoint):
    from rewardlab.models.reward_model import RewardModel

    prompts, responses = ["What is 2 + 2?", "Name a colour."], ["It is 4.", "Blue, I think."]
    spec = f"sum:0.5*norm:{checkpoint},-0.1*{reward_file}:length,2*{reward_file}:matches"
    combined = load_reward(spec)
    assert isinstance(combined, CombinedReward) and combined.info["kind"] == "combined"
    columns = {"answer": ["4", "red"]}
    raw = RewardModel.from_pretrained(checkpoint).score(prompts, responses, layout="padded")
    normalised = [(r - MEAN) / STD for r in raw]
    parts = combined.score_parts(prompts, responses, columns=columns, layout="padded")
    assert parts[str(checkpoint)] == pytest.approx(normalised, abs=1e-5)
    assert parts[f"{reward_file}:length"] == [8.0, 14.0]
    assert parts[f"{reward_file}:matches"] == [1.0, 0.0]
    by_hand = [0.5 * normalised[i] - 0.1 * len(responses[i]) + 2 * [1.0, 0.0][i] for i in range(2)]
    total = combined.score(prompts, responses, columns=columns, layout="padded")
    assert total == pytest.approx(by_hand, abs=1e-5)
    # without norm: the checkpoint part is its raw reward
    plain = load_reward(f"sum:{checkpoint}").score(prompts, responses, layout="padded")
    assert plain == pytest.approx(raw, abs=1e-5)


def test_normalize_is_refused_with_the_way_to_ask_for_it(reward_file):
    combined = load_reward(f"sum:{reward_file}:length")
    with pytest.raises(RewardlabError, match=r"norm:SPEC"):
        combined.score(["p"], ["r"], normalize=True)
    assert combined.score(["p"], ["abc"], normalize=False) == [3.0]


def test_trl_reward_function_passes_columns_to_the_parts(reward_file):
    from rewardlab.serving.rl import RewardFunction

    fn = RewardFunction(f"sum:{reward_file}:matches,0.5*{reward_file}:length")
    assert fn(["p", "q"], ["x4", "y"], answer=["4", "5"]) == [1.0 + 1.0, 0.5]


def test_score_writes_each_records_parts(reward_file, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "p", "response": "abcd"}\n{"prompt": "q", "response": "ab", "id": 7}\n')
    out = tmp_path / "scored.jsonl"
    two = tmp_path / "two.py"
    two.write_text("def f(prompts, completions, **kw):\n    return [2.0] * len(prompts)\n")
    spec = f"sum:-1*{reward_file}:length,3*{two}:f"
    assert main(["score", "--model", spec, "--data", str(rows), "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["reward"] for r in records] == [-4 + 6, -2 + 6]
    assert records[1]["id"] == 7
    assert records[0]["reward_parts"] == {f"{reward_file}:length": 4.0, f"{two}:f": 2.0}
    capsys.readouterr()
