"""User code is contained: a reward function's exceptions of every kind and its return values.

A function that raises ``KeyboardInterrupt``, calls ``sys.exit`` or raises a bare ``BaseException`` is a
failure of that function (one line naming it), in ``score`` and in ``serve`` (a 500 for that request
alone, the server goes on); only the user's own Ctrl-C stops a command. Return values are checked by
type before they are read item by item.
"""

from __future__ import annotations

import threading

import pytest

from rewardlab import interrupts
from rewardlab.cli import main
from rewardlab.errors import RewardlabError
from rewardlab.models.loading import load_reward

RAISERS = """
import sys

class Odd(BaseException):
    pass

def interrupt(prompts, completions, **kw):
    raise KeyboardInterrupt("from the function")

def exits(prompts, completions, **kw):
    sys.exit(3)

def odd(prompts, completions, **kw):
    raise Odd("odd")

def as_dict(prompts, completions, **kw):
    return {i: 1.0 for i in range(len(completions))}

def as_string(prompts, completions, **kw):
    return "1" * len(completions)

def as_generator(prompts, completions, **kw):
    return (1.0 for _ in completions)

def as_tuple(prompts, completions, **kw):
    return tuple(float(len(c)) for c in completions)

def boom_on_request(prompts, completions, **kw):
    if any(p == "boom" for p in prompts):
        sys.exit(1)
    return [float(len(c)) for c in completions]
"""


@pytest.fixture(scope="module")
def raisers(tmp_path_factory):
    path = tmp_path_factory.mktemp("fn") / "raisers.py"
    path.write_text(RAISERS)
    return path


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("interrupt", "interrupt failed: KeyboardInterrupt: from the function"),
        ("exits", "exits failed: SystemExit: 3"),
        ("odd", "odd failed: Odd: odd"),
        ("as_dict", "as_dict returned dict, not a list of rewards"),
        ("as_string", "as_string returned str, not a list of rewards"),
        ("as_generator", "as_generator returned generator, not a list of rewards"),
    ],
)
def test_a_function_failure_of_any_kind_is_one_error_naming_it(raisers, name, words):
    fn = load_reward(f"{raisers}:{name}")
    interrupts.watch()  # as the command line does: no Ctrl-C arrived, so the interrupt is the function's
    with pytest.raises(RewardlabError, match=words):
        fn.score(["p", "q"], ["a", "bb"])


def test_tuples_are_rewards(raisers):
    assert load_reward(f"{raisers}:as_tuple").score(["p", "q"], ["a", "bb"]) == [1.0, 2.0]


@pytest.mark.parametrize("name", ["interrupt", "exits"])
def test_score_command_reports_the_function_and_exits_2(raisers, tmp_path, capsys, name):
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "p", "response": "a"}\n')
    code = main(
        ["score", "--model", f"{raisers}:{name}", "--data", str(rows), "--out", str(tmp_path / "o.jsonl")]
    )
    err = capsys.readouterr().err
    assert code == 2 and f"{name} failed" in err and "Traceback" not in err
    assert not (tmp_path / "o.jsonl").exists()


def test_the_users_own_ctrl_c_still_stops(raisers, monkeypatch):
    fn = load_reward(f"{raisers}:interrupt")
    monkeypatch.setattr(interrupts, "_received", threading.Event())
    interrupts.watch()
    interrupts._received.set()  # as the SIGINT handler does
    with pytest.raises(KeyboardInterrupt):
        fn.score(["p"], ["a"])
    monkeypatch.setattr(interrupts, "_watching", threading.Event())  # a library caller: no handler
    with pytest.raises(KeyboardInterrupt):
        fn.score(["p"], ["a"])


def test_a_function_that_exits_fails_one_request_and_the_server_goes_on(raisers):
    from fastapi.testclient import TestClient

    from rewardlab.serving import server
    from rewardlab.serving.config import ServeConfig

    cfg = ServeConfig(model=[f"{raisers}:boom_on_request"], batch_window_ms=0.0)
    with TestClient(server.create_app(cfg)) as client:
        bad = client.post("/score", json={"prompts": ["boom"], "responses": ["x"]})
        assert bad.status_code == 500 and "SystemExit" in bad.json()["error"], bad.json()
        good = client.post("/score", json={"prompts": ["fine"], "responses": ["abc"]})
        assert good.status_code == 200 and good.json()["rewards"] == [3.0]
