"""``rewardlab serve``: an HTTP reward server (FastAPI + uvicorn) with auth, validation, micro-batching.

Run: ``rewardlab serve --model DIR [--model DIR2 ...] [--host 127.0.0.1] [--port 8000] [--token-file F]``.

Endpoints: ``POST /score`` (``{"prompts": [...], "responses": [...]}`` or ``{"messages": [conv, ...]}``
→ ``{"rewards": [...]}``), ``POST /get_reward`` (OpenRLHF's remote reward model protocol:
``{"query": [...], "prompts": [...]}`` → ``{"rewards": [...], "scores": [...]}``), ``GET /health``
and ``GET /info``. Loopback by default; a non-loopback host needs a bearer token. Every request is
validated before it reaches the model, so user input gets a 4xx with a clear message, never a
500. Requests arriving together are scored in one forward pass (micro-batching).
"""

import asyncio
import hmac
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardlab.config import opt
from rewardlab.errors import RewardlabError


@dataclass
class ServeConfig:
    """Options of ``rewardlab serve``."""

    model: list[str] = opt(help="Reward model folder; several make an ensemble (see --aggregation).")
    host: str = opt("127.0.0.1", help="Interface to bind; anything but loopback needs --token-file.")
    port: int = opt(8000, help="Port.")
    token_file: str | None = opt(None, help="File holding the bearer token clients must send.")
    normalize: bool = opt(False, help="Normalise rewards with the checkpoints' stored mean/std.")
    length_correction: bool | None = opt(
        None,
        help="Apply the length correction stored by rewardlab diagnose (default: if a checkpoint has one).",
    )
    aggregation: str = opt("mean", help="With several models: mean, min (WCO) or uwo (mean - lambda*std).")
    uwo_lambda: float = opt(1.0, help="Lambda of --aggregation uwo.")
    max_items: int = opt(256, help="Most (prompt, response) items in one request.")
    max_body_bytes: int = opt(4_000_000, help="Largest request body accepted.")
    max_chars: int = opt(32_000, help="Longest prompt or response, in characters.")
    overlong: str = opt("refuse", help="A text over --max-chars: refuse (413) or truncate (keep its end).")
    batch_size: int = opt(32, help="Most sequences per forward pass.")
    max_tokens: int = opt(
        8192,
        help="Token budget per forward pass (padded: batch x longest sequence; packed: tokens).",
    )
    layout: str = opt(
        "auto",
        help="auto (packed for decoders that reproduce padded rewards on a probe), packed or padded.",
    )
    batch_window_ms: float = opt(5.0, help="How long the first request of a micro-batch waits for others.")
    device: str = opt("auto", help="auto (a CUDA device when torch sees one, else the CPU), cpu, cuda, ...")
    dtype: str = opt("float32", help="Weights in float32, bfloat16 or float16.")
    attn_implementation: str | None = opt(
        None, help="Attention kernel: sdpa, eager, flex_attention (block masks for packed rows; GPU)."
    )

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("give at least one --model")
        if self.layout not in ("auto", "padded", "packed"):
            raise ValueError("--layout must be auto, padded or packed")
        if self.overlong not in ("refuse", "truncate"):
            raise ValueError("--overlong must be refuse or truncate")
        if not is_loopback(self.host) and not self.token_file:
            raise ValueError(
                f"--host {self.host} is not loopback: give --token-file so clients must authenticate"
            )
        if (
            min(self.max_items, self.max_body_bytes, self.max_chars, self.batch_size, self.max_tokens) < 1
            or self.batch_window_ms < 0
        ):
            raise ValueError("limits must be positive")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BadRequest(Exception):
    """A client error: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _texts(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list):
        raise BadRequest(422, f"'{key}' must be a list")
    return value


def _check_text(value: Any, where: str, cfg: ServeConfig) -> Any:
    if isinstance(value, list):  # chat messages
        if not value or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in value
        ):
            raise BadRequest(
                422, f"{where}: messages must be a non-empty list of {{'role', 'content'}} strings"
            )
        return value
    if not isinstance(value, str):
        raise BadRequest(
            422, f"{where}: must be a string (or a list of messages), got {type(value).__name__}"
        )
    if not value.strip():
        raise BadRequest(422, f"{where}: empty text")
    if len(value) > cfg.max_chars:
        if cfg.overlong == "refuse":
            raise BadRequest(413, f"{where}: {len(value)} characters, over the limit of {cfg.max_chars}")
        value = value[-cfg.max_chars :]
    return value


def parse_score(body: Any, cfg: ServeConfig) -> tuple[list[Any], list[Any]]:
    """(prompts, responses) of a ``/score`` body, validated."""
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    if "messages" in body:
        convs = _texts(body, "messages")
        prompts, responses = [], []
        for i, conv in enumerate(convs):
            conv = _check_text(conv, f"messages[{i}]", cfg)
            if not isinstance(conv, list) or len(conv) < 2 or conv[-1]["role"] != "assistant":
                raise BadRequest(422, f"messages[{i}]: a conversation ending with an assistant message")
            prompts.append(conv[:-1])
            responses.append([conv[-1]])
    else:
        prompts, responses = _texts(body, "prompts"), _texts(body, "responses")
        if len(prompts) != len(responses):
            raise BadRequest(422, f"{len(prompts)} prompts but {len(responses)} responses")
        prompts = [_check_text(p, f"prompts[{i}]", cfg) for i, p in enumerate(prompts)]
        responses = [_check_text(r, f"responses[{i}]", cfg) for i, r in enumerate(responses)]
    _check_count(len(prompts), cfg)
    return prompts, responses


def parse_get_reward(body: Any, cfg: ServeConfig) -> tuple[list[str], list[str]]:
    """(prompts, responses) of an OpenRLHF ``/get_reward`` body: each query is prompt + response."""
    if not isinstance(body, dict):
        raise BadRequest(422, "the body must be a JSON object")
    queries, prompts = _texts(body, "query"), _texts(body, "prompts")
    if len(queries) != len(prompts):
        raise BadRequest(422, f"{len(queries)} queries but {len(prompts)} prompts")
    responses = []
    for i, (q, p) in enumerate(zip(queries, prompts, strict=True)):
        if not isinstance(q, str) or not isinstance(p, str):
            raise BadRequest(422, f"query[{i}] and prompts[{i}] must be strings")
        if not q.startswith(p):
            raise BadRequest(422, f"query[{i}] does not start with prompts[{i}]")
        responses.append(_check_text(q[len(p) :], f"query[{i}] (after its prompt)", cfg))
    _check_count(len(queries), cfg)
    return [_check_text(p, f"prompts[{i}]", cfg) for i, p in enumerate(prompts)], responses


def _check_count(n: int, cfg: ServeConfig) -> None:
    if n == 0:
        raise BadRequest(422, "no items to score")
    if n > cfg.max_items:
        raise BadRequest(413, f"{n} items, over the limit of {cfg.max_items} per request")


class MicroBatcher:
    """Collects concurrent requests for ``window`` seconds and scores them in one call."""

    def __init__(self, score: Any, window: float, max_items: int) -> None:
        self.score, self.window, self.max_items = score, window, max_items
        self.queue: asyncio.Queue[tuple[list[Any], list[Any], asyncio.Future[list[float]]]] | None = None
        self.task: asyncio.Task[None] | None = None
        #: Forward calls made and items scored, for /info and the tests.
        self.calls = 0
        self.items = 0

    async def submit(self, prompts: list[Any], responses: list[Any]) -> list[float]:
        """Score one request's items together with whatever else is waiting."""
        if self.queue is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.create_task(self._run())
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        await self.queue.put((prompts, responses, future))
        return await future

    async def _run(self) -> None:
        assert self.queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self.queue.get()]
            await asyncio.sleep(self.window)
            while not self.queue.empty() and sum(len(j[0]) for j in jobs) < self.max_items:
                jobs.append(self.queue.get_nowait())
            prompts = [p for j in jobs for p in j[0]]
            responses = [r for j in jobs for r in j[1]]
            try:
                rewards = await loop.run_in_executor(None, self.score, prompts, responses)
            except Exception as exc:  # noqa: BLE001 - every waiting request must hear about it
                for _, _, fut in jobs:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.calls += 1
            self.items += len(prompts)
            at = 0
            for p, _, fut in jobs:
                if not fut.done():
                    fut.set_result(rewards[at : at + len(p)])
                at += len(p)


def layout_of(model: Any, layout: str) -> str:
    """The scoring layout ``model`` uses for ``layout``; raises at start-up if it cannot."""
    if hasattr(model, "score_layout"):
        return str(model.score_layout(layout))
    if layout == "packed":
        raise RewardlabError(f"--layout packed: a {type(model).__name__} scores padded rows only")
    return "padded"


def load_scorer(cfg: ServeConfig) -> tuple[Any, dict[str, Any]]:
    """The model (or ensemble) to serve and what ``/info`` says about it."""
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.models.reward_model import RewardModel, length_correction_of, resolve_device

    load = {"device": cfg.device, "dtype": cfg.dtype, "attn_implementation": cfg.attn_implementation}
    models = [RewardModel.from_pretrained(m, **load) for m in cfg.model]
    infos = [getattr(m, "info", {}) or {} for m in models]
    described = [
        {
            "path": path,
            "kind": i.get("kind", "orm"),
            "method": i.get("method", "full"),
            "base_model": i.get("base_model", path),
            "max_length": i.get("max_length") or getattr(getattr(m, "encoder", None), "max_length", None),
            "normalization": i.get("normalization"),
            "length_correction": length_correction_of(i, cfg.length_correction),
            "layout": layout_of(m, cfg.layout),
            "layout_reason": getattr(m, "layout_note", "")
            if cfg.layout == "auto"
            else f"--layout {cfg.layout}",
        }
        for path, m, i in zip(cfg.model, models, infos, strict=True)
    ]
    if cfg.normalize and not all(i.get("normalization") for i in infos):
        raise RewardlabError("--normalize: a model stores no reward normalisation in rewardlab.json")
    # one model, or the ensemble (which normalises its members by its own rule and ignores ``normalize``)
    scorer = (
        models[0]
        if len(models) == 1
        else RewardEnsemble(models, cfg.aggregation, cfg.uwo_lambda, normalize=cfg.normalize or None)
    )
    options = {
        "batch_size": cfg.batch_size,
        "max_tokens": cfg.max_tokens,
        "normalize": cfg.normalize,
        "length_correction": cfg.length_correction,
        "layout": cfg.layout,
    }

    def score(prompts: list[Any], responses: list[Any]) -> list[float]:
        return scorer.score(prompts, responses, **options)

    info = {
        "models": described,
        "aggregation": cfg.aggregation if len(models) > 1 else None,
        "normalize": cfg.normalize,
        "device": str(resolve_device(cfg.device)),
        "dtype": cfg.dtype,
        "limits": {"max_items": cfg.max_items, "max_chars": cfg.max_chars, "overlong": cfg.overlong},
    }
    return score, info


def create_app(cfg: ServeConfig, scorer: tuple[Any, dict[str, Any]] | None = None) -> Any:
    """The FastAPI app (models loaded here unless ``scorer`` = (score function, info) is given)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    score, info = scorer or load_scorer(cfg)
    token = Path(cfg.token_file).read_text().strip() if cfg.token_file else None
    if cfg.token_file and not token:
        raise RewardlabError(f"{cfg.token_file}: the token file is empty")
    batcher = MicroBatcher(score, cfg.batch_window_ms / 1000, cfg.max_items)
    app = FastAPI(title="rewardlab reward server")
    app.state.batcher = batcher

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        got = request.headers.get("authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(got[7:].encode(), token.encode())

    async def body_of(request: Request) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > cfg.max_body_bytes:
            raise BadRequest(413, f"body of {size} bytes, over the limit of {cfg.max_body_bytes}")
        raw = await request.body()
        if len(raw) > cfg.max_body_bytes:
            raise BadRequest(413, f"body of {len(raw)} bytes, over the limit of {cfg.max_body_bytes}")
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(400, f"malformed JSON: {exc}") from exc

    async def handle(request: Request, parse: Any, shape: Any) -> JSONResponse:
        if not authorised(request):
            return error(401, "missing or wrong bearer token")
        try:
            prompts, responses = parse(await body_of(request), cfg)
        except BadRequest as exc:
            return error(exc.status, exc.message)
        try:
            rewards = await batcher.submit(prompts, responses)
        except RewardlabError as exc:
            return error(422, str(exc))
        return JSONResponse(shape(rewards))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info")
    async def get_info(request: Request) -> JSONResponse:
        if not authorised(request):
            return error(401, "missing or wrong bearer token")
        return JSONResponse({**info, "forward_calls": batcher.calls, "items_scored": batcher.items})

    @app.post("/score")
    async def post_score(request: Request) -> JSONResponse:
        return await handle(request, parse_score, lambda r: {"rewards": r})

    @app.post("/get_reward")
    async def post_get_reward(request: Request) -> JSONResponse:
        return await handle(request, parse_get_reward, lambda r: {"rewards": r, "scores": r})

    return app


def serve(cfg: ServeConfig) -> None:
    """Load the model(s) and run uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level="info")
