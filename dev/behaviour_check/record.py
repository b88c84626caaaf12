"""The fixed command set of the behaviour check, its fixtures, and the recording of what each command does.

Used by ``python -m dev.behaviour_check record`` (see :mod:`dev.behaviour_check`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 600

# ---------------------------------------------------------------- the command set
TRAIN = "train --data demo.jsonl --eval-data held.jsonl --model tiny-llama --max-steps 4 --batch-size 8"
TRAIN += " --max-length 64"
RLCHECK = (
    "--steps 2 --prompts 4 --prompts-per-step 2 --generations 2 --max-completion-length 8 --eval-prompts 2"
)
#: (name, ``rewardlab`` arguments): paths are relative to ``DIR/work``, each command reads only files written
#: before it, ``serve`` is run by :func:`run_serve`. The bench commands print measured speeds: every number of
#: their console output and Markdown is volatile (their JSON is compared without the volatile keys).
COMMANDS: list[tuple[str, str]] = [
    ("data-demo", "data demo --out demo.jsonl --n 200"),
    ("data-demo-held", "data demo --out held.jsonl --n 60 --seed 1"),
    ("data-demo-candidates", "data demo --out pool.jsonl --n 8 --candidates 4"),
    ("data-summarize", "data summarize demo.jsonl --out summary --tokenizer minilm --max-length 64"),
    ("data-split", "data split demo.jsonl --out split --folds 3"),
    ("data-tag-category", "data tag demo.jsonl --out tagged.jsonl --by-category"),
    ("data-tag-kind", "data tag held.jsonl --out tagged-kind.jsonl --kind chat"),
    ("data-outcome-pairs", "data outcome-pairs fixtures/steps.jsonl --out outcome.jsonl --per-prompt 4"),
    ("advise-pairs", "advise --data demo.jsonl --out advise-pairs"),
    ("advise-steps", "advise --data fixtures/steps.jsonl --out advise-steps"),
    ("train-full", f"{TRAIN} --out ckpt/full --seed 0"),
    ("train-full-seed1", f"{TRAIN} --out ckpt/full-b --seed 1"),
    ("train-lora", f"{TRAIN} --out ckpt/lora --lora"),
    ("train-embedding", "train --data demo.jsonl --eval-data held.jsonl --out ckpt/emb --method embedding "
     "--model tiny-bert --ensemble 2 --max-length 64"),
    ("train-prm", "train --kind prm --data fixtures/steps.jsonl --out ckpt/prm --model tiny-llama "
     "--max-steps 3 --batch-size 4 --max-length 64"),
    ("train-trl", f"{TRAIN} --out ckpt/trl --engine trl"),
    ("train-error-embedding-lora", f"{TRAIN} --out ckpt/bad --method embedding --lora"),
    ("train-error-bad-data", "train --data fixtures/bad.jsonl --out ckpt/bad-data --model tiny-llama"),
    ("eval", "eval --model full=ckpt/full --model emb=ckpt/emb --data held.jsonl --out eval --bootstrap 50 "
     "--check-pairs 8"),
    ("diagnose", "diagnose --model ckpt/emb --data held.jsonl --gold demo --out diagnose --max-responses 20 "
     "--bon-prompts 4 --bon-n 4"),
    ("rlcheck", f"rlcheck --reward ckpt/full --gold demo --policy fixtures/policy --out rlcheck {RLCHECK} "
     "--arms none --arms kl --arms normclip --eval-every 2 --eval-samples 1"),
    ("score", "score --model ckpt/full --data fixtures/responses.jsonl --out scores.jsonl"),
    ("bon", "bon --model ckpt/full --candidates pool.jsonl --out bon.jsonl"),
    ("merge", "merge --model ckpt/full --model ckpt/full-b --out ckpt/merged"),
    ("serve", "serve --model ckpt/full --port <PORT>"),
    ("demo", "demo --out demo-run --n 200 --ensemble 2"),
    ("bench-train", "bench train --model tiny-llama --data demo.jsonl --out bench/train.json --pairs 16 "
     "--batch-size 8 --max-length 64"),
    ("bench-score", "bench score --model ckpt/full --data held.jsonl --out bench/score.json --n 32 "
     "--max-length 64"),
    ("bench-serve", "bench serve --model ckpt/full --data held.jsonl --out bench/serve.json --clients 2 "
     "--requests 8 --items 2"),
    ("bench-embedding", "bench embedding --data demo.jsonl --model tiny-bert --out bench/embedding.json "
     "--folds 2 --ensemble 2 --max-length 64 --embed-layers 1 --max-pairs 100"),
]  # fmt: skip
HELP_TARGETS = ["", "train", "eval", "diagnose", "rlcheck", "serve", "advise", "score", "bon", "merge",
                "demo", "data", "data demo", "data summarize", "data split", "data tag", "data outcome-pairs",
                "bench", "bench train", "bench score", "bench serve", "bench embedding"]  # fmt: skip

# Fixtures, written with this checkout's rewardlab (so every recording gets the same inputs).
FIXTURE_CODE = r"""
import json, sys, torch
from pathlib import Path
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config
from rewardlab.data.demo import generate_demo
from rewardlab.models.tiny import train_tokenizer
root = Path(sys.argv[1])
rows = generate_demo(60, seed=7)
(root / "responses.jsonl").write_text("".join(
    json.dumps({"id": i, "prompt": r["prompt"], "response": r[k]}) + "\n"
    for i, r in enumerate(rows[:20]) for k in ("chosen", "rejected")))
texts = [r["prompt"] for r in rows] + ["The answer is 42. I hope this helps."] * 5
tok = AutoTokenizer.from_pretrained(str(train_tokenizer(texts, root / "tok", style="qwen2", vocab_size=400)))
config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
    eos_token_id=tok.eos_token_id, bos_token_id=tok.eos_token_id, tie_word_embeddings=False)
torch.manual_seed(0)
AutoModelForCausalLM.from_config(config).save_pretrained(root / "policy")
tok.save_pretrained(root / "policy")
"""


def step_rows() -> list[dict[str, Any]]:
    """A small step-labelled set: 8 counting rules, 4 solutions each, some with a wrong step."""
    rows = []
    for rule in range(8):
        start, step = 3 + rule, 2 + rule % 3
        for sol in range(4):
            bad = (rule + sol) % 3 if sol % 2 else None  # index of the wrong step, or none
            values = [start + step * (i + 1) + (1 if i == bad else 0) for i in range(4)]
            labels = [None if bad is not None and i > bad else i != bad for i in range(4)]
            steps = [f"then {v}" for v in values]
            rows.append(
                {"prompt": f"Count up by {step} from {start}.", "completions": steps, "labels": labels}
            )
    return rows


def write_fixtures(folder: Path, env: dict[str, str]) -> None:
    """Write the step file, a bad data file, scored records and a tiny chat policy into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in step_rows()), encoding="utf-8")
    bad = '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": \n'
    (folder / "bad.jsonl").write_text(bad, encoding="utf-8")
    fixture_env = {**env, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", FIXTURE_CODE, str(folder)], env=fixture_env, check=True,
                   capture_output=True)  # fmt: skip


# ---------------------------------------------------------------- recording
def command_env(root: Path, source: Path) -> dict[str, str]:
    """The environment of every recorded command: the source checkout, one thread, a fresh cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWARDLAB_", "PYTHON"))}
    env.update(PYTHONPATH=str(source), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", REWARDLAB_CPU_BF16="0",
               REWARDLAB_CACHE=str(root / "cache"), COLUMNS="120", LINES="50", PYTHONHASHSEED="0",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")  # fmt: skip
    return env


def snapshot(work: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``work`` (but fixtures) with its size and modification time."""
    out = {}
    for p in work.rglob("*"):
        if p.is_file() and not p.relative_to(work).parts[0] == "fixtures":
            st = p.stat()
            out[p.relative_to(work).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def free_port() -> int:
    """A free localhost TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(url: str, body: dict | None = None) -> bytes:
    """The body of a GET (or, with ``body``, a JSON POST) answer; an HTTP error as a JSON object."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()
    except urllib.error.HTTPError as exc:
        return json.dumps({"http_status": exc.code, "body": exc.read().decode(errors="replace")}).encode()


def run_serve(argv: list[str], work: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Start ``rewardlab serve``, ask /health, /info and /score, stop it; answers go to ``work/serve``."""
    port = free_port()
    cmd = [sys.executable, "-m", "rewardlab", *[str(port) if a == "<PORT>" else a for a in argv]]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url, answers, deadline = f"http://127.0.0.1:{port}", work / "serve", time.monotonic() + COMMAND_TIMEOUT_S
    answers.mkdir(exist_ok=True)
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                (answers / "health.json").write_bytes(ask(f"{url}/health"))
                break
            except OSError:  # not listening yet
                time.sleep(0.2)
        if proc.poll() is None and (answers / "health.json").exists():
            (answers / "info.json").write_bytes(ask(f"{url}/info"))
            body = {"prompts": ["What is 2 + 3?", "Say hello."], "responses": ["5", "Hello! How can I help?"]}
            (answers / "score.json").write_bytes(ask(f"{url}/score", body))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    return proc.returncode, out, err


def run_command(argv: list[str], work: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``rewardlab ARGV`` in ``work``: exit code, stdout, stderr (124 when it ran past the timeout)."""
    try:
        cmd = [sys.executable, "-m", "rewardlab", *argv]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, errors="replace",
                              timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        out, err = (
            x.decode(errors="replace") if isinstance(x, bytes) else x or "" for x in (exc.stdout, exc.stderr)
        )
        return 124, out, err + f"\n[behaviour check: killed after {COMMAND_TIMEOUT_S} s]"
    return done.returncode, done.stdout, done.stderr


def record(out: Path, source: Path) -> dict[str, Any]:
    """Run the command set with ``source`` on the path into ``out``; write and return ``record.json``."""
    out, source = out.resolve(), source.resolve()
    work = out / "work"
    if work.exists() or (out / "record.json").exists():
        raise SystemExit(f"{out}: already holds a recording; give an empty or new folder")
    work.mkdir(parents=True)
    env = command_env(out, source)
    started = time.perf_counter()
    write_fixtures(work / "fixtures", env)
    rec: dict[str, Any] = {"root": str(out), "source": str(source), "commands": [], "help": {}}
    for name, args in COMMANDS:
        argv, volatile = shlex.split(args), name.startswith("bench-")
        before, t0 = snapshot(work), time.perf_counter()
        code, stdout, stderr = (run_serve if name == "serve" else run_command)(argv, work, env)
        after = snapshot(work)
        files = sorted(p for p, v in after.items() if before.get(p) != v)
        seconds = time.perf_counter() - t0
        rec["commands"].append(
            {"name": name, "argv": argv, "volatile_numbers": volatile, "exit_code": code, "stdout": stdout,
             "stderr": stderr, "files": files, "seconds": seconds}
        )  # fmt: skip
        print(f"{name:<28} exit {code:<3} {len(files):>3} files {seconds:6.1f} s", flush=True)
    for target in HELP_TARGETS:
        cmd = [sys.executable, "-m", "rewardlab", *target.split(), "--help"]
        done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        rec["help"][target or "rewardlab"] = done.stdout + done.stderr
    rec["total_seconds"] = time.perf_counter() - started
    (out / "record.json").write_text(json.dumps(rec, indent=1), encoding="utf-8")
    print(f"recorded {len(COMMANDS)} commands and {len(HELP_TARGETS)} help texts in {out}: "
          f"{rec['total_seconds']:.0f} s in all")  # fmt: skip
    return rec
