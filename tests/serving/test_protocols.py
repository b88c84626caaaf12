"""The shapes of every ``rewardlab serve`` endpoint, and what each returns with and without --normalize.

Shapes: OpenAI's ``GET /v1/models``, text-embeddings-inference's ``POST /predict``, LLaMA-Factory's
``POST /v1/score/evaluation``, next to ``/score``, ``/get_reward``, ``/classify`` and ``/pooling``,
through FastAPI's TestClient with a Python reward function as the model. The --normalize table:
a tiny checkpoint that stores a normalisation, served with and without it, checked endpoint by
endpoint against the model's own rewards.

Run: ``pytest tests/serving/test_protocols.py -q``.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

from rewardlab.serving.config import ServeConfig

REWARDS = """
def length(prompts, completions, **kwargs):
    return [float(len(c)) / 10 for c in completions]

def prompt_words(prompts, completions, **kwargs):
    return [float(len(p.split())) for p in prompts]
"""


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture(scope="module")
def reward_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("fn") / "rewards.py"
    path.write_text(REWARDS)
    return path


def client_for(cfg: ServeConfig):
    from fastapi.testclient import TestClient

    from rewardlab.serving.server import create_app

    return TestClient(create_app(cfg))


@pytest.fixture(scope="module")
def client(reward_file, tmp_path_factory):
    token = tmp_path_factory.mktemp("tok") / "token"
    token.write_text("s3cret\n")
    cfg = ServeConfig(model=[f"{reward_file}:length"], token_file=str(token), max_items=4)
    with client_for(cfg) as c:
        c.headers["Authorization"] = "Bearer s3cret"
        yield c


def test_v1_models_names_the_served_model_in_openai_shape(client, reward_file):
    out = client.get("/v1/models").json()
    assert out["object"] == "list" and len(out["data"]) == 1
    card = out["data"][0]
    assert card["id"] == f"{reward_file}:length" and card["object"] == "model"
    assert card["owned_by"] == "rewardlab" and isinstance(card["created"], int)
    # the name /v1/models gives is the one /classify echoes
    assert client.post("/classify", json={"input": "abc"}).json()["model"] == card["id"]


def test_v1_models_needs_the_token_like_every_endpoint(client):
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    for path in ("/predict", "/v1/score/evaluation"):
        assert client.post(path, json={}, headers={"Authorization": ""}).status_code == 401


def test_predict_single_text_pair_and_batch_in_tei_shapes(client):
    # one text: scored as a response to an empty prompt; the answer is one list of predictions
    out = client.post("/predict", json={"inputs": "abcde", "raw_scores": True}).json()
    assert out == [{"score": pytest.approx(0.5), "label": "reward"}]
    # a pair is (prompt, response)
    out = client.post("/predict", json={"inputs": ["a prompt", "abcdefghij"], "raw_scores": True}).json()
    assert out == [{"score": pytest.approx(1.0), "label": "reward"}]
    # a batch of single texts and pairs: a list of lists, in order
    body = {"inputs": [["ab"], ["p", "abcd"]], "raw_scores": True}
    out = client.post("/predict", json=body).json()
    assert [[p["score"] for p in row] for row in out] == [[pytest.approx(0.2)], [pytest.approx(0.4)]]


def test_predict_applies_tei_sigmoid_unless_raw_scores(client):
    default = client.post("/predict", json={"inputs": "abcdefghijklmnopqrst"}).json()
    assert default[0]["score"] == pytest.approx(sigmoid(2.0))
    raw = client.post("/predict", json={"inputs": "abcdefghijklmnopqrst", "raw_scores": True}).json()
    assert raw[0]["score"] == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"inputs": []}, "'inputs' must be"),
        ({"inputs": ["a", "b", "c"]}, "a sequence is [text] or [prompt, response]"),
        ({"inputs": [["a"], ["a", "b", "c"]]}, "inputs[1]: a sequence"),
        ({"inputs": [["a"], "b"]}, "inputs[1]: a sequence"),
        ({"inputs": 3}, "'inputs' must be"),
        ({"inputs": "x", "raw_scores": "yes"}, "'raw_scores' must be true or false"),
        ({"inputs": "x", "truncate": 1}, "'truncate' must be true or false"),
        ({"inputs": ""}, "empty text"),
        ({"text": "x"}, "with 'inputs'"),
        ({"inputs": [["a"]] * 5}, "over the limit of 4"),
    ],
)
def test_predict_refuses_bad_bodies_with_a_message(client, body, words):
    r = client.post("/predict", json=body)
    assert 400 <= r.status_code < 500 and words in r.json()["error"]


def test_score_evaluation_in_llamafactory_shape(client):
    body = {"model": "my-rm", "messages": ["abcde", "abcdefghij"], "max_length": 512}
    out = client.post("/v1/score/evaluation", json=body).json()
    assert out["object"] == "score.evaluation" and out["model"] == "my-rm"
    assert out["id"].startswith("scoreval-") and out["scores"] == pytest.approx([0.5, 1.0])
    unnamed = client.post("/v1/score/evaluation", json={"messages": ["ab"]}).json()
    assert unnamed["model"].endswith(":length")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"messages": []}, "no items to score"),
        ({"messages": "abc"}, "'messages' must be a list of texts"),
        ({"messages": [{"role": "user", "content": "x"}]}, "'messages' must be a list of texts"),
        ({"messages": ["a"], "max_length": 0}, "'max_length' must be a positive integer"),
        ({"messages": ["a"], "max_length": True}, "'max_length' must be a positive integer"),
        ({"messages": ["a"], "model": 3}, "'model' must be a string"),
    ],
)
def test_score_evaluation_refuses_bad_bodies(client, body, words):
    r = client.post("/v1/score/evaluation", json=body)
    assert r.status_code == 422 and words in r.json()["error"]


def test_return_parts_needs_a_combined_reward(client):
    r = client.post("/score", json={"prompts": ["p"], "responses": ["r"], "return_parts": True})
    assert r.status_code == 422 and "return_parts needs a combined reward" in r.json()["error"]
    r = client.post("/score", json={"prompts": ["p"], "responses": ["r"], "return_parts": 1})
    assert r.status_code == 422 and "'return_parts' must be true or false" in r.json()["error"]


def test_serve_returns_the_parts_of_a_combined_reward(reward_file):
    spec = f"sum:2*{reward_file}:length,-0.5*{reward_file}:prompt_words"
    with client_for(ServeConfig(model=[spec])) as c:
        body = {"prompts": ["one two three", "x"], "responses": ["abcde", "abcdefghij"]}
        plain = c.post("/score", json=body).json()
        out = c.post("/score", json={**body, "return_parts": True}).json()
        info = c.get("/info").json()["models"][0]
    # by hand: 2 * len/10 - 0.5 * prompt words
    assert plain["rewards"] == pytest.approx([2 * 0.5 - 0.5 * 3, 2 * 1.0 - 0.5 * 1])
    assert out["rewards"] == plain["rewards"]
    assert out["parts"] == {
        f"{reward_file}:length": pytest.approx([0.5, 1.0]),
        f"{reward_file}:prompt_words": pytest.approx([3.0, 1.0]),
    }
    assert info["kind"] == "combined" and [p["weight"] for p in info["parts"]] == [2.0, -0.5]


def test_a_combined_reward_refuses_normalize_and_other_models_at_start(reward_file):
    from rewardlab.errors import RewardlabError

    with pytest.raises(RewardlabError, match="normalises the parts its spec marks"):
        client_for(ServeConfig(model=[f"sum:{reward_file}:length"], normalize=True))
    with pytest.raises(RewardlabError, match="a sum: reward is served alone"):
        client_for(ServeConfig(model=[f"sum:{reward_file}:length", f"{reward_file}:length"]))


# --------------------------------------------------------------------------- the --normalize table

MEAN, STD = 0.25, 2.0
PROMPT, RESPONSE = "What is 2 + 2?", "2 + 2 = 4, so the answer is 4."
CHAT = [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": RESPONSE}]


@pytest.fixture(scope="module")
def normalized_checkpoint(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("norm") / "ckpt"
    shutil.copytree(tiny_models["llama"], folder)
    (folder / "rewardlab.json").write_text(
        json.dumps({"kind": "orm", "normalization": {"mean": MEAN, "std": STD}})
    )
    return folder


def every_endpoint(c) -> dict[str, float]:
    """The one number each endpoint answers for the pair (PROMPT, RESPONSE) or the text RESPONSE."""
    pair = {"prompts": [PROMPT], "responses": [RESPONSE]}
    chat = {"messages": CHAT}
    got = {
        "score": c.post("/score", json=pair).json()["rewards"][0],
        "get_reward": c.post("/get_reward", json={"query": [PROMPT + RESPONSE], "prompts": [PROMPT]}).json(),
        "classify": c.post("/classify", json={"input": RESPONSE}).json()["data"][0]["probs"][0],
        "v1/classify chat": c.post("/v1/classify", json=chat).json()["data"][0]["probs"][0],
        "classify activation": c.post("/classify", json={"input": RESPONSE, "use_activation": True}).json(),
        "pooling": c.post("/pooling", json={"input": [RESPONSE]}).json()["data"][0]["data"][0],
        "predict raw": c.post("/predict", json={"inputs": RESPONSE, "raw_scores": True}).json()[0]["score"],
        "predict pair raw": c.post(
            "/predict", json={"inputs": [PROMPT, RESPONSE], "raw_scores": True}
        ).json(),
        "predict": c.post("/predict", json={"inputs": RESPONSE}).json()[0]["score"],
        "score/evaluation": c.post("/v1/score/evaluation", json={"messages": [RESPONSE]}).json()["scores"][0],
    }
    got["get_reward"], scores = got["get_reward"]["rewards"][0], got["get_reward"]["scores"][0]
    assert scores == got["get_reward"]
    got["classify activation"] = got["classify activation"]["data"][0]["probs"][0]
    got["predict pair raw"] = got["predict pair raw"][0]["score"]
    return got


@pytest.mark.parametrize("normalize", [False, True])
def test_every_endpoint_serves_the_normalised_reward_under_normalize(normalized_checkpoint, normalize):
    from rewardlab.models.reward_model import RewardModel

    model = RewardModel.from_pretrained(normalized_checkpoint, device="cpu")
    pair, alone = model.score([PROMPT, ""], [RESPONSE, RESPONSE], normalize=normalize, layout="padded")
    chat = model.score([CHAT[:-1]], [CHAT[-1:]], normalize=normalize, layout="padded")[0]
    with client_for(ServeConfig(model=[str(normalized_checkpoint)], normalize=normalize)) as c:
        got = every_endpoint(c)
    expected = {
        "score": pair,
        "get_reward": pair,
        "classify": alone,
        "v1/classify chat": chat,
        "classify activation": sigmoid(alone),
        "pooling": alone,
        "predict raw": alone,
        "predict pair raw": pair,
        "predict": sigmoid(alone),
        "score/evaluation": alone,
    }
    for endpoint, value in expected.items():
        assert got[endpoint] == pytest.approx(value, abs=1e-4), endpoint
    # the normalisation is the stored one, not a coincidence of the numbers
    if normalize:
        raw = model.score([PROMPT], [RESPONSE], layout="padded")[0]
        assert got["score"] == pytest.approx((raw - MEAN) / STD, abs=1e-4)
        assert got["score"] != pytest.approx(raw, abs=1e-3)


# --------------------------------------------------------------------------- fuzz: 4xx, never a 500


def fuzz_bodies():
    from hypothesis import strategies as st

    text = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "\ud800", "x" * 60]))
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(), text)
    junk = st.recursive(
        scalar, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=3))
    )
    sequence = st.lists(st.one_of(text, junk), max_size=3)
    inputs = st.one_of(text, sequence, st.lists(st.one_of(sequence, junk), max_size=5), junk)
    predict = st.fixed_dictionaries(
        {"inputs": inputs}, optional={"raw_scores": scalar, "truncate": scalar, "x": junk}
    )
    evaluation = st.fixed_dictionaries(
        {"messages": st.one_of(st.lists(st.one_of(text, junk), max_size=5), junk)},
        optional={"model": scalar, "max_length": scalar},
    )
    return st.one_of(
        st.tuples(st.just("/predict"), st.one_of(predict, junk)),
        st.tuples(st.just("/v1/score/evaluation"), st.one_of(evaluation, junk)),
    )


def test_fuzz_new_endpoints_answer_4xx_with_a_message_or_finite_scores(reward_file):
    from hypothesis import HealthCheck, given, settings

    cfg = ServeConfig(model=[f"{reward_file}:length"], max_items=4, max_chars=40, batch_window_ms=0)
    with client_for(cfg) as c:

        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=fuzz_bodies())
        def check(case):
            path, body = case
            r = c.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
            if r.status_code == 200:
                out = r.json()
                numbers = (
                    out["scores"]
                    if path != "/predict"
                    else [p["score"] for row in (out if isinstance(out[0], list) else [out]) for p in row]
                )
                assert numbers and all(math.isfinite(x) for x in numbers)
            else:
                assert 400 <= r.status_code < 500 and r.json()["error"], r.text

        check()
