"""Helpers shared by the serving unit tests and tests/integration/test_remote_protocols.py.

``pairs`` takes prompts and chosen responses from the demo rows; ``stub_server`` runs a small
``/score`` server in a thread (:class:`StubScoreHandler`), which the ``stub`` fixture in
tests/conftest.py yields. Nothing here is a test: the modules that import it are run with pytest.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def pairs(demo_rows, n=6):
    return [r["prompt"] for r in demo_rows[:n]], [r["chosen"] for r in demo_rows[:n]]


class StubScoreHandler(BaseHTTPRequestHandler):
    """Answers /score: ``fail`` times 503 first, waits ``delay`` s, counts requests in flight."""

    fail = 0
    delay = 0.0
    lock = threading.Lock()
    in_flight = peak = calls = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        cls = type(self)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with cls.lock:
            cls.calls += 1
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
            failing = cls.fail > 0
            cls.fail -= 1
        time.sleep(cls.delay)
        with cls.lock:
            cls.in_flight -= 1
        if failing:
            out, status = {"error": "busy"}, 503
        else:
            out, status = {"rewards": [float(len(r)) for r in body["responses"]]}, 200
        data = json.dumps(out).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up (timeout test)
            pass

    def log_message(self, *args):
        pass


@contextmanager
def stub_server() -> Iterator[tuple[str, type[StubScoreHandler]]]:
    """A fresh :class:`StubScoreHandler` subclass served on a loopback port: its /score URL and class."""
    handler = type("Stub", (StubScoreHandler,), {"lock": threading.Lock()})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/score", handler
    finally:
        srv.shutdown()
        srv.server_close()
