"""Fuzzing ``rewardlab serve``: random JSON bodies never give a 500, only rewards or a 4xx message."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewardlab.data.schema import text_plain
from rewardlab.serving.config import ServeConfig
from rewardlab.serving.server import create_app

MAX_ITEMS = 6


def cheap_score(prompts: list, responses: list) -> list[float]:
    """A stand-in model: uses each text as a model with a cache would (UTF-8 bytes), finite rewards."""
    return [
        len((text_plain(p) + text_plain(r)).encode("utf-8")) / 10
        for p, r in zip(prompts, responses, strict=True)
    ]


@pytest.fixture(scope="module")
def client():
    from fastapi.testclient import TestClient

    cfg = ServeConfig(model=["m"], max_items=MAX_ITEMS, max_chars=40, batch_size=4, batch_window_ms=0)
    with TestClient(create_app(cfg, (cheap_score, {}))) as c:  # a server error raises in the test
        yield c


any_char = st.characters(exclude_categories=())  # surrogates included
texts = st.one_of(st.text(max_size=8), st.text(any_char, max_size=50), st.sampled_from(["", " ", "\ud800"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
junk = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=12,
)
message = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.one_of(texts, junk)}
    ),
    junk,
)
good_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(str.strip)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy, share: float = 0.9) -> st.SearchStrategy:
    """``good`` with probability about ``share``, else ``bad`` (one_of draws each branch equally)."""
    return st.integers(0, 99).flatmap(lambda k: good if k < 100 * share else bad)


good_conversation = st.builds(
    lambda turns, reply: (
        [{"role": "user", "content": t} for t in turns] + [{"role": "assistant", "content": reply}]
    ),
    st.lists(good_text, min_size=1, max_size=2),
    good_text,
)
conversation = mostly(good_conversation, st.one_of(st.lists(message, max_size=4), junk))
surrogate_text = st.tuples(good_text, st.sampled_from(["\ud800", "\udfff"])).map("".join)
text_or_messages = st.one_of(texts, surrogate_text, st.lists(message, max_size=3), junk)
mostly_good = mostly(good_text, text_or_messages, 0.95)
lists = st.lists(text_or_messages, max_size=MAX_ITEMS + 2)


@st.composite
def pairs(draw: st.DrawFn) -> dict:
    """Mostly equal-length prompts and responses, so that many bodies get past the first checks."""
    n = draw(st.integers(min_value=0, max_value=MAX_ITEMS + 1))
    extra = draw(st.sampled_from([0] * 9 + [1]))
    return {
        "prompts": draw(st.lists(mostly_good, min_size=n, max_size=n)),
        "responses": draw(st.lists(mostly_good, min_size=n + extra, max_size=n + extra)),
    }


messages_body = st.fixed_dictionaries({"messages": st.lists(conversation, max_size=MAX_ITEMS + 1)})
score_body = mostly(
    st.one_of(pairs(), messages_body),
    st.one_of(
        st.fixed_dictionaries({"prompts": lists, "responses": lists}),
        st.dictionaries(st.sampled_from(["prompts", "responses", "messages", "x"]), junk, max_size=3),
        junk,
    ),
    0.7,
)


@st.composite
def get_reward_body(draw: st.DrawFn) -> object:
    """Mostly well-formed OpenRLHF bodies (query = prompt + response), sometimes junk."""
    if draw(st.integers(0, 9)) < 2:
        return draw(st.dictionaries(st.sampled_from(["query", "prompts"]), junk, max_size=2))
    prompt_text = mostly(good_text, st.one_of(texts, surrogate_text))
    prompts = draw(st.lists(prompt_text, max_size=MAX_ITEMS + 1))
    queries = [p + draw(prompt_text) if draw(st.integers(0, 19)) else draw(junk) for p in prompts]
    return {"query": queries + draw(st.sampled_from([[]] * 9 + [["extra"]])), "prompts": prompts}


raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.integers(min_value=1, max_value=200_000).map(lambda n: b"[" * n),
    st.integers(min_value=1, max_value=50).map(lambda n: b'{"prompts": [' + b"9" * (n * 200) + b"]}"),
)


def check(response, path: str, body: object) -> None:
    if response.status_code == 200:
        rewards = response.json()["rewards"]
        assert isinstance(body, dict)
        expected = body["query"] if path == "/get_reward" else body.get("messages", body.get("prompts"))
        assert len(rewards) == len(expected) and all(math.isfinite(r) for r in rewards)
    else:
        assert 400 <= response.status_code < 500, response.text
        assert isinstance(response.json()["error"], str) and response.json()["error"]


def post(client, path: str, body: object):
    return client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=score_body)
def test_fuzz_score(client, body):
    check(post(client, "/score", body), "/score", body)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=get_reward_body())
def test_fuzz_get_reward(client, body):
    check(post(client, "/get_reward", body), "/get_reward", body)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=raw_bodies, path=st.sampled_from(["/score", "/get_reward"]))
def test_fuzz_raw_bytes(client, raw, path):
    response = client.post(path, content=raw)
    assert 400 <= response.status_code < 500 and response.json()["error"], response.text
