"""The remote reward protocols against a real ``rewardlab serve`` process on a loopback port.

Every protocol (/score, /get_reward, /classify, /pooling and their /v1 forms) round trips to what
the same model scores locally; tokens from a file or the environment, a refused token, the
integration snippets ``rewardlab train`` writes, a server relaying a remote reward's failures, and a
``serve`` process refusing a bad ``--model`` in one line. The server is a subprocess with the tiny
LLaMA on the CPU (started once for the module).

Run: ``pytest tests/integration/test_remote_protocols.py -q`` (about 15 s on a CPU).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.models.loading import load_reward, reward_kind
from rewardlab.models.remote import RemoteReward
from tests.serving.helpers import pairs as _pairs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_models, tmp_path_factory):
    """A real ``rewardlab serve`` process with the tiny LLaMA, a token, on a free loopback port."""
    token = tmp_path_factory.mktemp("tok") / "token"
    token.write_text("s3cret-token\n")
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab", "serve", "--model", str(tiny_models["llama"])]
    cmd += ["--port", str(port), "--token-file", str(token), "--dtype", "float32", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"rewardlab serve exited: {proc.stderr.read()}")
            time.sleep(0.1)
    yield base, token
    proc.terminate()
    proc.wait(timeout=20)


def _as_chat(prompts, responses):
    return (
        [[{"role": "user", "content": p}] for p in prompts],
        [[{"role": "assistant", "content": r}] for r in responses],
    )


@pytest.mark.parametrize(
    ("path", "options", "expected_form"),
    [
        ("/score", "", "pairs"),
        ("/get_reward", "", "pairs"),
        ("/classify", "", "chat"),
        ("/v1/classify", "&input=text&batch=4", "text"),
        ("/pooling", "", "chat"),
        ("/v1/pooling", "&input=text&model=rm", "text"),
    ],
)
def test_every_protocol_round_trip_equals_local_scoring(
    served, local, demo_rows, path, options, expected_form
):
    base, token = served
    prompts, responses = _pairs(demo_rows)
    remote = load_reward(f"{base}{path}#token_file={token}{options}")
    assert reward_kind(f"{base}{path}") == "remote" and remote.info["kind"] == "remote"
    got = remote.score(prompts, responses, batch_size=2, device="cuda", layout="packed")  # ignored options
    if expected_form == "pairs":
        want = local.score(prompts, responses)
    elif expected_form == "chat":  # a plain prompt goes as one user message, the response as the assistant's
        want = local.score(*_as_chat(prompts, responses))
    else:  # rendered text, scored whole
        want = local.score([""] * len(prompts), [p + r for p, r in zip(prompts, responses, strict=True)])
    assert got == pytest.approx(want, abs=1e-5)
    assert len(set(got)) > 1  # the model tells the responses apart: not a constant answer


def test_chat_messages_round_trip_through_score(served, local, demo_rows):
    base, token = served
    prompts, responses = _as_chat(*_pairs(demo_rows, 3))
    remote = RemoteReward(f"{base}/score#token_file={token}")
    assert remote.score(prompts, responses) == pytest.approx(local.score(prompts, responses), abs=1e-5)


def test_token_from_env_and_a_refused_token_is_one_error_naming_url_and_status(
    served, demo_rows, monkeypatch
):
    base, _ = served
    prompts, responses = _pairs(demo_rows, 2)
    monkeypatch.setenv("MY_RM_TOKEN", "s3cret-token")
    assert len(RemoteReward(f"{base}/score#token_env=MY_RM_TOKEN").score(prompts, responses)) == 2
    monkeypatch.setenv("REWARDLAB_REMOTE_TOKEN", "wrong")
    remote = RemoteReward(f"{base}/score#backoff=0")
    with pytest.raises(
        RewardlabError, match=r"127\.0\.0\.1:\d+/score: HTTP 401: missing or wrong bearer token"
    ):
        remote.score(prompts, responses)
    assert remote.requests == 1  # a 401 is not retried
    monkeypatch.delenv("MY_RM_TOKEN")
    with pytest.raises(RewardlabError, match="MY_RM_TOKEN is not set"):
        RemoteReward(f"{base}/score#token_env=MY_RM_TOKEN")


def test_serve_process_refuses_a_bad_model_spec_in_one_line():
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "rewardlab", "serve", "--model", "builtin:nope", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 2 and "error: builtin:nope: no such built-in reward" in proc.stderr
    assert "Traceback" not in proc.stderr


def _post(url, body, token):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def test_integration_snippets_work_against_a_real_server(served, local, tiny_models, demo_rows, tmp_path):
    import re

    from rewardlab.training.integration import PROMPT, render_integration

    base, token_file = served
    token = token_file.read_text().strip()
    info = {"kind": "orm", "method": "full", "base_model": "tiny", "max_length": 64}
    notes = render_integration(tiny_models["llama"], info)
    calls = re.findall(r"curl -s localhost:8000(\S+) .*\\\n\s+-d '(.*)'", notes)
    paths = [path for path, _ in calls]
    assert paths == ["/score", "/score", "/get_reward", "/classify", "/v1/classify", "/pooling"]
    chat = local.score([[{"role": "user", "content": PROMPT}]], [[{"role": "assistant", "content": "4"}]])
    want = {
        "/score": local.score([PROMPT], ["4"]),
        "/get_reward": local.score([PROMPT + " "], ["4"]),
        "/classify": chat,
        "/v1/classify": local.score([""], [PROMPT + " 4"]),
        "/pooling": local.score([""], [PROMPT + " 4"]),
    }
    for path, body in calls:
        status, out = _post(base + path, json.loads(body), token)
        got = out.get("rewards") or [d.get("probs", d.get("data"))[0] for d in out["data"]]
        assert status == 200 and got == pytest.approx(want[path], abs=1e-5), path
    # and the eval line: the server as --model
    rows = tmp_path / "pairs.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in demo_rows[:12]))
    out = tmp_path / "eval-http"
    assert (
        main(
            [
                "eval",
                "--model",
                f"{base}/score#token_file={token_file}",
                "--data",
                str(rows),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = next(iter(json.loads((out / "metrics.json").read_text())["models"].values()))
    assert record["kind"] == "remote" and record["method"] == "score"


def test_serving_a_remote_reward_passes_its_failures_on_as_502_or_422(stub, served):
    from fastapi.testclient import TestClient

    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    url, handler = stub
    proxy = TestClient(create_app(ServeConfig(model=[f"{url}#retries=0"])))
    assert proxy.get("/info").json()["models"][0]["kind"] == "remote"
    assert proxy.post("/score", json={"prompts": ["p"], "responses": ["abc"]}).json() == {"rewards": [3.0]}
    handler.fail = 100
    got = proxy.post("/score", json={"prompts": ["p"], "responses": ["abc"]})
    assert got.status_code == 502 and "HTTP 503: busy" in got.json()["error"]
    base, token = served  # upstream refuses a text over its limit: its failure, so 502
    relay = TestClient(create_app(ServeConfig(model=[f"{base}/score#token_file={token}"], max_chars=10**6)))
    got = relay.post("/score", json={"prompts": ["p"], "responses": ["x" * 40_000]})
    assert got.status_code == 502 and "HTTP 413" in got.json()["error"]
    # a whole text (the completion form) relays through /score as a response to an empty prompt
    texts = ["What is 2 + 2? 4", "What is 2 + 2? 5"]
    got = relay.post("/pooling", json={"input": texts})
    direct = RemoteReward(f"{base}/v1/pooling#token_file={token}&input=text").score(["", ""], texts)
    assert got.status_code == 200 and [d["data"][0] for d in got.json()["data"]] == pytest.approx(
        direct, abs=1e-6
    )
    empty = relay.post("/score", json={"prompts": ["p"], "responses": [""]})
    assert empty.status_code == 422 and "responses[0]: empty text" in empty.json()["error"]
