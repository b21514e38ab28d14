"""Errors as RFC 9457 problem+json, mapped from exception classes in one table."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import is_scalar_field
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from gridkit.errors import (
    CRSError,
    GridkitError,
    InvalidLayerError,
    LayerNotFoundError,
)
from gridkit.ops.intake import OutsideServiceAreaError
from gridkit.ops.reports import TransitionError
from gridkit.store import ConcurrentWriteError, DatabaseRefusedError, DatabaseUnavailableError
from gridkit.versions import VersionWriteError

log = logging.getLogger("gridkit.api")
#: seconds a 503 (a write lost to a concurrent one, the database away) asks to wait
RETRY_AFTER_S = 2


class ApiError(Exception):
    """An error with an HTTP status, raised by routes."""

    def __init__(self, status: int, detail: str, *, title: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        super().__init__(detail)


# one table from exception class to HTTP status drives every handler (first match wins)
STATUS: list[tuple[type[Exception], int]] = [
    (ConcurrentWriteError, 503),
    (DatabaseUnavailableError, 503),  # the database is down or full: try again shortly
    (DatabaseRefusedError, 500),  # lasting (a privilege, the password): logged, for the admin
    (VersionWriteError, 500),  # the workspace failed, not the request: no path told
    (OutsideServiceAreaError, 422),
    (TransitionError, 409),  # the case is not in a stage that allows the step
    (LayerNotFoundError, 404),
    (InvalidLayerError, 422),
    (CRSError, 400),
    (GridkitError, 400),
]


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


_PROBLEM_SCHEMA = Problem.model_json_schema()
_PROBLEM_SCHEMA["additionalProperties"] = True  # problem types may add members
#: the error answers every route may give, declared in the OpenAPI document
RESPONSES: dict[int | str, dict] = {
    code: {
        "description": HTTPStatus(code).phrase,
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    }
    for code in (400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503)
}


async def known_query_only(request: Request) -> None:
    """Router dependency: 400 for a query parameter the route does not declare (OGC
    API asks for it; a misspelt ``limt=`` should not be silently ignored anywhere), and
    for a single-valued one given twice (``?category=a&category=b`` would otherwise
    answer for ``b`` alone, as if ``a`` were not asked).
    Async: FastAPI runs a plain ``def`` dependency in the thread pool, a hop per request."""
    if not request.scope.get("query_string"):
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    declared = _query_params(dependant)
    unknown = sorted(set(request.query_params) - set(declared))
    if unknown:
        raise ApiError(
            400,
            f"Unknown query parameter(s): {', '.join(map(repr, unknown))}. "
            f"Allowed: {', '.join(sorted(declared)) or 'none'}.",
        )
    params = request.query_params
    repeated = sorted(k for k in set(params) if declared[k] and len(params.getlist(k)) > 1)
    if repeated:
        raise ApiError(
            400,
            f"Query parameter(s) given more than once: {', '.join(map(repr, repeated))}; "
            "each takes one value.",
        )


def _query_params(dependant: Dependant) -> dict[str, bool]:
    """Query parameters a route declares, its dependencies' included: whether each
    takes one value only (a list parameter may repeat)."""
    names = {p.alias: is_scalar_field(p) for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_params(sub)
    return names


def _allowed(request: Request) -> list[str]:
    """Methods of all routes on the request's path (Starlette's 405 names only the
    first route's, where GET and POST are two routes)."""
    routes = request.app.router.routes
    return [
        method
        for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def _max_listed(request: Request) -> int:
    """How many validation errors an answer lists (the service's setting)."""
    service = getattr(request.app.state, "service", None)
    return service.settings.max_listed_errors if service is not None else 20


def status_of(exc: GridkitError) -> int:
    """The HTTP status of a gridkit error (:data:`STATUS`)."""
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def detail_of(exc: GridkitError) -> str:
    """The message and what to do about it, in one line."""
    return exc.message + (f" {exc.hint}" if exc.hint else "")


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    **extra: object,
) -> Response:
    body = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> Response:
        return problem(exc.status, exc.detail, title=exc.title, instance=request.url.path)

    @app.exception_handler(GridkitError)
    async def _gridkit(request: Request, exc: GridkitError) -> Response:
        status = status_of(exc)
        if status >= 500 and status != 503:  # ours: its message names server paths
            return await _unexpected(request, exc)  # logged, answered without them
        response = problem(status, detail_of(exc), instance=request.url.path)
        if status == 503:  # busy or the database away: when to try again
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # OGC API asks for 400 on bad parameters (not FastAPI's default 422)
        errs = closest_shape(exc.errors())
        listed = _max_listed(request)
        parts = []
        for err in errs[:listed]:  # a body of 400,000 unknown keys is not echoed back
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        more = len(errs) - len(parts)
        detail = "; ".join(parts) or "invalid request"
        if more > 0:
            detail += f"; and {more} more error(s) ({len(errs)} in all)"
        return problem(400, detail, instance=request.url.path, errors=len(errs))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # a bug of ours: logged with its traceback, answered as a problem without it
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(
            500,
            "An unexpected error; it has been logged. Please report it with the time "
            "and what you did.",
            instance=request.url.path,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        response = problem(exc.status_code, str(exc.detail), instance=request.url.path)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:  # Allow lists every route's methods on this path
            response.headers["Allow"] = ", ".join(_allowed(request))
        return response


def closest_shape(errs: Sequence[Any]) -> list[Any]:
    """The errors of the body shape a request came closest to, when a body may take
    several (a flat report or a GeoJSON Feature): pydantic reports every shape's errors,
    each under the shape's name (``('body', 'ReportIn', 'lat')``); a caller who sent a
    flat report wants to hear about ``lat``, not that a Feature needs ``type``. The
    shape with the fewest errors is kept and its name left out of the locations.

    Examples
    --------
    >>> errs = [{"loc": ("body", "ReportIn", "lat"), "msg": "too big"},
    ...         {"loc": ("body", "ReportFeature", "type"), "msg": "Field required"},
    ...         {"loc": ("body", "ReportFeature", "lat"), "msg": "Extra inputs"}]
    >>> [e["loc"] for e in closest_shape(errs)]
    [('body', 'lat')]
    """
    shapes: dict[str, list[Any]] = {}
    for err in errs:
        loc = tuple(err.get("loc", ()))
        if len(loc) < 2 or loc[0] != "body" or not _SHAPE.match(str(loc[1])):
            return list(errs)  # not (only) a choice of shapes: as pydantic says
        shapes.setdefault(str(loc[1]), []).append(err)
    if len(shapes) < 2:
        return list(errs)
    best = min(shapes.values(), key=len)
    return [{**e, "loc": (e["loc"][0], *tuple(e["loc"])[2:])} for e in best]


#: a union member's name in an error location (a model class, maybe wrapped)
_SHAPE = re.compile(r"^(?:[A-Z]\w*|\w+\[.*\])$")
