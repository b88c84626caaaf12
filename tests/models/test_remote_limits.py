"""Remote rewards under hostile servers and options: a total deadline, a size cap, range-checked options,
tokens checked and never printed, and waits that a Ctrl-C or a shutdown ends at once.

Every server here is a stub on a loopback port, stopped by the test.
"""

from __future__ import annotations

import _thread
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewardlab.errors import RewardlabError
from rewardlab.models import remote
from rewardlab.models.remote import RemoteReward


class _Hostile(BaseHTTPRequestHandler):
    """``mode``: trickle (a byte every 0.2 s for 20 s), huge (4 MiB body), hang (no answer for 20 s)."""

    mode = "trickle"

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers["Content-Length"]))
        try:
            if self.mode == "hang":
                time.sleep(20)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.mode == "huge":
                body = b'{"rewards": [1.0], "pad": "' + b"x" * (4 * 2**20) + b'"}'
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up, as it should
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile():
    def start(mode):
        handler = type("Hostile", (_Hostile,), {"mode": mode})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}/score"

    servers = []
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_the_timeout_is_a_deadline_for_the_whole_answer(hostile):
    url = hostile("trickle")  # every read comes within the timeout, the answer never ends
    start = time.monotonic()
    with pytest.raises(RewardlabError, match=r"no answer within 1 s \(after 1 try\)"):
        RemoteReward(f"{url}#timeout=1&retries=0").score(["p"], ["r"])
    assert time.monotonic() - start < 10  # about one timeout, not the 20 s the server would take


def test_answers_over_the_size_cap_are_refused(hostile):
    url = hostile("huge")
    with pytest.raises(RewardlabError, match=r"over max_mb=1"):
        RemoteReward(f"{url}#max_mb=1&retries=0").score(["p"], ["r"])
    assert RemoteReward(f"{url}#max_mb=8").score(["p"], ["r"]) == [1.0]


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("timeout=inf", "timeout='inf' must be a number in [0.001, 86400]"),
        ("retries=inf", "retries='inf' must be a whole number in [0, 100]"),
        ("retries=1.5", "retries='1.5' must be a whole number"),
        ("backoff=1e10", "backoff='1e10' must be a number in [0, 60]"),
        ("concurrency=0", "concurrency='0' must be a whole number in [1, 256]"),
        ("batch=nan", "batch='nan' must be a whole number"),
        ("max_mb=-1", "max_mb='-1' must be a number"),
    ],
)
def test_numeric_options_are_range_checked(option, words):
    with pytest.raises(RewardlabError, match=words.replace("[", r"\[").replace("]", r"\]")):
        RemoteReward(f"http://127.0.0.1:1/score#{option}")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"SECRETONE\nSECRETTWO\n", "a line break"),
        (b"SECRET\xffX", "character 7 is not printable ASCII"),
        (b"SECRET WORD", "character 7 is not printable ASCII"),
    ],
)
def test_bad_tokens_are_refused_without_showing_them(tmp_path, content, words):
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(RewardlabError, match=words) as caught:
        RemoteReward(f"http://127.0.0.1:1/score#token_file={path}")
    assert "SECRET" not in str(caught.value)


def test_bad_token_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "abc\tdef")
    with pytest.raises(RewardlabError, match=r"MY_TOKEN: the token must be one line"):
        RemoteReward("http://127.0.0.1:1/score#token_env=MY_TOKEN")


def test_cancel_ends_a_wait_on_a_hung_server_at_once(hostile, monkeypatch):
    monkeypatch.setattr(remote, "_CANCEL", threading.Event())
    url = hostile("hang")
    threading.Timer(0.3, remote.cancel_requests).start()
    start = time.monotonic()
    with pytest.raises(RewardlabError, match="cancelled"):
        RemoteReward(f"{url}#timeout=60&retries=3").score(["p"], ["r"])
    assert time.monotonic() - start < 15  # the server would hold it 60 s per try


def test_ctrl_c_ends_a_wait_on_a_hung_server_at_once(hostile):
    url = hostile("hang")
    threading.Timer(0.3, _thread.interrupt_main).start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        RemoteReward(f"{url}#timeout=60&retries=3").score(["p"], ["r"])
    assert time.monotonic() - start < 15  # the server would hold it 60 s per try
