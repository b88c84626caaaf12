"""``rewardlab train`` as real processes: killed and resumed, and data-parallel on 2 CPU processes.

A run killed with SIGKILL mid-way and resumed (past a half-written checkpoint) ends with the weights of
an uninterrupted run; ``torchrun`` with 2 processes (gloo) ends with the weights, and with
``--debias-length`` the length coefficient, of one process at twice the batch. Tiny random LLaMA.

Run: ``pytest tests/integration/test_training_processes.py -q`` (about a minute on a CPU).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rewardlab.data.demo import write_demo
from rewardlab.models.reward_model import RewardModel
from tests.conftest import REPO
from tests.training.helpers import length_coef as _coef


def weights(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


def same_weights(a, b, atol=0.0):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return all(torch.allclose(wa[k], wb[k], atol=atol) for k in wa)


def _train_cmd(model, data, out, *extra):
    return [
        sys.executable,
        "-m",
        "rewardlab",
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(out),
        "--max-length",
        "64",
        "--batch-size",
        "4",
        "--learning-rate",
        "0.001",
        "--eval-split",
        "0",
        "--logging-steps",
        "1",
        *extra,
    ]


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny_models, small_demo, tmp_path):
    steps = ["--max-steps", "30", "--save-steps", "1", "--save-total-limit", "3"]
    full = tmp_path / "full"
    subprocess.run(
        _train_cmd(tiny_models["llama"], small_demo, full, *steps),
        check=True,
        env=_env(),
        capture_output=True,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(tiny_models["llama"], small_demo, killed, *steps),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "checkpoint-5" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, "run ended before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "rewardlab.json").exists()  # it really died mid-way
    half_written = killed / "checkpoints" / "checkpoint-999"  # as if killed while saving
    half_written.mkdir()
    (half_written / "model.safetensors").write_bytes(b"")
    done = subprocess.run(
        _train_cmd(tiny_models["llama"], small_demo, killed, *steps, "--resume"),
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stdout and "checkpoint-999 is incomplete" in done.stdout
    assert same_weights(full, killed, atol=1e-6)


def test_two_process_ddp_on_cpu_gives_the_one_process_weights(tiny_models, small_demo, tmp_path):
    """2 processes x 4 pairs (gloo) end with the weights of one process at batch 8, and say so."""
    one, out = tmp_path / "one", tmp_path / "ddp"
    # fp32: auto precision may pick bf16 autocast on this CPU, whose rounding differs between 2 x 4 and 8
    args = _train_cmd(tiny_models["llama"], small_demo, out, "--max-steps", "3", "--precision", "fp32")[4:]
    args[args.index("--eval-split") + 1] = "0.25"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*cmd, "-m", "rewardlab", "train", *args], env=_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and "eval_accuracy" in summary["eval_metrics"]
    assert summary["distributed"] == {"type": "MULTI_CPU", "processes": 2}
    assert RewardModel.from_pretrained(out).score(["What is 1 + 1?"], ["2"])
    single = [*args]
    single[single.index("--out") + 1] = str(one)
    single[single.index("--batch-size") + 1] = "8"
    subprocess.run(
        [sys.executable, "-m", "rewardlab", "train", *single], check=True, env=_env(), capture_output=True
    )
    assert json.loads((one / "train_summary.json").read_text())["distributed"] == {
        "type": "NO",
        "processes": 1,
    }
    start = weights(tiny_models["llama"])
    moved = max((weights(one)[k] - start[k]).abs().max().item() for k in start)
    assert moved > 1e-4 and same_weights(one, out, atol=1e-6)


def test_two_process_ddp_learns_the_one_process_coefficient(tiny_models, tmp_path):
    """2 x 4 groups (gloo) end with the coefficient of one process at 8: its gradient is averaged."""
    data = write_demo(tmp_path / "confounded.jsonl", n=80, seed=1, longer_chosen=0.9)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = ["train", "--model", str(tiny_models["llama"]), "--data", str(data), "--max-length", "64"]
    args += ["--learning-rate", "1e-3", "--max-steps", "3", "--precision", "fp32", "--debias-length"]
    args += ["--eval-split", "0.2", "--norm-samples", "16"]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
    done = subprocess.run(
        [*ddp, "rewardlab", *args, "--batch-size", "4", "--out", str(tmp_path / "ddp")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one = [sys.executable, "-m", "rewardlab", *args, "--batch-size", "8", "--out", str(tmp_path / "one")]
    subprocess.run(one, check=True, env=env, capture_output=True)
    summary = json.loads((tmp_path / "ddp" / "train_summary.json").read_text())
    assert summary["distributed"] == {"type": "MULTI_CPU", "processes": 2}
    assert _coef(tmp_path / "one") != 0.0
    assert _coef(tmp_path / "ddp") == pytest.approx(_coef(tmp_path / "one"), abs=1e-6)
