"""Options of the serving commands: ``rewardlab score``, ``rewardlab bon`` and ``rewardlab serve``.

Each command's options are one dataclass built from shared parts: the reward to load
(:class:`RewardSpecOptions`) and how it runs (``rewardlab.config.ModelRuntimeOptions``,
``LayoutOptions``). ``score`` and ``bon`` differ only in their input file. Run e.g.
``rewardlab score --model DIR --data responses.jsonl --out scored.jsonl`` or
``rewardlab serve --model DIR``.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path

from rewardlab.config import LayoutOptions, ModelRuntimeOptions, opt
from rewardlab.io_utils import check_out_file
from rewardlab.serving.requests import read_token


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(kw_only=True)
class RewardSpecOptions:
    """Which reward a file command loads (score, bon): one model and whether to normalise it."""

    model: str = opt(
        help="Reward model folder (any rewardlab checkpoint), module:function, file.py:function, "
        "builtin:demo-gold, builtin:math?references=FILE, a server URL (http://HOST/score, "
        "/get_reward, /classify, /pooling), or ensemble:mean|min|uwo:DIR1,DIR2[,...]."
    )
    normalize: bool = opt(False, help="Normalise with the checkpoint's mean/std.")


@dataclass(kw_only=True)
class FileScoringOptions(LayoutOptions, ModelRuntimeOptions, RewardSpecOptions):
    """A file scored by one reward model (score, bon): the reward and how it runs.

    Each command declares its own input and ``out`` (after the input, as the command lists them).
    """

    def check_file_scoring(self) -> None:
        """Raise ``RewardlabError`` for an ``--out`` that cannot be a file or a batch size below 1."""
        check_out_file(self.out)
        self.check_batch_size()


@dataclass(kw_only=True)
class ScoreConfig(FileScoringOptions):
    """Options of ``rewardlab score``."""

    data: Path = opt(help="Records with a prompt and a response field.")
    out: Path = opt(help="JSONL: each record with its reward added.")

    def __post_init__(self) -> None:
        self.check_file_scoring()


@dataclass(kw_only=True)
class BonConfig(FileScoringOptions):
    """Options of ``rewardlab bon``."""

    candidates: Path = opt(help="Records with a prompt and a list of N candidates.")
    out: Path = opt(help="JSONL: the best candidate, all scores, the KL bound.")

    def __post_init__(self) -> None:
        self.check_file_scoring()


@dataclass(kw_only=True)
class ServeConfig(ModelRuntimeOptions, LayoutOptions):
    """Options of ``rewardlab serve``: the model runtime part, with 32 sequences per pass by default."""

    model: list[str] = opt(
        help="Reward model folder, module:function, file.py:function, builtin:demo-gold, builtin:math "
        "or a server URL (http://HOST/score, /get_reward, /classify, /pooling); several make an ensemble."
    )
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
    batch_size: int = opt(32, help="Most sequences per forward pass (32 here; 16 for score and bon).")
    max_tokens: int = opt(
        8192,
        help="Token budget per forward pass (padded: batch x longest sequence; packed: tokens).",
    )
    batch_window_ms: float = opt(5.0, help="How long the first request of a micro-batch waits for others.")
    body_timeout_s: float = opt(30.0, help="A request body must arrive within this many seconds (else 408).")
    header_timeout_s: float = opt(
        10.0, help="A request's line and headers must arrive within this many seconds (else closed)."
    )
    keep_alive_s: int = opt(5, help="Close an idle keep-alive connection after this many seconds.")
    max_header_bytes: int = opt(16_384, help="Largest request line + headers accepted (h11 limit).")
    limit_concurrency: int = opt(
        1024, help="Most open connections and tasks; more get 503 (uvicorn's limit_concurrency)."
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
        limits = [self.max_items, self.max_body_bytes, self.max_chars, self.batch_size, self.max_tokens]
        limits += [self.keep_alive_s, self.max_header_bytes, self.limit_concurrency]
        if (
            min(limits) < 1
            or self.batch_window_ms < 0
            or not min(self.body_timeout_s, self.header_timeout_s) > 0
        ):
            raise ValueError("limits must be positive")
        self._check_numbers()
        if self.token_file:  # before any model loads: a bad token file is a one-line error
            read_token(self.token_file, is_loopback(self.host))

    def _check_numbers(self) -> None:
        """Every float finite and in range, the port a port: one line naming the option (nan passed < 0)."""
        ranges = {  # option: (lowest, highest); a wait of hours would stall requests and shutdown alike
            "batch_window_ms": (0.0, 10_000.0),
            "body_timeout_s": (0.001, 3_600.0),
            "header_timeout_s": (0.001, 3_600.0),
            "uwo_lambda": (0.0, 1e6),
            "port": (0, 65_535),
        }
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(
                    f"--{name.replace('_', '-')} must be a number in [{low:g}, {high:g}], got {value!r}"
                )
