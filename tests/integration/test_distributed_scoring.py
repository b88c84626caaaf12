"""``rewardlab score``, ``bon`` and ``eval`` under ``torchrun``: 2 CPU processes (gloo) split the work
and write what one process writes.

The shard/gather logic is tested without processes (ranks simulated); the launches use a tiny
random llama (fp32) and a Python reward function that logs which rank scored which text, so a
test also fails when every rank scores everything.

Run: ``OMP_NUM_THREADS=1 python -m pytest tests/integration/test_distributed_scoring.py -q``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab import distributed
from rewardlab.cli import main
from tests.conftest import REPO, write_jsonl

LOGGER = '''
import json, os
from pathlib import Path


def logged_length(prompts, completions, **kwargs):
    """Length reward that appends each text it scores to RL_TEST_LOG/rank<RANK>.jsonl."""
    log = Path(os.environ["RL_TEST_LOG"]) / f"rank{os.environ.get('RANK', '-')}.jsonl"
    with log.open("a") as f:
        for p, c in zip(prompts, completions):
            f.write(json.dumps([p, c]) + "\\n")
    return [len(str(c)) + 0.25 * len(str(p)) for p, c in zip(prompts, completions)]
'''


# ---- without processes -------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 5, 7, 16])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_the_input_in_order_and_balance(n, world):
    parts = [distributed.shard(n, r, world) for r in range(world)]
    assert [i for p in parts for i in p] == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_simulated_ranks_gather_what_one_process_computes(world):
    prompts = [f"p{i}" for i in range(11)]
    texts = [f"t{i}" * (i % 4 + 1) for i in range(11)]

    def fn(ps, ts):
        return [f"{p}|{t}" for p, t in zip(ps, ts, strict=True)]

    parts = []
    for rank in reversed(range(world)):  # ranks arrive in any order
        idx = distributed.shard(len(prompts), rank, world)
        parts.append((idx, fn(prompts[idx.start : idx.stop], texts[idx.start : idx.stop])))
    assert distributed.order_results(parts) == fn(prompts, texts)
    assert distributed.order_results([([2, 0, 1], ["c", "a", "b"])]) == ["a", "b", "c"]  # strided too


def test_gather_refuses_missing_or_repeated_indices():
    with pytest.raises(ValueError, match="given twice"):
        distributed.order_results([([0, 1], ["a", "b"]), ([1], ["c"])])
    with pytest.raises(ValueError, match="2 results for 1 indices"):
        distributed.order_results([([0], ["a", "b"])])


def test_one_process_calls_the_function_once_on_everything(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    calls = []
    got = distributed.run_sharded(lambda xs: calls.append(list(xs)) or [x * 2 for x in xs], [1, 2, 3])
    assert got == [2, 4, 6] and calls == [[1, 2, 3]]
    assert distributed.launch() == distributed.Launch(0, 1, 0) and distributed.is_main()
    with distributed.session() as place:  # no launcher: no process group
        assert place.world_size == 1
    assert distributed.gather_in_order(["b", "a"], [1, 0]) == ["a", "b"]


def test_auto_device_is_this_ranks_gpu_under_a_launch(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.rank_device("auto") == "auto"  # no launcher: unchanged
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.launch() == distributed.Launch(3, 4, 1) and not distributed.launch().main
    assert distributed.rank_device("auto") == "cuda:1"
    assert distributed.rank_device(None) == "cuda:1" and distributed.rank_device("cuda") == "cuda:1"
    assert distributed.rank_device("cpu") == "cpu" and distributed.rank_device("cuda:0") == "cuda:0"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.rank_device("auto") == "auto"


@pytest.mark.parametrize("sync", [True, False])
def test_closing_waits_before_freeing_the_group(monkeypatch, sync):
    """Barrier (after a success), then a pause with the GIL released, then destroy: in that order.

    Freeing a gloo group while a worker thread waits for the GIL deadlocked 2 of 29 loaded
    2-process exits; the pause lets the workers finish first (``close_process_group``).
    """
    import time

    import torch.distributed as dist

    calls = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append("destroy"))
    monkeypatch.setattr(time, "sleep", lambda s: calls.append(("sleep", s)))
    distributed.close_process_group(sync=sync)
    pause = ("sleep", distributed.SETTLE_SECONDS)
    assert calls == (["barrier", pause, "destroy"] if sync else [pause, "destroy"])
    assert distributed.SETTLE_SECONDS > 0


# ---- 2 CPU processes against one ---------------------------------------------------------


def _env(log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RL_TEST_LOG": str(log)}


def _launch(args: list[str], log: Path) -> subprocess.CompletedProcess:
    log.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run(
        [*cmd, "-m", "rewardlab", *args], env=_env(log), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    return done


def _one(args: list[str], log: Path, monkeypatch) -> None:
    log.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("RL_TEST_LOG", str(log))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert main(args) == 0


def _logged(log: Path) -> dict[str, list]:
    return {p.stem: [json.loads(x) for x in p.read_text().splitlines()] for p in sorted(log.glob("*.jsonl"))}


def _same(a, b, path="") -> None:
    """Equal JSON values, floats within 1e-5 (timings skipped)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            if k not in ("scoring_seconds", "path"):
                _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, str):
        assert b == pytest.approx(a, abs=1e-5, nan_ok=True), path
    else:
        assert a == b, path


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def logger(tmp_path):
    path = tmp_path / "logged_reward.py"
    path.write_text(LOGGER)
    return f"{path}:logged_length"


@pytest.fixture
def rows(demo_rows, tmp_path):
    picked = [{"prompt": r["prompt"], "response": r["chosen"], "id": i} for i, r in enumerate(demo_rows[:9])]
    for i, r in enumerate(picked):
        r["response"] += f" ({i})"  # every text distinct, so the logs show who scored which
    return write_jsonl(tmp_path / "rows.jsonl", picked)


@pytest.fixture
def pool(demo_rows, tmp_path):
    pools = [
        {"prompt": r["prompt"], "responses": [r["chosen"], r["rejected"], f"ok {i}"][: 2 + i % 2]}
        for i, r in enumerate(demo_rows[:5])
    ]
    return write_jsonl(tmp_path / "pool.jsonl", pools)


@pytest.mark.parametrize("command", ["score", "bon"])
@pytest.mark.parametrize("which", ["llama", "function"])
def test_two_processes_write_what_one_writes(
    command, which, tiny_models, logger, rows, pool, tmp_path, monkeypatch
):
    model = str(tiny_models["llama"]) if which == "llama" else logger
    src = ["--data", str(rows)] if command == "score" else ["--candidates", str(pool)]
    args = [command, "--model", model, *src, "--batch-size", "2"]
    _one([*args, "--out", str(tmp_path / "one.jsonl")], tmp_path / "log1", monkeypatch)
    done = _launch([*args, "--out", str(tmp_path / "two.jsonl")], tmp_path / "log2")
    one, two = _read(tmp_path / "one.jsonl"), _read(tmp_path / "two.jsonl")
    assert len(one) == (9 if command == "score" else 5)
    _same(one, two)
    assert done.stdout.count("wrote") == 1  # rank 0 alone prints
    if which == "function":
        single, ranks = _logged(tmp_path / "log1"), _logged(tmp_path / "log2")
        everything = single["rank-"]
        assert sorted(ranks) == ["rank0", "rank1"]
        half = len(everything) // 2  # contiguous slices: rank 0 the first half, rank 1 the rest
        assert ranks["rank0"] == everything[:half] and ranks["rank1"] == everything[half:]


def test_two_processes_evaluate_like_one(tiny_models, logger, demo_rows, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "pairs.jsonl", demo_rows[:12])
    args = ["eval", "--model", str(tiny_models["llama"]), "--model", logger, "--data", str(data)]
    args += ["--check-pairs", "0", "--bootstrap", "10", "--batch-size", "4"]
    _one([*args, "--out", str(tmp_path / "one")], tmp_path / "log1", monkeypatch)
    _launch([*args, "--out", str(tmp_path / "two")], tmp_path / "log2")
    _same(_read(tmp_path / "one" / "scores.jsonl"), _read(tmp_path / "two" / "scores.jsonl"))
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    _same(one["results"], two["results"])
    assert (tmp_path / "two" / "report.html").is_file()
    everything, ranks = _logged(tmp_path / "log1")["rank-"], _logged(tmp_path / "log2")
    assert ranks["rank0"] and ranks["rank1"]  # both scored, each distinct text once
    assert ranks["rank0"] + ranks["rank1"] == everything


def test_two_processes_evaluate_step_labelled_data_like_one(tiny_models, logger, tmp_path, monkeypatch):
    from rewardlab.data.demo import generate_steps

    rows = generate_steps(40, seed=0)
    data = write_jsonl(tmp_path / "steps.jsonl", rows)
    prm = tmp_path / "prm"
    train = ["train", "--kind", "prm", "--model", str(tiny_models["llama"]), "--data", str(data)]
    train += ["--out", str(prm), "--max-length", "64", "--max-steps", "1", "--precision", "fp32"]
    assert main(train) == 0  # an untrained PRM: its step probabilities are what is compared

    def candidates(i: int, row: dict) -> list[dict]:
        good = i % 2
        return [
            {"solution": "\n".join(row["completions"]), "is_correct": good},
            {"solution": f"then {i}\nthen {i + 3}", "is_correct": 1 - good},
        ]

    pools = [{"prompt": r["prompt"], "candidates": candidates(i, r)} for i, r in enumerate(rows[:5])]
    pool = write_jsonl(tmp_path / "pool.jsonl", pools)
    args = ["eval", "--model", f"prm={prm}", "--model", f"fn={logger}", "--data", f"held={data}"]
    args += ["--candidates", str(pool), "--batch-size", "4"]
    _one([*args, "--out", str(tmp_path / "one")], tmp_path / "log1", monkeypatch)
    _launch([*args, "--out", str(tmp_path / "two")], tmp_path / "log2")
    one, two = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert one["kind"] == "stepwise" and "step_auroc" in one["results"]["held"]["prm"]
    _same({k: one[k] for k in ("results", "best_of_n")}, {k: two[k] for k in ("results", "best_of_n")})
    everything, ranks = _logged(tmp_path / "log1")["rank-"], _logged(tmp_path / "log2")
    assert ranks["rank0"] + ranks["rank1"] == everything and ranks["rank0"] and ranks["rank1"]
