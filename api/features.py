"""OGC API - Features Part 1 (Core, GeoJSON, OAS 3.0) over the workspace layers."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

import numpy as np
import orjson
import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api import cases
from api.audit import has_private, private_read
from api.auth import Caller, Principal
from api.errors import ApiError
from api.geojson import Serialised, serialise
from api.service import Service, Svc
from gridkit.layers import LAYERS, contract_ints
from gridkit.ops.areas import admin_codes_of
from gridkit.ops.privacy import mask_frame

GEOJSON = "application/geo+json"
OPENAPI_TYPE = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
TIME_COLUMNS = {
    "reports": "reported_at",
    "patrols": "started_at",
    "patrol_points": "t",
    "report_events": "at",
}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

router = APIRouter()
#: how the GeoJSON routes are documented: bytes built here, typed application/geo+json
_GEOJSON_ROUTE: dict = {
    "tags": ["OGC API - Features"],
    "response_class": Response,
    "responses": {200: {"content": {GEOJSON: {}}}},
}


def _json(body: object, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type)


#: ``f``: the only encoding served is JSON (GeoJSON for features)
Format = Annotated[
    str | None, Query(pattern="^(json|geojson)$", description="Encoding: json (the only one).")
]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/", summary="Landing page", tags=["OGC API - Features"])
def landing(request: Request, service: Svc, f: Format = None) -> Response:
    base = _base(request)
    return _json(
        {
            "title": service.settings.title,
            "description": "gridkit: grid units, reaches, reports, patrols and workers.",
            "links": [
                {"href": f"{base}/", "rel": "self", "type": "application/json", "title": "this"},
                {
                    "href": f"{base}/openapi.json",
                    "rel": "service-desc",
                    "type": OPENAPI_TYPE,
                    "title": "OpenAPI definition",
                },
                {
                    "href": f"{base}/docs",
                    "rel": "service-doc",
                    "type": "text/html",
                    "title": "API documentation",
                },
                {
                    "href": f"{base}/conformance",
                    "rel": "conformance",
                    "type": "application/json",
                    "title": "Conformance classes",
                },
                {
                    "href": f"{base}/collections",
                    "rel": "data",
                    "type": "application/json",
                    "title": "Collections",
                },
            ],
        }
    )


@router.get("/conformance", summary="Conformance classes", tags=["OGC API - Features"])
def conformance(request: Request, f: Format = None) -> Response:
    return _json({"conformsTo": CONFORMANCE})


#: served whatever the settings list: the case history (scoped by its reports)
ALWAYS_SERVED = ("report_events",)
#: layers whose rows take the admin code of the row they refer to (column, layer)
_SCOPED_BY = {"report_id": "reports", "worker_id": "workers"}


def _served(service: Service) -> list[str]:
    present = set(service.store.layers())
    wanted = [*service.settings.collections]
    wanted += [n for n in ALWAYS_SERVED if n not in wanted]
    return [c for c in wanted if c in present]


def _collection(base: str, service: Service, name: str, caller: Principal) -> dict:
    """The collection's description (links under ``base``); its extent covers only what
    ``caller`` may see."""
    ser = _serialised(service, name, caller)
    bbox = ser.extent(ser.in_scope(caller.scope)) or [-180.0, -90.0, 180.0, 90.0]
    spec = LAYERS.get(name)
    return {
        "id": name,
        "title": name.replace("_", " "),
        "description": spec.description if spec and spec.description else name,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": {"spatial": {"bbox": [bbox], "crs": CRS84}},
        "links": [
            {"href": f"{base}/collections/{name}", "rel": "self", "type": "application/json"},
            {
                "href": f"{base}/collections/{name}/items",
                "rel": "items",
                "type": GEOJSON,
                "title": f"{name} items",
            },
        ],
    }


@router.get("/collections", summary="Collections", tags=["OGC API - Features"])
def collections(request: Request, service: Svc, caller: Caller, f: Format = None) -> Response:
    base = _base(request)
    return _json(
        {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json"}],
            "collections": [_collection(base, service, n, caller) for n in _served(service)],
        }
    )


def _check_collection(service: Service, name: str) -> None:
    served = _served(service)
    if name not in served:
        raise ApiError(404, f"No collection {name!r}. Collections: {', '.join(served)}.")


CollectionId = Annotated[str, Path(description="Layer name, e.g. units or reports.")]


@router.get("/collections/{collection_id}", summary="A collection", tags=["OGC API - Features"])
def collection(
    request: Request, service: Svc, collection_id: CollectionId, caller: Caller, f: Format = None
) -> Response:
    _check_collection(service, collection_id)
    return _json(_collection(_base(request), service, collection_id, caller))


def _with_scope(
    service: Service, name: str, df: pd.DataFrame
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """``df`` with an ``admin_code`` for every row it can have one: its own, that of the
    report or worker it refers to, else that of the admin areas it lies in
    (:func:`gridkit.ops.areas.admin_codes_of`); and the layers those codes came from. A
    row left without one is seen only by callers without a scope: no layer is served
    unscoped."""
    if "admin_code" not in df.columns:
        for col, layer in _SCOPED_BY.items():
            ref = service.layer(layer) if col in df.columns and layer != name else None
            if ref is not None and "admin_code" in ref.columns:
                codes = ref.drop_duplicates(col).set_index(col)["admin_code"]
                return df.assign(admin_code=df[col].map(codes)), (layer,)
    geometry = getattr(df, "_geometry_column_name", None)
    admin = service.layer("admin_areas") if name != "admin_areas" else None
    unset = "admin_code" not in df.columns or df["admin_code"].isna().any()
    if geometry in df.columns and admin is not None and unset:
        return df.assign(admin_code=admin_codes_of(df, admin)), ("admin_areas",)
    if "admin_code" not in df.columns:
        return df.assign(admin_code=None), ()
    return df, ()


def _hit(service: Service, name: str, private: bool) -> Serialised | None:
    """The cached serialisation of ``name``, if neither the layer nor a layer its scope
    came from changed since."""
    store = service.store
    entry = service.geojson_cache.get((name, private, store.generation(name)))
    if entry is None:
        return None
    deps, generations, ser = entry
    return ser if tuple(store.generation(d) for d in deps) == generations else None


def _serialised(service: Service, name: str, caller: Principal | None) -> Serialised:
    """The layer serialised for this kind of caller, cached per layer generation (and
    those of the layers its scope comes from)."""
    store = service.store
    private = caller.sees_private if caller is not None else False
    hit = _hit(service, name, private)
    if hit is not None:
        return hit
    cache = service.geojson_cache
    for stale in [k for k in cache if k[0] == name and k[1] == private]:
        del cache[stale]
    key = (name, private, store.generation(name))
    df, deps = _with_scope(service, name, store.read(name))
    generations = tuple(store.generation(d) for d in deps)
    spec = LAYERS.get(name)
    df = contract_ints(df, name)  # households 218, not 218.0, where the column has gaps
    hidden = [] if private or spec is None else spec.private
    hide_geometry = bool(spec and spec.private_geometry and not private)
    if not private:  # phone numbers in free text too (a description, a note)
        unshown = [spec.id if spec else None, "admin_code", *hidden]
        df = mask_frame(df, keep=[c for c in unshown if c])
    ser = serialise(
        df,
        id_col=spec.id if spec else None,
        hidden=hidden,
        hide_geometry=hide_geometry,
        time_col=TIME_COLUMNS.get(name),
    )
    cache[key] = (deps, generations, ser)
    return ser


async def _serialised_async(service: Service, name: str, caller: Principal | None) -> Serialised:
    """:func:`_serialised` from async routes: a cached layer is served on the event loop,
    a layer still to serialise is built in the thread pool (it takes a while)."""
    private = caller.sees_private if caller is not None else False
    hit = _hit(service, name, private)
    if hit is not None:
        return hit
    return await run_in_threadpool(_serialised, service, name, caller)


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ApiError(
            400, f"bbox must be 4 numbers: minlon,minlat,maxlon,maxlat; got {text!r}."
        ) from None
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or values[1] > values[3] or not all(np.isfinite(values)):
        raise ApiError(400, f"bbox must be minlon,minlat,maxlon,maxlat; got {text!r}.")
    if any(abs(v) > 180 for v in values[0::2]) or any(abs(v) > 90 for v in values[1::2]):
        raise ApiError(
            400,
            f"bbox {text!r} is not in WGS84 degrees: longitudes lie in -180..180 and "
            "latitudes in -90..90 (minlon,minlat,maxlon,maxlat).",
        )
    return values[0], values[1], values[2], values[3]


_NUMBER = r"-?\d+(\.\d+)?"
#: bbox: 4 numbers (or 6, with heights), as the OpenAPI document declares
BBOX_PATTERN = rf"^\s*{_NUMBER}(\s*,\s*{_NUMBER}){{3}}((\s*,\s*{_NUMBER}){{2}})?\s*$"
_INSTANT = r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?"
#: datetime: an RFC 3339 instant (or date), or an interval with '..' for an open end
DATETIME_PATTERN = rf"^({_INSTANT}|(\.\.|{_INSTANT})?/(\.\.|{_INSTANT})?)$"
_INSTANT_RE = re.compile(rf"^{_INSTANT}$")


def _parse_time(text: str) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    """``datetime=`` as a closed UTC interval of microseconds (None for an open end). A
    date alone is that whole day (UTC): ``2026-03-10`` is the day, and
    ``2026-03-01/2026-03-31`` ends with the last microsecond of the 31st."""

    def one(part: str, end: bool) -> np.datetime64 | None:
        if part in ("", ".."):
            return None
        try:
            if not _INSTANT_RE.match(part):  # pandas would read 'now' or '5 May' too
                raise ValueError(part)
            t = pd.Timestamp(part)
            t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
            if end and len(part) == 10:  # a date: up to the end of its day
                t = t + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
            return t.as_unit("us").tz_localize(None).to_datetime64()
        except (ValueError, TypeError, OverflowError):
            raise ApiError(
                400,
                f"datetime must be RFC 3339 (an instant or start/end with "
                f"'..' for open ends); got {text!r}.",
            ) from None

    if "/" in text:
        a, b = text.split("/", 1)
        start, end = one(a, False), one(b, True)
        if start is not None and end is not None and start > end:
            raise ApiError(400, f"datetime interval ends before it starts: {text!r}.")
        return start, end
    return one(text, False), one(text, True)


_BBOX_QUERY = Query(
    description="minlon,minlat,maxlon,maxlat (WGS84); minlon > maxlon crosses the antimeridian.",
    examples=["113.0,27.7,113.3,27.9"],
    json_schema_extra={"pattern": BBOX_PATTERN},  # checked by _parse_bbox
)
_DATETIME_QUERY = Query(
    description="Instant or interval (RFC 3339), e.g. 2026-05-01T00:00:00Z/..; "
    "a date alone is its whole day (UTC).",
    json_schema_extra={"pattern": DATETIME_PATTERN},  # checked by _parse_time
)
Bbox = Annotated[str | None, _BBOX_QUERY]
Datetime = Annotated[str | None, _DATETIME_QUERY]
Limit = Annotated[int, Query(ge=1, le=10_000, description="Page size.")]
Offset = Annotated[
    int, Query(ge=0, description="Features to skip (paging extension; follow the next link).")
]


# declared before the route of every collection: the history of the cases has filters
# of its own (and the 400 for an unknown parameter lists those, not the reports')
@router.get(
    "/collections/report_events/items",
    summary="The history of the cases (report_events): by case, action or stage",
    **_GEOJSON_ROUTE,
)
async def event_items(
    request: Request,
    service: Svc,
    caller: Caller,
    bbox: Bbox = None,
    datetime: Datetime = None,
    limit: Limit = 100,
    offset: Offset = 0,
    report_id: Annotated[
        str | None,
        Query(description="Case ids, comma-separated (e.g. R0002920): their history."),
    ] = None,
    action: Annotated[
        str | None,
        Query(description="Actions, comma-separated (e.g. escalate,dispatch)."),
    ] = None,
    to_status: Annotated[
        str | None, Query(description="Stages reached, comma-separated (e.g. closed).")
    ] = None,
    f: Format = None,
) -> Response:
    name = "report_events"
    _check_collection(service, name)
    asked = {"report_id": report_id, "action": action, "to_status": to_status}
    ser = await _serialised_async(service, name, caller)
    mask = ser.in_scope(caller.scope)
    if any(v is not None for v in asked.values()) or caller.role == "department":
        mask &= await run_in_threadpool(_event_filter, service, caller, asked, len(mask))
    return await _page(request, service, name, caller, ser, mask, bbox, datetime, limit, offset)


@router.get(
    "/collections/{collection_id}/items", summary="Features of a collection", **_GEOJSON_ROUTE
)
async def items(
    request: Request,
    service: Svc,
    collection_id: CollectionId,
    caller: Caller,
    bbox: Bbox = None,
    datetime: Datetime = None,
    limit: Limit = 100,
    offset: Offset = 0,
    status: Annotated[
        str | None,
        Query(description="reports: stages, comma-separated (e.g. dispatched,handling)."),
    ] = None,
    category: Annotated[
        str | None, Query(description="reports: category keys, comma-separated.")
    ] = None,
    lead_department_id: Annotated[
        str | None, Query(description="reports: lead department.")
    ] = None,
    assignee_id: Annotated[
        str | None, Query(description="reports: the grid worker who verifies.")
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="reports: past (true) or within (false) the stage deadline.")
    ] = None,
    mine: Annotated[
        str | None,
        Query(
            description="reports: cases where the caller holds this role: any, dispatcher, "
            "supervisor, department, verifier."
        ),
    ] = None,
    f: Format = None,
) -> Response:
    _check_collection(service, collection_id)
    ser = await _serialised_async(service, collection_id, caller)
    mask = ser.in_scope(caller.scope)  # rows in the caller's area
    asked = {
        "status": status,
        "category": category,
        "lead_department_id": lead_department_id,
        "assignee_id": assignee_id,
        "overdue": overdue,
        "mine": mine,
    }
    if any(v is not None for v in asked.values()) or (
        collection_id == "reports" and caller.role == "department"
    ):
        mask &= await run_in_threadpool(
            _case_filter, service, collection_id, caller, asked, len(mask)
        )
    return await _page(
        request, service, collection_id, caller, ser, mask, bbox, datetime, limit, offset
    )


async def _page(
    request: Request,
    service: Service,
    collection_id: str,
    caller: Principal,
    ser: Serialised,
    mask: np.ndarray,
    bbox: str | None,
    datetime: str | None,
    limit: int,
    offset: int,
) -> Response:
    """The page of the features ``mask`` leaves, within ``bbox`` and ``datetime``."""
    limit = min(limit, service.settings.max_limit)
    if bbox is not None:
        mask &= ser.in_bbox(_parse_bbox(bbox))
    if datetime is not None:  # validated even when the layer has no time
        mask &= ser.in_period(*_parse_time(datetime))
    idx = np.flatnonzero(mask)
    page = idx[offset : offset + limit]
    base = f"{_base(request)}/collections/{collection_id}/items"

    def link(rel: str, off: int) -> dict:
        params = dict(request.query_params)
        params.update(offset=str(off), limit=str(limit))
        return {"href": f"{base}?{urlencode(params)}", "rel": rel, "type": GEOJSON}

    links = [link("self", offset)]
    if offset + limit < len(idx):
        links.append(link("next", offset + limit))
    if offset > 0:
        links.append(link("prev", max(0, offset - limit)))
    head = orjson.dumps(
        {
            "type": "FeatureCollection",
            "numberMatched": len(idx),
            "numberReturned": len(page),
            "timeStamp": pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": links,
        }
    )
    body = head[:-1] + b',"features":[' + b",".join(ser.features[i] for i in page) + b"]}"
    if caller.sees_private and has_private(collection_id) and len(page):
        await run_in_threadpool(
            private_read, service, caller, collection_id, ser.ids[page].tolist(), _asked(request)
        )
    return Response(body, media_type=GEOJSON)


def _case_filter(service: Service, name: str, caller: Principal, asked: dict, n: int) -> np.ndarray:
    """The reports matching the case filters (:func:`api.cases.report_mask`); 400 for
    another collection (its queryables say what it filters on)."""
    if name != "reports":
        given = ", ".join(k for k, v in asked.items() if v is not None)
        raise ApiError(400, f"{given}: filters of the reports collection, not of {name}.")
    reports = service.store.read("reports")
    if len(reports) != n:  # the layer changed between the two reads: ask again
        raise ApiError(503, "The reports changed while they were read; try again.")
    return cases.report_mask(reports, caller, asked)


#: the properties of the case history's items a client may filter on (OGC queryables)
EVENT_QUERYABLES = {
    "report_id": "Case id (its history)",
    "action": "Action taken (escalate, dispatch, close ...)",
    "to_status": "Stage the case reached",
}


def _event_filter(service: Service, caller: Principal, asked: dict, n: int) -> np.ndarray:
    """The events matching the filters asked (values comma-separated), of the cases the
    caller may see (as the reports are: a department key only its department's)."""
    events = service.store.read("report_events")
    if len(events) != n:  # the layer changed between the two reads: ask again
        raise ApiError(503, "The case history changed while it was read; try again.")
    mask = np.ones(n, dtype=bool)
    for col, value in asked.items():
        if value is None:
            continue
        if col not in events.columns:
            return np.zeros(n, dtype=bool)
        wanted = [v.strip() for v in str(value).split(",") if v.strip()]
        mask &= events[col].astype("string").isin(wanted).to_numpy(dtype=bool, na_value=False)
    if caller.role == "department":
        reports = service.store.read("reports")
        seen = reports["report_id"][cases.sees_cases(reports, caller)].astype(str)
        mask &= events["report_id"].astype(str).isin(seen).to_numpy(dtype=bool)
    return mask


@router.get(
    "/collections/{collection_id}/queryables",
    summary="The properties items may be filtered on",
    tags=["OGC API - Features"],
)
def collection_queryables(
    request: Request, service: Svc, collection_id: CollectionId, caller: Caller, f: Format = None
) -> Response:
    _check_collection(service, collection_id)
    base = _base(request)
    if collection_id == "reports":
        body = cases.queryables(base)
    elif collection_id == "report_events":
        body = _event_queryables(base)
    else:  # only the common filters (bbox, datetime) apply
        body = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{base}/collections/{collection_id}/queryables",
            "type": "object",
            "title": collection_id,
            "properties": {},
            "additionalProperties": False,
        }
    return _json(body, "application/schema+json")


def _event_queryables(base: str) -> dict:
    """The JSON Schema of the case history's queryables (OGC API - Features part 3)."""
    props = {name: {"title": title, "type": "string"} for name, title in EVENT_QUERYABLES.items()}
    status = next(c for c in LAYERS["reports"].columns if c.name == "status")
    props["to_status"]["enum"] = list(status.choices or ())  # the first wave's too
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{base}/collections/report_events/queryables",
        "type": "object",
        "title": "report_events",
        "properties": props,
        "additionalProperties": False,
    }


def _asked(request: Request) -> str:
    """The request, as the audit names it."""
    query = request.url.query
    return f"{request.method} {request.url.path}" + (f"?{query}" if query else "")


@router.get(
    "/collections/{collection_id}/items/{feature_id}", summary="One feature", **_GEOJSON_ROUTE
)
def item(
    request: Request,
    service: Svc,
    collection_id: CollectionId,
    feature_id: Annotated[str, Path(description="Feature id.")],
    caller: Caller,
    f: Format = None,
) -> Response:
    _check_collection(service, collection_id)
    ser = _serialised(service, collection_id, caller)
    hits = np.flatnonzero(ser.ids == feature_id)
    if len(hits) == 0 or (
        ser.admin_codes is not None and not caller.in_scope(ser.admin_codes[hits[0]] or None)
    ):
        raise ApiError(404, f"No feature {feature_id!r} in {collection_id}.")
    if collection_id == "reports" and caller.role == "department":
        cases.visible_case(service.store.read("reports"), feature_id, caller)  # 404 if not theirs
    base = f"{_base(request)}/collections/{collection_id}"
    if caller.sees_private and has_private(collection_id):
        private_read(service, caller, collection_id, [feature_id], _asked(request))
    feature = orjson.loads(ser.features[hits[0]])
    feature["links"] = [
        {"href": f"{base}/items/{feature_id}", "rel": "self", "type": GEOJSON},
        {"href": base, "rel": "collection", "type": "application/json"},
    ]
    return Response(orjson.dumps(feature), media_type=GEOJSON)
