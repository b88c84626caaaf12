"""uvicorn's h11 HTTP protocol with a header timeout, so a slow client cannot hold a connection.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but any byte
received cancels that timer, and a new connection has none: a client sending its request line
and headers one byte at a time (slowloris) keeps the connection open as long as it likes. This
protocol gives every request ``header_timeout`` seconds, counted from the connection (or the end
of the previous response), to finish its headers; the body has its own limit in
``rewardlab.serving.requests.read_body``. It is always h11 (never httptools), so the header size
limit (``h11_max_incomplete_event_size``) applies too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def h11_with_header_timeout(header_timeout: float) -> type[asyncio.Protocol]:
    """An ``H11Protocol`` subclass that closes a connection whose headers take over ``header_timeout`` s."""

    class HeaderTimeoutH11(H11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def _arm_header_timer(self) -> None:
            waiting_for = self.cycle  # a new request replaces the cycle once its headers are in
            self.loop.call_later(header_timeout, self._header_timeout, waiting_for)

        def _header_timeout(self, waiting_for: Any) -> None:
            if self.cycle is waiting_for and not self.transport.is_closing():
                try:
                    self.timeout_keep_alive_handler()  # what uvicorn does to an idle connection
                except h11.LocalProtocolError:
                    self.transport.close()

    return HeaderTimeoutH11
