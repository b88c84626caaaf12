"""Signals where they are returned: ``rewardlab serve``'s opt-in ``"signals"`` field and ``RewardFunction``.

A tiny LLaMA trained for two steps (so it stores feature statistics) is served through FastAPI's
TestClient; every scoring endpoint is asked with the field off (answer unchanged) and on (one
signals object per item, rewards unchanged). Run: ``pytest tests/serving/test_signals_serving.py -q``.
"""

from __future__ import annotations

import json

import pytest

from rewardlab.serving.config import ServeConfig

PROMPTS = ["What is 2 + 2?", "How do I pick a lock?"]
RESPONSES = ["2 + 2 = 4.", "I can't help with that."]
#: (path, body) of every scoring endpoint, for the two items above.
REQUESTS = [
    ("/score", {"prompts": PROMPTS, "responses": RESPONSES}),
    (
        "/get_reward",
        {"query": [p + " " + r for p, r in zip(PROMPTS, RESPONSES, strict=True)], "prompts": PROMPTS},
    ),
    (
        "/get_reward",
        {"query": [p + " " + r for p, r in zip(PROMPTS, RESPONSES, strict=True)], "prompts": PROMPTS},
    ),
    ("/classify", {"input": RESPONSES}),
    ("/v1/pooling", {"input": RESPONSES}),
    ("/predict", {"inputs": [[p, r] for p, r in zip(PROMPTS, RESPONSES, strict=True)], "raw_scores": True}),
    ("/v1/score/evaluation", {"messages": RESPONSES}),
]


@pytest.fixture(scope="module")
def checkpoint(tiny_models, demo_file, tmp_path_factory):
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = tmp_path_factory.mktemp("served") / "rm"
    cfg = TrainConfig(
        model=str(tiny_models["llama"]), data=str(demo_file), out=str(out), max_length=64, batch_size=8,
        max_steps=2, eval_split=0.0,
    )  # fmt: skip
    train(cfg)
    # whole texts (TEI's, vLLM's, LLaMA-Factory's) are refused by a model that records training on
    # separate prompt and response texts: forget the record, as a checkpoint of an older version
    info = json.loads((out / "rewardlab.json").read_text())
    del info["input_format"]
    (out / "rewardlab.json").write_text(json.dumps(info))
    return out


@pytest.fixture(scope="module")
def client(checkpoint):
    from fastapi.testclient import TestClient

    from rewardlab.serving.server import create_app

    with TestClient(create_app(ServeConfig(model=[str(checkpoint)], device="cpu"))) as c:
        yield c


def _items(path, answer):
    """The per-item signals objects of an answer, wherever its protocol keeps them."""
    if isinstance(answer, dict) and "data" in answer:
        return [d.get("signals") for d in answer["data"]]
    if isinstance(answer, dict):
        return answer.get("signals")
    return [row[0].get("signals") for row in answer]


def _rewards(answer):
    if isinstance(answer, dict) and "data" in answer:
        return [d.get("probs", d.get("data"))[0] for d in answer["data"]]
    if isinstance(answer, dict):
        return answer.get("rewards", answer.get("scores"))
    return [row[0]["score"] for row in answer]


@pytest.mark.parametrize(("path", "body"), REQUESTS)
def test_every_endpoint_carries_signals_only_when_asked(client, path, body):
    plain = client.post(path, json=body)
    off = client.post(path, json={**body, "signals": False})
    on = client.post(path, json={**body, "signals": True})
    assert plain.status_code == off.status_code == on.status_code == 200, on.text
    assert "signals" not in plain.text and "signals" not in off.text
    items = _items(path, on.json())
    assert len(items) == 2
    assert set(items[0]) == {"length", "refusal", "feature_distance"}
    assert _rewards(on.json()) == _rewards(plain.json())
    assert [i["refusal"] for i in items] == [0.0, 1.0]
    assert all(i["feature_distance"] > 0 for i in items)


def test_get_reward_carries_signals_for_a_reward_function(tmp_path):
    """OpenRLHF's whole-text queries, served by a Python reward (a checkpoint trained on separate
    prompt and response texts refuses them): text signals only, rewards unchanged."""
    from fastapi.testclient import TestClient

    from rewardlab.serving.server import create_app

    fn = tmp_path / "fn.py"
    fn.write_text(
        "def words(prompts, completions, **kw):\n    return [float(len(c.split())) for c in completions]\n"
    )
    body = {"query": [p + " " + r for p, r in zip(PROMPTS, RESPONSES, strict=True)], "prompts": PROMPTS}
    with TestClient(create_app(ServeConfig(model=[f"{fn}:words"]))) as c:
        plain = c.post("/get_reward", json=body).json()
        on = c.post("/get_reward", json={**body, "signals": True}).json()
    assert "signals" not in plain and on["rewards"] == plain["rewards"] == on["scores"]
    assert [set(s) for s in on["signals"]] == [{"length", "refusal"}] * 2
    assert [s["refusal"] for s in on["signals"]] == [0.0, 1.0]


def test_info_names_the_signals_the_model_gives(client):
    assert client.get("/info").json()["signals"] == ["length", "refusal", "feature_distance"]


def test_signals_field_must_be_a_boolean(client):
    r = client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "signals": "yes"})
    assert r.status_code == 422 and "signals" in r.json()["error"]


def test_served_signals_match_the_python_api(client, checkpoint):
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.models.signals import score_with_signals

    rewards, signals = score_with_signals(
        RewardModel.from_pretrained(checkpoint, device="cpu"), PROMPTS, RESPONSES
    )
    got = client.post("/score", json={"prompts": PROMPTS, "responses": RESPONSES, "signals": True}).json()
    assert got["rewards"] == pytest.approx(rewards, abs=1e-5)
    served = [s["feature_distance"] for s in got["signals"]]
    assert served == pytest.approx(signals["feature_distance"], rel=1e-4)


def test_an_ensemble_serves_spread_with_uncertainty(embedding_checkpoint):
    from fastapi.testclient import TestClient

    from rewardlab.serving.server import create_app

    with TestClient(create_app(ServeConfig(model=[str(embedding_checkpoint)], device="cpu"))) as c:
        body = {"prompts": PROMPTS, "responses": RESPONSES, "return_uncertainty": True, "signals": True}
        got = c.post("/score", json=body).json()
    assert [s["spread"] for s in got["signals"]] == pytest.approx(got["std"], abs=1e-6)
    assert all("feature_distance" in s for s in got["signals"])


def test_reward_function_keeps_and_logs_signals_for_trl(checkpoint):
    from rewardlab.serving.rl import RewardFunction

    metrics, columns = {}, {}
    plain = RewardFunction(str(checkpoint))
    fn = RewardFunction(str(checkpoint), signals=True)
    got = fn(PROMPTS, RESPONSES, log_metric=metrics.__setitem__, log_extra=columns.__setitem__)
    assert got == plain(PROMPTS, RESPONSES)
    assert set(fn.last_signals) == {"length", "refusal", "feature_distance"}
    assert metrics["signals/refusal"] == 0.5
    assert metrics["signals/length"] == pytest.approx(sum(fn.last_signals["length"]) / 2)
    assert columns["signals/feature_distance"] == fn.last_signals["feature_distance"]
    assert plain.last_signals == {} and fn(PROMPTS, RESPONSES) == got  # no TRL loggers: still kept
