"""The app factory: settings in, FastAPI app out; routes call gridkit and the store.

:func:`create_app` makes the :class:`~api.service.Service` (settings, store, caches,
report writer) and hands it to the routes through the ``Svc`` dependency.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import gridkit
from api import (
    cases,
    chiefs,
    docs,
    errors,
    features,
    fieldapp,
    open311,
    pages,
    patrols,
    stats,
    versions,
    writes,
)
from api.openapi30 import to_openapi_30
from api.service import Service
from api.settings import Settings
from api.writer import ReportArrivals, ReportWriter
from gridkit.store import open_store


def create_app(settings: Settings | None = None, **overrides: object) -> FastAPI:
    """Build the gridkit service for a workspace.

    Examples
    --------
    >>> from api import create_app  # doctest: +SKIP
    >>> app = create_app(workspace="demo-workspace/zhuzhou.gpkg")  # doctest: +SKIP
    """
    settings = settings or Settings(**overrides)
    app = FastAPI(
        docs_url=None,  # served offline by api.docs
        redoc_url=None,
        title=f"{settings.title} API",
        version=gridkit.__version__,
        description="Grid units, reaches, reports, patrols and workers "
        "(OGC API - Features), problem reports and maps.",
    )
    service = Service(settings=settings, store=open_store(settings.workspace))
    service.reports = ReportWriter(service)
    app.state.service = service  # what the ``Svc`` dependency hands to the routes
    _serve_openapi_30(app)
    errors.install(app)

    app.add_middleware(ReportArrivals, writer=service.reports)
    app.add_middleware(
        _BodyTimeout, idle_s=settings.body_timeout_s, min_rate=settings.min_body_rate
    )
    app.add_middleware(_BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(_NoNulInUrl)
    app.add_middleware(_SecurityHeaders)

    @app.get("/healthz", tags=["service"], summary="Liveness")
    def healthz() -> Response:
        """The process answers (for restarts: it does not look at the data)."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get(
        "/readyz",
        tags=["service"],
        summary="Readiness",
        responses={503: errors.RESPONSES[503]},
    )
    def readyz() -> Response:
        """The data can be reached now (one round trip to the database, or the
        workspace file opened): 200, or a 503 with Retry-After while the database is
        down or full, so a load balancer sends no requests to a process that would
        only answer 503."""
        service.store.ping()
        return Response(b'{"status":"ready"}', media_type="application/json")

    # POST /reports first: every route before it is tried for each report (no path
    # of the others is one of its)
    app.include_router(
        writes.router, responses=errors.RESPONSES, dependencies=[Depends(errors.known_query_only)]
    )
    app.include_router(docs.router)
    app.include_router(open311.router)
    for module in (features, pages, cases, patrols, stats, versions, chiefs, fieldapp):
        app.include_router(
            module.router,
            responses=errors.RESPONSES,
            dependencies=[Depends(errors.known_query_only)],
        )
    return app


def _serve_openapi_30(app: FastAPI) -> None:
    """Serve the OpenAPI document as 3.0, the version the landing page declares (OGC
    /req/oas30), converted once from FastAPI's 3.1."""
    openapi_31 = app.openapi
    converted: list[dict] = []

    def openapi() -> dict:
        if not converted:
            converted.append(to_openapi_30(openapi_31()))
        return converted[0]

    app.openapi = openapi  # type: ignore[method-assign]


class _BodyLimit:
    """413 for a body above the limit: at once for a declared one (Content-Length),
    else as soon as the bytes read pass it (a chunked upload). A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` costs every request a task."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length", b"")
        if size.isdigit():
            if int(size) > self.limit:
                response = errors.problem(
                    413,
                    f"Request body of {int(size)} bytes exceeds the limit of {self.limit} bytes.",
                    instance=scope.get("path"),
                )
                await response(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server holds it to its length
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # an HTTPException passes FastAPI's body parsing unchanged
                    raise StarletteHTTPException(
                        413, f"Request body exceeds the limit of {self.limit} bytes."
                    )
            return message

        await self.app(scope, counted, send)


class _NoNulInUrl:
    """400 for a NUL character in the path or query (``%00``): no layer, id or filter
    holds one, and PostgreSQL refuses it in text (a 500 from the database otherwise).
    Bodies are checked by their models (:class:`api.models.Body`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            b"%00" in scope.get("query_string", b"")
            or b"\x00" in scope.get("query_string", b"")
            or "\x00" in scope.get("path", "")
        ):
            path = scope.get("path", "")
            says = "The URL contains a NUL character (%00); no name, id or filter has one."
            if path.startswith("/open311/"):  # GeoReport's own error list
                fmt = "xml" if path.endswith(".xml") else "json"
                response = open311.error(400, says, fmt)
            else:
                response = errors.problem(400, says, instance=path.replace("\x00", "%00"))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _BodyTimeout:
    """408 for a request body that stalls or drips: each read waits at most ``idle_s``,
    and once ``idle_s`` have passed the body must have averaged ``min_rate`` bytes a
    second (a phone on 2G sends kilobytes a second; a client sending a byte every two
    seconds holds a connection and a request for nothing). uvicorn has no body read
    timeout of its own; the headers' is :mod:`api.serving`'s."""

    def __init__(self, app: ASGIApp, idle_s: float, min_rate: int) -> None:
        self.app = app
        self.idle_s = idle_s
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        seen = 0
        done = False

        async def timed() -> Message:
            nonlocal seen, done
            if done:  # after the body: waiting for a disconnect is not reading
                return await receive()
            wait = min(self.idle_s, start + self.idle_s + seen / self.min_rate - time.monotonic())
            try:
                # a deadline on this task (Python 3.11's wait_for made a task per
                # read). Bytes already received are read even once the deadline has
                # passed (wait_for refused them): the wait is the client's, not ours
                async with asyncio.timeout(max(wait, 0.0)):
                    message = await receive()
            except TimeoutError:
                # an HTTPException passes FastAPI's body parsing unchanged
                raise StarletteHTTPException(
                    408,
                    f"The request body came too slowly (under {self.min_rate} bytes a "
                    f"second, or nothing for {self.idle_s:g} s); send it again.",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                done = not message.get("more_body", False)
            return message

        await self.app(scope, timed, send)


#: CSP of the HTML pages (maps, /docs): their inline Leaflet and Swagger UI scripts run,
#: everything else comes from this app only (offline: no CDN, no tiles, nothing sent out)
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: CSP of everything else (JSON, GeoJSON, files): nothing runs, nothing frames it
DATA_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class _SecurityHeaders:
    """``nosniff``, no framing and a Content-Security-Policy on every response: the
    pages' (:data:`PAGE_CSP`) on HTML, :data:`DATA_CSP` on the rest."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                csp = PAGE_CSP if kind.startswith(b"text/html") else DATA_CSP
                present = {k.lower() for k, _ in headers}  # a route's own say wins
                headers += [
                    (k, v)
                    for k, v in [*_ALWAYS, (b"content-security-policy", csp.encode())]
                    if k not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
