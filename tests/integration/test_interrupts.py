"""A Ctrl-C stops every command promptly with exit status 130 and one line, as shells expect.

Each command runs as a real process (``python -m rewardlab``) and gets a real SIGINT while it works:
inside a reward function, while waiting on a hung remote server, and in the middle of training. Before,
Typer's 130 was dropped and the shell saw 0, so ``rewardlab train ... && next-step`` went on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SLOW = """
import pathlib, time
def slow(prompts, completions, **kw):
    pathlib.Path(__file__).with_suffix(".started").write_text("x")
    time.sleep(60)
    return [1.0] * len(completions)
"""


def interrupt_when(cmd: list[str], ready, timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    """Start ``cmd``, wait until ``ready()`` is true, send SIGINT; (the finished process, seconds it took)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, f"the command ended before it was interrupted: {proc.communicate()}"
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), time.monotonic() - sent


def rewardlab(*args: str) -> list[str]:
    return [sys.executable, "-m", "rewardlab", *args]


def test_ctrl_c_inside_a_reward_function_exits_130(tmp_path):
    fn = tmp_path / "slow.py"
    fn.write_text(SLOW)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "p", "response": "a"}\n')
    out = tmp_path / "o.jsonl"
    done, took = interrupt_when(
        rewardlab("score", "--model", f"{fn}:slow", "--data", str(rows), "--out", str(out)),
        lambda: fn.with_suffix(".started").exists(),
    )
    assert done.returncode == 130 and done.stderr.strip() == "interrupted", done.stderr
    assert took < 30 and not out.exists()


class _Hang(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        type(self).seen.set()
        time.sleep(60)

    def log_message(self, *args):
        pass


def test_ctrl_c_while_a_remote_server_hangs_exits_130_at_once(tmp_path):
    handler = type("Hang", (_Hang,), {"seen": threading.Event()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        rows = tmp_path / "rows.jsonl"
        rows.write_text('{"prompt": "p", "response": "a"}\n')
        url = f"http://127.0.0.1:{srv.server_address[1]}/score#timeout=60&retries=3"
        done, took = interrupt_when(
            rewardlab("score", "--model", url, "--data", str(rows), "--out", str(tmp_path / "o.jsonl")),
            handler.seen.is_set,
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert done.returncode == 130 and done.stderr.strip() == "interrupted", done.stderr
    assert took < 20  # the server would hold it 60 s per try


def test_ctrl_c_during_training_exits_130(tmp_path, demo_file):
    out = tmp_path / "run"
    log = out / "train_log.jsonl"
    done, took = interrupt_when(
        rewardlab(
            "train",
            "--model",
            "tiny-llama",
            "--data",
            str(demo_file),
            "--out",
            str(out),
            "--epochs",
            "100",
            "--max-length",
            "64",
            "--logging-steps",
            "1",
        ),
        lambda: log.exists() and log.stat().st_size > 0,
        timeout=240,
    )
    assert done.returncode == 130 and done.stderr.strip().endswith("interrupted"), done.stderr[-2000:]
    assert took < 30
    assert not (Path(out) / "model.safetensors").exists()  # no half-written model passed off as one


def test_sigterm_stops_a_server_whose_upstream_hangs_within_seconds(tmp_path):
    import socket
    import urllib.request

    handler = type("Hang", (_Hang,), {"seen": threading.Event()})
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{upstream.server_address[1]}/score#timeout=60&retries=3"
    proc = subprocess.Popen(
        rewardlab("serve", "--model", url, "--port", str(port)), stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        body = b'{"prompts": ["p"], "responses": ["r"]}'
        request = urllib.request.Request(
            base + "/score", data=body, headers={"Content-Type": "application/json"}
        )
        threading.Thread(target=_ignore, args=(request,), daemon=True).start()
        assert handler.seen.wait(30), "the request never reached the upstream"
        proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        proc.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        upstream.shutdown()
        upstream.server_close()
    assert took < 20, f"shutdown took {took:.1f} s"


def _ignore(request):
    import urllib.request

    try:
        urllib.request.urlopen(request, timeout=90).close()
    except OSError:  # the server went away, as it should
        pass
