"""The hacking monitor: its rule on synthetic series (fires on drift, stays quiet on a flat run), the
independent-reward rule, patience, overrides, and the TRL callback stopping a tiny GRPO run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rewardlab.serving.monitor import (
    DEFAULT_RULE,
    HackingMonitor,
    Rule,
    Status,
    monitor_callback,
    warning_text,
)


def _batch(rng: random.Random, mean: float, sd: float = 1.0, n: int = 16) -> list[float]:
    return [rng.gauss(mean, sd) for _ in range(n)]


def _run(monitor: HackingMonitor, drift: float, steps: int = 10, seed: int = 0) -> list[str]:
    """Feed ``steps`` batches whose feature distance drifts by ``drift`` sd per step; return the levels."""
    rng = random.Random(seed)
    levels = []
    for t in range(steps):
        signals = {"feature_distance": _batch(rng, 5.0 + drift * t), "length": _batch(rng, 30.0, 5.0)}
        levels.append(monitor.update(t, _batch(rng, 0.1 * t), signals).level)
    return levels


RULE = Rule(thresholds={"feature_distance": 1.0, "length": 1.5}, baseline=2, source="test")


def test_rule_fires_on_a_drifting_signal_and_not_on_a_flat_one() -> None:
    drifting = HackingMonitor(RULE)
    levels = _run(drifting, drift=0.4)
    assert levels[:2] == ["baseline", "baseline"] and "warn" in levels
    assert drifting.fired_at is not None and 2 <= drifting.fired_at <= 5
    first = next(s for s in drifting.history if s.level == "warn")
    assert first.reasons and first.reasons[0].startswith("feature_distance moved +")
    assert first.moved["feature_distance"] >= 1.0 and not first.ok
    for seed in range(5):  # a flat run (the same distributions throughout) never warns
        flat = HackingMonitor(RULE)
        assert "warn" not in _run(flat, drift=0.0, seed=seed), seed
        assert flat.fired_at is None


def test_two_sided_signals_fire_either_way_and_one_sided_only_on_a_rise() -> None:
    rule = Rule(thresholds={"length": 1.0, "spread": 1.0}, baseline=1)
    mon = HackingMonitor(rule)
    mon.update(0, [0.0, 1.0], {"length": [20.0, 30.0], "spread": [1.0, 2.0]})
    falling = mon.update(1, [0.0, 1.0], {"length": [5.0, 6.0], "spread": [0.1, 0.2]})
    assert falling.level == "warn" and [r.split()[0] for r in falling.reasons] == ["length"]
    assert falling.moved["length"] < -1.0 and falling.moved["spread"] < -1.0


def test_proxy_pulling_ahead_of_an_independent_reward() -> None:
    rule = Rule(thresholds={"independent_gap": 1.0}, baseline=1)
    base = {"rewards": [0.0, 1.0, 2.0], "independent": [0.0, 1.0, 2.0]}  # sd 1 each
    both = HackingMonitor(rule)
    both.update(0, base["rewards"], independent=base["independent"])
    rose = both.update(1, [3.0, 4.0, 5.0], independent=[3.0, 4.0, 5.0])
    assert rose.level == "ok" and rose.moved["independent_gap"] == 0.0  # both rose 3 sd: no gap
    flat = HackingMonitor(rule)
    flat.update(0, base["rewards"], independent=base["independent"])
    status = flat.update(1, [3.0, 4.0, 5.0], independent=[0.0, 1.0, 2.0])
    assert status.level == "warn" and status.moved["independent_gap"] == 3.0
    assert "ahead of the independent reward" in status.reasons[0]
    falling = HackingMonitor(rule)  # the proxy flat, the independent reward falling: a gap too
    falling.update(0, base["rewards"], independent=base["independent"])
    assert falling.update(1, [0.0, 1.0, 2.0], independent=[-1.5, -0.5, 0.5]).moved["independent_gap"] == 1.5
    quiet = HackingMonitor(rule)  # the proxy rising alone is what RL does: no warning
    quiet.update(0, base["rewards"])
    assert quiet.update(1, [3.0, 4.0, 5.0]).level == "ok"
    down = HackingMonitor(Rule(thresholds={"independent": 1.0}, baseline=1))  # a fall is suspect, a rise not
    down.update(0, base["rewards"], independent=base["independent"])
    assert down.update(1, [0.0], independent=[3.0]).level == "ok"
    assert down.update(2, [0.0], independent=[-1.0]).level == "warn"


def test_patience_overrides_and_missing_values() -> None:
    mon = HackingMonitor(RULE, patience=2, thresholds={"length": 99.0})
    assert mon.rule.thresholds == {"feature_distance": 1.0, "length": 99.0} and mon.rule.patience == 2
    assert RULE.thresholds["length"] == 1.5  # the rule itself is unchanged
    mon.update(0, [0.0], {"feature_distance": [0.0, 1.0, None]})
    mon.update(1, [0.0], {"feature_distance": [0.0, 1.0, float("nan")]})
    assert mon.update(2, [0.0], {"feature_distance": [5.0, 6.0]}).level == "ok"  # one step: not yet
    assert mon.update(3, [0.0], {"feature_distance": [5.0, 6.0]}).level == "warn"
    assert mon.fired_at == 3 and mon.summary()["rule"]["source"] == "test"
    assert HackingMonitor().rule is DEFAULT_RULE and DEFAULT_RULE.thresholds and DEFAULT_RULE.source


def test_a_warning_of_the_default_rule_says_how_far_it_held_where_a_gold_was_known() -> None:
    status = Status(7, "warn", ["length moved +2.00 sd from the run's start (threshold 1.36)"])
    text = warning_text(status, DEFAULT_RULE)
    assert text.startswith("reward hacking suspected at step 7: length moved +2.00 sd")
    assert "3 of the 4 oracle arms" in text and text.endswith("read the completions before acting.")
    assert HackingMonitor().summary()["rule"]["evidence"] == DEFAULT_RULE.evidence
    # another threshold is another rule: the default's record no longer speaks for it
    changed = HackingMonitor(thresholds={"length": 3.0}).rule
    assert changed.evidence == "" and warning_text(status, changed).endswith("(threshold 1.36)")
    assert DEFAULT_RULE.with_(source="mine").evidence == DEFAULT_RULE.evidence  # not a rule change


class DriftingRewardFunction:
    """A TRL reward function that records signals as ``RewardFunction(signals=True)`` does; they drift."""

    __name__ = "drifting"

    def __init__(self) -> None:
        self.calls = 0
        self.last_signals: dict | None = None
        self.last_rewards: list[float] | None = None

    def __call__(self, prompts, completions, **kw):
        self.calls += 1
        drift = 0.0 if self.calls <= 2 else 10.0 * self.calls
        self.last_rewards = [float(len(c)) for c in completions]
        self.last_signals = {"feature_distance": [drift + 0.1 * i for i in range(len(completions))]}
        return self.last_rewards


def _grpo(tiny_models, tmp_path, reward, callbacks, steps: int = 6):
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_models["llama"])
    tok.pad_token = tok.pad_token or tok.eos_token
    args = trl.GRPOConfig(
        output_dir=str(tmp_path / "grpo"), beta=0.0, per_device_train_batch_size=4, num_generations=2,
        max_completion_length=4, max_steps=steps, logging_steps=1, report_to="none", use_cpu=True,
        save_strategy="no", disable_tqdm=True,
    )  # fmt: skip
    trainer = trl.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_models["llama"]), reward_funcs=[reward], args=args,
        train_dataset=Dataset.from_dict({"prompt": ["Say hi.", "Count to three."] * 8}), processing_class=tok,
        callbacks=callbacks,
    )  # fmt: skip
    trainer.train()
    return trainer


def test_trl_callback_warns_and_stops_training_with_stop(tiny_models, tmp_path) -> None:
    reward = DriftingRewardFunction()
    rule = Rule(thresholds={"feature_distance": 3.0}, baseline=2)
    callback = monitor_callback(reward, HackingMonitor(rule), stop=True)
    with pytest.warns(UserWarning, match="reward hacking suspected at step 3: feature_distance moved"):
        trainer = _grpo(tiny_models, tmp_path, reward, [callback])
    assert callback.monitor.fired_at == 3 and trainer.state.global_step == 3  # stopped, not 6 steps
    assert [s.level for s in callback.monitor.history] == ["baseline", "baseline", "warn"]


def test_the_docs_trl_example_runs_and_stops_with_a_real_reward_function(
    tiny_models, embedding_checkpoint, tmp_path
) -> None:
    """docs/monitor.md's GRPO example with the tiny policy and embedding checkpoint; a rule that must fire."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "monitor.md"
    code = docs.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    tiny_args = (
        f"GRPOConfig(output_dir={str(tmp_path / 'grpo')!r}, max_steps=5, per_device_train_batch_size=4, "
        "num_generations=2, max_completion_length=4, use_cpu=True, report_to='none', save_strategy='no', "
        "beta=0.0, disable_tqdm=True)"
    )
    for old, new in (
        ('"runs/demo/model"', repr(str(embedding_checkpoint))),
        ('"HuggingFaceTB/SmolLM2-135M-Instruct"', "POLICY"),  # the tiny LLaMA as a causal LM
        ('GRPOConfig(output_dir="runs/grpo", max_steps=200)', tiny_args),
        (
            "HackingMonitor()",
            "HackingMonitor(thresholds={'length': 0.0})",
        ),  # |d| >= 0: fires after the baseline
    ):
        assert old in code, old
        code = code.replace(old, new)
    from transformers import AutoModelForCausalLM

    scope: dict = {"POLICY": AutoModelForCausalLM.from_pretrained(tiny_models["llama"])}
    with pytest.warns(UserWarning, match="reward hacking suspected at step 3: length moved"):
        exec(code, scope)  # noqa: S102 - the documented example
    monitor, reward = scope["callback"].monitor, scope["reward"]
    assert monitor.fired_at == 3 and scope["trainer"].state.global_step == 3  # stopped after 3 of 5 steps
    assert set(reward.last_signals) >= {"length", "refusal", "spread", "feature_distance"}
    assert len(reward.last_rewards) == 4 and [s.level for s in monitor.history] == [
        "baseline",
        "baseline",
        "warn",
    ]
    assert set(monitor.history[2].moved) >= {
        "proxy",
        "spread",
        "feature_distance",
    }  # the default: 2 baseline steps


def test_signal_columns_turn_serve_items_into_series() -> None:
    from rewardlab.serving.monitor import signal_columns

    items = [{"length": 3.0, "refusal": 0.0}, {"length": 5.0, "refusal": 1.0, "spread": None}]
    assert signal_columns(items) == {"length": [3.0, 5.0], "refusal": [0.0, 1.0], "spread": [None, None]}


def test_the_docs_serve_hook_feeds_the_monitor_from_the_signals_field(
    embedding_checkpoint, monkeypatch
) -> None:
    """docs/monitor.md's OpenRLHF reward function, against the server app (requests.post routed to it)."""
    import requests
    from fastapi.testclient import TestClient

    from rewardlab.models.loading import load_reward
    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    docs = Path(__file__).resolve().parents[2] / "docs" / "monitor.md"
    code = docs.read_text().split("```python\n")[3].split("```", 1)[0]
    assert "def reward_func(queries, prompts" in code and '"signals": True' in code
    prompts = ["What is 2 + 2?", "Name a colour.", "Say hi."]
    responses = [" 4.", " Blue, a calm and deep colour.", " I can't help with that."]
    with TestClient(create_app(ServeConfig(model=[str(embedding_checkpoint)], device="cpu"))) as client:
        monkeypatch.setattr(
            requests, "post", lambda url, json, timeout: client.post(url.split("8000", 1)[1], json=json)
        )
        scope: dict = {}
        exec(code, scope)  # noqa: S102 - the documented example
        queries = [p + r for p, r in zip(prompts, responses, strict=True)]
        rewards = scope["reward_func"](queries, prompts)
        for _ in range(2):
            scope["reward_func"](queries, prompts)
    expected = load_reward(str(embedding_checkpoint)).score(prompts, responses)
    assert rewards == pytest.approx(expected, abs=1e-5)
    monitor = scope["monitor"]
    assert [s.level for s in monitor.history] == ["baseline", "baseline", "ok"] and scope["step"] == 3
    assert set(monitor.history[2].moved) >= {"proxy", "length", "refusal", "spread", "feature_distance"}


def test_the_callback_reads_an_independent_reward_and_skips_steps_without_a_new_call() -> None:
    from types import SimpleNamespace

    class Recorded:  # what RewardFunction keeps after a call
        def __init__(self) -> None:
            self.last_signals: dict = {}
            self.last_rewards: list[float] | None = None

    proxy, second = Recorded(), Recorded()
    rule = Rule(thresholds={"independent_gap": 1.0}, baseline=1)
    callback = monitor_callback(proxy, HackingMonitor(rule), stop=True, independent=second)
    control = SimpleNamespace(should_training_stop=False)
    for step, (p, q) in enumerate(
        [([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]), ([3.0, 4.0, 5.0], [0.0, 1.0, 2.0])], 1
    ):
        proxy.last_rewards, proxy.last_signals = p, {"length": [5.0, 6.0, 7.0]}
        second.last_rewards = q
        if step == 2:
            with pytest.warns(UserWarning, match="proxy pulled .* ahead of the independent reward"):
                callback.on_step_end(None, SimpleNamespace(global_step=step), control)
        else:
            callback.on_step_end(None, SimpleNamespace(global_step=step), control)
    assert control.should_training_stop and callback.monitor.fired_at == 2
    callback.on_step_end(None, SimpleNamespace(global_step=3), control)  # no new call: no update
    assert len(callback.monitor.history) == 2
