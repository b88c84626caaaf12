"""The CPU thread rule: torch gets the cores that other processes leave free (rewardlab.runtime)."""

from __future__ import annotations

import pytest
import torch

from rewardlab import runtime
from rewardlab.runtime import (
    WAIT_POLICY_MARK,
    CpuThreads,
    LoadMeter,
    choose_cpu_threads,
    cpu_threads,
    passive_wait,
    set_wait_policy,
)


@pytest.mark.parametrize(
    ("cores", "busy", "threads"),
    [
        (2, 0.0, 2),  # idle: one thread per core
        (2, 0.3, 2),  # a little background work leaves both cores
        (2, 0.6, 1),  # more than half a core busy elsewhere: that core is left to it
        (2, 1.0, 1),  # one competing CPU-bound process
        (2, 3.5, 1),  # never below one thread
        (16, 4.2, 12),
        (16, None, 16),  # no /proc: torch's default
        (1, 0.9, 1),
    ],
)
def test_threads_are_the_cores_left_free(cores, busy, threads):
    assert cpu_threads(cores, busy) == threads


def _fake_proc(monkeypatch, samples):
    """Make /proc readings come from ``samples``: (busy, total, cpus, own) per reading."""
    it = iter(samples)
    current = {}

    def cpu():
        current["s"] = next(it)
        return current["s"][:3]

    monkeypatch.setattr(runtime, "_cpu_ticks", cpu)
    monkeypatch.setattr(runtime, "_own_ticks", lambda: current["s"][3])


def test_load_meter_counts_other_processes_only(monkeypatch):
    # 2 CPUs, 200 ticks elapsed (1 s of both): 190 busy, 90 of them ours -> 1.0 CPU elsewhere
    _fake_proc(monkeypatch, [(1000, 5000, 2, 300), (1190, 5200, 2, 390), (1190, 5200, 2, 390)])
    meter = LoadMeter()
    assert meter.busy_elsewhere() == pytest.approx(1.0)
    assert meter.busy_elsewhere() is None  # no time elapsed since the last reading


def test_the_environment_fixes_the_count(monkeypatch):
    monkeypatch.setenv("REWARDLAB_CPU_THREADS", "3")
    assert choose_cpu_threads(2).threads == 3
    monkeypatch.delenv("REWARDLAB_CPU_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    choice = choose_cpu_threads(2)
    assert choice.threads == 1 and choice.reason == "OMP_NUM_THREADS=1" and choice.fixed
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    monkeypatch.setattr(runtime, "busy_cpus_elsewhere", lambda interval: 1.0)
    assert choose_cpu_threads(2).threads == 2  # sleeping threads: one per core, however busy
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert choose_cpu_threads(2).threads == 1


def test_the_count_follows_a_competitor_that_comes_and_goes(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("REWARDLAB_CPU_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_default_threads", lambda: 2)
    monkeypatch.setattr(runtime.time, "sleep", lambda s: None)
    samples = [
        (0, 0, 2, 0),
        (10, 100, 2, 0),  # start: 0.2 CPU elsewhere -> 2 threads
        (10, 100, 2, 0),  # the meter of the steps
        (210, 300, 2, 100),  # a step: 1.0 CPU elsewhere -> 1 thread
        (300, 500, 2, 190),  # the competitor left -> 2 threads again
    ]
    _fake_proc(monkeypatch, samples)
    before = torch.get_num_threads()
    try:
        threads = CpuThreads()
        assert threads.start().threads == 2
        assert threads.update() == 1 and torch.get_num_threads() == 1
        assert threads.update() == 2 and torch.get_num_threads() == 2
        assert threads.to_dict()["counts"] == [2, 1, 2]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("busy", "cores", "passive"),
    [(0.1, 2, False), (1.0, 2, True), (0.6, 2, True), (None, 2, False), (0.4, 16, False), (3.0, 16, True)],
)
def test_threads_sleep_at_barriers_when_others_hold_a_core(busy, cores, passive):
    assert passive_wait(busy, cores) is passive


def test_the_wait_policy_is_left_alone_once_torch_is_loaded(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("REWARDLAB_OMP_PASSIVE", "1")
    assert set_wait_policy() is None  # torch is imported: OpenMP has read its settings already
    assert "OMP_WAIT_POLICY" not in __import__("os").environ


def test_trl_runs_without_rewardlabs_wait_policy(monkeypatch):
    from rewardlab.bench.train import engine_env

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv(WAIT_POLICY_MARK, "other processes busy on 1.0 of 2 cores")
    assert engine_env("native")["OMP_WAIT_POLICY"] == "PASSIVE"
    trl = engine_env("trl")
    assert "OMP_WAIT_POLICY" not in trl and trl["REWARDLAB_OMP_PASSIVE"] == "0"
    monkeypatch.delenv(WAIT_POLICY_MARK)  # the user's own setting is kept
    assert engine_env("trl")["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_command_sets_the_wait_policy_before_torch_loads() -> None:
    import os
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from rewardlab.cli import main\n"
        "assert 'torch' not in sys.modules, 'importing the CLI loaded torch'\n"
        "main(['--help'])\n"
        "print('policy', os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "REWARDLAB_OMP_PASSIVE": "1"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "policy PASSIVE" in done.stdout
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "REWARDLAB_OMP_PASSIVE": "0"},
        capture_output=True,
        text=True,
    )
    assert "policy None" in done.stdout
