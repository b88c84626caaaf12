"""A user's Ctrl-C told apart from user code that raises ``KeyboardInterrupt`` or ``SystemExit``.

A reward function is the user's code: when it raises ``KeyboardInterrupt``, calls ``sys.exit`` or
raises any other ``BaseException``, rewardlab reports that as the function's failure (one line naming
it) instead of exiting as if the user had pressed Ctrl-C. A real Ctrl-C must still stop the command.
The command line calls :func:`watch` once: its SIGINT handler records the signal, then raises
``KeyboardInterrupt`` as Python's own handler does, so :func:`is_user_interrupt` can tell the two apart.
Without :func:`watch` (rewardlab used as a library), a ``KeyboardInterrupt`` in the main thread is taken
as the user's, as Python would; in another thread it can only come from code (signals reach the main
thread alone).

Run: nothing to run; ``rewardlab.cli.main`` runs every command inside :func:`watching`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_received = threading.Event()
_watching = threading.Event()


def _on_sigint(signum: int, frame: Any) -> None:
    _received.set()
    raise KeyboardInterrupt


def watch() -> None:
    """Record SIGINT from now on (main thread only; elsewhere Python allows no signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    signal.signal(signal.SIGINT, _on_sigint)
    _watching.set()


@contextmanager
def watching() -> Iterator[None]:
    """:func:`watch` for the block, then the SIGINT handler that was there before (a command in a test)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    watch()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        _watching.clear()


def received() -> bool:
    """True once a SIGINT arrived while :func:`watch` was on."""
    return _received.is_set()


def is_user_interrupt(exc: BaseException) -> bool:
    """True when ``exc`` is the user's Ctrl-C (to be let through), not something user code raised."""
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if _watching.is_set():
        return _received.is_set()
    return threading.current_thread() is threading.main_thread()
