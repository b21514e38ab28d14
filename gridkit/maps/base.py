"""Maps for supervisors: coverage, patrol compliance, hotspots and grid version changes.

Every function takes GeoDataFrames of the data contract and returns a
:class:`folium.Map`, which shows itself in Jupyter, saves as standalone HTML
(``m.save("map.html")``) and renders as a page for an API
(``m.get_root().render()``).

Every map has a title (with the period), a legend in plain HTML/CSS, a layer
control, a scale bar, and is fitted to the data. Labels are Chinese by default
(``lang="zh"``) or English (``lang="en"``).

Safety: folium puts tooltip, popup, layer-control and attribution text into the page
as raw HTML. gridkit escapes every string taken from the data (ids, names, report
text, categories) and every option text (title, period) before it reaches folium.

Offline (the default): ``offline=True`` takes Leaflet (and Leaflet.markercluster) from the locally
installed ``XStatic-Leaflet`` / ``XStatic-Leaflet-MarkerCluster`` packages and inlines
them, so the page loads nothing from the network (use ``tiles=None`` or an intranet
tile URL). With ``asset_base_url=`` the page references the files of
:func:`offline_assets` at that URL instead. ``offline=False`` loads them from public
CDNs (smaller pages where the internet is reachable).

Basemap: OpenStreetMap by default; any tile URL (``tiles="http://intranet/{z}/{x}/{y}.png"``)
or none (``tiles=None``). Chinese web tiles are in GCJ-02: declare
``tiles_datum="gcj02"`` and the data is shifted to match.

Examples
--------
>>> from gridkit.maps.base import coverage_map
>>> m = coverage_map(units, assignments=assignments, offline=True, tiles=None)  # doctest: +SKIP
>>> m.save("coverage.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, shift_datum
from gridkit.errors import GridkitError, InvalidLayerError
from gridkit.maps.assets import apply_assets, has_cluster_assets, offline_assets
from gridkit.maps.labels import labels
from gridkit.maps.legend import legend_element, title_element

__all__ = [
    "HOTSPOT_CLASSES",
    "compliance_map",
    "coverage_map",
    "diff_map",
    "hotspot_map",
    "map_html",
    "offline_assets",
]

HOTSPOT_CLASSES = ("hot-99", "hot-95", "hot-90", "not significant", "cold-90", "cold-95", "cold-99")
_HOTSPOT_COLORS = dict(
    zip(
        HOTSPOT_CLASSES,
        ("#b2182b", "#ef8a62", "#fddbc7", "#f0f0f0", "#d1e5f0", "#67a9cf", "#2166ac"),
        strict=True,
    )
)
# distinct colours for workers and categories; no purple/red, which mark problems
_PALETTE = (
    "#1f77b4", "#2ca02c", "#ff7f0e", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#7f7f7f",
    "#aec7e8", "#98df8a", "#ffbb78", "#9edae5", "#dbdb8d", "#c49c94", "#f7b6d2", "#c7c7c7",
    "#393b79", "#637939", "#8c6d31", "#3182bd",
)  # fmt: skip
_UNASSIGNED = "#7b3294"
_RECENCY_COLORS = {"in_time": "#1a9641", "overdue": "#fdae61", "never": "#d7191c"}
_COMPLIANCE_COLORS = {
    "full": "#1a9641",
    "partial": "#fdae61",
    "low": "#d7191c",
    "no_data": "#bdbdbd",
}
_RELATION_COLORS = {
    "unchanged": "#d9d9d9",
    "modified": "#fdae61",
    "split": "#2c7bb6",
    "merged": "#7b3294",
    "added": "#1a9641",
    "removed": "#d7191c",
}
_CLOSED = {"resolved", "verified", "closed", "rejected"}
# ``tip`` is escaped HTML built in Python; Leaflet sets it as innerHTML
_BIND_POINT = """function(feature, layer) {
    layer.bindTooltip(feature.properties.tip);
    layer.bindPopup(feature.properties.tip, {maxWidth: 360});
}"""
_CANVAS_AT = 2000  # features; above this SVG slows down noticeably
_MAX_POPUP_REPORTS = 10
_MAX_LEGEND_ITEMS = 15

Tiles = str | None


def _esc(value: object) -> str:
    """Text for the page: ``None``/NaN as empty, everything else escaped."""
    return html.escape(_text(value), quote=True)


def _text(value: object) -> str:
    """Plain text of a cell, empty when missing (not yet escaped)."""
    return "" if _missing(value) else str(value)


def _missing(value: object) -> bool:
    """None, NaN, NaT or pd.NA (a missing value of a nullable column)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and np.isnan(value))
    )


def _fmt_time(value: object) -> str:
    if value is None or pd.isna(value):
        return ""
    ts = pd.Timestamp(value)
    return ts.strftime("%Y-%m-%d %H:%M") if (ts.hour or ts.minute) else ts.strftime("%Y-%m-%d")


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    """Tooltip/popup body from (label, already-escaped value) pairs."""
    return "<br>".join(f"<b>{html.escape(k)}</b> {v}" for k, v in pairs)


@dataclass(frozen=True)
class _Opts:
    lang: str
    title: str | None
    period: str | None
    tiles: Tiles
    tiles_attr: str | None
    tiles_datum: str
    offline: bool
    asset_base_url: str | None
    precision: int
    simplify_m: float | None
    prefer_canvas: bool | None
    height: str

    @property
    def L(self) -> dict[str, str]:
        return labels(self.lang)


def _opts(**kw: Any) -> _Opts:
    o = _Opts(**kw)
    labels(o.lang)  # fail early on an unknown language
    if o.tiles_datum not in ("wgs84", "gcj02"):
        raise GridkitError(
            f"Unknown tiles_datum {o.tiles_datum!r}.",
            hint="Use 'wgs84' (OpenStreetMap, most intranet servers) or 'gcj02' "
            "(AMap, Tencent and other Chinese web tiles).",
        )
    if o.precision < 0 or o.precision > 15:
        raise GridkitError(f"precision must be 0..15 decimals, got {o.precision}.")
    return o


def _require(df: pd.DataFrame, columns: Sequence[str], layer: str, *, geometry: bool) -> None:
    missing = [c for c in columns if c not in df.columns]
    problems = [f"missing column {c!r}" for c in missing]
    if geometry and not isinstance(df, gpd.GeoDataFrame):
        problems.append("not a GeoDataFrame (no geometry)")
    if problems:
        raise InvalidLayerError(
            f"layer {layer!r} cannot be mapped: {'; '.join(problems)}.",
            hint=f"Pass a {layer} layer of the data contract (see gridkit.LAYERS).",
            problems=problems,
        )


def _prepare(gdf: gpd.GeoDataFrame, o: _Opts) -> gpd.GeoDataFrame:
    """WGS84 (or GCJ-02 for Chinese tiles), non-empty geometries, simplified, rounded."""
    if gdf.crs is not None and not gdf.crs.equals(WGS84):
        gdf = gdf.to_crs(WGS84)
    gdf = gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]
    if o.tiles_datum == "gcj02" and len(gdf):
        gdf = shift_datum(gdf, source="wgs84", target="gcj02")
    geoms = np.asarray(gdf.geometry.array)
    if o.simplify_m:
        # degrees at the equator; a display tolerance, not a measurement
        geoms = shapely.simplify(geoms, o.simplify_m / 111_320.0, preserve_topology=True)
    scale = 10.0**o.precision
    geoms = shapely.transform(geoms, lambda c: np.round(c * scale) / scale)
    out = gdf.copy()
    out.geometry = geoms
    return out


def _collection(gdf: gpd.GeoDataFrame, props: pd.DataFrame) -> dict:
    """A FeatureCollection of ``gdf``'s geometry with only the (escaped) ``props`` columns.

    ``id`` is the row number, so folium's style switch stays short.
    """
    geo = shapely.to_geojson(np.asarray(gdf.geometry.array))
    records = props.to_dict("records")
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": i, "properties": p, "geometry": json.loads(g)}
            for i, (p, g) in enumerate(zip(records, geo, strict=True))
        ],
    }


def _polygons(
    gdf: gpd.GeoDataFrame,
    *,
    name: str,
    colors: Sequence[str],
    tips: Sequence[str],
    pops: Sequence[str] | None = None,
    dashed: Sequence[bool] | None = None,
    show: bool = True,
    fill_opacity: float = 0.6,
) -> folium.GeoJson:
    """One GeoJson layer; ``tips``/``pops`` are escaped HTML built by the caller."""
    props = pd.DataFrame({"tip": list(tips)})
    if pops is not None:
        props["pop"] = list(pops)
    fc = _collection(gdf, props)
    styles = [
        {
            "fillColor": c,
            "color": "#4d004b" if (dashed is not None and dashed[i]) else "#333333",
            "weight": 2.5 if (dashed is not None and dashed[i]) else 0.8,
            "dashArray": "5 4" if (dashed is not None and dashed[i]) else None,
            "fillOpacity": fill_opacity,
        }
        for i, c in enumerate(colors)
    ]

    def style(feature: dict) -> dict:
        return {k: v for k, v in styles[int(feature["id"])].items() if v is not None}

    layer = folium.GeoJson(
        fc,
        name=html.escape(name),
        show=show,
        style_function=style,
        highlight_function=lambda f: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["pop"], labels=False, max_width=360)
        if pops is not None
        else None,
        smooth_factor=0.5,
    )
    return layer


def _base_map(o: _Opts, bounds_of: Sequence[gpd.GeoDataFrame], n_features: int) -> folium.Map:
    L = o.L
    canvas = o.prefer_canvas if o.prefer_canvas is not None else n_features > _CANVAS_AT
    m = folium.Map(
        location=None,
        tiles=None,
        control_scale=True,
        prefer_canvas=canvas,
        height=o.height,
    )
    # without a tile layer Leaflet has no maxZoom, which markercluster needs
    m.options["max_zoom"] = 19
    tiles = o.tiles
    if isinstance(tiles, str) and tiles.strip().lower() in ("", "none"):
        tiles = None
    if tiles is not None:
        attr = html.escape(o.tiles_attr) if o.tiles_attr else None
        if attr is None and "{" in tiles:
            attr = html.escape(tiles.split("/")[2] if "://" in tiles else tiles)
        folium.TileLayer(tiles, attr=attr, name=html.escape(L["basemap"]), control=True).add_to(m)
    boxes = [g.total_bounds for g in bounds_of if len(g)]
    if boxes:
        b = np.array(boxes)
        minx, miny = b[:, 0].min(), b[:, 1].min()
        maxx, maxy = b[:, 2].max(), b[:, 3].max()
        m.location = [float((miny + maxy) / 2), float((minx + maxx) / 2)]
        m.fit_bounds([[float(miny), float(minx)], [float(maxy), float(maxx)]])
    return m


def _finish(
    m: folium.Map,
    o: _Opts,
    kind: str,
    legend: list[tuple[str, list[tuple[str, str, str]]]],
    *,
    cluster: bool = False,
) -> folium.Map:
    L = o.L
    title = o.title if o.title is not None else L[kind]
    subtitle = f"{L['period']}: {o.period}" if o.period else None
    m.add_child(title_element(title, subtitle))
    m.add_child(legend_element(legend))
    folium.LayerControl(collapsed=False).add_to(m)
    m.get_root().title = html.escape(title + (f" · {o.period}" if o.period else ""))
    apply_assets(m, offline=o.offline, asset_base_url=o.asset_base_url, cluster=cluster)
    return m


def map_html(m: folium.Map) -> str:
    """The complete HTML page of a map (what ``m.save`` writes and an API serves).

    Examples
    --------
    >>> import folium
    >>> map_html(folium.Map(tiles=None)).startswith("<!DOCTYPE html>")
    True
    """
    return m.get_root().render()


def _names(workers: pd.DataFrame | None) -> dict[str, str]:
    if workers is None or "name" not in workers.columns:
        return {}
    return dict(zip(workers["worker_id"].astype(str), workers["name"].astype(str), strict=True))


def _current_assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    _require(assignments, ["unit_id", "worker_id"], "assignments", geometry=False)
    a = assignments
    if "valid_to" in a.columns:
        a = a[a["valid_to"].isna()]  # an ended assignment carries valid_to
    return a


def _open_reports_popups(
    units: gpd.GeoDataFrame, reports: gpd.GeoDataFrame | pd.DataFrame | None, L: dict[str, str]
) -> list[str]:
    """Escaped popup HTML per unit listing its open reports."""
    empty = f"<i>{html.escape(L['no_open_reports'])}</i>"
    ids = units["unit_id"].astype(str)
    if reports is None or len(reports) == 0:
        return [f"<b>{html.escape(L['unit'])}</b> {_esc(u)}<br>{empty}" for u in ids]
    _require(reports, ["report_id", "category", "status"], "reports", geometry=False)
    r = reports.copy()
    if "unit_id" not in r.columns:
        r["unit_id"] = None
    r = r[~r["status"].astype(str).isin(_CLOSED)]
    # reports without unit_id but with a point: the unit holding the point
    if isinstance(r, gpd.GeoDataFrame) and r.geometry.notna().any():
        need = r["unit_id"].isna() & r.geometry.notna() & ~r.geometry.is_empty
        if need.any():
            pts = r.loc[need, [r.geometry.name]]
            if pts.crs is not None and units.crs is not None and not pts.crs.equals(units.crs):
                pts = pts.to_crs(units.crs)
            hit = gpd.sjoin(pts, units[["unit_id", units.geometry.name]], predicate="within")
            hit = hit[~hit.index.duplicated()]
            r.loc[hit.index, "unit_id"] = hit[
                "unit_id_right" if "unit_id_right" in hit else "unit_id"
            ]
    r = r[r["unit_id"].notna()]
    if "reported_at" in r.columns:
        r = r.sort_values("reported_at", ascending=False)
    by_unit: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for rec in r.itertuples(index=False):
        uid = str(rec.unit_id)
        counts[uid] = counts.get(uid, 0) + 1
        if counts[uid] > _MAX_POPUP_REPORTS:
            continue
        desc = _text(getattr(rec, "description", None))
        desc = desc if len(desc) <= 120 else desc[:119] + "…"
        when = _fmt_time(getattr(rec, "reported_at", None))
        by_unit.setdefault(uid, []).append(
            f"<li><b>{_esc(rec.category)}</b> · {_esc(rec.status)} · {_esc(when)} "
            f"<small>{_esc(rec.report_id)}</small><br>{_esc(desc)}</li>"
        )
    out = []
    for u in ids:
        items = by_unit.get(u)
        head = f"<b>{html.escape(L['unit'])}</b> {_esc(u)}"
        if not items:
            out.append(f"{head}<br>{empty}")
            continue
        more = counts[u] - len(items)
        tail = f"<li>{html.escape(L['more'].format(n=more))}</li>" if more > 0 else ""
        out.append(
            f"{head}<br><b>{html.escape(L['open_reports'])}</b> ({counts[u]})"
            f'<ul style="margin:2px 0;padding-left:16px">{"".join(items)}{tail}</ul>'
        )
    return out


def _recency(compliance: pd.DataFrame) -> pd.DataFrame:
    """Per unit: status (in_time/overdue/never), last patrol, days overdue, workers."""
    _require(
        compliance,
        ["unit_id", "worker_id", "compliant", "last_patrol"],
        "compliance",
        geometry=False,
    )
    c = compliance.copy()
    c["unit_id"] = c["unit_id"].astype(str)
    c["_ok"] = c["compliant"].fillna(False).astype(bool)
    c["_never"] = c["last_patrol"].isna()
    if "days_overdue" not in c.columns:
        c["days_overdue"] = np.nan
    g = c.groupby("unit_id", sort=False)
    out = pd.DataFrame(
        {
            "all_ok": g["_ok"].all(),
            "never": g["_never"].all(),
            "last_patrol": g["last_patrol"].max(),
            "days_overdue": g["days_overdue"].max(),
        }
    )
    workers: dict[str, set[str]] = {}
    for uid, wid in zip(c["unit_id"], c["worker_id"], strict=True):
        if wid is not None and not pd.isna(wid):
            workers.setdefault(uid, set()).add(str(wid))
    out["workers"] = [sorted(workers.get(uid, ())) for uid in out.index]
    out["status"] = np.where(out["all_ok"], "in_time", np.where(out["never"], "never", "overdue"))
    return out


def coverage_map(
    units: gpd.GeoDataFrame,
    *,
    assignments: pd.DataFrame | None = None,
    compliance: pd.DataFrame | None = None,
    reports: gpd.GeoDataFrame | pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
    color_by: Literal["auto", "worker", "recency"] = "auto",
    title: str | None = None,
    period: str | None = None,
    lang: str = "zh",
    tiles: Tiles = "OpenStreetMap",
    tiles_attr: str | None = None,
    tiles_datum: str = "wgs84",
    offline: bool = True,
    asset_base_url: str | None = None,
    precision: int = 6,
    simplify_m: float | None = None,
    prefer_canvas: bool | None = None,
    height: str = "100%",
) -> folium.Map:
    """Map of grid units coloured by assigned worker or by patrol recency.

    Units without a worker stand out (purple, dashed outline). Tooltips show the unit
    code, its worker(s) and the last patrol; popups list the unit's open reports.

    Parameters
    ----------
    units
        ``units`` layer (``unit_id``, ``admin_code``, ... and Polygon geometry).
    assignments
        ``assignments`` (``unit_id``, ``worker_id``); rows with a ``valid_to`` are
        ended and ignored.
    compliance
        Per-unit patrol state as returned by ``patrol_compliance`` (``unit_id``,
        ``worker_id``, ``compliant``, ``last_patrol``, ``days_overdue``, ...).
    reports
        ``reports`` layer; open ones (not resolved/verified/closed/rejected) are
        listed in the popup of their unit (by ``unit_id``, else by location).
    workers
        ``workers`` layer, for names instead of ids (only ``worker_id``, ``name`` are used).
    color_by
        ``"worker"`` (distinct colour per worker), ``"recency"`` (in time / overdue /
        never; needs ``compliance``) or ``"auto"`` (recency when compliance is given).
    title, period
        Title (default: "网格覆盖" / "Grid coverage") and the period shown under it.
    lang
        ``"zh"`` (default) or ``"en"``.
    tiles
        ``"OpenStreetMap"`` (default), a tile URL template, or ``None`` / ``"none"``.
    tiles_attr
        Attribution text for a custom tile URL (shown as text).
    tiles_datum
        ``"wgs84"`` or ``"gcj02"`` for Chinese web tiles; the data is shifted to match.
    offline
        Load Leaflet from local packages, inlined (default: no CDN, works on intranets);
        ``False`` loads it from public CDNs. See :func:`offline_assets`.
    asset_base_url
        With ``offline``: reference the assets at this URL instead of inlining them.
    precision
        Decimals kept in coordinates (6 ≈ 0.1 m).
    simplify_m
        Simplify geometry for display with this tolerance in metres.
    prefer_canvas
        Draw on a canvas instead of SVG; default: when more than 2,000 units.
    height
        CSS height of the map (``"100%"`` fills the page; use e.g. ``"600px"`` in
        notebooks).

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd, pandas as pd
    >>> from shapely import box
    >>> units = gpd.GeoDataFrame(
    ...     {"unit_id": ["430202001-001", "430202001-002"], "admin_code": ["430202001"] * 2},
    ...     geometry=[box(113.10, 27.80, 113.11, 27.81), box(113.11, 27.80, 113.12, 27.81)],
    ...     crs=4326)
    >>> a = pd.DataFrame({"unit_id": ["430202001-001"], "worker_id": ["W1"]})
    >>> m = coverage_map(units, assignments=a, offline=True, tiles=None, lang="en")
    >>> "cdn" in map_html(m)
    False
    """
    o = _opts(
        lang=lang, title=title, period=period, tiles=tiles, tiles_attr=tiles_attr,
        tiles_datum=tiles_datum, offline=offline, asset_base_url=asset_base_url,
        precision=precision, simplify_m=simplify_m, prefer_canvas=prefer_canvas, height=height,
    )  # fmt: skip
    L = o.L
    _require(units, ["unit_id"], "units", geometry=True)
    u = _prepare(units, o).reset_index(drop=True)
    ids = u["unit_id"].astype(str)
    names = _names(workers)

    assigned: dict[str, list[str]] = {}
    if assignments is not None:
        a = _current_assignments(assignments)
        for uid, wid in zip(a["unit_id"].astype(str), a["worker_id"].astype(str), strict=True):
            assigned.setdefault(uid, []).append(wid)
    rec = _recency(compliance) if compliance is not None else None
    if rec is not None and assignments is None:
        assigned = {k: list(v) for k, v in rec["workers"].items() if v}
    mode = color_by
    if mode == "auto":
        mode = "recency" if rec is not None else "worker"
    if mode == "recency" and rec is None:
        raise GridkitError(
            "color_by='recency' needs the compliance frame.",
            hint="Pass compliance=patrol_compliance(...), or color_by='worker'.",
        )
    if mode not in ("worker", "recency"):
        raise GridkitError(f"Unknown color_by {color_by!r}.", hint="Use 'worker' or 'recency'.")

    rec_rows = rec.to_dict("index") if rec is not None else {}
    worker_of = [sorted(set(assigned.get(i, []))) for i in ids]
    unassigned = [not w for w in worker_of]
    all_workers = sorted({w for ws in worker_of for w in ws})
    wcolor = {w: _PALETTE[k % len(_PALETTE)] for k, w in enumerate(all_workers)}

    def who(ws: list[str]) -> str:
        return ", ".join(_esc(names.get(w, w)) for w in ws)

    admin = u["admin_code"].tolist() if "admin_code" in u.columns else None
    colors: list[str] = []
    tips: list[str] = []
    for i, uid in enumerate(ids):
        ws = worker_of[i]
        pairs = [(L["unit"], _esc(uid))]
        if admin is not None:
            pairs.append((L["admin_code"], _esc(admin[i])))
        pairs.append((L["worker"], who(ws) if ws else f"<i>{html.escape(L['unassigned'])}</i>"))
        status = None
        if rec is not None:
            r = rec_rows.get(uid)
            if r is not None:
                status = r["status"]
                last = _fmt_time(r["last_patrol"]) or L["never_patrolled"]
                pairs.append((L["last_patrol"], _esc(last)))
                if pd.notna(r["days_overdue"]) and r["days_overdue"] > 0:
                    pairs.append((L["days_overdue"], _esc(f"{r['days_overdue']:.0f}")))
            else:
                status = "never"
                pairs.append((L["last_patrol"], _esc(L["never_patrolled"])))
        tips.append(_rows(pairs))
        if not ws:
            colors.append(_UNASSIGNED)
        elif mode == "recency":
            colors.append(_RECENCY_COLORS[status or "never"])
        else:
            colors.append(wcolor[ws[0]])
    pops = _open_reports_popups(u, reports, L)

    m = _base_map(o, [u], len(u))
    _polygons(u, name=L["units"], colors=colors, tips=tips, pops=pops, dashed=unassigned).add_to(m)

    items: list[tuple[str, str, str]]
    if mode == "recency":
        heading = L["last_patrol"]
        items = [(_RECENCY_COLORS[k], L[k], "box") for k in ("in_time", "overdue", "never")]
    else:
        heading = L["worker"]
        items = [(wcolor[w], names.get(w, w), "box") for w in all_workers[:_MAX_LEGEND_ITEMS]]
        if len(all_workers) > _MAX_LEGEND_ITEMS:
            rest = len(all_workers) - _MAX_LEGEND_ITEMS
            items.append(("#ffffff", L["more_workers"].format(n=rest), "box"))
    items.append((_UNASSIGNED, f"{L['unassigned']} ({sum(unassigned)})", "dash"))
    return _finish(m, o, "coverage", [(heading, items)])


def _completion_class(done: pd.Series, required: pd.Series, compliant: pd.Series) -> pd.Series:
    share = (done / required.where(required > 0)).clip(upper=1.0)
    cls = np.where(
        required.fillna(0) <= 0,
        "no_data",
        np.where(compliant.fillna(False).astype(bool) | (share >= 1), "full",
                 np.where(share >= 0.5, "partial", "low")),
    )  # fmt: skip
    return pd.Series(cls, index=done.index)


def _pct(done: float, required: float) -> str:
    if not required or pd.isna(required):
        return "—"
    return f"{min(done / required, 1.0):.0%}"


def compliance_map(
    units: gpd.GeoDataFrame,
    compliance: pd.DataFrame,
    *,
    level: str | None = None,
    workers: pd.DataFrame | None = None,
    title: str | None = None,
    period: str | None = None,
    lang: str = "zh",
    tiles: Tiles = "OpenStreetMap",
    tiles_attr: str | None = None,
    tiles_datum: str = "wgs84",
    offline: bool = True,
    asset_base_url: str | None = None,
    precision: int = 6,
    simplify_m: float | None = None,
    prefer_canvas: bool | None = None,
    height: str = "100%",
) -> folium.Map:
    """Map of patrol compliance by unit, by worker and by river section.

    Three layers (one shown, two in the layer control): units coloured by completion
    (``done / required``; compliant / ≥50 % / <50 % / nothing required), the units of
    each worker coloured by that worker's completion, and river sections (the units
    of one river inside one admin area, ``parent_id`` × ``admin_code``) coloured by the
    section's completion.

    Parameters
    ----------
    units
        ``units`` layer.
    compliance
        As returned by ``patrol_compliance``: ``unit_id``, ``worker_id``, ``required``,
        ``done``, ``compliant``, ``last_patrol``, ``days_overdue``; optionally ``level``
        and ``period`` columns.
    level
        Keep only rows of this level (``city``/``county``/``township``/``village``)
        when the frame has a ``level`` column.
    period
        Title line; also selects rows when the frame has a ``period`` column.
    workers, title, lang, tiles, tiles_attr, tiles_datum, offline, asset_base_url,
    precision, simplify_m, prefer_canvas, height
        As in :func:`coverage_map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = compliance_map(units, compliance, level="village", period="2026-03")  # doctest: +SKIP
    """
    o = _opts(
        lang=lang, title=title, period=period, tiles=tiles, tiles_attr=tiles_attr,
        tiles_datum=tiles_datum, offline=offline, asset_base_url=asset_base_url,
        precision=precision, simplify_m=simplify_m, prefer_canvas=prefer_canvas, height=height,
    )  # fmt: skip
    L = o.L
    _require(units, ["unit_id"], "units", geometry=True)
    _require(compliance, ["unit_id", "worker_id", "required", "done"], "compliance", geometry=False)
    c = compliance.copy()
    if level is not None and "level" in c.columns:
        c = c[c["level"].astype(str) == level]
    if period is not None and "period" in c.columns:
        c = c[c["period"].astype(str) == period]
    if "compliant" not in c.columns:
        c["compliant"] = c["done"] >= c["required"]
    c["unit_id"] = c["unit_id"].astype(str)
    c["worker_id"] = c["worker_id"].astype(str)
    names = _names(workers)
    u = _prepare(units, o).reset_index(drop=True)
    u["unit_id"] = u["unit_id"].astype(str)

    def agg(keys: list[str]) -> pd.DataFrame:
        g = c.groupby(keys, sort=True)
        out = pd.DataFrame(
            {
                "required": g["required"].sum(),
                "done": g["done"].sum(),
                "compliant": g["compliant"].all(),
            }
        )
        out["cls"] = _completion_class(out["done"], out["required"], out["compliant"])
        return out

    # by unit
    per_unit = agg(["unit_id"])
    uj = u.join(per_unit, on="unit_id")
    uj["cls"] = uj["cls"].fillna("no_data")
    unit_workers = c.groupby("unit_id")["worker_id"].agg(lambda s: sorted(set(s)))
    tips = []
    for r in uj.itertuples(index=False):
        ws = unit_workers.get(r.unit_id, [])
        tips.append(
            _rows(
                [
                    (L["unit"], _esc(r.unit_id)),
                    (L["worker"], ", ".join(_esc(names.get(w, w)) for w in ws) or "—"),
                    (L["required"], _esc(_num(r.required))),
                    (L["done"], _esc(_num(r.done))),
                    (L["completion"], _esc(_pct(r.done, r.required))),
                ]
            )
        )
    m = _base_map(o, [u], len(u))
    colors = [_COMPLIANCE_COLORS[k] for k in uj["cls"]]
    _polygons(u, name=L["units"], colors=colors, tips=tips).add_to(m)

    # by worker: each unit of the worker, coloured by the worker's completion
    per_worker = agg(["worker_id"])
    pairs = c[["unit_id", "worker_id"]].drop_duplicates()
    wu = u.merge(pairs, on="unit_id", how="inner")
    if len(wu):
        wu = wu.join(per_worker, on="worker_id")
        n_units = pairs.groupby("worker_id").size()
        wtips = [
            _rows(
                [
                    (L["worker"], _esc(names.get(r.worker_id, r.worker_id))),
                    (L["unit"], _esc(r.unit_id)),
                    (L["units_count"], _esc(int(n_units.get(r.worker_id, 0)))),
                    (L["completion"], _esc(_pct(r.done, r.required))),
                ]
            )
            for r in wu.itertuples(index=False)
        ]
        _polygons(
            wu,
            name=L["workers"],
            colors=[_COMPLIANCE_COLORS[k] for k in wu["cls"]],
            tips=wtips,
            show=False,
        ).add_to(m)

    # by river section: river units of one river inside one admin area
    if {"parent_id", "admin_code"} <= set(u.columns):
        river = (
            u["kind"].astype(str).eq("river_reach")
            if "kind" in u.columns
            else u["parent_id"].notna()
        )
        ru = u[river & u["parent_id"].notna()]
        if len(ru):
            cu = c.merge(ru[["unit_id", "parent_id", "admin_code"]], on="unit_id")
            # display rounding can make neighbouring units touch imperfectly: union
            # valid parts only, so a section outline never fails to draw
            fixed = ru.set_geometry(shapely.make_valid(np.asarray(ru.geometry.array)))
            sec = fixed.dissolve(by=["parent_id", "admin_code"], as_index=False)[
                ["parent_id", "admin_code", "geometry"]
            ]
            g = cu.groupby(["parent_id", "admin_code"])
            stats = pd.DataFrame(
                {"required": g["required"].sum(), "done": g["done"].sum(),
                 "compliant": g["compliant"].all()}
            )  # fmt: skip
            stats["cls"] = _completion_class(stats["done"], stats["required"], stats["compliant"])
            sec = sec.join(stats, on=["parent_id", "admin_code"])
            sec["cls"] = sec["cls"].fillna("no_data")
            stips = [
                _rows(
                    [
                        (L["section"], f"{_esc(r.parent_id)} · {_esc(r.admin_code)}"),
                        (L["completion"], _esc(_pct(r.done, r.required))),
                    ]
                )
                for r in sec.itertuples(index=False)
            ]
            _polygons(
                sec,
                name=L["sections"],
                colors=[_COMPLIANCE_COLORS[k] for k in sec["cls"]],
                tips=stips,
                show=False,
            ).add_to(m)

    heading = L["completion"] + (f" · {L['level']}: {level}" if level else "")
    items = [(_COMPLIANCE_COLORS[k], L[k], "box") for k in ("full", "partial", "low", "no_data")]
    return _finish(m, o, "compliance", [(heading, items)])


def _num(value: object) -> str:
    if value is None or pd.isna(value):
        return "—"
    f = float(value)
    return f"{f:.0f}" if f.is_integer() else f"{f:.2f}"


def hotspot_map(
    units: gpd.GeoDataFrame,
    *,
    reports: gpd.GeoDataFrame | None = None,
    cluster: bool | None = None,
    title: str | None = None,
    period: str | None = None,
    lang: str = "zh",
    tiles: Tiles = "OpenStreetMap",
    tiles_attr: str | None = None,
    tiles_datum: str = "wgs84",
    offline: bool = True,
    asset_base_url: str | None = None,
    precision: int = 6,
    simplify_m: float | None = None,
    prefer_canvas: bool | None = None,
    height: str = "100%",
) -> folium.Map:
    """Map of per-unit report rates and Gi* hot/cold spot classes, with report points.

    Parameters
    ----------
    units
        Units with ``count``, ``rate``, ``gi_z``, ``gi_p`` and ``hotspot``
        (``hot-99`` … ``not significant`` … ``cold-99``), as returned by ``hotspots``.
    reports
        ``reports`` layer: points drawn as circle markers, one layer per ``category``
        (toggle categories in the layer control). Reports without a point are skipped.
    cluster
        Cluster report points (Leaflet.markercluster). Default: when
        ``XStatic-Leaflet-MarkerCluster`` is installed, so offline pages can load it.
    title, period, lang, tiles, tiles_attr, tiles_datum, offline, asset_base_url,
    precision, simplify_m, prefer_canvas, height
        As in :func:`coverage_map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = hotspot_map(hotspots(reports, units), reports=reports, offline=True)  # doctest: +SKIP
    """
    o = _opts(
        lang=lang, title=title, period=period, tiles=tiles, tiles_attr=tiles_attr,
        tiles_datum=tiles_datum, offline=offline, asset_base_url=asset_base_url,
        precision=precision, simplify_m=simplify_m, prefer_canvas=prefer_canvas, height=height,
    )  # fmt: skip
    L = o.L
    _require(units, ["unit_id", "hotspot"], "hotspots", geometry=True)
    u = _prepare(units, o).reset_index(drop=True)
    cls = u["hotspot"].astype(str)
    unknown = sorted(set(cls) - set(HOTSPOT_CLASSES))
    if unknown:
        raise InvalidLayerError(
            f"hotspot classes {unknown[:5]} are not known.",
            hint=f"Expected one of {', '.join(HOTSPOT_CLASSES)} (as returned by gridkit.hotspots).",
        )
    tips = []
    for i in range(len(u)):
        pairs = [(L["unit"], _esc(u.at[i, "unit_id"]))]
        for col in ("count", "rate", "gi_z", "gi_p"):
            if col in u.columns:
                v = u.at[i, col]
                txt = _num(v) if col == "count" else ("—" if pd.isna(v) else f"{float(v):.3g}")
                pairs.append((L[col], _esc(txt)))
        pairs.append((L["hotspot"], _esc(L[cls[i]])))
        tips.append(_rows(pairs))

    pts = None
    if reports is not None and len(reports):
        _require(reports, ["report_id", "category"], "reports", geometry=True)
        pts = reports[reports.geometry.notna() & ~reports.geometry.is_empty]
        pts = _prepare(pts, o).reset_index(drop=True) if len(pts) else None
    n_points = 0 if pts is None else len(pts)
    m = _base_map(o, [u] + ([pts] if pts is not None else []), len(u) + n_points)
    _polygons(
        u, name=L["hotspot"], colors=[_HOTSPOT_COLORS[k] for k in cls], tips=tips, fill_opacity=0.7
    ).add_to(m)

    legend = [(L["hotspot"], [(_HOTSPOT_COLORS[k], L[k], "box") for k in HOTSPOT_CLASSES])]
    use_cluster = False
    if pts is not None:
        use_cluster = has_cluster_assets() if cluster is None else cluster
        cats = pts["category"].astype(str)
        ccolor = {k: _PALETTE[j % len(_PALETTE)] for j, k in enumerate(sorted(set(cats)))}
        for cat in sorted(ccolor):
            sub = pts[cats == cat]
            layer_name = f"{L['reports']} · {cat}"
            group: folium.FeatureGroup
            if use_cluster:
                group = folium.plugins.MarkerCluster(name=html.escape(layer_name))
            else:
                group = folium.FeatureGroup(name=html.escape(layer_name))
            _points(sub, color=ccolor[cat], L=L).add_to(group)
            group.add_to(m)
        legend.append(
            (
                L["reports"],
                [(c, k, "dot") for k, c in list(ccolor.items())[:_MAX_LEGEND_ITEMS]],
            )
        )
    return _finish(m, o, "hotspots", legend, cluster=use_cluster)


def _points(pts: gpd.GeoDataFrame, *, color: str, L: dict[str, str]) -> folium.GeoJson:
    def tip(r: Any) -> str:
        desc = _text(getattr(r, "description", None))
        desc = desc if len(desc) <= 200 else desc[:199] + "…"
        pairs = [
            (L["category"], _esc(r.category)),
            (L["status"], _esc(getattr(r, "status", ""))),
            (L["reported_at"], _esc(_fmt_time(getattr(r, "reported_at", None)))),
            (L["description"], _esc(desc)),
        ]
        return f"<small>{_esc(r.report_id)}</small><br>" + _rows(pairs)

    tips = [tip(r) for r in pts.itertuples(index=False)]
    fc = _collection(pts, pd.DataFrame({"tip": tips}))
    return folium.GeoJson(
        fc,
        control=False,
        marker=folium.CircleMarker(
            radius=5, color="#222222", weight=1, fill=True, fill_color=color, fill_opacity=0.9
        ),
        # bound per marker, not on the group: clustered markers leave the group off the map
        on_each_feature=folium.JsCode(_BIND_POINT),
    )


def diff_map(
    old_units: gpd.GeoDataFrame,
    new_units: gpd.GeoDataFrame,
    lineage: pd.DataFrame,
    *,
    title: str | None = None,
    period: str | None = None,
    lang: str = "zh",
    tiles: Tiles = "OpenStreetMap",
    tiles_attr: str | None = None,
    tiles_datum: str = "wgs84",
    offline: bool = True,
    asset_base_url: str | None = None,
    precision: int = 6,
    simplify_m: float | None = None,
    prefer_canvas: bool | None = None,
    height: str = "100%",
) -> folium.Map:
    """Map of two grid versions with changed units highlighted.

    New units are coloured by how they came about (unchanged, modified, split, merged,
    added); removed old units are drawn in red; the old version's outlines are a layer
    to switch on.

    Parameters
    ----------
    old_units, new_units
        The two ``units`` layers.
    lineage
        ``lineage`` (``old_id``, ``new_id``, ``relation``, ``share``) as returned by
        ``diff_units``.
    title, period, lang, tiles, tiles_attr, tiles_datum, offline, asset_base_url,
    precision, simplify_m, prefer_canvas, height
        As in :func:`coverage_map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> m = diff_map(old, new, diff_units(old, new), lang="en")  # doctest: +SKIP
    """
    o = _opts(
        lang=lang, title=title, period=period, tiles=tiles, tiles_attr=tiles_attr,
        tiles_datum=tiles_datum, offline=offline, asset_base_url=asset_base_url,
        precision=precision, simplify_m=simplify_m, prefer_canvas=prefer_canvas, height=height,
    )  # fmt: skip
    L = o.L
    _require(old_units, ["unit_id"], "units", geometry=True)
    _require(new_units, ["unit_id"], "units", geometry=True)
    _require(lineage, ["old_id", "new_id", "relation"], "lineage", geometry=False)
    lin = lineage.copy()
    old = _prepare(old_units, o).reset_index(drop=True)
    new = _prepare(new_units, o).reset_index(drop=True)
    order = {
        k: i for i, k in enumerate(("removed", "added", "merged", "split", "modified", "unchanged"))
    }

    rel_new: dict[str, str] = {}
    from_old: dict[str, list[str]] = {}
    for oid, nid, rel in zip(
        lin["old_id"], lin["new_id"], lin["relation"].astype(str), strict=True
    ):
        if nid is None or pd.isna(nid):
            continue
        nid = str(nid)
        if nid not in rel_new or order.get(rel, 9) < order.get(rel_new[nid], 9):
            rel_new[nid] = rel
        if oid is not None and not pd.isna(oid):
            from_old.setdefault(nid, []).append(str(oid))
    removed = set(lin.loc[lin["relation"].astype(str) == "removed", "old_id"].dropna().astype(str))

    nids = new["unit_id"].astype(str)
    rels = [rel_new.get(n, "added") for n in nids]
    tips = [
        _rows(
            [
                (L["unit"], _esc(n)),
                (L["relation"], _esc(L.get(r, r))),
                (L["old_ids"], ", ".join(_esc(x) for x in from_old.get(n, [])[:10]) or "—"),
            ]
        )
        for n, r in zip(nids, rels, strict=True)
    ]
    m = _base_map(o, [old, new], len(old) + len(new))
    _polygons(
        old,
        name=L["old_units"],
        colors=["#ffffff"] * len(old),
        tips=[_rows([(L["old_units"], _esc(x))]) for x in old["unit_id"]],
        dashed=[True] * len(old),
        show=False,
        fill_opacity=0.0,
    ).add_to(m)
    _polygons(
        new,
        name=L["new_units"],
        colors=[_RELATION_COLORS.get(r, "#bdbdbd") for r in rels],
        tips=tips,
    ).add_to(m)
    gone = old[old["unit_id"].astype(str).isin(removed)]
    if len(gone):
        _polygons(
            gone,
            name=L["removed_units"],
            colors=[_RELATION_COLORS["removed"]] * len(gone),
            tips=[_rows([(L["unit"], _esc(x)), (L["relation"], _esc(L["removed"]))])
                  for x in gone["unit_id"]],
            fill_opacity=0.45,
        ).add_to(m)  # fmt: skip
    counts = pd.Series(rels).value_counts()
    items = [
        (
            _RELATION_COLORS[k],
            f"{L[k]} ({int(counts.get(k, 0)) if k != 'removed' else len(gone)})",
            "box",
        )
        for k in ("unchanged", "modified", "split", "merged", "added", "removed")
    ]
    return _finish(m, o, "diff", [(L["relation"], items)])
