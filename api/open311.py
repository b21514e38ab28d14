"""Open311 GeoReport v2 at ``/open311/v2``: residents and city apps report without accounts.

Endpoints (each in ``.json`` and ``.xml``): ``GET services``, ``GET services/{code}``,
``POST requests`` (form-encoded), ``GET requests``, ``GET requests/{id}``, ``GET
tokens/{token}``. What a request is and what the public sees of it is decided by
:mod:`gridkit.ops.georeport` (status mapping, withheld content); intake is
:func:`gridkit.ops.georeport.take_in_request` (the library's intake: an anonymous
request waits for 立案 in the first stage; it is never handed over here).

- Public intake is on by default; ``GRIDKIT_PUBLIC_INTAKE=false`` refuses anonymous
  requests (403). A request with a valid ``api_key`` (form field or ``X-API-Key``)
  comes from a trusted client: not rate-limited.
- Anonymous requests are rate-limited per client (address) and per area (the
  township of the place): 429 with ``Retry-After``. The limiters hold at most
  ``max_keys`` clients and areas each (least recently seen forgotten).
- The reporter's contact (email, phone, names, account and device ids) is stored
  private and never echoed; the answer carries a tracking ``token`` (stored hashed).
- Errors are GeoReport's ``[{"code": 400, "description": ...}]`` (``<errors>`` in XML).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from xml.sax.saxutils import escape

import orjson
import pandas as pd
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import Response

from api.auth import Principal
from api.models import NUL
from api.service import Service, Svc
from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.ops.georeport import (
    GeoReportError,
    check_attributes,
    request_rows,
    select_requests,
    service_definition,
    services,
    take_in_request,
)
from gridkit.ops.intake import place_points
from gridkit.store import ConcurrentWriteError, find_key
from gridkit.store.base import Column, RecordTable

_ERRORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}


def _declared(ok: int, *errors: int) -> dict:
    """OpenAPI responses of a GeoReport route: JSON or XML, errors as GeoReport's list
    (400 on every route: a URL with a NUL character, :class:`api.app` refuses it)."""
    out: dict = {
        ok: {
            "description": HTTPStatus(ok).phrase,
            "content": {"application/json": {}, "text/xml": {}},
        }
    }
    for code in sorted({400, *errors}):
        out[code] = {
            "description": HTTPStatus(code).phrase,
            "content": {"application/json": {"schema": _ERRORS}, "text/xml": {}},
        }
    return out


_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["service_code"],
                    "properties": {
                        name: {"type": "string"}
                        for name in (
                            "service_code",
                            "jurisdiction_id",
                            "lat",
                            "long",
                            "address_string",
                            "description",
                            "media_url",
                            "api_key",
                            "email",
                            "phone",
                            "first_name",
                            "last_name",
                            "account_id",
                            "device_id",
                        )
                    },
                }
            }
        },
    }
}
_QUERY = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
    for n in ("jurisdiction_id", "api_key")
]
_LIST_QUERY = _QUERY + [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
    for n in ("service_request_id", "service_code", "start_date", "end_date", "status")
]

router = APIRouter(prefix="/open311/v2", tags=["open311"], default_response_class=Response)

#: tracking tokens, hashed (SHA-256): a token is shown once, to its reporter
TOKENS = RecordTable(
    "gridkit_tracking",
    (
        Column("token_hash", required=True, unique=True),
        Column("report_id", required=True),
        Column("created_at"),
    ),
    key="token_hash",
)
CONTACT_FIELDS = ("first_name", "last_name", "phone", "email", "account_id", "device_id")
MAX_DESCRIPTION = 4000
MAX_FIELD = 200
MAX_URL = 2000
SERVICE_NOTICE = "已收到, 中心立案后处理 / received; handled once the centre accepts it"


@dataclass
class Window:
    """Sliding-window counts per key (client, area), bounded in keys and per key."""

    limit: int
    window_s: float
    max_keys: int = 10_000
    seen: OrderedDict = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count one request of ``key``; seconds to wait when over the limit (then
        nothing is counted), else None."""
        now = time.monotonic() if now is None else now
        with self.lock:
            times = self.seen.get(key)
            if times is None:
                times = deque(maxlen=self.limit)
                self.seen[key] = times
                while len(self.seen) > self.max_keys:
                    self.seen.popitem(last=False)
            self.seen.move_to_end(key)
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                return max(self.window_s - (now - times[0]), 1.0)
            times.append(now)
            return None


@dataclass
class Limits:
    """The rate limits of anonymous requests: per client and per area (township)."""

    per_client: Window = field(default_factory=lambda: Window(10, 3600.0))
    per_area: Window = field(default_factory=lambda: Window(200, 3600.0))


def limits(request: Request) -> Limits:
    """The app's limits (made on first use; a test may set ``app.state.open311_limits``)."""
    state = request.app.state
    if getattr(state, "open311_limits", None) is None:
        state.open311_limits = Limits()
    return state.open311_limits


# ---------------------------------------------------------------------- wire format

_SINGULAR = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


def _xml_value(name: str, value: Any) -> str:
    if isinstance(value, list):
        item = _SINGULAR.get(name, "item")
        inner = "".join(_xml_value(item, v) for v in value)
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, dict):
        inner = "".join(_xml_value(k, v) for k, v in value.items())
        return f"<{name}>{inner}</{name}>"
    if value is None:
        return f"<{name}></{name}>"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


def answer(data: Any, fmt: str, root: str, status: int = 200, **headers: str) -> Response:
    """``data`` as GeoReport JSON, or as XML under ``root`` (a list: one element per
    item, named after the root)."""
    if fmt == "xml":
        body = '<?xml version="1.0" encoding="utf-8"?>' + _xml_value(root, data)
        return Response(
            body.encode("utf-8"), status, media_type="text/xml; charset=utf-8", headers=headers
        )
    return Response(
        orjson.dumps(data), status, media_type="application/json; charset=utf-8", headers=headers
    )


def error(status: int, description: str, fmt: str = "json", **headers: str) -> Response:
    """A GeoReport error answer."""
    return answer([{"code": status, "description": description}], fmt, "errors", status, **headers)


def _format(fmt: str) -> str | None:
    return fmt if fmt in ("json", "xml") else None


def _bad_format(fmt: str) -> Response:
    return error(404, f"Unknown format {fmt!r}: ask for .json or .xml.")


# ---------------------------------------------------------------------- callers


async def _trusted(service: Service, request: Request, form: FormData | None) -> Principal | None:
    """The trusted client named by ``api_key`` (form, query) or ``X-API-Key``; None for
    an anonymous request; GeoReportError (403) for a key that is not valid."""
    key = (
        (form.get("api_key") if form is not None else None)
        or request.query_params.get("api_key")
        or request.headers.get("x-api-key")
    )
    if not key:
        return None
    if not isinstance(key, str) or len(key) > service.settings.max_key_length:
        raise GeoReportError("api_key is not valid.", status=403)
    found = await run_in_threadpool(find_key, service.store, key)
    if found is None:
        raise GeoReportError("api_key is not valid.", status=403)
    return Principal(
        role=found.role,
        scope=found.scope,
        worker_id=found.worker_id,
        name=found.name,
        key_id=found.key_id,
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def hash_token(token: str) -> str:
    """The stored form of a tracking token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------- reads


@router.get(
    "/services.{fmt}",
    summary="Open311: the services (report categories)",
    responses=_declared(200, 404),
    openapi_extra={"parameters": _QUERY},
)
async def get_services(fmt: str) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    return answer(services(), fmt, "services")


@router.get(
    "/services/{code}.{fmt}",
    summary="Open311: a service's attributes",
    responses=_declared(200, 404),
    openapi_extra={"parameters": _QUERY},
)
async def get_service(code: str, fmt: str) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    try:
        return answer(service_definition(code), fmt, "service_definition")
    except GeoReportError as exc:
        return error(exc.status, exc.message, fmt)


def _rows(service: Service, selected: pd.DataFrame, *, withhold: bool) -> list[dict]:
    return request_rows(
        selected,
        events=service.layer("report_events"),
        departments=service.layer("departments"),
        withhold_unpublished=withhold,
    )


def _list(service: Service, params: dict[str, str], caller: Principal | None) -> list[dict]:
    reports = service.layer("reports")
    if reports is None:
        return []
    split = lambda k: [v for v in params.get(k, "").split(",") if v] or None  # noqa: E731
    ids = split("service_request_id")
    selected = select_requests(
        reports,
        ids=ids,
        service_codes=split("service_code"),
        start=params.get("start_date") or None,
        end=params.get("end_date") or None,
        status=split("status"),
        public=caller is None,
    )
    if caller is not None and caller.scope:
        inside = codes.in_scope(selected["admin_code"].astype(object), caller.scope)
        selected = selected[inside.to_numpy(dtype=bool)]
    return _rows(service, selected, withhold=True)


@router.get(
    "/requests.{fmt}",
    summary="Open311: service requests",
    responses=_declared(200, 400, 403, 404),
    openapi_extra={"parameters": _LIST_QUERY},
)
async def get_requests(fmt: str, request: Request, service: Svc) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    try:
        caller = await _trusted(service, request, None)
        if caller is None and not service.settings.public_intake:
            return error(403, "Public access is off here; use an api_key.", fmt)
        rows = await run_in_threadpool(_list, service, dict(request.query_params), caller)
    except GridkitError as exc:
        return error(getattr(exc, "status", 400), exc.message, fmt)
    return answer(rows, fmt, "service_requests")


def _one(service: Service, report_id: str, token: str | None) -> list[dict] | None:
    reports = service.layer("reports")
    if reports is None:
        return None
    selected = select_requests(reports, ids=[report_id])
    if not len(selected):
        return None
    own = token is not None and _token_report(service, token) == report_id
    return _rows(service, selected, withhold=not own)


@router.get(
    "/requests/{report_id}.{fmt}",
    summary="Open311: one service request",
    responses=_declared(200, 404),
    openapi_extra={
        "parameters": [
            *_QUERY,
            {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
        ]
    },
)
async def get_request(report_id: str, fmt: str, request: Request, service: Svc) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    token = request.query_params.get("token")
    rows = await run_in_threadpool(_one, service, report_id, token)
    if rows is None:
        return error(404, f"No service request {report_id!r}.", fmt)
    return answer(rows, fmt, "service_requests")


def _token_report(service: Service, token: str) -> str | None:
    if not token or len(token) > 128:
        return None
    found = service.store.records(TOKENS, where={"token_hash": hash_token(token)})
    return None if not len(found) else str(found["report_id"].iloc[0])


def _by_token(service: Service, token: str) -> list[dict] | None:
    report_id = _token_report(service, token)
    if report_id is None:
        return None
    rows = _one(service, report_id, token) or [{}]
    row = rows[0]
    return [
        {
            "service_request_id": report_id,
            "token": token,
            "status": row.get("status"),
            "status_notes": row.get("status_notes"),
        }
    ]


@router.get(
    "/tokens/{token}.{fmt}",
    summary="Open311: the request of a tracking token",
    responses=_declared(200, 404),
    openapi_extra={"parameters": _QUERY},
)
async def get_token(token: str, fmt: str, service: Svc) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    rows = await run_in_threadpool(_by_token, service, token)
    if rows is None:
        return error(404, "Unknown token.", fmt)
    return answer(rows, fmt, "service_requests")


# ---------------------------------------------------------------------- intake

_ATTRIBUTE = re.compile(r"^attribute\[([A-Za-z0-9_\-]{1,64})\](\[\])?$")


def _text(form: FormData, name: str, limit: int = MAX_FIELD) -> str | None:
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) > limit:
        raise GeoReportError(f"{name} is longer than {limit} characters.")
    return value or None


def _number(form: FormData, name: str) -> float | None:
    text = _text(form, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise GeoReportError(f"{name} must be a number, not {text!r}.") from None


def parse_request(form: FormData, *, trusted: bool) -> tuple[dict[str, Any], tuple | None]:
    """The report fields and the point (long, lat) of a POST requests form."""
    nul = sorted({k for k, v in form.multi_items() if isinstance(v, str) and NUL in k + v})
    if nul:
        raise GeoReportError(f"{', '.join(nul)}: text may not contain NUL characters (%00).")
    code = _text(form, "service_code")
    if not code:
        raise GeoReportError("service_code is required.")
    lat, lon = _number(form, "lat"), _number(form, "long")
    if (lat is None) != (lon is None):
        raise GeoReportError("Give both lat and long, or neither (then address_string).")
    address = _text(form, "address_string", MAX_FIELD)
    if lat is None and not address:
        raise GeoReportError("A request needs lat and long, or an address_string.")
    media = _text(form, "media_url", MAX_URL)
    if media and not media.lower().startswith(("http://", "https://")):
        raise GeoReportError("media_url must be an http(s) URL.")
    attrs: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        m = _ATTRIBUTE.match(key)
        if m and isinstance(value, str):
            attrs.setdefault(m.group(1), []).append(value.strip()[:MAX_FIELD])
    contact = "; ".join(f"{k}={v}" for k in CONTACT_FIELDS if (v := _text(form, k)) is not None)
    source = (_text(form, "source") if trusted else None) or "resident"
    fields = {
        "category": code,
        "source": source,
        "description": _text(form, "description", MAX_DESCRIPTION),
        "address": address,
        "media_url": media,
        "attributes": check_attributes(code, attrs),
        "reporter_contact": contact or None,
        "channel": "open311",
    }
    return fields, (None if lat is None else (lon, lat))


class RateLimited(Exception):
    """Over a rate limit: ``retry_after`` seconds."""

    def __init__(self, what: str, retry_after: float) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def _area_of(admin_code: object) -> str:
    if admin_code is None or pd.isna(admin_code):
        return "-"
    return codes.ancestor(str(admin_code), "township") or str(admin_code)


def take_in(
    service: Service,
    fields: dict[str, Any],
    point: Any,
    caller: Principal | None,
    lim: Limits,
) -> tuple[str, str]:
    """Take one request in under the write lock; its report id and tracking token."""
    actor_id = "public" if caller is None else (caller.worker_id or caller.name)
    for attempt in range(3):
        with service.write_lock:
            got = take_in_request(
                fields,
                point,
                reports=service.layer("reports"),
                units=service.layer("units"),
                admin_areas=service.layer("admin_areas") if point is None else None,
                communities=service.layer("communities") if point is None else None,
                buildings=service.layer("buildings") if point is None else None,
                actor_id=actor_id,
            )
            rows = got.reports[got.reports["report_id"].isin(got.created).to_numpy()]
            code = rows["admin_code"].iloc[0]
            if caller is None and attempt == 0:  # counted once, retries included
                wait = lim.per_area.hit(_area_of(code))
                if wait is not None:
                    raise RateLimited("area", wait)
            elif caller is not None and not caller.in_scope(code):
                raise GeoReportError(
                    f"The request lies in {code}, outside the client's scope {caller.scope}.",
                    status=403,
                )
            token = secrets.token_urlsafe(18)
            report_id = str(rows["report_id"].iloc[0])
            try:
                service.store.add_records(
                    TOKENS,
                    [
                        {
                            "token_hash": hash_token(token),
                            "report_id": report_id,
                            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
                        }
                    ],
                )
                service.store.append_many(
                    {"reports": rows.reset_index(drop=True), "report_events": got.events},
                    if_unchanged=True,
                )
            except ConcurrentWriteError:
                if attempt == 2:
                    raise
                continue
            return report_id, token
    raise AssertionError("unreachable")


@router.post(
    "/requests.{fmt}",
    summary="Open311: submit a service request",
    status_code=201,
    responses=_declared(201, 400, 403, 404, 429),
    openapi_extra=_FORM,
)
async def post_request(fmt: str, request: Request, service: Svc) -> Response:
    if not _format(fmt):
        return _bad_format(fmt)
    lim = limits(request)
    try:
        form = await request.form()
        caller = await _trusted(service, request, form)
        if caller is None:
            if not service.settings.public_intake:
                return error(403, "Public reporting is off here; use an api_key.", fmt)
            wait = lim.per_client.hit(_client(request))
            if wait is not None:
                raise RateLimited("client", wait)
        fields, coords = parse_request(form, trusted=caller is not None)
        point = None
        if coords is not None:
            placed = (
                await run_in_threadpool(
                    place_points, [coords], None, area=service.service_area(), source="request"
                )
            )[0]
            if isinstance(placed, GridkitError):
                return error(400, placed.message, fmt)
            point = placed
        report_id, token = await run_in_threadpool(take_in, service, fields, point, caller, lim)
    except RateLimited as exc:
        what = "this client" if exc.what == "client" else "this area"
        return error(
            429,
            f"Too many requests from {what}; try again in {int(exc.retry_after) + 1} s.",
            fmt,
            **{"Retry-After": str(int(exc.retry_after) + 1)},
        )
    except GridkitError as exc:
        return error(getattr(exc, "status", 400), exc.message, fmt)
    body = [
        {
            "service_request_id": report_id,
            "token": token,
            "service_notice": SERVICE_NOTICE,
            "account_id": None,
        }
    ]
    return answer(body, fmt, "service_requests", 201)


__all__ = ["Limits", "Window", "answer", "error", "hash_token", "parse_request", "router"]
