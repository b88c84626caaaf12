"""``rewardlab bench score`` and ``rewardlab bench serve``: scoring throughput and server latency.

``bench score`` scores the same N (prompt, response) pairs four ways and reports responses/s:
``RewardModel.score`` in its default layout and with ``layout="padded"`` (sorted by length,
batched), a naive per-example loop (one forward pass per
response, in input order), and the ``transformers`` text-classification pipeline on the same
model (prompt + response as one text, ``batch_size`` as given, no activation). The naive loop runs in
float32 whatever ``--dtype`` is, and is the reference of ``agreement_with_fp32``: the share of
(chosen, rejected) pairs whose order the default ``score`` flips, and the Spearman correlation of
its rewards with the reference's. With another ``--dtype``, that model is freed before the float32
reference loads (one model held at a time).

``bench serve`` starts ``rewardlab serve`` on a free loopback port, in its own process as in
production (or with ``in_process`` in a thread of this one), and sends ``--requests`` requests of
``--items`` pairs each from ``--clients`` concurrent clients (``--unique``: texts unique to each
request); it reports requests/s, p50/p99 latency, the number of errors, the server's forward
calls, and the server process's RSS over the run (start, peak, end; psutil or /proc).

Run: ``rewardlab bench score --model tiny-llama-30m --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--n 256 --out score.json``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rewardlab.data.schema import Text, text_plain
from rewardlab.errors import RewardlabError


def _pairs(data: str, n: int, seed: int) -> tuple[list[Text], list[Text]]:
    from rewardlab.data import load_preferences

    pairs = load_preferences(data, on_error="skip").training_pairs()
    rng = random.Random(seed)
    rng.shuffle(pairs)
    chosen = pairs[: max(1, (n + 1) // 2)]
    prompts = [p.prompt for p in chosen for _ in (0, 1)][:n]
    responses = [r for p in chosen for r in (p.chosen, p.rejected)][:n]
    return prompts, responses


def _pool(data: str, n: int) -> tuple[list[Text], list[Text]]:
    """The candidates of the first prompts of a best-of-N pool, in file order, ``n`` at most."""
    from rewardlab.data.pools import read_candidates

    prompts: list[Text] = []
    responses: list[Text] = []
    for pool in read_candidates(data):
        prompts += [pool.prompt] * len(pool.texts)
        responses += pool.texts
        if len(responses) >= n:
            break
    return prompts[:n], responses[:n]


def agreement(reference: list[float], rewards: list[float]) -> dict[str, float | None]:
    """How ``rewards`` rank like ``reference`` (both: chosen, rejected, chosen, … as :func:`_pairs` gives).

    ``order_flips``: the share of (chosen, rejected) pairs whose order differs; ``spearman``: the
    rank correlation of all rewards.
    """
    from rewardlab.metrics import spearman

    pairs = len(reference) // 2
    flips = sum(
        (reference[2 * i] > reference[2 * i + 1]) != (rewards[2 * i] > rewards[2 * i + 1])
        for i in range(pairs)
    )
    return {"pairs": pairs, "order_flips": flips / max(pairs, 1), "spearman": spearman(reference, rewards)}


def bench_score(
    *,
    model: str,
    data: str,
    out: str,
    n: int = 256,
    batch_size: int = 16,
    seed: int = 0,
    max_length: int = 512,
    device: str = "auto",
    dtype: str = "float32",
    pool: bool = False,
    attn_implementation: str | None = None,
) -> dict[str, Any]:
    """Time the four ways of scoring and write the JSON report to ``out``.

    ``pool``: ``data`` is a best-of-N candidate pool, and the responses are its candidates (N per
    prompt) instead of the two sides of preference pairs.
    """
    import torch
    from transformers import pipeline

    from rewardlab import __version__
    from rewardlab.io_utils import write_json
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.runtime import quiet_transformers

    quiet_transformers()
    torch.manual_seed(seed)
    prompts, responses = _pool(data, n) if pool else _pairs(data, n, seed)
    n = len(responses)
    rm = RewardModel.from_pretrained(
        model, max_length=max_length, device=device, dtype=dtype, attn_implementation=attn_implementation
    )
    rows: dict[str, dict[str, float]] = {}
    rm.score(prompts[:4], responses[:4])  # warm-up

    start = time.perf_counter()
    batched = rm.score(prompts, responses, batch_size=batch_size)
    rows["rewardlab_score"] = {"seconds": time.perf_counter() - start, "layout": rm.score_layout()}
    start = time.perf_counter()
    padded = rm.score(prompts, responses, batch_size=batch_size, layout="padded")
    rows["rewardlab_score_padded"] = {"seconds": time.perf_counter() - start, "layout": "padded"}
    rows["naive_loop"] = {}  # filled below, after the pipeline, in the report's order
    texts = [text_plain(p) + text_plain(r) for p, r in zip(prompts, responses, strict=True)]
    pipe = pipeline("text-classification", model=rm.model, tokenizer=rm.tokenizer, device=rm.model.device)
    start = time.perf_counter()
    pipe(texts, batch_size=batch_size, truncation=True, max_length=max_length, function_to_apply="none")
    rows["transformers_pipeline"] = {"seconds": time.perf_counter() - start}
    used = {"device": str(rm.model.device), "dtype_used": rm.dtype_note}

    # the reference: a naive per-example loop in float32, whatever dtype rewardlab scores in
    ref = rm
    if not rm.dtype_note.startswith("float32"):
        del pipe, rm, ref  # one model at a time: this precision's is freed before the float32 one loads
        gc.collect()
        # the same seed again: a model without a trained head (a preset) gets the same random one
        torch.manual_seed(seed)
        ref = RewardModel.from_pretrained(model, max_length=max_length, device=device, dtype="float32")
        ref.score(prompts[:4], responses[:4])  # warm-up
    start = time.perf_counter()
    naive = [ref.score([p], [r], batch_size=1)[0] for p, r in zip(prompts, responses, strict=True)]
    rows["naive_loop"] = {"seconds": time.perf_counter() - start, "dtype": "float32"}

    for r in rows.values():
        r["responses_per_s"] = n / r["seconds"]
    report = {
        "rewardlab_version": __version__,
        "command": {
            "model": model,
            "data": data,
            "n": n,
            "batch_size": batch_size,
            "max_length": max_length,
            "device": used["device"],
            "dtype": dtype,
            "dtype_used": used["dtype_used"],
            "pool": pool,
            "attn_implementation": attn_implementation,
        },
        "responses": n,
        "distinct_prompts": len({text_plain(p) for p in prompts}),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "results": rows,
        "speedup_vs_naive": rows["naive_loop"]["seconds"] / rows["rewardlab_score"]["seconds"],
        "speedup_vs_pipeline": rows["transformers_pipeline"]["seconds"] / rows["rewardlab_score"]["seconds"],
        "max_abs_diff_batched_vs_naive": max(abs(a - b) for a, b in zip(batched, naive, strict=True)),
        "max_abs_diff_padded_vs_naive": max(abs(a - b) for a, b in zip(padded, naive, strict=True)),
        "max_abs_diff_batched_vs_padded": max(abs(a - b) for a, b in zip(batched, padded, strict=True)),
        "reward_scale": max(abs(x) for x in naive),
        "agreement_with_fp32": None if pool else agreement(naive, batched),
    }
    write_json(out, report)
    return report


@contextlib.contextmanager
def _serve_in_thread(
    model: str, port: int, device: str, dtype: str
) -> Iterator[tuple[Callable[[], int], int]]:
    """``rewardlab serve`` in a thread of this process; yields a reader of its forward calls and the pid."""
    import uvicorn

    from rewardlab.runtime import quiet_transformers
    from rewardlab.serving.config import ServeConfig
    from rewardlab.serving.server import create_app

    quiet_transformers()
    app = create_app(ServeConfig(model=[model], port=port, device=device, dtype=dtype))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield (lambda: int(app.state.batcher.calls)), os.getpid()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def _serve_in_process(
    model: str, port: int, device: str, dtype: str
) -> Iterator[tuple[Callable[[], int], int]]:
    """``rewardlab serve`` as its own process; yields a reader of its forward calls (/info) and its pid."""
    import tempfile

    cmd = [sys.executable, "-m", "rewardlab", "serve", "--model", model, "--port", str(port)]
    log = tempfile.TemporaryFile()  # not a pipe: uvicorn's request log would fill it and block the server
    proc = subprocess.Popen(
        [*cmd, "--device", device, "--dtype", dtype], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 600
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RewardlabError(f"rewardlab serve exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=5):
                    break
            except OSError:
                if time.time() > deadline:
                    raise RewardlabError("rewardlab serve did not start in 600 s") from None
                time.sleep(0.2)

        def calls() -> int:
            with urllib.request.urlopen(base + "/info", timeout=30) as resp:
                return int(json.loads(resp.read())["forward_calls"])

        yield calls, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (psutil when installed, else /proc/PID/status); None if gone."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples a process's RSS every ``every`` seconds in a thread: ``[[seconds, MiB], ...]``."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every = pid, every
        self.samples: list[list[float]] = []
        self.stop = threading.Event()
        self.start = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss = rss_bytes(self.pid)
        if rss is not None:
            self.samples.append([round(time.perf_counter() - self.start, 2), round(rss / 2**20, 1)])

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()

    def summary(self) -> dict[str, Any]:
        """Start, peak and end RSS in MiB, and the samples (None when RSS could not be read)."""
        if not self.samples:
            return {"start_mib": None, "peak_mib": None, "end_mib": None, "samples": []}
        mib = [m for _, m in self.samples]
        return {"start_mib": mib[0], "peak_mib": max(mib), "end_mib": mib[-1], "samples": self.samples}


def _request_body(prompts: list[Text], responses: list[Text], i: int, items: int, unique: bool) -> bytes:
    """Request ``i``'s JSON body: ``items`` pairs from the data, made unique to this request if asked."""
    at = (i * items) % max(1, len(prompts) - items)
    ps, rs = prompts[at : at + items], responses[at : at + items]
    if unique:  # a marker no other request has: nothing can come from a cache
        ps = [f"{text_plain(p)} [request {i} item {k}]" for k, p in enumerate(ps)]
        rs = [f"{text_plain(r)} [request {i} item {k}]" for k, r in enumerate(rs)]
    return json.dumps({"prompts": ps, "responses": rs}).encode()


def load_test(
    base: str,
    prompts: list[Text],
    responses: list[Text],
    clients: int,
    requests: int,
    items: int,
    unique: bool = False,
) -> dict:
    """Send ``requests`` POST /score requests from ``clients`` threads; latencies and errors.

    ``unique``: every request's texts are made unique (a marker with the request number), as in RL
    where no response repeats, so caches cannot help and memory growth shows.
    """

    def one(i: int) -> tuple[float, int]:
        req = urllib.request.Request(
            base + "/score", data=_request_body(prompts, responses, i, items, unique), method="POST"
        )
        req.add_header("Content-Type", "application/json")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0
        return time.perf_counter() - start, status

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    lat = sorted(t for t, _ in results)
    return {
        "requests": requests,
        "clients": clients,
        "items_per_request": items,
        "unique": unique,
        "errors": sum(s != 200 for _, s in results),
        "seconds": wall,
        "requests_per_s": requests / wall,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def bench_serve(
    *,
    model: str,
    data: str,
    out: str,
    clients: int = 16,
    requests: int = 320,
    items: int = 4,
    seed: int = 0,
    device: str = "auto",
    dtype: str = "float32",
    in_process: bool = False,
    unique: bool = False,
    rss_every: float = 0.5,
) -> dict[str, Any]:
    """Run ``rewardlab serve`` and load it; write the JSON report to ``out``.

    The report has the server process's RSS (``rss``: start, peak and end in MiB, sampled every
    ``rss_every`` seconds while the load runs); with ``in_process`` that is this process's.
    """
    from rewardlab import __version__
    from rewardlab.io_utils import write_json

    if min(clients, requests, items) < 1 or not rss_every > 0:
        raise RewardlabError("--clients, --requests, --items and --rss-every must be positive")
    prompts, responses = _pairs(data, max(4 * items, 512), seed)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    run = _serve_in_thread if in_process else _serve_in_process
    with run(model, port, device, dtype) as (forward_calls, pid):
        with RssSampler(pid, rss_every) as rss:
            result = load_test(base, prompts, responses, clients, requests, items, unique)
        result["forward_calls"] = forward_calls()
    command = {
        "model": model,
        "data": data,
        "device": device,
        "dtype": dtype,
        "in_process": in_process,
        "unique": unique,
    }
    report = {"rewardlab_version": __version__, "command": command, **result, "rss": rss.summary()}
    write_json(out, report)
    return report
