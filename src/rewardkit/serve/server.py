"""uvicorn, set up for the service: a header timeout, a drain on SIGTERM, and the service's log lines.

    server = build_server(create_app(settings), settings)
    server.run()

uvicorn times out idle kept-alive connections but not a client that stops halfway through its headers (or that
connects and sends nothing): such connections stay open for good. ``header_timeout_protocol`` closes them after
``header_timeout_s`` with a JSON 408 (the body's timeout is the gate's, ``limits.py``). It parses HTTP with
httptools (C) where installed, else with h11 (pure Python): h11 cost a single-event feedback request a fifth of its
CPU, httptools a twentieth (``benchmarks/feedback_bench.py``). On SIGTERM uvicorn stops
accepting and waits ``timeout_graceful_shutdown``, then cancels what is left (answered ``500 text/plain``);
``Server.shutdown`` first starts the app's drain (``drain.py``), which answers everything before that.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed: h11 parses
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

from rewardkit.serve.config import ServeSettings
from rewardkit.serve.drain import ANSWER_MARGIN_S
from rewardkit.serve.errors import error_bytes


class _HeaderDeadline:
    """The deadline for a request's header block, for either of uvicorn's HTTP protocols: armed from the
    connection's start, or from the first byte of the next request on a kept-alive connection, until its header
    block has arrived; at the deadline a JSON 408 and the connection closed."""

    header_timeout_s: ClassVar[float] = 10.0
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    _header_timer: asyncio.TimerHandle | None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _awaiting_headers(self) -> bool:
        raise NotImplementedError

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._awaiting_headers():
            return
        body = error_bytes("timeout", f"the request headers did not arrive within {self.header_timeout_s:g} s")
        head = (
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)  # no request to answer yet: raw bytes
        self.transport.close()


class HeaderTimeoutH11(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol with the header deadline."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer = None
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # bytes of a request whose headers have not all arrived
            self._arm()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # headers complete (or the connection failed)
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


if HttpToolsProtocol is not None:  # httptools is installed

    class HeaderTimeoutHttpTools(_HeaderDeadline, HttpToolsProtocol):
        """uvicorn's httptools protocol with the header deadline. httptools has no connection state to ask, so the
        parser's callbacks keep it: between a message's end and the next one's headers, headers are awaited."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._header_timer = None
            self._in_headers = True  # no request yet, or the last one ended: the next bytes start a header block
            self._header_blocks = 0  # header blocks completed on this connection
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            blocks = self._header_blocks
            if self._in_headers:
                self._arm()
            super().data_received(data)
            if self._header_blocks != blocks or not self._in_headers:  # a header block completed (or a body chunk)
                self._disarm()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            self._header_blocks += 1
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_headers = True

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _awaiting_headers(self) -> bool:
            # a request still being answered is not a client late with its headers (a pipelined one waits its turn)
            return self._in_headers and (self.cycle is None or self.cycle.response_complete)


def header_timeout_protocol(seconds: float) -> type[_HeaderDeadline]:
    """The protocol class uvicorn instantiates per connection, with this server's header timeout: httptools'
    where it is installed (``pip install httptools``, part of ``uvicorn[standard]``), else h11's."""
    base: type[_HeaderDeadline] = HeaderTimeoutHttpTools if HttpToolsProtocol is not None else HeaderTimeoutH11  # type: ignore[possibly-undefined]
    return type(base.__name__, (base,), {"header_timeout_s": seconds})


class Server(uvicorn.Server):
    """uvicorn's server; shutting down, it first gives the app's drain its deadline."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self.rk_app, self.grace_s = app, grace_s

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.rk_app.state.drain.start(self.grace_s)
        await super().shutdown(sockets)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with the service's own logger (reloads, warnings) beside uvicorn's at ``level``."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["rewardkit"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def build_server(app: FastAPI, settings: ServeSettings, log_level: str = "info", **options: Any) -> Server:
    """A uvicorn server for ``app`` on settings.host:settings.port; ``options`` override uvicorn.Config's."""
    config = uvicorn.Config(
        app,
        **{
            "host": settings.host,
            "port": settings.port,
            "log_level": log_level,
            "log_config": log_config(log_level),
            "access_log": False,
            "http": header_timeout_protocol(settings.header_timeout_s),
            "timeout_graceful_shutdown": settings.shutdown_grace_s + ANSWER_MARGIN_S,
            **options,
        },
    )
    return Server(config, app, settings.shutdown_grace_s)
