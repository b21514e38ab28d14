"""How ``gridkit serve`` runs uvicorn so that no client can hold a connection for free.

uvicorn reads a request's headers for as long as the client takes: a client sending a
byte every few seconds (slowloris) holds a connection, and many of them slow everyone
else. :class:`BoundedH11Protocol` is uvicorn's h11 protocol with a deadline for the
headers: they must be complete within ``header_timeout_s`` of the connection opening
(or of the previous response on a kept-alive connection), else the answer is 408 and
the connection is closed. The body's deadline is the app's (``api.app``: 408 for a body
stalled or dripped slower than ``min_body_rate``).

:func:`serving_app` is the app as a server process runs it.
"""

from __future__ import annotations

import asyncio
import gc

import h11
import orjson
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.app import create_app

HEADER_TIMEOUT_S = 10.0


def serving_app() -> FastAPI:
    """:func:`api.create_app` (settings from ``GRIDKIT_*``) as a server process runs it:
    the objects made so far (the modules, classes and functions of pandas, FastAPI and
    the rest, ~140,000) frozen out of the cyclic garbage collector (:func:`gc.freeze`),
    as they live as long as the process. Each full collection otherwise walked all of
    them again: ~50-100 ms with the process holding the GIL, every few hundred
    reports under load. Only what a process makes while it serves is looked at now.
    What is garbage by then is collected first (once, at start-up).
    """
    app = create_app()
    gc.collect()  # what is garbage by now goes first: frozen, it would stay for good
    gc.freeze()
    return app


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps(
        {
            "type": "about:blank",
            "title": "Request Timeout",
            "status": 408,
            "detail": f"The request headers did not arrive within {seconds:g} s.",
        }
    )
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/problem+json\r\n"
        "x-content-type-options: nosniff\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers.

    Examples
    --------
    >>> import uvicorn  # doctest: +SKIP
    >>> uvicorn.run("api.serving:serving_app", factory=True,
    ...             http=BoundedH11Protocol)  # doctest: +SKIP
    """

    header_timeout_s: float = HEADER_TIMEOUT_S
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are in: the body's turn
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's headers are due in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        self.transport.write(_timeout_response(self.header_timeout_s))
        self.transport.close()


def bounded_protocol(header_timeout_s: float) -> type[BoundedH11Protocol]:
    """:class:`BoundedH11Protocol` with its deadline for headers set.

    Examples
    --------
    >>> bounded_protocol(5.0).header_timeout_s
    5.0
    """
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"header_timeout_s": header_timeout_s})
