"""``rewardlab serve`` through a real uvicorn server on a free loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from rewardlab.models.reward_model import RewardModel
from rewardlab.serving.server import ServeConfig, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_models, tmp_path_factory):
    import uvicorn

    token = tmp_path_factory.mktemp("tok") / "token"
    token.write_text("s3cret\n")
    cfg = ServeConfig(
        model=[str(tiny_models["llama"])],
        port=free_port(),
        token_file=str(token),
        max_items=8,
        max_chars=400,
        batch_window_ms=20,
    )
    app = create_app(cfg)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=cfg.port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{cfg.port}", app
    srv.should_exit = True
    thread.join(timeout=10)


def call(base, path, body=None, token="s3cret", raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method="POST" if data is not None else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_scores_match_the_model_and_both_protocols(server, tiny_models, demo_rows):
    base, _ = server
    prompts = [r["prompt"] for r in demo_rows[:4]]
    responses = [r["chosen"] for r in demo_rows[:4]]
    direct = RewardModel.from_pretrained(tiny_models["llama"]).score(prompts, responses)
    status, out = call(base, "/score", {"prompts": prompts, "responses": responses})
    assert status == 200 and out["rewards"] == pytest.approx(direct, abs=1e-5)
    status, out = call(
        base,
        "/get_reward",
        {"query": [p + r for p, r in zip(prompts, responses, strict=True)], "prompts": prompts},
    )
    assert (
        status == 200
        and out["rewards"] == pytest.approx(direct, abs=1e-5)
        and out["scores"] == out["rewards"]
    )
    conv = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]]
    status, out = call(base, "/score", {"messages": conv})
    assert status == 200 and len(out["rewards"]) == 1
    assert call(base, "/health", token=None) == (200, {"status": "ok"})
    status, info = call(base, "/info")
    assert status == 200 and info["models"][0]["method"] == "full" and info["limits"]["max_items"] == 8


@pytest.mark.parametrize(
    ("body", "raw", "status", "words"),
    [
        (None, b"{not json", 400, "malformed JSON"),
        ([1, 2], None, 422, "JSON object"),
        ({"prompts": "p", "responses": ["r"]}, None, 422, "'prompts' must be a list"),
        ({"prompts": ["p", "q"], "responses": ["r"]}, None, 422, "2 prompts but 1 responses"),
        ({"prompts": ["p"], "responses": [""]}, None, 422, "responses[0]: empty text"),
        ({"prompts": ["p"], "responses": [3]}, None, 422, "must be a string"),
        ({"prompts": ["p"], "responses": ["x" * 401]}, None, 413, "over the limit of 400"),
        ({"prompts": ["p"] * 9, "responses": ["r"] * 9}, None, 413, "9 items"),
        ({"prompts": [], "responses": []}, None, 422, "no items"),
        ({"messages": [[{"role": "user", "content": "hi"}]]}, None, 422, "ending with an assistant"),
    ],
)
def test_bad_input_gets_a_clear_4xx(server, body, raw, status, words):
    base, _ = server
    got, out = call(base, "/score", body, raw=raw)
    assert got == status and words in out["error"], out


def test_get_reward_checks_and_auth(server):
    base, _ = server
    assert call(base, "/get_reward", {"query": ["abc"], "prompts": ["x"]})[0] == 422
    assert call(base, "/score", {"prompts": ["p"], "responses": ["r"]}, token=None)[0] == 401
    assert call(base, "/score", {"prompts": ["p"], "responses": ["r"]}, token="wrong")[0] == 401
    assert call(base, "/info", token=None)[0] == 401


def test_concurrent_requests_share_forward_passes(server):
    base, app = server
    before = app.state.batcher.calls, app.state.batcher.items
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(
                lambda i: call(base, "/score", {"prompts": [f"question {i}"], "responses": [f"answer {i}"]}),
                range(16),
            )
        )
    assert all(s == 200 and len(o["rewards"]) == 1 for s, o in results)
    calls, items = app.state.batcher.calls - before[0], app.state.batcher.items - before[1]
    assert items == 16 and calls < 16  # micro-batched: fewer forward calls than requests


def test_non_loopback_host_needs_a_token():
    with pytest.raises(ValueError, match="not loopback"):
        ServeConfig(model=["m"], host="0.0.0.0")
    assert ServeConfig(model=["m"], host="::1").host == "::1"


@pytest.mark.slow
def test_load_16_clients_all_answered(server, demo_rows):
    from rewardlab.bench.scoring import load_test

    base, _ = server
    prompts = [r["prompt"] for r in demo_rows[:200]]
    responses = [r["chosen"] for r in demo_rows[:200]]
    # the fixture's server wants a token: send it through a small wrapper around urllib
    import urllib.request as ur

    opener = ur.build_opener()
    opener.addheaders = [("Authorization", "Bearer s3cret")]
    ur.install_opener(opener)
    try:
        r = load_test(base, prompts, responses, clients=16, requests=320, items=4)
    finally:
        ur.install_opener(ur.build_opener())
    assert r["errors"] == 0 and r["requests"] == 320  # latency figures belong in docs/benchmarks.md


def test_layout_is_checked_at_start_and_shown_in_info(server, tiny_models):
    from rewardlab.errors import RewardlabError

    base, _ = server
    status, info = call(base, "/info")
    assert status == 200 and info["models"][0]["layout"] == "packed"  # auto, for a decoder
    assert info["device"] == ("cuda" if torch.cuda.is_available() else "cpu") and info["dtype"] == "float32"
    with pytest.raises(ValueError, match="layout"):
        ServeConfig(model=["m"], layout="sideways")
    with pytest.raises(RewardlabError, match="decoder"):  # an encoder cannot share a prompt
        create_app(ServeConfig(model=[str(tiny_models["bert"])], layout="packed"))
