"""uvicorn, set up for the service: a header timeout, a drain on SIGTERM, and the service's log lines.

    server = build_server(create_app(settings), settings)
    server.run()

uvicorn times out idle kept-alive connections but not a client that stops halfway through its headers (or that
connects and sends nothing): such connections stay open for good. ``header_timeout_protocol`` closes them after
``header_timeout_s`` with a JSON 408 (the body's timeout is the gate's, ``limits.py``). On SIGTERM uvicorn stops
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

from rewardkit.serve.config import ServeSettings
from rewardkit.serve.errors import error_bytes


class HeaderTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers: from the connection's start, or from
    the first byte of the next request on a kept-alive connection, until its header block has arrived."""

    header_timeout_s: ClassVar[float] = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
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

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        body = error_bytes("timeout", f"the request headers did not arrive within {self.header_timeout_s:g} s")
        head = (
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)  # h11 has no response to send before a request: raw bytes
        self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11]:
    """The protocol class uvicorn instantiates per connection, with this server's header timeout."""
    return type("HeaderTimeoutH11", (HeaderTimeoutH11,), {"header_timeout_s": seconds})


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
            "timeout_graceful_shutdown": settings.shutdown_grace_s,
            **options,
        },
    )
    return Server(config, app, settings.shutdown_grace_s)
