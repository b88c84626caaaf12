"""Any reward, anywhere (issue 20): reward functions, verifiers and remote servers as ``--model``.

Everything here runs in this process: Python reward functions and verifiers, ensembles with a
checkpoint, the CLI taking a function, the server through FastAPI's TestClient, and remote rewards'
retries, timeouts and concurrency against a small stub server in a thread. The round trips through
a real ``rewardlab serve`` process are in tests/integration/test_remote_protocols.py.

Run: ``pytest tests/serving/test_rewards_anywhere.py -q``.
"""

from __future__ import annotations

import json
import time

import pytest

from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.models.ensemble import RewardEnsemble
from rewardlab.models.functions import load_function, reference_answer
from rewardlab.models.loading import load_reward
from rewardlab.models.remote import RemoteReward, last_number
from tests.serving.helpers import pairs as _pairs

GSM8K = "gsm8k-model-solutions/example_model_solutions.jsonl"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")

REWARD_FILE = """
def length_reward(prompts, completions, **kwargs):
    return [float(len(c if isinstance(c, str) else c[-1]["content"])) for c in completions]

def word_reward(prompts, completions, **kwargs):
    return [float(len(c.split())) for c in completions]

def broken(prompts, completions, **kwargs):
    return [1.0] * (len(completions) - 1)

def not_finite(prompts, completions, **kwargs):
    return [float("nan")] * len(completions)
"""


@pytest.fixture(scope="module")
def reward_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fn") / "my_rewards.py"
    path.write_text(REWARD_FILE)
    return path


def test_retries_with_backoff_then_success_and_then_a_clear_failure(stub):
    url, handler = stub
    handler.fail = 2
    remote = RemoteReward(f"{url}#retries=3&backoff=0.05")
    start = time.monotonic()
    assert remote.score(["p", "p"], ["ab", "abcd"]) == [2.0, 4.0]
    assert remote.retried == 2 and time.monotonic() - start >= 0.05 + 0.1  # back-off doubles
    handler.fail = 100
    with pytest.raises(RewardlabError, match=r"/score: HTTP 503: busy \(after 3 tries\)"):
        RemoteReward(f"{url}#retries=2&backoff=0").score(["p"], ["r"])


def test_timeout_is_one_line_and_concurrency_and_batching_are_bounded(stub):
    url, handler = stub
    handler.delay = 0.5
    with pytest.raises(RewardlabError, match=r"no answer within 0\.1 s \(after 1 try\)"):
        RemoteReward(f"{url}#timeout=0.1&retries=0").score(["p"], ["r"])
    for _ in range(100):  # the timed-out request is still being answered: let it end
        if handler.in_flight == 0:
            break
        time.sleep(0.05)
    handler.delay, handler.peak, handler.calls = 0.2, 0, 0  # long enough to overlap on a busy CPU
    remote = RemoteReward(f"{url}#batch=2&concurrency=3")
    assert remote.score(["p"] * 20, ["x" * k for k in range(1, 21)]) == [float(k) for k in range(1, 21)]
    assert handler.calls == 10 and 1 < handler.peak <= 3


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("http://127.0.0.1:1/reward", "path must end with"),
        ("http://127.0.0.1:1/score#retry=3", "unknown option 'retry'"),
        ("http://127.0.0.1:1/score#timeout=0", "timeout='0' must be a number"),
        ("http://127.0.0.1:1/classify#input=tokens", "input must be chat or text"),
        ("builtin:nope", "no such built-in reward"),
        ("builtin:math?refs=x", "unknown option 'refs'"),
        ("no_such_module_xyz:fn", "cannot import no_such_module_xyz"),
        ("rewardlab.models.functions:nothing_here", "has no function nothing_here"),
        ("missing/file.py:fn", "no such file"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(RewardlabError, match=words):
        load_reward(spec)


def test_connection_refused_names_the_url():
    with pytest.raises(RewardlabError, match=r"http://127\.0\.0\.1:1/pooling: ConnectError.*after 2 tries"):
        RemoteReward("http://127.0.0.1:1/pooling#retries=1&backoff=0").score(["p"], ["r"])


def test_pooling_output_shapes():
    assert last_number(1.5) == 1.5 and last_number([2.0]) == 2.0
    assert last_number([[0.1], [0.2], [0.7]]) == 0.7  # per token: the last token's
    assert last_number([0.1, 0.2, 0.9]) == 0.9
    with pytest.raises(ValueError):
        last_number([])


def test_python_reward_functions_from_a_file_and_a_module(reward_file):
    fn = load_reward(f"{reward_file}:length_reward")
    chat = [[{"role": "assistant", "content": "four"}]]
    assert fn.score(["p", "q"], ["abc", "hello"], normalize=False, layout="packed") == [3.0, 5.0]
    assert fn.score([[{"role": "user", "content": "q"}]], chat) == [4.0]
    assert fn.info == {"kind": "function", "method": "python", "path": f"{reward_file}:length_reward"}
    gold = load_reward("rewardlab.models.functions:demo_gold")
    assert gold.score(["What is 2 + 3?"], ["The answer is 5."]) == [1.0]
    with pytest.raises(RewardlabError, match="returned 1 rewards for 2 items"):
        load_reward(f"{reward_file}:broken").score(["p", "q"], ["a", "b"])
    with pytest.raises(RewardlabError, match="returned nan for item 0, not a finite number"):
        load_reward(f"{reward_file}:not_finite").score(["p"], ["a"])
    with pytest.raises(RewardlabError, match="stores no reward normalisation"):
        fn.score(["p"], ["a"], normalize=True)


def test_builtin_demo_gold_is_the_demo_gold_reward(demo_rows):
    from rewardlab.data.demo import gold_reward

    gold = load_function("builtin:demo-gold")
    rows = demo_rows[:20]
    got = gold.score([r["prompt"] for r in rows], [r["chosen"] for r in rows])
    assert got == [gold_reward(r["prompt"], r["chosen"]) for r in rows]
    assert gold.info["kind"] == "verifier"
    with pytest.raises(RewardlabError, match="judges demo prompts only: item 0"):
        gold.score(["Write a haiku."], ["ok"])


def test_math_verify_agrees_with_gsm8k_labels(shared_data, tmp_path):
    path = shared_data / GSM8K
    if not path.is_file():
        pytest.skip(f"{GSM8K} is absent")
    # every third question (440 x 4 solutions) keeps the test short; all 5,276 agree as well (1.0)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][::3]
    prompts = [r["question"] for r in rows for _ in SOLVERS]
    solutions = [r[s]["solution"] for r in rows for s in SOLVERS]
    labels = [r[s]["is_correct"] for r in rows for s in SOLVERS]
    math = load_reward(f"builtin:math?references={path}")
    rewards = math.score(prompts, solutions)
    agree = sum((r == 1.0) == y for r, y in zip(rewards, labels, strict=True)) / len(labels)
    print(f"math-verify vs GSM8K is_correct: {agree:.4f} agreement on {len(labels)} solutions")
    assert agree >= 0.98 and 0.1 < sum(rewards) / len(rewards) < 0.9
    # TRL style: the reference comes from a dataset column, here GSM8K's "#### 18" form
    assert math.fn(["q", "q"], ["so the answer is 18", "it is 17"], answer=["... #### 18"] * 2) == [1.0, 0.0]
    plain = load_reward("builtin:math")  # TRL's dataset columns as scoring options
    assert plain.score(["q"], ["The answer is 18."], columns={"answer": ["#### 18"]}) == [1.0]
    assert reference_answer("work\nA: 18") == "18" and reference_answer("x #### 1,000") == "1,000"
    with pytest.raises(RewardlabError, match="no reference answer for prompt 0"):
        math.score(["What is 2 + 2?"], ["4"])
    with pytest.raises(RewardlabError, match="needs reference answers"):
        load_reward("builtin:math").score(["q"], ["4"])


def test_ensemble_of_a_checkpoint_and_a_function(local, reward_file, demo_rows):
    prompts, responses = _pairs(demo_rows, 4)
    fn = load_reward(f"{reward_file}:length_reward")
    ens = RewardEnsemble([local, fn], normalize=False)
    lengths = [float(len(r)) for r in responses]
    want = [(a + b) / 2 for a, b in zip(local.score(prompts, responses), lengths, strict=True)]
    assert ens.score(prompts, responses) == pytest.approx(want, abs=1e-5)
    # by default a function member keeps its scale; asked explicitly, it refuses normalisation
    with pytest.raises(RewardlabError, match="stores no reward normalisation"):
        RewardEnsemble([fn, fn], normalize=True).score(prompts, responses)
    assert RewardEnsemble([fn, fn]).score(prompts, responses) == lengths


def test_cli_score_bon_and_eval_take_a_function(reward_file, demo_file, tmp_path, capsys):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": "p", "response": "x" * k}) + "\n" for k in (3, 1, 2)))
    out = tmp_path / "scores.jsonl"
    assert (
        main(["score", "--model", f"{reward_file}:length_reward", "--data", str(rows), "--out", str(out)])
        == 0
    )
    assert [json.loads(line)["reward"] for line in out.read_text().splitlines()] == [3.0, 1.0, 2.0]
    pool = tmp_path / "pool.jsonl"
    pool.write_text(
        json.dumps({"prompt": "What is 2 + 3?", "responses": ["It is 6.", "It is 5.", "No."]}) + "\n"
    )
    best = tmp_path / "best.jsonl"
    assert main(["bon", "--model", "builtin:demo-gold", "--candidates", str(pool), "--out", str(best)]) == 0
    assert "It is 5." in best.read_text()
    ev = tmp_path / "eval"
    assert main(["eval", "--model", "builtin:demo-gold", "--data", str(demo_file), "--out", str(ev)]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    record = next(iter(metrics["models"].values()))
    assert record["kind"] == "verifier" and record["method"] == "builtin:demo-gold"
    capsys.readouterr()
    assert (
        main(
            [
                "eval",
                "--model",
                f"{reward_file}:broken",
                "--data",
                str(demo_file),
                "--out",
                str(tmp_path / "e2"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "error:" in err and "returned" in err and "Traceback" not in err


def test_serve_an_ensemble_of_functions_with_uncertainty(reward_file, demo_rows):
    from fastapi.testclient import TestClient

    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    prompts, responses = _pairs(demo_rows, 3)
    cfg = ServeConfig(model=[f"{reward_file}:length_reward", f"{reward_file}:word_reward"])
    client = TestClient(create_app(cfg))
    info = client.get("/info").json()
    assert [m["kind"] for m in info["models"]] == ["function", "function"] and info["uncertainty"] is True
    out = client.post("/score", json={"prompts": prompts, "responses": responses, "return_uncertainty": True})
    chars = [float(len(r)) for r in responses]
    words = [float(len(r.split())) for r in responses]
    assert out.status_code == 200, out.json()
    assert out.json()["std"] == pytest.approx([abs(a - b) / 2 for a, b in zip(chars, words, strict=True)])
    assert out.json()["rewards"] == pytest.approx([(a + b) / 2 for a, b in zip(chars, words, strict=True)])
    plain = client.post("/score", json={"prompts": prompts, "responses": responses})
    assert "std" not in plain.json() and plain.json()["rewards"] == out.json()["rewards"]
    bad = client.post(
        "/score", json={"prompts": prompts, "responses": responses, "return_uncertainty": "yes"}
    )
    assert bad.status_code == 422 and "return_uncertainty" in bad.json()["error"]

    single = TestClient(create_app(ServeConfig(model=[f"{reward_file}:length_reward"])))
    assert single.get("/info").json()["models"][0]["layout"] is None
    refused = single.post("/score", json={"prompts": ["p"], "responses": ["r"], "return_uncertainty": True})
    assert refused.status_code == 422 and "needs an ensemble" in refused.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/classify", {"input": [1, 2, 3]}, 422, "token ids are not accepted"),
        ("/classify", {"input": [""]}, 422, "input[0]: empty text"),
        ("/pooling", {"model": "m"}, 422, "needs 'input'"),
        ("/pooling", {"messages": [{"role": "user", "content": "hi"}]}, 422, "ending with an assistant"),
        ("/classify", {"input": "x", "use_activation": "no"}, 422, "'use_activation' must be true or false"),
        ("/v1/pooling", {"input": ["x"] * 300}, 413, "300 items"),
    ],
)
def test_vllm_endpoints_validate_like_score(reward_file, path, body, status, words):
    from fastapi.testclient import TestClient

    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    client = TestClient(create_app(ServeConfig(model=[f"{reward_file}:length_reward"])))
    got = client.post(path, json=body)
    assert got.status_code == status and words in got.json()["error"], got.json()


def test_vllm_answer_shapes(reward_file):
    from fastapi.testclient import TestClient

    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    client = TestClient(create_app(ServeConfig(model=[f"{reward_file}:length_reward"])))
    out = client.post("/classify", json={"model": "rm", "input": ["ab", "abcd"]}).json()
    assert out["object"] == "list" and out["model"] == "rm" and out["id"].startswith("classify-")
    assert [d["probs"] for d in out["data"]] == [[2.0], [4.0]] and out["data"][1]["index"] == 1
    sig = client.post("/classify", json={"input": "ab", "use_activation": True}).json()
    assert sig["data"][0]["probs"][0] == pytest.approx(1 / (1 + 2.718281828459045**-2.0))
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "abc"}]
    pooled = client.post("/pooling", json={"messages": chat}).json()
    assert pooled["data"] == [{"index": 0, "object": "pooling", "data": [3.0]}]


def test_diagnose_accepts_a_function_model(demo_file, tmp_path):
    out = tmp_path / "diag"
    code = main(
        ["diagnose", "--model", "builtin:demo-gold", "--data", str(demo_file), "--out", str(out)]
        + ["--max-responses", "40", "--probes", "filler", "--probes", "refusal"]
    )
    assert code == 0
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["model_kinds"] == ["verifier"]


def test_false_alarm_control_the_gold_as_the_model_has_no_finding(demo_file, tmp_path):
    out = tmp_path / "diag"
    args = ["diagnose", "--model", "builtin:demo-gold", "--data", str(demo_file), "--gold", "demo"]
    assert main([*args, "--out", str(out), "--max-responses", "150", "--bon-prompts", "40"]) == 0
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["findings"] == []
    assert all(
        not p["flagged"] and p["gold"]["judged"] == p["n"] for p in report["probes"].values() if p["n"]
    )
    truncate = report["probes"]["truncate"]
    assert truncate["share_fell"] < 0.5  # the gold itself lets most cut answers keep their reward
    assert not report["best_of_n"]["curves"]["mean"]["over_optimised"]


def test_probes_are_judged_against_the_gold():
    from rewardlab.diagnostics.checks import Probed
    from rewardlab.diagnostics.gold_probes import judge_probes

    def gold(prompts, responses):  # punishes a missing "!" and cannot judge prompt "?"
        return [
            None if p == "?" else (1.0 if r.endswith("!") else 0.0)
            for p, r in zip(prompts, responses, strict=True)
        ]

    cut = [Probed("truncate", "p", "ok!", "ok", 1.0, 1.0) for _ in range(3)]  # the model does not notice
    cut += [Probed("truncate", "p", "ok", "o", 1.0, 1.0), Probed("truncate", "?", "a!", "a", 1.0, 0.0)]
    pad = [Probed("filler", "p", "ok", f"ok {'x' * k}", 0.0, 1.0) for k in range(3)]  # the model likes filler
    table = {
        "truncate": {"expect": "lower", "n": 5, "flagged": False, "verdict": ""},
        "filler": {"expect": "not_higher", "n": 3, "flagged": False, "verdict": ""},
    }
    judged = judge_probes(table, cut + pad, gold, std=1.0)
    assert judged["truncate"]["flagged"] and judged["truncate"]["gold"] == {
        "judged": 4,
        "unjudged": 1,
        "gold_lowers": 0.75,
        "model_follows": 0.0,
    }
    assert judged["filler"]["flagged"] and "exploitable" in judged["filler"]["verdict"]
    assert judge_probes({"x": {"n": 1}}, cut, None, 1.0) == {"x": {"n": 1}}  # no gold: unchanged


def test_reward_function_passes_trl_columns_to_a_verifier_and_normalises_only_what_it_can(tiny_models):
    """TRL calls reward_funcs(prompts, completions, answer=[...], ...): builtin:math reads its
    references from that column; a checkpoint without stored normalisation is not normalised."""
    from rewardlab.serving.rl import RewardFunction

    fn = RewardFunction("builtin:math")
    assert fn.normalize is False  # a verifier stores no normalisation
    got = fn(
        ["What is 6 * 7?", "What is 2 + 2?"],
        ["So the answer is 42.", "It is 5."],
        answer=["#### 42", "#### 4"],
    )
    assert got == [1.0, 0.0]
    plain = RewardFunction(str(tiny_models["llama"]))  # a plain folder: nothing stored, so no normalisation
    assert plain.normalize is False and len(plain(["p"], ["r"])) == 1
