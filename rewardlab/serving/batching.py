"""The micro-batcher of ``rewardlab serve``: concurrent requests share forward calls, fairly and safely.

Requests arriving within a short window are scored together, in calls of at most ``batch_size``
items. A large request is cut into chunks of that size, and the chunks of all waiting requests
are interleaved (requests served fewer times go first), so a small request arriving while a big
one is being scored is in the next call, not after all of the big one. Every reward is checked to
be finite before it is handed out. When a shared call raises, each request of it is scored on its
own, so only the request that fails gets an error, never its neighbours.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rewardlab.errors import RewardlabError
from rewardlab.models.functions import FunctionFailed
from rewardlab.runtime import release_memory

log = logging.getLogger(__name__)

ScoreFn = Callable[[list[Any], list[Any]], list[float]]


class ScoringFailed(Exception):
    """A request the model could not score: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def non_finite(rewards: list[float]) -> tuple[int, float] | None:
    """(index, value) of the first reward that is not a finite number, or None."""
    for i, r in enumerate(rewards):
        try:
            finite = math.isfinite(float(r))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            return i, r
    return None


@dataclass(eq=False)
class _Request:
    prompts: list[Any]
    responses: list[Any]
    future: asyncio.Future[list[float]]
    seq: int
    rewards: list[float | None] = field(default_factory=list)
    planned: int = 0  # items handed to a call so far
    scored: int = 0  # items with a reward
    rounds: int = 0  # calls this request has had items in

    @property
    def done(self) -> bool:
        return self.future.done()

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


Segment = tuple[_Request, int, int]  # request, first item, end


class MicroBatcher:
    """Collects concurrent requests for ``window`` s and scores them in calls of ``batch_size`` items."""

    def __init__(self, score: ScoreFn, window: float, batch_size: int) -> None:
        self.score, self.window, self.batch_size = score, window, batch_size
        self.queue: asyncio.Queue[_Request] | None = None
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.seq = itertools.count()
        #: Scoring calls made and items scored, for /info and the tests.
        self.calls = 0
        self.items = 0

    async def submit(self, prompts: list[Any], responses: list[Any]) -> list[float]:
        """Score one request's items together with whatever else is waiting.

        Raises:
            RewardlabError: the model refused this request's input.
            ScoringFailed: anything else went wrong with this request (a 500 for the client).
        """
        loop = asyncio.get_running_loop()
        if self.queue is None or self.loop is not loop:  # first request, or a new event loop (tests)
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._run())
        req = _Request(prompts, responses, loop.create_future(), next(self.seq), [None] * len(prompts))
        await self.queue.put(req)
        return await req.future

    async def _run(self) -> None:
        assert self.queue is not None
        pending: list[_Request] = []
        while True:
            if not pending:
                pending.append(await self.queue.get())
                await asyncio.sleep(self.window)
            while not self.queue.empty():
                pending.append(self.queue.get_nowait())
            try:
                await self._call(self._plan(pending))
            except Exception as exc:  # noqa: BLE001 - a bug here must not leave requests waiting forever
                log.exception("micro-batcher failure")
                for req in pending:
                    req.fail(ScoringFailed(500, f"internal error while scoring: {exc}"))
            pending = [r for r in pending if not r.done and r.planned < len(r.prompts)]

    def _plan(self, pending: list[_Request]) -> list[Segment]:
        """The next call: up to ``batch_size`` items, requests served fewer times first."""
        budget, segments = self.batch_size, []
        for req in sorted(pending, key=lambda r: (r.rounds, r.seq)):
            if budget == 0:
                break
            if req.done:
                continue
            take = min(budget, len(req.prompts) - req.planned)
            segments.append((req, req.planned, req.planned + take))
            req.planned += take
            req.rounds += 1
            budget -= take
        return segments

    async def _score(self, prompts: list[Any], responses: list[Any]) -> list[float]:
        assert self.loop is not None
        self.calls += 1
        rewards = await self.loop.run_in_executor(None, _score_then_trim, self.score, prompts, responses)
        if len(rewards) != len(prompts):
            raise ScoringFailed(
                500, f"the reward model returned {len(rewards)} rewards for {len(prompts)} items"
            )
        return list(rewards)

    async def _call(self, segments: list[Segment]) -> None:
        if not segments:
            return
        prompts = [p for req, a, b in segments for p in req.prompts[a:b]]
        responses = [r for req, a, b in segments for r in req.responses[a:b]]
        try:
            rewards = await self._score(prompts, responses)
        except Exception as exc:  # noqa: BLE001 - isolate: find out which request fails
            if len(segments) == 1:
                segments[0][0].fail(_client_error(exc))
                return
            for req, a, b in segments:
                try:
                    self._deliver(req, a, await self._score(req.prompts[a:b], req.responses[a:b]))
                except Exception as alone:  # noqa: BLE001 - only this request hears about it
                    req.fail(_client_error(alone))
            return
        at = 0
        for req, a, b in segments:
            self._deliver(req, a, rewards[at : at + b - a])
            at += b - a

    def _deliver(self, req: _Request, start: int, rewards: list[float]) -> None:
        bad = non_finite(rewards)
        if bad is not None:
            i, value = bad
            req.fail(
                ScoringFailed(
                    500,
                    f"the reward model returned a non-finite reward for item {start + i} ({value}); "
                    "the model or its input is broken, so no rewards are served for this request",
                )
            )
            return
        req.rewards[start : start + len(rewards)] = rewards
        req.scored += len(rewards)
        self.items += len(rewards)
        if req.scored == len(req.prompts) and not req.done:
            # a reward carrying its signals (rewardlab.serving.signals.Signed) is a float already
            kept = [r if hasattr(r, "signals") else float(r) for r in req.rewards]
            req.future.set_result(kept)  # type: ignore[arg-type]


def _client_error(exc: Exception) -> Exception:
    """What the client of a failed request hears: a RewardlabError as is, anything else as a 500."""
    if isinstance(exc, FunctionFailed):  # the reward function crashed: the server's fault, not the input's
        return ScoringFailed(500, str(exc))
    if isinstance(exc, RewardlabError | ScoringFailed):
        return exc
    log.error("scoring failed", exc_info=exc)
    return ScoringFailed(500, f"the reward model failed on this request: {type(exc).__name__}: {exc}")


def _score_then_trim(score: Callable[..., Any], prompts: list[Any], responses: list[Any]) -> Any:
    """Score in the worker thread, then hand freed heap back to the OS there (not on the event loop).

    Every call brings new texts of new lengths, and glibc would otherwise keep the freed pieces. A
    ``BaseException`` the scorer raises (``sys.exit`` in a reward function) becomes a 500 for the call.
    """
    try:
        return score(prompts, responses)
    except Exception:
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt from the model's code
        # signals reach the main thread alone: in this worker thread it was raised by the scorer itself,
        # and let through it would stop the server for every client; it fails this request only
        raise ScoringFailed(
            500, f"the reward model failed on this request: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        release_memory()
