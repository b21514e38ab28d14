"""Read-only, scoped data endpoints of the map pages, under ``/maps/...``.

The pages hold a cookie for ``/maps`` only (never the API key in script), so the data
they load lives under the same path:

- ``GET /maps/view?view=coverage|compliance|cases`` — the map page of any size: it
  loads the units of the viewport, coloured by the view (units staffed, patrols done
  against the rules, open and overdue cases);
- ``GET /maps/data/units?bbox=W,S,E,N&zoom=Z`` — units meeting the box, simplified for
  the zoom (GeoJSON), at most ``limit``; more answers ``{"too_many": n}``;
- ``GET /maps/data/areas?bbox=...&zoom=Z`` — villages or townships with the share of
  units staffed (a choropleth for low zoom);
- ``GET /maps/data/search?q=`` — places, units and workers matching ``q``, then the
  cases whose id or hotline ticket number is ``q``;
- ``GET /maps/tiles/{z}/{x}/{y}`` — a local tile package (MBTiles, ``GRIDKIT_MBTILES``).

Everything is cut to the caller's scope. Data access goes through one small function,
:func:`view_layers`, over the :class:`gridkit.store.Store` interface; a backend that
can answer a bounding box itself (PostGIS) replaces that function, not the routes.
The index (:class:`gridkit.maps.viewport.ViewIndex`) is built once per scope and data
version and kept in the service's page cache.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.auth import COOKIE, Caller, Principal
from api.cases import sees_cases
from api.errors import ApiError
from api.service import Service, Svc
from gridkit import codes
from gridkit.errors import GridkitError
from gridkit.ops.cases import overdue
from gridkit.ops.patrols import load_patrol_rules, patrol_compliance, period_bounds
from gridkit.ops.reports import normalise_reports, report_rules
from gridkit.store import (
    DatabaseUnavailableError,
    PostGISStore,
    Store,
    UnitValues,
    ViewQueries,
    find_key,
)
from gridkit.webmap import case_bounds, cases_named

if TYPE_CHECKING:  # the maps extra is optional for the API: loaded on use
    from gridkit.maps import ViewIndex

router = APIRouter(tags=["maps"])
GEOJSON = "application/geo+json"
LAYERS = ("units", "assignments", "workers", "admin_areas")
#: the cases view is built again when a case falls overdue, at most this often
CASES_REFRESH_S = 60.0
#: what each view reads besides the index's layers (its cache key names them all)
VIEW_LAYERS = {"coverage": (), "compliance": ("patrols",), "cases": ("reports",)}
View = Annotated[
    str,
    Query(pattern="^(coverage|compliance|cases)$",
          description="coverage (units staffed), compliance (patrols done) or cases "
                      "(open and overdue cases per 1,000 households or km of river)."),
]  # fmt: skip
Period = Annotated[
    str | None,
    Query(pattern=r"^\d{4}(-H[12]|-Q[1-4]|-(0[1-9]|1[0-2])|-W(0[1-9]|[1-4]\d|5[0-3]))?$",
          description="Compliance view: a calendar period (2026, 2026-Q1, 2026-03, 2026-W10); "
                      "default the months the patrols span."),
]  # fmt: skip
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


def _sql_views(service: Service, caller: Principal) -> ViewQueries | None:
    """The map views over PostGIS answered in SQL (:class:`ViewQueries`), kept per
    scope and data version; None elsewhere (the in-memory index answers)."""
    store = service.store
    if not isinstance(store, PostGISStore):
        return None
    views = service.current(
        service.page_cache, ("view-sql", caller.scope), LAYERS,
        lambda: ViewQueries.build(store, caller.scope),
    )  # fmt: skip
    if not views.count:
        raise ApiError(404, "No units in your area.")
    return views


def _sql_values(
    service: Service, caller: Principal, views: ViewQueries, view: str, period: str | None
) -> UnitValues | None:
    """The compliance or cases view over PostGIS (None: coverage), kept per scope and
    the versions of the layers it reads (and, for cases, until one falls overdue)."""
    if view == "coverage":
        return None
    period = period if view == "compliance" else None
    key, layers = ("view-sql-values", caller.scope, view, period), LAYERS + VIEW_LAYERS[view]

    def build() -> UnitValues:
        try:
            if view == "compliance":
                return _sql_compliance(service, caller, views, period)
            return _sql_cases(service.store, views)
        except GridkitError as exc:
            raise ApiError(400, str(exc)) from None

    return _kept_view(service, key, layers, build)


def _sql_compliance(
    service: Service, caller: Principal, views: ViewQueries, period: str | None
) -> UnitValues:
    """The compliance view from the database: the library's rule
    (:func:`gridkit.ops.patrols.patrol_compliance`) run once per scope, period and
    version on the rows the scope needs (:meth:`ViewQueries.compliance_inputs`), its
    per-unit results stored for every process (:meth:`ViewQueries.compliance`)."""
    from gridkit.maps import views as themes  # the optional maps extra, loaded on use

    store = service.store
    _needs_patrols(store)
    span = views.patrol_span()
    if span is None:
        raise ApiError(404, "No patrols yet: the compliance view has nothing to show.")
    when, now = _period(span[0], span[1], period)
    rules = load_patrol_rules()
    start, end = period_bounds(when, tz=rules.timezone)
    gens = ",".join(str(store.generation(n)) for n in LAYERS + VIEW_LAYERS["compliance"])
    key = f"compliance|{caller.scope}|{period or ''}|{gens}"
    margin = 4 * rules.duplicate_tolerance_m / 111_320  # degrees: metres at any latitude

    def make() -> pd.DataFrame:
        f = views.compliance_inputs(start.tz_convert("UTC"), end.tz_convert("UTC"), margin)
        rows = patrol_compliance(f["patrols"], f["assignments"], period=when, units=f["units"],
                                 workers=f["workers"], now=now)  # fmt: skip
        ids = pd.Index(rows["unit_id"].astype(str).unique())
        t = themes.compliance_theme(ids, rows, np.full(len(ids), -1), 0)
        return pd.DataFrame({"unit_id": ids, "s": t.unit_class, "q": t.unit_values["q"],
                             "d": t.unit_values["d"]})  # fmt: skip

    def classes(sums: pd.DataFrame) -> pd.DataFrame:
        s = sums.astype(int)
        return s.assign(c=themes.completion(s["required"], s["done"]))

    none = str(themes.completion(pd.Series([0]), pd.Series([0]))[0])
    return views.compliance(key, make, none=none, classes=classes)


def _sql_cases(store: Store, views: ViewQueries) -> UnitValues:
    """The cases view from the database: which stored statuses are open, and which of
    those fall overdue past their deadline, are asked of the case rules
    (:func:`gridkit.ops.cases.overdue` on one row per status); counting them per unit
    and area is SQL (:meth:`ViewQueries.cases`)."""
    from gridkit.maps import views as themes  # the optional maps extra, loaded on use

    if "reports" not in set(store.layers()):
        raise ApiError(404, "No reports in the workspace: the cases view needs them.")
    now = pd.Timestamp.now(tz="UTC")
    statuses = views.report_statuses()
    past = [now - pd.Timedelta(days=1)] * len(statuses)  # one row per status, due
    probe = normalise_reports(pd.DataFrame({"status": statuses, "due_at": past}))
    is_open = probe["status"].astype("string").isin(list(report_rules().open_statuses))
    is_open = is_open.fillna(False).to_numpy(dtype=bool)
    late = overdue(probe, at=now).to_numpy(dtype=bool) & is_open
    names = themes.cases_theme(pd.Index(["n", "o", "l"]),
                        pd.DataFrame({"unit_id": ["o", "l"], "overdue": [False, True]}),
                        pd.DataFrame(), np.full(3, -1), 0).unit_class  # fmt: skip
    pick = np.asarray(statuses, dtype=object)
    values = views.cases(pick[is_open].tolist(), pick[late].tolist(), now,
                         classes=tuple(str(n) for n in names), rates=themes.case_rates)  # fmt: skip
    if values.until is None:
        return values
    # many open cases fall due all day: at most one build a minute
    until = max(values.until, now + pd.Timedelta(seconds=CASES_REFRESH_S))
    return dataclasses.replace(values, until=until)


def _needs_patrols(store: Store) -> None:
    if not {"patrols", "assignments"} <= set(store.layers()):
        raise ApiError(
            404, "No patrols or assignments in the workspace: the compliance view needs both."
        )


def _period(first: pd.Timestamp, last: pd.Timestamp, period: str | None) -> tuple:
    """The period of the compliance view and its evaluation time: ``period``, or by
    default the months (UTC) the patrols span, evaluated at their end."""
    if period is not None:
        return period, None
    start = first.strftime("%Y-%m-01")
    end = (last + pd.offsets.MonthBegin(1)).strftime("%Y-%m-01")
    return (start, end), end


def _theme(service: Service, caller: Principal, view: str, period: str | None = None):
    """The ``view`` over the caller's index, kept per scope and data version (and, for
    cases, until the next one falls overdue)."""
    index = _index(service, caller)
    if view == "coverage":
        return index.coverage
    period = period if view == "compliance" else None
    key, layers = ("view-theme", caller.scope, view, period), LAYERS + VIEW_LAYERS[view]

    def build():
        try:
            if view == "compliance":
                return index.compliance(_compliance_rows(service.store, index, period))
            return _cases_theme(service.store, index)
        except GridkitError as exc:
            raise ApiError(400, str(exc)) from None

    return _kept_view(service, key, layers, build)


def _kept_view(service: Service, key: tuple, layers: tuple, build: Callable[[], Any]) -> Any:
    """A view kept per ``key`` and the versions of ``layers``, built again when it went
    stale (a case fell overdue since: its ``stale(now)`` says)."""
    view = service.current(service.page_cache, key, layers, build)
    if view.stale(pd.Timestamp.now(tz="UTC")):
        service.page_cache.put(key, None)
        view = service.current(service.page_cache, key, layers, build)
    return view


def _compliance_rows(store: Store, index: ViewIndex, period: str | None) -> pd.DataFrame:
    """Compliance rows of the index's units over ``period`` (default the months the
    patrols span) by :func:`gridkit.ops.patrols.patrol_compliance` and the rules'
    frequencies."""
    _needs_patrols(store)
    have = set(store.layers())
    patrols = store.read("patrols")
    if patrols.empty:
        raise ApiError(404, "No patrols yet: the compliance view has nothing to show.")
    ids = set(index.frame["id"])
    units = store.read("units")
    units = units[units["unit_id"].astype(str).isin(ids)]
    assignments = store.read("assignments")
    assignments = assignments[assignments["unit_id"].astype(str).isin(ids)]
    workers = store.read("workers") if "workers" in have else None
    t = pd.to_datetime(patrols["started_at"], utc=True)
    when, now = _period(t.min(), t.max(), period)
    return patrol_compliance(patrols, assignments, period=when, units=units, workers=workers,
                             now=now)  # fmt: skip


def _cases_theme(store: Store, index: ViewIndex):
    """Open cases of the index's units, overdue as :func:`gridkit.ops.cases.overdue`
    says now; the view is stale when the next open case passes its deadline (at the
    earliest ``CASES_REFRESH_S`` after this build)."""
    if "reports" not in set(store.layers()):
        raise ApiError(404, "No reports in the workspace: the cases view needs them.")
    now = pd.Timestamp.now(tz="UTC")
    r = normalise_reports(store.read("reports"))
    r = r[index.positions(r["unit_id"].fillna("")) >= 0]
    is_open = r["status"].astype("string").isin(list(report_rules().open_statuses))
    if "duplicate_of" in r.columns:
        is_open &= r["duplicate_of"].isna()
    r = r[is_open.fillna(False).to_numpy(dtype=bool)]
    late = overdue(r, at=now)
    due = pd.to_datetime(r["due_at"], utc=True)
    ahead = due[~late.to_numpy() & (due > now).to_numpy()]
    until = None
    if len(ahead):  # many open cases fall due all day: at most one build a minute
        until = max(ahead.min(), now + pd.Timedelta(seconds=CASES_REFRESH_S))
    cases = pd.DataFrame({"unit_id": r["unit_id"].astype(str).to_numpy(),
                          "overdue": late.to_numpy(dtype=bool)})  # fmt: skip
    return index.cases(cases, until=until)


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
    view: View = "coverage",
    period: Period = None,
) -> Response:
    try:
        sql = _sql_views(service, caller)
        if sql is not None:
            values = _sql_values(service, caller, sql, view, period)
            return _geojson(sql.units(_box(bbox), zoom, limit=limit, values=values))
        theme = _theme(service, caller, view, period)
        return _geojson(_index(service, caller).units(_box(bbox), zoom, limit=limit, theme=theme))
    except DatabaseUnavailableError:
        raise  # the database away: 503 (api.errors)
    except GridkitError as exc:
        raise ApiError(400, str(exc)) from None


@router.get("/maps/data/areas", summary="Areas in a viewport (GeoJSON)", response_class=Response)
def areas_in_view(
    service: Svc,
    caller: Caller,
    bbox: Bbox,
    zoom: Zoom,
    view: View = "coverage",
    period: Period = None,
) -> Response:
    try:
        sql = _sql_views(service, caller)
        if sql is not None:
            values = _sql_values(service, caller, sql, view, period)
            return _geojson(sql.areas(_box(bbox), zoom, values=values))
        theme = _theme(service, caller, view, period)
        return _geojson(_index(service, caller).areas(_box(bbox), zoom, theme=theme))
    except DatabaseUnavailableError:
        raise  # the database away: 503 (api.errors)
    except GridkitError as exc:
        raise ApiError(400, str(exc)) from None


#: entries a search answers (places, units, then the cases found)
SEARCH_LIMIT = 20
#: cases found by one search at most (a ticket number names one case; a case id, one)
CASES_LIMIT = 5


@router.get("/maps/data/search", summary="Find places, units, workers and cases")
def search(
    service: Svc, caller: Caller, q: Annotated[str, Query(min_length=1, max_length=100)]
) -> JSONResponse:
    sql = _sql_views(service, caller)
    found = (sql if sql is not None else _index(service, caller)).search(q)
    cases = _cases_found(service, caller, q)
    return JSONResponse(found[: SEARCH_LIMIT - len(cases)] + cases)


def _cases_found(service: Service, caller: Principal, q: str) -> list:
    """Entries ``[text, south, west, north, east]`` of the cases whose id or hotline
    ticket number is ``q`` (:func:`gridkit.webmap.cases_named`), of those the caller may
    see (as the reports' items: scope, and a department key its department's cases
    only). The text names the case, its category and stage (and the ticket), nothing
    private."""
    reports = service.layer("reports")
    if reports is None or not len(reports):
        return []
    rows = reports.iloc[cases_named(reports, q)]
    if not len(rows):
        return []
    rows = rows[sees_cases(rows, caller)].head(CASES_LIMIT)
    bounds = case_bounds(rows, service.layer("units"))
    return [
        [_case_text(row), *b.tolist()]
        for row, b in zip(rows.to_dict("records"), bounds, strict=True)
        if not np.isnan(b).any()
    ]


def _case_text(row: dict) -> str:
    rules = report_rules()
    category = rules.categories.get(str(row.get("category")), {})
    status = str(row.get("status"))
    parts = [str(row["report_id"]), category.get("label_zh", str(row.get("category")))]
    parts.append(rules.stages.get(status, status))
    ticket = row.get("ticket_id")
    if ticket is not None and not pd.isna(ticket) and str(ticket).strip():
        system = row.get("ticket_system")
        system = "" if system is None or pd.isna(system) else f"{system} "
        parts.append(f"{system}{str(ticket).strip()}")
    return " · ".join(parts)


@router.get(
    "/maps/view", summary="Map of any size (loads per viewport)", response_class=HTMLResponse
)
def view_page(
    request: Request,
    service: Svc,
    caller: Caller,
    lang: Annotated[str, Query(pattern="^(zh|en)$")] = "zh",
    view: View = "coverage",
    period: Period = None,
    key: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")] = None,
) -> Response:
    from gridkit.maps import viewport_page  # the optional maps extra, loaded on use

    redirect = key_redirect(request, service, key)
    if redirect is not None:
        return redirect
    tiles = "/maps/tiles/{z}/{x}/{y}" if _mbtiles() is not None else None
    sql = _sql_views(service, caller)
    if sql is not None:
        _sql_values(service, caller, sql, view, period)  # a view without its data: a clear 404
        overview = sql.overview()
    else:
        _theme(service, caller, view, period)  # a view without its data: a clear 404
        overview = _index(service, caller).overview()
    page = viewport_page(base_url="/maps/data/", overview=overview,
                         lang=lang, view=view, period=period, tiles=tiles)  # fmt: skip
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
