"""Read-only, scoped data endpoints of the map pages, under ``/maps/...``.

The pages hold a cookie for ``/maps`` only (never the API key in script), so the data
they load lives under the same path:

- ``GET /maps/view`` — the map page of any size: it loads the units of the viewport;
- ``GET /maps/data/units?bbox=W,S,E,N&zoom=Z`` — units meeting the box, simplified for
  the zoom (GeoJSON), at most ``limit``; more answers ``{"too_many": n}``;
- ``GET /maps/data/areas?bbox=...&zoom=Z`` — villages or townships with the share of
  units staffed (a choropleth for low zoom);
- ``GET /maps/data/search?q=`` — units, workers and places matching ``q``;
- ``GET /maps/tiles/{z}/{x}/{y}`` — a local tile package (MBTiles, ``GRIDKIT_MBTILES``).

Everything is cut to the caller's scope. Data access goes through one small function,
:func:`view_layers`, over the :class:`gridkit.store.Store` interface; a backend that
can answer a bounding box itself (PostGIS) replaces that function, not the routes.
The index (:class:`gridkit.maps.viewport.ViewIndex`) is built once per scope and data
version and kept in the service's page cache.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import COOKIE, Caller, Principal
from api.errors import ApiError
from api.service import Service, Svc
from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.store import DatabaseUnavailableError, PostGISStore, Store, ViewQueries, find_key

if TYPE_CHECKING:  # the maps extra is optional for the API: loaded on use
    from gridkit.maps import ViewIndex

router = APIRouter(tags=["maps"])
GEOJSON = "application/geo+json"
LAYERS = ("units", "assignments", "workers", "admin_areas")
Bbox = Annotated[
    str,
    Query(
        pattern=r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3}$", max_length=120,
        description="west,south,east,north in WGS84 degrees.",
    ),
]  # fmt: skip
Zoom = Annotated[int, Query(ge=0, le=22, description="Map zoom (simplification).")]


@dataclass(frozen=True)
class ViewLayers:
    """What a map page shows for one caller: units, assignments, names, admin areas."""

    units: pd.DataFrame
    assignments: pd.DataFrame | None
    workers: pd.DataFrame | None
    admin_areas: pd.DataFrame | None


def view_layers(store: Store, scope: str) -> ViewLayers:
    """The layers of the map pages in ``scope`` (the one place they are read).

    Worker names only: bases and phones never reach a map.
    """
    have = set(store.layers())
    units = store.read("units")
    if scope and "admin_code" in units.columns:
        units = units[codes.in_scope(units["admin_code"], scope)]
    assignments = store.read("assignments") if "assignments" in have else None
    workers = None
    if "workers" in have:
        workers = pd.DataFrame(store.read("workers")[["worker_id", "name"]])
    admin = store.read("admin_areas") if "admin_areas" in have else None
    return ViewLayers(units, assignments, workers, admin)


def key_redirect(request: Request, service: Service, key: str | None) -> Response | None:
    """A key in a map page's URL becomes an HttpOnly cookie for ``/maps`` (redirect)."""
    if key is None:
        return None
    if find_key(service.store, key) is None:  # never put an unknown key in a cookie
        raise ApiError(401, "Unknown or revoked API key.")
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "key"]
    url = request.url.path + ("?" + urlencode(params) if params else "")
    resp = RedirectResponse(url, status_code=303)
    # for the map pages only: the rest of the API takes the key from the header, so
    # no other page can make a browser act with it
    resp.set_cookie(COOKIE, key, httponly=True, samesite="strict", path="/maps")
    return resp


def _index(service: Service, caller: Principal) -> ViewIndex:
    from gridkit.maps import Context, ViewIndex  # the optional maps extra, loaded on use

    def build() -> ViewIndex:
        v = view_layers(service.store, caller.scope)
        if v.units.empty:
            raise ApiError(404, "No units in your area.")
        context = Context(admin=v.admin_areas) if v.admin_areas is not None else None
        return ViewIndex.build(
            v.units, assignments=v.assignments, workers=v.workers, context=context
        )

    return service.current(service.page_cache, ("view-index", caller.scope), LAYERS, build)


def _views(service: Service, caller: Principal) -> ViewIndex | ViewQueries:
    """The data routes' answerer: SQL over PostGIS (:class:`ViewQueries`), else the
    in-memory index; either is kept per scope and data version."""
    store = service.store
    if not isinstance(store, PostGISStore):
        return _index(service, caller)
    views = service.current(
        service.page_cache, ("view-sql", caller.scope), LAYERS,
        lambda: ViewQueries.build(store, caller.scope),
    )  # fmt: skip
    if not views.count:
        raise ApiError(404, "No units in your area.")
    return views


def _box(bbox: str) -> tuple[float, float, float, float]:
    w, s, e, n = (float(v) for v in bbox.split(","))
    return w, s, e, n


def _geojson(body: bytes) -> Response:
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "private, max-age=30"})


@router.get("/maps/data/units", summary="Units in a viewport (GeoJSON)", response_class=Response)
def units_in_view(
    service: Svc,
    caller: Caller,
    bbox: Bbox,
    zoom: Zoom,
    limit: Annotated[int, Query(ge=1, le=50_000)] = 20_000,
) -> Response:
    try:
        return _geojson(_views(service, caller).units(_box(bbox), zoom, limit=limit))
    except DatabaseUnavailableError:
        raise  # the database away: 503 (api.errors)
    except GridkitError as exc:
        raise ApiError(400, str(exc)) from None


@router.get("/maps/data/areas", summary="Areas in a viewport (GeoJSON)", response_class=Response)
def areas_in_view(service: Svc, caller: Caller, bbox: Bbox, zoom: Zoom) -> Response:
    try:
        return _geojson(_views(service, caller).areas(_box(bbox), zoom))
    except DatabaseUnavailableError:
        raise  # the database away: 503 (api.errors)
    except GridkitError as exc:
        raise ApiError(400, str(exc)) from None


@router.get("/maps/data/search", summary="Find units, workers and places")
def search(
    service: Svc, caller: Caller, q: Annotated[str, Query(min_length=1, max_length=100)]
) -> JSONResponse:
    return JSONResponse(_views(service, caller).search(q))


@router.get(
    "/maps/view", summary="Map of any size (loads per viewport)", response_class=HTMLResponse
)
def view_page(
    request: Request,
    service: Svc,
    caller: Caller,
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
    key: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> Response:
    from gridkit.maps import viewport_page  # the optional maps extra, loaded on use

    redirect = key_redirect(request, service, key)
    if redirect is not None:
        return redirect
    tiles = "/maps/tiles/{z}/{x}/{y}" if _mbtiles() is not None else None
    page = viewport_page(
        base_url="/maps/data/", overview=_views(service, caller).overview(), lang=lang, tiles=tiles
    )
    return HTMLResponse(page)


@functools.cache
def _mbtiles_at(path: str):
    from gridkit.maps import MBTiles  # the optional maps extra, loaded on use

    return MBTiles(path)


def _mbtiles():
    path = os.environ.get("GRIDKIT_MBTILES")
    return _mbtiles_at(path) if path else None


@router.get("/maps/tiles/{z}/{x}/{y}", include_in_schema=False)
def tile(z: int, x: int, y: int, caller: Caller) -> Response:
    package = _mbtiles()
    if package is None:
        raise ApiError(404, "No tile package is served (set GRIDKIT_MBTILES).")
    data = package.tile(z, x, y)
    if data is None:
        return Response(status_code=204)
    return Response(data, media_type=package.media_type,
                    headers={"Cache-Control": "private, max-age=86400"})  # fmt: skip
