"""A reward server reached by URL, scored like any reward model (``--model http://host:port/PATH``).

The URL's path says the protocol:

- ``/score``: another ``rewardlab serve`` (``{"prompts", "responses"}`` → ``{"rewards"}``; chat
  messages go as they are);
- ``/get_reward``: OpenRLHF's remote reward model (``{"query": [prompt + response], "prompts"}`` →
  ``{"rewards"}``; plain text only);
- ``/classify`` and ``/pooling`` (also under ``/v1/``): vLLM's and SGLang's pooling servers. By
  default each item goes as a chat request, ``{"messages": prompt + [assistant response]}`` (a
  plain-text prompt becomes one user message), so the server applies the reward model's chat
  template; with ``input=text`` items go in batches as ``{"input": [prompt + response]}``, text the
  client has already rendered. ``/classify`` asks for raw scores (``use_activation: false``) and
  reads ``probs[-1]``; ``/pooling`` reads the last number of each output (a per-token output's last
  token).

Options follow the URL after ``#`` (never sent to the server): ``token_env=VAR`` or
``token_file=PATH`` (default: the ``REWARDLAB_REMOTE_TOKEN`` environment variable, if set),
``timeout=60`` (seconds per request: a deadline for the whole answer, not per read, so a server
that trickles bytes is cut off too), ``retries=3`` (on connection errors, timeouts, 429 and 5xx,
with exponential back-off from ``backoff=0.5`` s), ``concurrency=4`` (requests in flight),
``batch=64`` (items per request), ``max_mb=16`` (the largest answer read, in MiB), ``model=NAME``
(the ``model`` field of vLLM requests) and ``input=chat|text``. Every number is range-checked
(:data:`LIMITS`); a token must be one line of printable ASCII and is never printed. A failure is one
line naming the URL and the HTTP status.

Requests run in daemon threads, and the caller waits in short steps: a Ctrl-C stops the command at
once, and :func:`cancel_requests` (called when a server shuts down) ends every wait within a fraction
of a second, whatever the remote server does.
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rewardlab.data.schema import Text, is_messages
from rewardlab.errors import RewardlabError
from rewardlab.models.functions import check_rewards
from rewardlab.models.scoring import PairScoring

PROTOCOLS = ("score", "get_reward", "classify", "pooling")
TOKEN_ENV = "REWARDLAB_REMOTE_TOKEN"
_OPTIONS = {
    "token_env",
    "token_file",
    "timeout",
    "retries",
    "backoff",
    "concurrency",
    "batch",
    "max_mb",
    "model",
    "input",
}
#: Each numeric option: (default, lowest, highest, whole number?).
LIMITS: dict[str, tuple[float, float, float, bool]] = {
    "timeout": (60.0, 0.001, 86_400.0, False),
    "retries": (3, 0, 100, True),
    "backoff": (0.5, 0.0, 60.0, False),
    "concurrency": (4, 1, 256, True),
    "batch": (64, 1, 100_000, True),
    "max_mb": (16.0, 0.001, 4096.0, False),
}
#: Set by :func:`cancel_requests`: every request in flight gives up and no new one starts.
_CANCEL = threading.Event()
#: How often a waiting caller looks at the cancel flag (seconds).
_POLL = 0.1


def cancel_requests() -> None:
    """Make every remote request in flight, in every thread, give up now (a server shutting down)."""
    _CANCEL.set()


class RemoteError(RewardlabError):
    """The remote server failed or refused a request; ``status`` is its HTTP status (``None``: no answer).

    ``rewardlab serve`` passes it on as 422 when the remote refused the input (400 or 422), else as 502.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


#: Statuses worth another try: the server is busy or broken for now, not the request.
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


def is_url(spec: str) -> bool:
    """True for an ``http://`` or ``https://`` reward spec."""
    return spec.startswith(("http://", "https://"))


def _number(params: dict[str, str], key: str, spec: str) -> float:
    """Option ``key`` as a number inside its :data:`LIMITS` (its default when absent); one line otherwise."""
    default, low, high, whole = LIMITS[key]
    if key not in params:
        return default
    try:
        value = float(params[key])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high) or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise RewardlabError(f"{spec}: option {key}={params[key]!r} must be {kind} in [{low:g}, {high:g}]")
    return int(value) if whole else value


def _check_token(token: str, where: str) -> str:
    """``token`` when it is one line of printable ASCII (a valid header value); the error never shows it."""
    bad = next((i for i, c in enumerate(token) if not 33 <= ord(c) <= 126), None)
    if bad is not None:
        what = "a line break" if token[bad] in "\r\n" else f"character {bad + 1} is not printable ASCII"
        raise RewardlabError(
            f"{where}: the token must be one line of printable ASCII without spaces ({what})"
        )
    return token


def _read_token(params: dict[str, str], spec: str) -> str | None:
    if "token_file" in params:
        path = params["token_file"]
        try:
            with open(path, "rb") as fh:  # noqa: PTH123 - one read
                raw = fh.read(65_537)
        except OSError as exc:
            raise RewardlabError(f"{spec}: token_file {path}: {exc.strerror or exc}") from None
        token = raw.decode("latin-1").strip()
        if not token:
            raise RewardlabError(f"{spec}: token_file {path} is empty")
        if len(raw) > 65_536:
            raise RewardlabError(f"{spec}: token_file {path} is over 64 KiB: not a token")
        return _check_token(token, f"{spec}: token_file {path}")
    env = params.get("token_env", TOKEN_ENV)
    token = os.environ.get(env, "").strip()
    if "token_env" in params and not token:
        raise RewardlabError(f"{spec}: the environment variable {env} is not set")
    return _check_token(token, f"{spec}: the environment variable {env}") if token else None


def _message(content: bytes) -> str:
    """The server's own error message, short."""
    try:
        body = json.loads(content)
        msg = (
            body.get("error") or body.get("message") or body.get("detail") if isinstance(body, dict) else body
        )
    except ValueError:
        msg = content.decode("utf-8", errors="replace")
    text = " ".join(str(msg).split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def last_number(value: Any) -> float:
    """A pooling output's reward: the number itself, or the last of a list (per token: the last token's)."""
    while isinstance(value, list) and value:
        value = value[-1] if isinstance(value[-1], list) or len(value) > 1 else value[0]
    if isinstance(value, list):
        raise ValueError("an empty output")
    return float(value)


class RemoteReward(PairScoring):
    """Rewards from a server, by URL (see the module doc for the protocols and options)."""

    def __init__(self, spec: str) -> None:
        base, _, fragment = spec.partition("#")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RewardlabError(f"{spec}: not an http(s) URL")
        protocol = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if protocol not in PROTOCOLS:
            raise RewardlabError(
                f"{base}: the path must end with /{', /'.join(PROTOCOLS)} (it says which protocol to speak)"
            )
        params = {k: v[-1] for k, v in parse_qs(fragment, keep_blank_values=True).items()}
        unknown = set(params) - _OPTIONS
        if unknown:
            raise RewardlabError(
                f"{spec}: unknown option {sorted(unknown)[0]!r} (use {', '.join(sorted(_OPTIONS))})"
            )
        self.url, self.protocol = base, protocol
        self.timeout = _number(params, "timeout", base)
        self.retries = int(_number(params, "retries", base))
        self.backoff = _number(params, "backoff", base)
        self.concurrency = int(_number(params, "concurrency", base))
        self.batch = int(_number(params, "batch", base))
        self.max_bytes = int(_number(params, "max_mb", base) * 2**20)
        self.model = params.get("model")
        self.input = params.get("input", "chat")
        if self.input not in ("chat", "text"):
            raise RewardlabError(f"{base}: option input must be chat or text")
        token = _read_token(params, base)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.info = {"kind": "remote", "method": protocol, "path": base, "url": base}
        #: Requests sent and retried, for reports and tests.
        self.requests = self.retried = 0

    # ---------------------------------------------------------------- requests

    def _fetch(self, client: Any, body: dict[str, Any]) -> tuple[int, bytes]:
        """(status, body) of one POST, read within ``timeout`` seconds in all and ``max_mb`` at most.

        Raises:
            TimeoutError: the deadline passed (connecting, sending or reading, however slowly it came).
            RemoteError: the answer is larger than ``max_mb``, or requests were cancelled.
        """
        import httpx

        deadline = time.monotonic() + self.timeout
        limit = httpx.Timeout(self.timeout)
        with client.stream("POST", self.url, json=body, headers=self.headers, timeout=limit) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise RemoteError(
                    f"{self.url}: the answer is {int(declared)} bytes, over max_mb={self.max_bytes / 2**20:g}"
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise RemoteError(f"{self.url}: the answer is over max_mb={self.max_bytes / 2**20:g}")
                if _CANCEL.is_set():
                    raise RemoteError(f"{self.url}: cancelled (shutting down)")
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)

    def _post(self, client: Any, body: dict[str, Any]) -> Any:
        """The JSON answer to one request, with retries; a one-line error naming the URL otherwise."""
        import httpx

        for attempt in range(self.retries + 1):
            last, status = attempt == self.retries, None
            if _CANCEL.is_set():
                raise RemoteError(f"{self.url}: cancelled (shutting down)")
            self.requests += 1
            try:
                status, content = self._fetch(client, body)
            except (httpx.TimeoutException, TimeoutError):
                problem = f"no answer within {self.timeout:g} s"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if status == 200:
                    try:
                        return json.loads(content)
                    except ValueError:
                        raise RemoteError(f"{self.url}: HTTP 200 but the body is not JSON") from None
                problem = f"HTTP {status}: {_message(content)}"
                if status not in RETRY_STATUSES:
                    raise RemoteError(f"{self.url}: {problem}", status)
            if last:
                tries = f"{self.retries + 1} tries" if self.retries else "1 try"
                raise RemoteError(f"{self.url}: {problem} (after {tries})", status)
            self.retried += 1
            if _CANCEL.wait(self.backoff * 2**attempt):
                raise RemoteError(f"{self.url}: cancelled (shutting down)")
        raise AssertionError("unreachable")

    def _post_all(self, bodies: list[dict[str, Any]]) -> list[Any]:
        """The answers to ``bodies``, ``concurrency`` requests at a time, in daemon threads.

        The caller waits in steps of :data:`_POLL` seconds, so a Ctrl-C (``KeyboardInterrupt`` in the
        waiting thread) or :func:`cancel_requests` ends the wait at once; the daemon threads never hold
        the process at exit. The first failure is raised and the remaining requests are not sent.
        """
        import httpx

        if not bodies:
            return []
        answers: list[Any] = [None] * len(bodies)
        done: queue.Queue[tuple[int, Any, BaseException | None]] = queue.Queue()
        todo = iter(enumerate(bodies))
        stop, take = threading.Event(), threading.Lock()
        client = httpx.Client(limits=httpx.Limits(max_connections=self.concurrency))

        workers = [min(self.concurrency, len(bodies))]

        def work() -> None:
            try:
                while not stop.is_set():
                    with take:
                        job = next(todo, None)
                    if job is None:
                        return
                    try:
                        done.put((job[0], self._post(client, job[1]), None))
                    except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                        done.put((job[0], None, exc))
            finally:
                with take:
                    workers[0] -= 1
                    last = workers[0] == 0
                if last:  # the last worker out closes the connections (the caller may be gone)
                    client.close()

        for _ in range(workers[0]):
            threading.Thread(target=work, daemon=True, name="rewardlab-remote").start()
        try:
            for _ in bodies:
                while True:
                    try:
                        k, answer, error = done.get(timeout=_POLL)
                        break
                    except queue.Empty:
                        if _CANCEL.is_set():
                            raise RemoteError(f"{self.url}: cancelled (shutting down)") from None
                if error is not None:
                    raise error
                answers[k] = answer
        finally:
            stop.set()
        return answers

    def _bodies(self, prompts: list[Text], responses: list[Text]) -> list[tuple[list[int], dict[str, Any]]]:
        """(item indices, request body) of every request needed."""
        n = len(prompts)
        extra = {"model": self.model} if self.model else {}
        if self.protocol in ("classify", "pooling") and self.input == "chat":
            out = []
            for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
                conv = list(p) if is_messages(p) else [{"role": "user", "content": p}]
                conv += list(r) if is_messages(r) else [{"role": "assistant", "content": r}]
                body = {**extra, "messages": conv}
                if self.protocol == "classify":
                    body["use_activation"] = False
                out.append(([i], body))
            return out
        out = []
        for start in range(0, n, self.batch):
            idx = list(range(start, min(n, start + self.batch)))
            ps, rs = [prompts[i] for i in idx], [responses[i] for i in idx]
            if self.protocol == "score":
                out.append((idx, {"prompts": ps, "responses": rs}))
                continue
            if any(is_messages(t) for t in ps + rs):
                raise RewardlabError(
                    f"{self.url}: /{self.protocol} with input=text takes plain text, not chat messages"
                    + (" (use input=chat)" if self.protocol != "get_reward" else "")
                )
            texts = [p + r for p, r in zip(ps, rs, strict=True)]  # type: ignore[operator]
            if self.protocol == "get_reward":
                out.append((idx, {"query": texts, "prompts": ps}))
            else:
                body = {**extra, "input": texts}
                if self.protocol == "classify":
                    body["use_activation"] = False
                out.append((idx, body))
        return out

    def _read(self, answer: Any, n: int) -> list[Any]:
        """The ``n`` rewards in one answer."""
        if not isinstance(answer, dict):
            raise RemoteError(f"{self.url}: the answer is not a JSON object")
        if self.protocol in ("score", "get_reward"):
            rewards = answer.get("rewards", answer.get("scores"))
            if not isinstance(rewards, list):
                raise RemoteError(f"{self.url}: the answer has no 'rewards' list")
            return rewards
        data = answer.get("data")
        if not isinstance(data, list) or len(data) != n:
            raise RemoteError(f"{self.url}: the answer's 'data' is not a list of {n} results")
        out: list[Any] = [None] * n
        for k, item in enumerate(data):
            try:
                at = int(item.get("index", k))
                out[at] = item["probs"][-1] if self.protocol == "classify" else last_number(item["data"])
            except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise RemoteError(
                    f"{self.url}: cannot read result {k} ({type(exc).__name__}: {exc})"
                ) from None
        return out

    def score(self, prompts: Sequence[Text], responses: Sequence[Text], **options: Any) -> list[float]:
        """One reward per (prompt, response) from the server; requests run ``concurrency`` at a time.

        ``normalize`` and ``length_correction=True`` are refused (those are the server's to apply);
        other options are ignored.
        """
        if options.get("normalize"):
            raise RewardlabError(
                f"{self.url}: normalisation is the server's (e.g. rewardlab serve --normalize)"
            )
        if options.get("length_correction"):
            raise RewardlabError(f"{self.url}: a length correction is the server's to apply")
        if len(prompts) != len(responses):
            raise RewardlabError(f"{len(prompts)} prompts but {len(responses)} responses")
        prompts, responses = list(prompts), list(responses)
        bodies = self._bodies(prompts, responses)
        rewards: list[Any] = [None] * len(prompts)
        answers = self._post_all([body for _, body in bodies])
        for (idx, _), answer in zip(bodies, answers, strict=True):
            got = check_rewards(self._read(answer, len(idx)), len(idx), self.url)
            for i, r in zip(idx, got, strict=True):
                rewards[i] = r
        return rewards
