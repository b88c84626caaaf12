"""``rewardlab bench serve``: a server's throughput, latency and memory under concurrent clients.

Starts ``rewardlab serve`` on a free loopback port, in its own process as in production (or with
``in_process`` in a thread of this one), and sends ``--requests`` requests of ``--items`` pairs each
from ``--clients`` concurrent clients (``--unique``: texts unique to each request); it reports
requests/s, p50/p99 latency, the number of errors, the server's forward calls, and the server
process's RSS over the run (start, peak, end; psutil or /proc).

Run: ``rewardlab bench serve --model tiny-llama-30m --data ../shared/data/hh-rlhf-helpful-base/test.jsonl.gz
--out serve.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
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

from rewardlab.bench.scoring import sample_pairs
from rewardlab.data.schema import Text, text_plain
from rewardlab.errors import RewardlabError


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
    prompts, responses = sample_pairs(data, max(4 * items, 512), seed)
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
