"""Map pages served offline-capable: Leaflet comes from the app (/assets), never a CDN."""

from __future__ import annotations

import functools
import gzip
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
from fastapi import APIRouter, Query, Request
from starlette.responses import FileResponse, HTMLResponse, Response

from api import mapdata
from api.auth import Caller, Principal
from api.errors import ApiError
from api.mapdata import key_redirect
from api.service import Service, Svc
from gridkit import codes
from gridkit.ops.hotspots import hotspots
from gridkit.ops.locate import locate
from gridkit.ops.patrols import patrol_compliance
from gridkit.ops.reports import report_rules
from gridkit.store import Store

if TYPE_CHECKING:  # typing only: the maps extra (folium) is optional for the API
    import folium

    from gridkit.maps import MapOptions

router = APIRouter(tags=["maps"])
router.include_router(mapdata.router)  # the pages' data endpoints, under /maps as well
Lang = Annotated[str, Query(pattern="^(zh|en)$", description="Labels: zh or en.")]
KeyParam = Annotated[
    str | None,
    Query(
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="API key for browsers: stored in an HttpOnly cookie, then the URL "
        "is cleaned by a redirect.",
    ),
]


@router.get("/assets/{name:path}", include_in_schema=False)
def asset(name: str, request: Request) -> Response:
    # the maps extra (folium, XStatic-Leaflet) is optional for the API: loaded on use
    from gridkit.maps import offline_assets

    files = offline_assets()
    if name not in files:
        raise ApiError(404, f"No asset {name!r}.")
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if media.startswith(("text/", "application/javascript")) and _accepts_gzip(request):
        return Response(
            _gzipped(str(files[name])),
            media_type=media,
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return FileResponse(files[name], media_type=media, headers=headers)


def _accepts_gzip(request: Request) -> bool:
    """Whether the client takes gzip (``Accept-Encoding``, without ``gzip;q=0``)."""
    for part in request.headers.get("accept-encoding", "").lower().split(","):
        coding, _, q = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return q.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


@functools.lru_cache(maxsize=16)
def _gzipped(path: str) -> bytes:
    """A packaged text asset (Leaflet's script: 147 KB, 42 KB gzipped), compressed once
    per process: phones fetch the map pages and the field app over mobile networks."""
    return gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)


def _scoped(df: pd.DataFrame, caller: Principal) -> pd.DataFrame:
    """The rows of ``df`` in the caller's area (all of them for a layer without codes)."""
    if caller.scope and "admin_code" in df.columns:
        return df[codes.in_scope(df["admin_code"], caller.scope)]
    return df


#: page titles by map kind and language
_TITLES = {
    "coverage": {"zh": "网格覆盖", "en": "Grid coverage"},
    "hotspots": {"zh": "问题热点", "en": "Problem hotspots"},
    "compliance": {"zh": "巡查达标", "en": "Patrol compliance"},
}


def _options(kind: str, lang: str, **more: str) -> MapOptions:
    """How the served pages look: no basemap, Leaflet from this app's /assets/."""
    from gridkit.maps import MapOptions  # optional maps extra, as above

    return MapOptions(
        lang=lang,
        tiles=None,
        offline=True,
        asset_base_url="/assets/",
        title=_TITLES[kind][lang],
        **more,
    )


def _page(
    request: Request,
    service: Service,
    kind: str,
    caller: Principal,
    lang: str,
    key: str | None,
) -> Response:
    """Render a map once per (kind, language, scope) and data version, and cache it.
    The workspace's admin areas, rivers and water bodies are the base (no tiles).

    A ``key`` in the URL is turned into a cookie by a redirect first."""
    redirect = key_redirect(request, service, key)
    if redirect is not None:
        return redirect
    layers = ("units", "assignments", "reports", "patrols", "workers", *_CONTEXT)

    def build() -> bytes:
        from gridkit.maps import map_html  # optional maps extra, as above

        return map_html(_BUILDERS[kind](service.store, caller, lang)).encode("utf-8")

    # one version of each page: a write replaces it, never adds one
    page = service.current(service.page_cache, (kind, lang, caller.scope), layers, build)
    return HTMLResponse(page)


_CONTEXT = ("admin_areas", "rivers", "water_bodies")


def _context(store: Store):
    """The workspace's own context layers (admin outlines and names, rivers, water)."""
    from gridkit.maps import Context  # optional maps extra, as above

    have = set(store.layers())
    return Context.from_layers({n: store.read(n) for n in _CONTEXT if n in have})


def _coverage(store: Store, caller: Principal, lang: str) -> folium.Map:
    from gridkit.maps import coverage_map  # optional maps extra, as above

    units = _scoped(store.read("units"), caller)
    if units.empty:
        raise ApiError(404, "No units in your area.")
    layers = store.layers()
    assignments = store.read("assignments") if "assignments" in layers else None
    workers = None
    if "workers" in layers:  # names only: bases and phones stay private
        workers = pd.DataFrame(store.read("workers")[["worker_id", "name"]])
    reports = None
    if "reports" in layers:  # open cases in popups and search; contacts stay private
        reports = _scoped(store.read("reports"), caller).drop(
            columns=["reporter_contact"], errors="ignore"
        )
        if reports["unit_id"].isna().any():  # maps draw joined data: place the unplaced
            placed = locate(reports, units)["unit_id"]
            reports = reports.assign(unit_id=reports["unit_id"].fillna(placed))
    return coverage_map(
        units, assignments=assignments, workers=workers, reports=reports,
        context=_context(store), categories=report_rules().categories,
        options=_options("coverage", lang),
    )  # fmt: skip


def _hotspots(store: Store, caller: Principal, lang: str) -> folium.Map:
    from gridkit.maps import hotspot_map  # optional maps extra, as above

    units = _scoped(store.read("units"), caller)
    grids = units[units["kind"] == "community_grid"]
    if grids.empty or "reports" not in store.layers():
        raise ApiError(404, "No community grids or reports in your area.")
    reports = _scoped(store.read("reports"), caller)
    hot = hotspots(reports, grids, permutations=199, seed=1)
    public = reports.drop(columns=["reporter_contact"], errors="ignore")
    return hotspot_map(
        hot, reports=public, context=_context(store), categories=report_rules().categories,
        options=_options("hotspots", lang),
    )  # fmt: skip


def _compliance(store: Store, caller: Principal, lang: str) -> folium.Map:
    from gridkit.maps import compliance_map  # optional maps extra, as above

    layers = store.layers()
    if not {"patrols", "assignments"} <= set(layers):
        raise ApiError(404, "No patrols or assignments in the workspace.")
    units = _scoped(store.read("units"), caller)
    if units.empty:
        raise ApiError(404, "No units in your area.")
    patrols = store.read("patrols")
    t = pd.to_datetime(patrols["started_at"], utc=True)
    start = t.min().strftime("%Y-%m-01")
    end = (t.max() + pd.offsets.MonthBegin(1)).strftime("%Y-%m-01")
    assignments = store.read("assignments")
    assignments = assignments[assignments["unit_id"].isin(units["unit_id"])]
    workers = store.read("workers") if "workers" in layers else None
    rows = patrol_compliance(
        patrols, assignments, period=(start, end), units=units, workers=workers, now=end
    )
    names = None if workers is None else pd.DataFrame(workers[["worker_id", "name"]])
    options = _options("compliance", lang, period=f"{start} – {end}")
    return compliance_map(units, rows, workers=names, context=_context(store), options=options)


#: how each map kind is built from the store, for one caller and language
_BUILDERS: dict[str, Callable[[Store, Principal, str], folium.Map]] = {
    "coverage": _coverage,
    "hotspots": _hotspots,
    "compliance": _compliance,
}


@router.get(
    "/maps/coverage", summary="Coverage map (units by assigned worker)", response_class=HTMLResponse
)
def coverage(
    request: Request, service: Svc, caller: Caller, lang: Lang = "zh", key: KeyParam = None
) -> Response:
    return _page(request, service, "coverage", caller, lang, key)


@router.get(
    "/maps/hotspots",
    summary="Hotspot map (Gi* classes, report points)",
    response_class=HTMLResponse,
)
def hotspots_page(
    request: Request, service: Svc, caller: Caller, lang: Lang = "zh", key: KeyParam = None
) -> Response:
    return _page(request, service, "hotspots", caller, lang, key)


@router.get("/maps/compliance", summary="Patrol compliance map", response_class=HTMLResponse)
def compliance_page(
    request: Request, service: Svc, caller: Caller, lang: Lang = "zh", key: KeyParam = None
) -> Response:
    return _page(request, service, "compliance", caller, lang, key)
