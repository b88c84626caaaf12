"""Behaviour check for refactors: record what every ``rewardlab`` command does, then compare two recordings.

Run from the repository root::

    python -m dev.behaviour_check record --out DIR [--source SRC]   # run the fixed command set into DIR
    python -m dev.behaviour_check compare BASE NEW [--strict-help]  # every difference; exit 1 on any
    python -m dev.behaviour_check check --baseline DIR [--source SRC] [--keep DIR2]

``record`` runs each command as ``sys.executable -m rewardlab ...`` in ``DIR/work`` with
``PYTHONPATH=SRC`` (default: this checkout), ``OMP_NUM_THREADS=1``, ``REWARDLAB_CPU_BF16=0``, its own
``REWARDLAB_CACHE`` in ``DIR/cache`` and a fixed terminal width, on tiny random models and the demo
data. ``DIR/record.json`` keeps each command's exit code, raw stdout/stderr and the files it wrote;
the files stay in ``DIR/work``. ``compare`` normalises both sides the same way (see
:func:`normalise_text` and :data:`VOLATILE_KEY_PARTS`), so a recording can be compared again after
the normaliser changes. ``--help`` texts are recorded too but only reported as information, since a
refactor may reword them; ``--strict-help`` counts them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Floats in JSON/YAML/JSONL files are equal when within these (math.isclose).
REL_TOL, ABS_TOL = 1e-6, 1e-7
#: Tensors in .safetensors files: ``|a - b| <= TENSOR_ATOL + TENSOR_RTOL * |b|`` elementwise.
TENSOR_RTOL, TENSOR_ATOL = 1e-5, 1e-6
#: JSON keys dropped before comparing (case-insensitive substrings): wall-clock timings, throughput,
#: memory, dates, host and version descriptions. ``time`` also drops ``timeout`` options and
#: ``timestamp``s; ``rss`` drops the whole RSS sample series of ``bench serve``.
VOLATILE_KEY_PARTS = (
    "seconds", "time", "runtime", "per_s", "per_second", "_ms", "latency", "speedup", "rss", "memory",
    "_mb", "_mib", "flops", "mfu", "date", "load_average", "hostname", "platform", "processor", "version",
    "machine", "forward_calls",
)  # fmt: skip
#: Only existence is compared for these (pictures, pickles, TensorBoard event files).
EXISTENCE_ONLY = (".png", ".jpg", ".svg", ".pdf", ".bin", ".pt", ".pth", ".pkl", ".npy")
TEXT_SUFFIXES = (".md", ".txt", ".html", ".csv", ".log", ".jinja", ".py", "")
MAX_DIFFS_PER_FILE = 20
COMMAND_TIMEOUT_S = 600

# Console and text normalisation, applied in this order (see normalise_text).
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
PROGRESS = re.compile(r"━|\d+%\|[^|]*\||\d+(\.\d+)?\s?(it/s|s/it)\b")
SUBS = [
    (re.compile(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=]+"), "data:image/<IMAGE>"),
    (re.compile(r"/tmp/[\w.\-/]+"), "<TMP>"),
    (re.compile(r"\.py:\d+:"), ".py:<L>:"),  # line numbers of warning locations
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"), "<DATE>"),
    (re.compile(r"\b\d+:\d{2}(:\d{2})?(\.\d+)?\b"), "<DURATION>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(KiB|MiB|GiB|KB|MB|GB)\b"), "<MEM>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|sec|seconds|min|minutes|h)\b"), "<TIME>"),
    (re.compile(r"\b\d+(\.\d+)?\s?(\w+)/s\b"), r"<RATE> \2/s"),
    (re.compile(r"(127\.0\.0\.1|localhost):\d+"), r"\1:<PORT>"),
    (re.compile(r"process \[\d+\]"), "process [<PID>]"),
    (re.compile(r"tfevents\.[\w.\-]+"), "tfevents.<ID>"),
    (re.compile(r"(/cache/[\w/]*?)[0-9a-f]{12,}"), r"\1<HASH>"),  # cache keys hash the recording's paths
]
NUMBER = re.compile(r"\d[\d,]*(\.\d+)?(e[-+]?\d+)?×?")


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


# ---------------------------------------------------------------- normalising
def normalise_text(text: str, root: str = "", source: str = "", volatile_numbers: bool = False) -> list[str]:
    """Console or file text as comparable lines.

    ANSI codes go; a carriage return keeps only the last frame of its line; progress-bar lines
    (rich bars, tqdm percentages, it/s) are dropped; the recording folder and the source checkout
    become ``<DIR>``/``<SRC>`` (the interpreter's environment ``<VENV>``), other /tmp paths ``<TMP>``;
    dates, durations, memory figures, times
    (``12.3 s``), rates (``120 requests/s``), ports, process ids and warning line numbers become
    placeholders, and so do cache keys (they hash paths); trailing blanks and empty lines go. Warnings
    and every other line are kept. With ``volatile_numbers`` (the bench commands, which print measured
    speeds) every number is ``<N>`` and runs of blanks are one (table columns widen with the numbers).
    """
    lines = []
    for raw in ANSI.sub("", text).split("\n"):
        line = raw.split("\r")[-1].rstrip()
        if not line.strip() or PROGRESS.search(line):
            continue
        # the interpreter's environment first: it may sit inside the source checkout (.venv)
        for old, new in ((sys.prefix, "<VENV>"), (root, "<DIR>"), (source, "<SRC>")):
            if old:
                line = line.replace(old, new)
        for pattern, repl in SUBS:
            line = pattern.sub(repl, line)
        lines.append(" ".join(NUMBER.sub("<N>", line).split()) if volatile_numbers else line)
    return lines


def drop_volatile(value: Any, norm: Callable[[str], list[str]] | None = None) -> Any:
    """``value`` without the keys named by :data:`VOLATILE_KEY_PARTS`, at any depth.

    With ``norm`` (:func:`normalise_text` bound to a recording), strings are normalised too.
    """
    if isinstance(value, dict):
        return {k: drop_volatile(v, norm) for k, v in value.items()
                if not any(p in str(k).lower() for p in VOLATILE_KEY_PARTS)}  # fmt: skip
    if isinstance(value, list):
        return [drop_volatile(v, norm) for v in value]
    if isinstance(value, str) and norm is not None:
        return "\n".join(norm(value))
    return value


# ---------------------------------------------------------------- comparing
def diff_lines(base: list[str], new: list[str]) -> list[str]:
    """The lines that differ, as ``- base`` / ``+ new``."""
    out = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, base, new, autojunk=False).get_opcodes():
        if op != "equal":
            out += [f"- {line:.300}" for line in base[i1:i2]] + [f"+ {line:.300}" for line in new[j1:j2]]
    return out


def diff_values(base: Any, new: Any, path: str = "$") -> list[str]:
    """Differences between two parsed JSON values; floats within REL_TOL/ABS_TOL are equal."""
    if isinstance(base, dict) and isinstance(new, dict):
        out = [f"{path}.{k}: missing (base {json.dumps(base[k])[:80]})" for k in base if k not in new]
        out += [f"{path}.{k}: added ({json.dumps(new[k])[:80]})" for k in new if k not in base]
        for k in base:
            if k in new:
                out += diff_values(base[k], new[k], f"{path}.{k}")
        return out
    if isinstance(base, list) and isinstance(new, list):
        out = [f"{path}: {len(base)} items, now {len(new)}"] if len(base) != len(new) else []
        for i, (a, b) in enumerate(zip(base, new, strict=False)):
            out += diff_values(a, b, f"{path}[{i}]")
        return out
    numbers = (int, float)
    if isinstance(base, numbers) and isinstance(new, numbers) and not isinstance(base, bool):
        if isinstance(new, bool) or not (
            (math.isnan(base) and math.isnan(new))
            or math.isclose(base, new, rel_tol=REL_TOL, abs_tol=ABS_TOL)
        ):
            return [f"{path}: {base!r} != {new!r}"]
        return []
    return [] if base == new and type(base) is type(new) else [f"{path}: {base!r:.120} != {new!r:.120}"]


def load_structured(path: Path) -> Any:
    """A JSON, JSONL or YAML file as parsed data."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def diff_tensors(base: Path, new: Path) -> list[str]:
    """Tensor-by-tensor differences of two safetensors files (names, shapes, dtypes, values)."""
    from safetensors.torch import load_file

    a, b = load_file(str(base)), load_file(str(new))
    out = [f"tensor {k}: missing" for k in a if k not in b] + [f"tensor {k}: added" for k in b if k not in a]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if x.shape != y.shape or x.dtype != y.dtype:
            out.append(f"tensor {k}: {tuple(x.shape)} {x.dtype} != {tuple(y.shape)} {y.dtype}")
        elif not x.double().allclose(y.double(), rtol=TENSOR_RTOL, atol=TENSOR_ATOL, equal_nan=True):
            out.append(f"tensor {k}: max |diff| {(x.double() - y.double()).abs().max().item():.3g}")
    return out


def diff_file(
    base: Path, new: Path, norm_base: Callable[[str], list[str]], norm_new: Callable[[str], list[str]]
) -> list[str]:
    """Differences between one output file of two recordings, by its type."""
    suffix = base.suffix.lower()
    if not (base.is_file() and new.is_file()):
        return [] if base.is_file() == new.is_file() else [f"file {'missing' if base.is_file() else 'added'}"]
    if suffix in EXISTENCE_ONLY or "tfevents" in base.name:
        return []
    if suffix == ".safetensors":
        return diff_tensors(base, new)
    try:
        if suffix in (".json", ".jsonl", ".yaml", ".yml"):
            a, b = (
                drop_volatile(load_structured(base), norm_base),
                drop_volatile(load_structured(new), norm_new),
            )
            return diff_values(a, b) if a != b else []
        if suffix in TEXT_SUFFIXES:
            a, b = base.read_text(errors="replace"), new.read_text(errors="replace")
            if suffix == ".html":  # one element a line, so that a difference names its element
                a, b = a.replace("><", ">\n<"), b.replace("><", ">\n<")
            return diff_lines(norm_base(a), norm_new(b))
    except (UnicodeDecodeError, ValueError) as exc:
        return [f"could not be read: {exc}"] if base.read_bytes() != new.read_bytes() else []
    return [] if base.read_bytes() == new.read_bytes() else ["bytes differ"]


def compare_records(
    base: dict[str, Any], new: dict[str, Any], strict_help: bool = False
) -> tuple[list, list]:
    """(differences, help differences) between two recordings, each a printable line."""
    diffs: list[str] = []
    b_root, n_root = Path(base["root"]), Path(new["root"])
    cmds_b = {c["name"]: c for c in base["commands"]}
    cmds_n = {c["name"]: c for c in new["commands"]}
    diffs += [f"[{n}] command missing" for n in cmds_b if n not in cmds_n]
    diffs += [f"[{n}] command added" for n in cmds_n if n not in cmds_b]
    seen: set[str] = set()
    for name in (n for n in cmds_b if n in cmds_n):
        b, n = cmds_b[name], cmds_n[name]
        vol = b.get("volatile_numbers", False)

        def nb(s: str, vol: bool = vol) -> list[str]:
            return normalise_text(s, base["root"], base["source"], vol)

        def nn(s: str, vol: bool = vol) -> list[str]:
            return normalise_text(s, new["root"], new["source"], vol)

        if b["exit_code"] != n["exit_code"]:
            diffs.append(f"[{name}] exit code {b['exit_code']} != {n['exit_code']}")
        for stream in ("stdout", "stderr"):
            diffs += [f"[{name}] {stream}: {line}" for line in diff_lines(nb(b[stream]), nn(n[stream]))]
        fb, fn = ({"".join(normalise_text(f)) for f in c["files"]} for c in (b, n))  # tfevents names
        diffs += [f"[{name}] file missing: {f}" for f in sorted(fb - fn)]
        diffs += [f"[{name}] file added: {f}" for f in sorted(fn - fb)]
        for f in sorted(set(b["files"]) & set(n["files"]) - seen):
            seen.add(f)
            found = diff_file(b_root / "work" / f, n_root / "work" / f, nb, nn)
            diffs += [f"[{name}] {f}: {d}" for d in found[:MAX_DIFFS_PER_FILE]]
            if len(found) > MAX_DIFFS_PER_FILE:
                diffs.append(f"[{name}] {f}: ... {len(found) - MAX_DIFFS_PER_FILE} more differences")
    helps = []
    for key in sorted(set(base["help"]) | set(new["help"])):
        hb = normalise_text(base["help"].get(key, ""), base["root"], base["source"])
        hn = normalise_text(new["help"].get(key, ""), new["root"], new["source"])
        helps += [f"[help {key}] {line}" for line in diff_lines(hb, hn)]
    return (diffs + helps, []) if strict_help else (diffs, helps)


def compare(base_dir: Path, new_dir: Path, strict_help: bool = False) -> int:
    """Print every difference between two recordings; 1 when there is any (help: information only)."""
    base = json.loads((base_dir / "record.json").read_text(encoding="utf-8"))
    new = json.loads((new_dir / "record.json").read_text(encoding="utf-8"))
    diffs, helps = compare_records(base, new, strict_help)
    if helps:
        print(f"information: {len(helps)} --help lines differ (not counted; --strict-help counts them)")
        print("\n".join(f"  {h}" for h in helps))
    print("\n".join(diffs))
    print(f"{len(diffs)} differences between {base_dir} ({base.get('source')}) and {new_dir} "
          f"({new.get('source')}); recorded in {base.get('total_seconds', 0):.0f} s and "
          f"{new.get('total_seconds', 0):.0f} s")  # fmt: skip
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    """The command line: record, compare, check."""
    parser = argparse.ArgumentParser(prog="python -m dev.behaviour_check", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the command set into --out")
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--source", type=Path, default=REPO, help="checkout to run (PYTHONPATH); default: this")
    cmp_ = sub.add_parser("compare", help="print every difference between two recordings")
    cmp_.add_argument("base", type=Path)
    cmp_.add_argument("new", type=Path)
    chk = sub.add_parser("check", help="record into a temporary folder, then compare with --baseline")
    chk.add_argument("--baseline", type=Path, required=True)
    chk.add_argument("--source", type=Path, default=REPO)
    chk.add_argument("--keep", type=Path, help="record here instead of a temporary folder (kept)")
    for p in (cmp_, chk):
        p.add_argument("--strict-help", action="store_true", help="count --help differences as failures")
    args = parser.parse_args(argv)
    if args.cmd == "record":
        record(args.out, args.source)
        return 0
    if args.cmd == "compare":
        return compare(args.base, args.new, args.strict_help)
    if args.keep:
        record(args.keep, args.source)
        return compare(args.baseline, args.keep, args.strict_help)
    with tempfile.TemporaryDirectory(prefix="behaviour-check-") as tmp:
        record(Path(tmp) / "rec", args.source)
        return compare(args.baseline, Path(tmp) / "rec", args.strict_help)


if __name__ == "__main__":
    sys.exit(main())
