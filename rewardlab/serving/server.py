"""``rewardlab serve``: an HTTP reward server (FastAPI + uvicorn) with auth, validation, micro-batching.

Run: ``rewardlab serve --model DIR [--model DIR2 ...] [--host 127.0.0.1] [--port 8000] [--token-file F]``.

Endpoints: ``POST /score`` (``{"prompts": [...], "responses": [...]}`` or ``{"messages": [conv, ...]}``
→ ``{"rewards": [...]}``; with ``"return_uncertainty": true`` an ensemble adds ``"std"``, its
members' spread per item), ``POST /get_reward`` (OpenRLHF's remote reward model protocol:
``{"query": [...], "prompts": [...]}`` → ``{"rewards": [...], "scores": [...]}``), ``POST /classify``
and ``POST /pooling`` (vLLM's pooling server shapes, also under ``/v1/``; see
``rewardlab.serving.requests.parse_pooling``), ``POST /predict`` (text-embeddings-inference),
``POST /v1/score/evaluation`` (LLaMA-Factory), ``GET /v1/models`` (see
``rewardlab.serving.compat``), ``GET /health`` and ``GET /info``. A ``--model`` may be a
checkpoint, a reward function, a built-in verifier, another server's URL or a weighted sum of those
(``rewardlab.models.loading``); for a sum, ``/score`` with ``"return_parts": true`` adds ``"parts"``.
Every scoring endpoint takes ``"signals": true``: the answer then carries each item's reward-hacking
signals (``rewardlab.serving.signals``).
Under ``--normalize`` every endpoint serves the normalised reward. Loopback by default; a
non-loopback host needs a bearer token.
Every request is validated before it reaches the model (``rewardlab.serving.requests``), so user
input gets a 4xx with a clear message, never a 500. Requests arriving together share scoring
calls, large ones cut into chunks and interleaved (``rewardlab.serving.batching``); a reward that
is not finite is never served.
"""

import asyncio
import hmac
import logging
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.serving import compat
from rewardlab.serving.batching import MicroBatcher, ScoringFailed, non_finite
from rewardlab.serving.config import ServeConfig, is_loopback
from rewardlab.serving.requests import (
    BadRequest,
    parse_get_reward,
    parse_pooling,
    parse_score,
    read_body,
    read_token,
    wants_parts,
    wants_uncertainty,
)
from rewardlab.serving.signals import attach_signals, signed_scorer, wants_signals
from rewardlab.serving.vllm_shapes import vllm_shape

log = logging.getLogger(__name__)

#: The pair scored at start-up: a model that gives it a non-finite reward is refused.
PROBE = ("What is 2 + 2?", "2 + 2 = 4.")


def layout_of(model: Any, layout: str) -> str | None:
    """The scoring layout ``model`` uses for ``layout``; raises at start-up if it cannot.

    ``None`` for a reward function or a remote server (no forward passes here).
    """
    if (getattr(model, "info", None) or {}).get("kind") in NOT_CHECKPOINTS:
        return None
    if hasattr(model, "score_layout"):
        return str(model.score_layout(layout))
    if layout == "packed":
        raise RewardlabError(f"--layout packed: a {type(model).__name__} scores padded rows only")
    return "padded"


#: Scorer kinds that are not checkpoints: no weights, layout or stored normalisation (a sum's
#: checkpoint parts take the layout options themselves).
NOT_CHECKPOINTS = ("function", "verifier", "remote", "combined")


def load_scorer(cfg: ServeConfig) -> tuple[Any, dict[str, Any]]:
    """The model (or ensemble) to serve and what ``/info`` says about it.

    The score function's ``spread`` attribute (``None`` for a single model that is not an
    embedding ensemble) gives the members' standard deviation per item, for
    ``"return_uncertainty": true``; its ``parts`` attribute (``None`` unless the one model is a
    ``sum:``) is ({part name: score function}, combine), for ``"return_parts": true``. In an ensemble each
    checkpoint is scored on the probe pair here (reward functions and servers may not judge an
    arbitrary pair, so they are not probed).
    """
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.models.loading import load_reward
    from rewardlab.models.reward_model import dtype_choice, length_correction_of, resolve_device
    from rewardlab.models.signals import available_signals

    load = {"device": cfg.device, "dtype": cfg.dtype, "attn_implementation": cfg.attn_implementation}
    models = [load_reward(m, **load) for m in cfg.model]
    for m in (m for m in models if hasattr(m, "embedder")):  # unique completions: cache in memory only
        m.embedder.cache_writes = False
    infos = [getattr(m, "info", {}) or {} for m in models]
    described = [
        {
            "path": path,
            "kind": i.get("kind", "orm"),
            "url": i.get("url"),
            "method": i.get("method", "full"),
            "base_model": i.get("base_model", path),
            "max_length": i.get("max_length") or getattr(getattr(m, "encoder", None), "max_length", None),
            "normalization": i.get("normalization"),
            "length_correction": length_correction_of(i, cfg.length_correction),
            "layout": layout_of(m, cfg.layout),
            "layout_reason": getattr(m, "layout_note", "")
            if cfg.layout == "auto"
            else f"--layout {cfg.layout}",
            "dtype": getattr(m, "dtype_note", cfg.dtype),
            **({"parts": i["parts"]} if i.get("kind") == "combined" else {}),
        }
        for path, m, i in zip(cfg.model, models, infos, strict=True)
    ]
    for m, i in zip(models, infos, strict=True):
        if i.get("kind") not in NOT_CHECKPOINTS and len(models) > 1:
            probe(lambda p, r, m=m: m.score(p, r, batch_size=1))
    if len(models) > 1 and any(i.get("kind") == "combined" for i in infos):
        raise RewardlabError(
            "a sum: reward is served alone; write the other rewards into it as parts, not as more --model"
        )
    if cfg.normalize and any(i.get("kind") == "combined" for i in infos):
        raise RewardlabError(
            "--normalize: a sum: reward normalises the parts its spec marks (norm:SPEC) instead"
        )
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

    spread = None
    if isinstance(scorer, RewardEnsemble) or hasattr(scorer, "score_members"):
        members = scorer if isinstance(scorer, RewardEnsemble) else RewardEnsemble([scorer])

        def spread(prompts: list[Any], responses: list[Any]) -> list[float]:
            return members.score_spread(prompts, responses, **options)

    parts = None
    if len(models) == 1 and hasattr(scorer, "score_parts"):

        def part_fn(name: str) -> Any:
            return lambda prompts, responses: scorer.score_part(name, prompts, responses, **options)

        parts = ({name: part_fn(name) for name in scorer.names}, scorer.combine)

    info = {
        "probe": len(models) == 1 and infos[0].get("kind") not in NOT_CHECKPOINTS,
        "uncertainty": spread is not None,
        "signals": available_signals(scorer),
        "models": described,
        "aggregation": cfg.aggregation if len(models) > 1 else None,
        "normalize": cfg.normalize,
        "device": str(resolve_device(cfg.device)),
        # what --dtype resolved to (each model's own entry says why; embedding models stay float32)
        "dtype": dtype_choice(cfg.dtype, resolve_device(cfg.device))[0],
        "limits": {
            "max_items": cfg.max_items,
            "max_chars": cfg.max_chars,
            "overlong": cfg.overlong,
            "max_body_bytes": cfg.max_body_bytes,
            "batch_size": cfg.batch_size,
            "body_timeout_s": cfg.body_timeout_s,
        },
    }
    score.spread = spread  # type: ignore[attr-defined]
    score.parts = parts  # type: ignore[attr-defined]
    score.signals = signed_scorer(scorer, options)  # type: ignore[attr-defined]
    return score, info


def probe(score: Any) -> None:
    """Score one pair at start-up; refuse to serve a model whose reward is not a finite number."""
    try:
        rewards = list(score([PROBE[0]], [PROBE[1]]))
    except RewardlabError:
        raise
    except Exception as exc:  # noqa: BLE001 - one line for the user; the traceback goes to the log
        log.debug("probe failed", exc_info=exc)
        raise RewardlabError(
            f"the reward model failed on a probe pair: {type(exc).__name__}: {exc}"
        ) from None
    if len(rewards) != 1 or non_finite(rewards) is not None:
        raise RewardlabError(
            f"the reward model gives a probe pair the reward {rewards}, not one finite number; "
            "refusing to serve it (check the checkpoint, --dtype and --normalize)"
        )


def create_app(cfg: ServeConfig, scorer: tuple[Any, dict[str, Any]] | None = None) -> Any:
    """The FastAPI app (models loaded here unless ``scorer`` = (score function, info) is given).

    The score function's ``spread`` attribute, when it has one, answers ``"return_uncertainty"``;
    its ``parts`` attribute ({name: score function}, combine), when it has one, ``"return_parts"``;
    its ``signals`` attribute (rewards that carry their signals), when it has one, ``"signals"``.

    Raises:
        RewardlabError: an unusable token file, or a model that fails the start-up probe.
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    from rewardlab.models.remote import RemoteError

    token = read_token(cfg.token_file, is_loopback(cfg.host)) if cfg.token_file else None
    score, info = scorer or load_scorer(cfg)
    spread = getattr(score, "spread", None)
    if info.pop("probe", True):
        probe(score)
    batcher = MicroBatcher(score, cfg.batch_window_ms / 1000, cfg.batch_size)
    spreads = MicroBatcher(spread, cfg.batch_window_ms / 1000, cfg.batch_size) if spread else None
    signal_fn = getattr(score, "signals", None)
    signed = MicroBatcher(signal_fn, cfg.batch_window_ms / 1000, cfg.batch_size) if signal_fn else None
    part_fns, combine = getattr(score, "parts", None) or ({}, None)
    # one batcher per part of a sum: "return_parts" scores each part once, and the total from them
    parts = {n: MicroBatcher(f, cfg.batch_window_ms / 1000, cfg.batch_size) for n, f in part_fns.items()}
    served = ", ".join(str(m.get("path", "")) for m in info.get("models", [])) or "rewardlab"
    lengths = [m["max_length"] for m in info.get("models", []) if isinstance(m.get("max_length"), int)]
    models = compat.model_list(served, compat.created_now(), min(lengths) if lengths else None)
    # no /docs, /redoc or /openapi.json: they would be served without the token, /docs from a CDN
    app = FastAPI(title="rewardlab reward server", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.batcher = batcher

    def error(status: int, message: str) -> JSONResponse:
        safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return JSONResponse({"error": safe}, status_code=status)

    def authorised(request: Request) -> bool:
        if token is None:
            return True
        got = request.headers.get("authorization", "")
        return got.startswith("Bearer ") and hmac.compare_digest(
            got[7:].encode("utf-8", "surrogateescape"), token.encode()
        )

    async def scored(prompts: list[Any], responses: list[Any], want: tuple[bool, bool, bool]) -> Any:
        """(rewards, std or None, parts or None, signals or None) of one request, through the micro-batchers.

        ``want``: (std, parts, signals). With signals, the rewards are those of the signals' pass.
        """
        want_std, want_parts, want_signals = want
        main = signed if want_signals and signed is not None else batcher
        if want_parts and combine is not None:
            jobs = [b.submit(prompts, responses) for b in parts.values()]
            values = await asyncio.gather(
                *jobs, *([main.submit(prompts, responses)] if main is signed else [])
            )
            by_name = dict(zip(parts, values[: len(parts)], strict=True))
            return combine(by_name), None, by_name, _signals_of(values[-1]) if main is signed else None
        if want_std and spreads is not None:
            rewards, std = await asyncio.gather(
                main.submit(prompts, responses), spreads.submit(prompts, responses)
            )
        else:
            rewards, std = await main.submit(prompts, responses), None
        if main is signed:
            return [float(r) for r in rewards], std, None, _signals_of(rewards)
        return rewards, std, None, None

    async def handle(request: Request, parse: Any, shape: Any, extras: bool = False) -> JSONResponse:
        if not authorised(request):
            return error(401, "missing or wrong bearer token")
        size = request.headers.get("content-length", "")
        if size.isdigit() and int(size) > cfg.max_body_bytes:
            return error(413, f"body of {size} bytes, over the limit of {cfg.max_body_bytes}")
        try:
            body = await read_body(request.stream(), cfg)
            prompts, responses = parse(body, cfg)
            want_std = extras and wants_uncertainty(body)
            if want_std and spreads is None:
                raise BadRequest(
                    422, "return_uncertainty needs an ensemble (several --model, or an embedding ensemble)"
                )
            want_parts = extras and wants_parts(body)
            if want_parts and combine is None:
                raise BadRequest(422, "return_parts needs a combined reward (--model sum:...) alone")
            want_signals = wants_signals(body)
            if want_signals and signed is None:
                raise BadRequest(422, "signals: this server's scorer gives none")
            out = shape(body)  # a bad option of the answer's shape is a 4xx before any scoring
        except BadRequest as exc:
            return error(exc.status, exc.message)
        try:
            rewards, std, by_part, signals = await scored(
                prompts, responses, (want_std, want_parts, want_signals)
            )
        except RemoteError as exc:  # a remote reward failed: 502 (bad gateway), 422 if it refused the input
            return error(422 if exc.status in (400, 422) else 502, str(exc))
        except RewardlabError as exc:
            return error(422, str(exc))
        except ScoringFailed as exc:
            return error(exc.status, exc.message)
        result = out(rewards)
        if std is not None:
            result["std"] = std
        if by_part is not None:
            result["parts"] = by_part
        if signals is not None:
            result = attach_signals(result, signals)
        return JSONResponse(result)

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
        return await handle(request, parse_score, lambda _b: lambda r: {"rewards": r}, extras=True)

    @app.post("/get_reward")
    async def post_get_reward(request: Request) -> JSONResponse:
        return await handle(request, parse_get_reward, lambda _b: lambda r: {"rewards": r, "scores": r})

    for kind in ("classify", "pooling"):

        async def post_pooled(request: Request, kind: str = kind) -> JSONResponse:
            return await handle(request, parse_pooling, vllm_shape(kind, served))

        app.post(f"/{kind}")(post_pooled)
        app.post(f"/v1/{kind}")(post_pooled)

    @app.get("/v1/models")
    async def get_models(request: Request) -> JSONResponse:
        if not authorised(request):
            return error(401, "missing or wrong bearer token")
        return JSONResponse(models)

    @app.post("/predict")
    async def post_predict(request: Request) -> JSONResponse:
        return await handle(request, compat.parse_predict, compat.predict_shape)

    @app.post("/v1/score/evaluation")
    async def post_score_evaluation(request: Request) -> JSONResponse:
        return await handle(request, compat.parse_score_evaluation, compat.score_evaluation_shape(served))

    return app


def _signals_of(rewards: list[Any]) -> list[dict[str, float | None]]:
    """The per-item signals the rewards of the signals' micro-batcher carry."""
    return [r.signals for r in rewards]


def uvicorn_options(cfg: ServeConfig) -> dict[str, Any]:
    """The connection limits and timeouts of uvicorn for ``cfg``."""
    from rewardlab.serving.protocol import h11_with_header_timeout

    return {
        "http": h11_with_header_timeout(cfg.header_timeout_s),
        "host": cfg.host,
        "port": cfg.port,
        "timeout_keep_alive": cfg.keep_alive_s,
        "h11_max_incomplete_event_size": cfg.max_header_bytes,
        "limit_concurrency": cfg.limit_concurrency,
    }


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will: a port in use or not allowed is one line before any model loads."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise RewardlabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(cfg: ServeConfig) -> None:
    """Load the model(s) and run uvicorn until interrupted."""
    import uvicorn

    from rewardlab.models.remote import cancel_requests

    class Server(uvicorn.Server):
        """uvicorn's server that, on SIGINT or SIGTERM, first makes waits on remote rewards give up.

        uvicorn lets requests in flight finish before it stops; one waiting on a hung upstream
        server would hold the shutdown for the whole remote timeout and its retries.
        """

        def handle_exit(self, sig: int, frame: Any) -> None:
            cancel_requests()
            super().handle_exit(sig, frame)

    check_port_free(cfg.host, cfg.port)
    Server(uvicorn.Config(create_app(cfg), log_level="info", **uvicorn_options(cfg))).run()
