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
from rewardlab.serving.config import ServeConfig
from rewardlab.serving.server import create_app


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
    from rewardlab.bench.serve import load_test

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


# --- reliability (issue 15): injected cheap scorers, no model needed ---------------------------------


def cheap_score(prompts, responses):
    """Like a model with a cache: hashes the UTF-8 of each text; 'boom' raises, 'nan' gives NaN."""
    from rewardlab.data.schema import text_plain

    out = []
    for p, r in zip(prompts, responses, strict=True):
        text = text_plain(p) + text_plain(r)
        text.encode("utf-8")  # what a cache key does: a lone surrogate raises here
        if "boom" in text:
            raise ValueError("boom")
        if "refuse" in text:
            from rewardlab.errors import RewardlabError

            raise RewardlabError("this input is refused")
        out.append(float("nan") if "nan" in text else len(text) / 100)
    return out


def make_client(score=cheap_score, **options):
    from fastapi.testclient import TestClient

    cfg = ServeConfig(model=["m"], **{"max_items": 8, "max_chars": 400, "batch_window_ms": 1, **options})
    return TestClient(create_app(cfg, (score, {})), raise_server_exceptions=False)


def test_lone_surrogate_and_deep_nesting_are_4xx():
    with make_client() as client:
        got = client.post("/score", content=b'{"prompts": ["p"], "responses": ["a\\ud800"]}')
        assert got.status_code == 422 and "responses[0]" in got.json()["error"], got.text
        conv = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "\udfff"}]
        got = client.post("/score", content=json.dumps({"messages": [conv]}).encode())
        assert got.status_code == 422 and "content" in got.json()["error"], got.text
        got = client.post("/score", content=b"[" * 100_000)
        assert got.status_code == 400 and "nested" in got.json()["error"], got.text


def test_a_failing_request_does_not_fail_its_neighbours():
    import asyncio

    from rewardlab.errors import RewardlabError
    from rewardlab.serving.batching import MicroBatcher, ScoringFailed

    calls = []

    def score(prompts, responses):
        calls.append(len(prompts))
        return cheap_score(prompts, responses)

    async def main():
        batcher = MicroBatcher(score, 0.05, 32)
        return await asyncio.gather(
            batcher.submit(["p"], ["fine"]),
            batcher.submit(["p", "p"], ["ok", "boom"]),
            batcher.submit(["p"], ["refuse"]),
            batcher.submit(["p"], ["also fine"]),
            return_exceptions=True,
        )

    fine, boom, refused, also = asyncio.run(main())
    assert calls[0] == 5  # one shared call first, which raised; then each request alone
    assert fine == pytest.approx([len("pfine") / 100]) and also == pytest.approx([len("palso fine") / 100])
    assert isinstance(boom, ScoringFailed) and boom.status == 500 and "ValueError" in boom.message
    assert isinstance(refused, RewardlabError)
    with make_client() as client:
        got = client.post("/score", json={"prompts": ["p"], "responses": ["boom"]})
        assert got.status_code == 500 and "boom" in got.json()["error"]
        got = client.post("/score", json={"prompts": ["p"], "responses": ["refuse"]})
        assert got.status_code == 422 and "refused" in got.json()["error"]


def test_non_finite_rewards_are_never_served():
    from rewardlab.errors import RewardlabError

    with make_client() as client:
        got = client.post("/score", json={"prompts": ["p", "p"], "responses": ["fine", "nan"]})
        assert got.status_code == 500 and "non-finite reward for item 1" in got.json()["error"], got.text
        assert "NaN" not in got.text.replace("nan)", "")
    for broken in (lambda p, r: [float("inf")] * len(p), lambda p, r: [], lambda p, r: 1 / 0):
        with pytest.raises(RewardlabError, match="probe"):
            create_app(ServeConfig(model=["m"]), (broken, {}))


def test_message_contents_are_held_to_max_chars():
    long = "x" * 401
    with make_client() as client:
        conv = [{"role": "user", "content": long}, {"role": "assistant", "content": "hi"}]
        got = client.post("/score", json={"messages": [conv]})
        assert got.status_code == 413 and "messages[0][0].content" in got.json()["error"], got.text
        conv = [{"role": "user", "content": "y" * 200}] * 3 + [{"role": "assistant", "content": "hi"}]
        got = client.post("/score", json={"messages": [conv]})
        assert got.status_code == 413 and "600 characters" in got.json()["error"], got.text
        got = client.post("/score", json={"prompts": [conv[:3]], "responses": ["r"]})
        assert got.status_code == 413, got.text
    seen = []
    with make_client(lambda p, r: seen.extend(p) or [1.0] * len(p), overlong="truncate") as client:
        got = client.post("/score", json={"messages": [conv]})
        assert got.status_code == 200
        assert sum(len(m["content"]) for m in seen[-1]) == 400 and seen[-1][-1]["content"] == "y" * 200


def test_big_requests_are_chunked_and_interleaved_with_small_ones():
    import asyncio

    from rewardlab.serving.batching import MicroBatcher

    calls = []

    def slow(prompts, responses):
        calls.append(list(responses))
        time.sleep(0.05)
        return [1.0] * len(prompts)

    async def main():
        batcher = MicroBatcher(slow, 0.001, 4)
        done = []

        async def request(name, n):
            await batcher.submit(["p"] * n, [f"{name}{i}" for i in range(n)])
            done.append(name)

        big = asyncio.create_task(request("big", 16))
        await asyncio.sleep(0.02)  # the small one arrives while the big one's first chunk is scored
        await asyncio.gather(big, request("small", 1))
        return done

    done = asyncio.run(main())
    assert done == ["small", "big"]
    assert all(len(c) <= 4 for c in calls) and sum(len(c) for c in calls) == 17
    assert "small0" in calls[1]  # in the very next call


def test_chunked_body_stops_at_the_limit_and_slow_bodies_time_out():
    import asyncio

    from rewardlab.serving.requests import BadRequest, read_body

    cfg = ServeConfig(model=["m"], max_body_bytes=1000, body_timeout_s=0.2)
    pulled = []

    async def endless():
        while True:
            pulled.append(1)
            yield b" " * 100

    async def stalled():
        yield b'{"prompts": '
        await asyncio.sleep(30)

    with pytest.raises(BadRequest) as too_big:
        asyncio.run(read_body(endless(), cfg))
    assert too_big.value.status == 413 and len(pulled) == 11
    start = time.perf_counter()
    with pytest.raises(BadRequest) as slow:
        asyncio.run(read_body(stalled(), cfg))
    assert slow.value.status == 408 and time.perf_counter() - start < 5


def test_slow_client_gets_408_and_idle_connection_is_closed():
    import uvicorn

    from rewardlab.serving.server import uvicorn_options

    cfg = ServeConfig(model=["m"], port=free_port(), body_timeout_s=0.5, keep_alive_s=1, header_timeout_s=1)
    srv = uvicorn.Server(
        uvicorn.Config(create_app(cfg, (cheap_score, {})), log_level="warning", **uvicorn_options(cfg))
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    try:
        with socket.create_connection(("127.0.0.1", cfg.port), timeout=5) as s:
            s.sendall(b'POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"prompts"')
            assert s.recv(4096).startswith(b"HTTP/1.1 408")
        with socket.create_connection(("127.0.0.1", cfg.port), timeout=5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while not got.endswith(b'"ok"}'):
                got += s.recv(4096)
            assert got.startswith(b"HTTP/1.1 200")
            start = time.perf_counter()
            assert s.recv(4096) == b""  # closed by the server after --keep-alive-s
            assert time.perf_counter() - start < 4
        with socket.create_connection(("127.0.0.1", cfg.port), timeout=5) as s:  # slowloris headers
            start = time.perf_counter()
            s.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\n")
            time.sleep(0.5)
            s.sendall(b"X-Slow: 1\r\n")  # a byte now and then does not keep it open
            assert s.recv(4096) == b"" and time.perf_counter() - start < 4
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_docs_and_openapi_are_off():
    with make_client() as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404


def test_token_file_is_checked_before_loading(tmp_path, capsys):
    from rewardlab.cli import main
    from rewardlab.errors import RewardlabError

    token = tmp_path / "token"
    assert main(["serve", "--model", "no-such-model", "--token-file", str(token)]) == 2
    assert "no such file" in capsys.readouterr().err
    token.write_text("\n")
    with pytest.raises(RewardlabError, match="empty"):
        ServeConfig(model=["m"], token_file=str(token))
    token.write_text("short")
    token.chmod(0o600)
    assert ServeConfig(model=["m"], token_file=str(token)).token_file  # loopback: any token
    with pytest.raises(RewardlabError, match="too short"):
        ServeConfig(model=["m"], host="0.0.0.0", token_file=str(token))
    token.write_text("a-long-enough-secret-token")
    token.chmod(0o644)
    with pytest.raises(RewardlabError, match="chmod 600"):
        ServeConfig(model=["m"], host="0.0.0.0", token_file=str(token))
    token.chmod(0o600)
    assert ServeConfig(model=["m"], host="0.0.0.0", token_file=str(token)).host == "0.0.0.0"


def test_bench_serve_unique_requests_and_server_rss(tiny_models, demo_file, tmp_path, monkeypatch):
    import os
    import sys

    from rewardlab.bench.serve import _request_body, rss_bytes
    from rewardlab.cli import main

    prompts, responses = ["p1", "p2", "p3"] * 4, ["r1", "r2", "r3"] * 4
    bodies = [json.loads(_request_body(prompts, responses, i, 2, True)) for i in range(20)]
    texts = [t for b in bodies for t in b["prompts"] + b["responses"]]
    assert len(set(texts)) == len(texts) == 80  # unique across every request
    with_psutil = rss_bytes(os.getpid())
    monkeypatch.setitem(sys.modules, "psutil", None)  # the /proc fallback
    assert with_psutil and rss_bytes(os.getpid()) == pytest.approx(with_psutil, rel=0.2)
    out = tmp_path / "serve.json"
    args = [
        "bench",
        "serve",
        "--model",
        str(tiny_models["llama"]),
        "--data",
        str(demo_file),
        "--out",
        str(out),
    ]
    assert main([*args, "--clients", "2", "--requests", "6", "--items", "2", "--in-process", "--unique",
                 "--rss-every", "0.05"]) == 0  # fmt: skip
    r = json.loads(out.read_text())
    assert r["errors"] == 0 and r["unique"] and r["command"]["unique"]
    rss = r["rss"]
    assert 0 < rss["start_mib"] <= rss["peak_mib"] and rss["end_mib"] <= rss["peak_mib"]
    assert len(rss["samples"]) >= 2 and rss["peak_mib"] == max(m for _, m in rss["samples"])
