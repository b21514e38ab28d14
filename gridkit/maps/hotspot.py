"""Hotspot map: per-unit report rates and Gi* hot/cold spot classes, with report points."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.errors import InvalidLayerError
from gridkit.maps.areas import RATE_COLORS, aggregate, pick_level, rate_class, switch_zoom
from gridkit.maps.assets import has_cluster_assets
from gridkit.maps.base import (
    _collection,
    _esc,
    _fmt_time,
    _num,
    _polygons,
    _prepare,
    _require,
    _rows,
    _text,
)
from gridkit.maps.context import Context
from gridkit.maps.options import MapOptions, resolve
from gridkit.maps.scene import Scene
from gridkit.maps.symbols import CategoryStyle, category_styles, symbol_svg

__all__ = ["HOTSPOT_CLASSES", "hotspot_map"]

HOTSPOT_CLASSES = ("hot-99", "hot-95", "hot-90", "not significant", "cold-90", "cold-95", "cold-99")
_HOTSPOT_COLORS = dict(
    zip(
        HOTSPOT_CLASSES,
        ("#b2182b", "#ef8a62", "#fddbc7", "#f0f0f0", "#d1e5f0", "#67a9cf", "#2166ac"),
        strict=True,
    )
)
# ``tip`` is escaped HTML built in Python; Leaflet sets it as innerHTML
# clusters: neutral dark grey bubbles, never the green/yellow/orange of the plugin's
# default (which read as classes next to the hot/cold spot legend)
_CLUSTER_ICON = """function(cluster) {
    var n = cluster.getChildCount(), d = n < 10 ? 26 : n < 100 ? 32 : 40;
    return L.divIcon({html: '<span>' + n + '</span>', className: 'gk-cluster',
                      iconSize: L.point(d, d)});
}"""
_CLOSED = {"resolved", "verified", "closed", "rejected"}
_BIND_POINT = """function(feature, layer) {
    layer.bindTooltip(feature.properties.tip);
    layer.bindPopup(feature.properties.tip, {maxWidth: 360});
}"""


def hotspot_map(
    units: gpd.GeoDataFrame,
    *,
    reports: gpd.GeoDataFrame | None = None,
    cluster: bool | None = None,
    categories: Mapping[str, Mapping[str, object]] | None = None,
    context: Context | None = None,
    search: bool = True,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of per-unit report rates and Gi* hot/cold spot classes, with report points.

    Parameters
    ----------
    units
        Units with ``count``, ``rate``, ``gi_z``, ``gi_p`` and ``hotspot``
        (``hot-99`` … ``not significant`` … ``cold-99``), as returned by ``hotspots``.
    reports
        ``reports`` layer: points drawn as symbols, one layer per ``category`` (toggle
        categories in the folded layer control). Reports without a point are skipped;
        with ``unit_id`` (and the units' ``households`` or ``length_m``) the villages or
        townships are coloured by open cases per 1,000 households (or per km) at low
        zoom.
    cluster
        Cluster report points (Leaflet.markercluster). Default: when
        ``XStatic-Leaflet-MarkerCluster`` is installed, so offline pages can load it.
    categories
        Report categories of the rules (``report_rules().categories``): a category is
        named in the page's language (``label_zh``), coloured by its domain and drawn
        with its own symbol, the same on every page (:mod:`gridkit.maps.symbols`).
    context, search, options, **overrides
        As in :func:`~gridkit.maps.coverage_map`.

    Returns
    -------
    folium.Map
        Units coloured by hot/cold spot class, report points by category.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point, box
    >>> from gridkit.maps import map_html
    >>> hot = gpd.GeoDataFrame(
    ...     {"unit_id": ["U1", "U2"], "count": [9, 0], "hotspot": ["hot-95", "not significant"]},
    ...     geometry=[box(113.10, 27.80, 113.11, 27.81), box(113.11, 27.80, 113.12, 27.81)],
    ...     crs=4326)
    >>> reports = gpd.GeoDataFrame({"report_id": ["R1"], "category": ["garbage"]},
    ...                            geometry=[Point(113.105, 27.805)], crs=4326)
    >>> page = map_html(hotspot_map(hot, reports=reports, lang="en", tiles=None, cluster=False))
    >>> import json  # layer names are written as JSON
    >>> "Hot spot (95%)" in page, json.dumps("Reports · garbage") in page, "Cold spot" in page
    (True, True, False)
    """
    o = resolve(options, overrides)
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
    pts = None
    if reports is not None and len(reports):
        _require(reports, ["report_id", "category"], "reports", geometry=True)
        pts = reports[~shapely.is_missing(reports.geometry.array) & ~reports.geometry.is_empty]
        pts = _prepare(pts, o).reset_index(drop=True) if len(pts) else None
    scene = Scene.start(o, [u] + ([pts] if pts is not None else []), context)
    layer = _polygons(
        u, name=L["hotspot"], colors=[_HOTSPOT_COLORS[k] for k in cls], tips=_unit_tips(u, L),
        fill_opacity=0.7, precision=o.precision,
    )  # fmt: skip
    scene.add("units", layer)
    present = set(cls)
    items = [(_HOTSPOT_COLORS[k], L[k], "box") for k in HOTSPOT_CLASSES if k in present]
    legend = [(L["hotspot"], items, "units")]
    use_cluster = False
    if pts is not None:
        use_cluster = has_cluster_assets() if cluster is None else cluster
        legend.append(_report_layers(scene, pts, categories, use_cluster))
    _areas(scene, u, reports)
    if search:
        scene.search = _search(u, pts)
    return scene.finish("hotspots", legend, cluster=use_cluster)


def _unit_tips(u: gpd.GeoDataFrame, L: dict[str, str]) -> list[str]:
    cls = u["hotspot"].astype(str)
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
    return tips


def _report_layers(
    scene: Scene, pts: gpd.GeoDataFrame, categories: Mapping | None, use_cluster: bool
) -> tuple:
    """One layer per category (symbol and domain colour), clusters in neutral grey."""
    L, o = scene.o.L, scene.o
    cats = pts["category"].astype(str)
    styles = category_styles(categories, sorted(set(cats)), lang=o.lang)
    present = [k for k in styles if k in set(cats)]
    for key in present:
        st = styles[key]
        name = html.escape(f"{L['reports']} · {st.label}")
        group: folium.FeatureGroup
        if use_cluster:
            group = folium.plugins.MarkerCluster(name=name, icon_create_function=_CLUSTER_ICON)
        else:
            group = folium.FeatureGroup(name=name)
        _points(pts[cats == key], style=st, L=L, precision=o.precision).add_to(group)
        scene.add("reports", group)
    items = [(styles[k].color, styles[k].label, f"sym:{styles[k].symbol}") for k in present]
    return (L["reports"], items, "reports")


def _areas(scene: Scene, u: gpd.GeoDataFrame, reports: pd.DataFrame | None) -> None:
    """Open cases per 1,000 households (per km of river without households) by area,
    with the open and overdue (past ``due_at`` now) counts in the popup."""
    if "admin_code" not in u.columns or reports is None or "unit_id" not in reports.columns:
        return
    level = pick_level(u["admin_code"])
    if level is None:
        return
    L = scene.o.L
    open_ = reports
    if "status" in reports.columns:
        open_ = reports[~reports["status"].astype(str).isin(_CLOSED)]
    n_open = open_.groupby(open_["unit_id"].astype(str)).size()
    late = open_.iloc[0:0]
    if "due_at" in open_.columns:
        due = pd.to_datetime(open_["due_at"], utc=True, errors="coerce")
        late = open_[(due < pd.Timestamp.now(tz="UTC")).to_numpy()]
    n_late = late.groupby(late["unit_id"].astype(str)).size()
    hh = pd.to_numeric(u.get("households", pd.Series(np.nan, index=u.index)), errors="coerce")
    km = pd.to_numeric(u.get("length_m", pd.Series(np.nan, index=u.index)), errors="coerce")
    values = pd.DataFrame({
        "open": u["unit_id"].astype(str).map(n_open).fillna(0).to_numpy(),
        "late": u["unit_id"].astype(str).map(n_late).fillna(0).to_numpy(),
        "households": hh.fillna(0).to_numpy(), "km": km.fillna(0).to_numpy() / 1000.0,
    })  # fmt: skip
    a = aggregate(u, values, level, scene.context)
    per_hh = a["households"].sum() > 0
    denom = a["households"] / 1000.0 if per_hh else a["km"]
    rate = (a["open"] / denom.where(denom > 0)).fillna(0)
    cls = rate_class(rate)
    what = L["per_1000"] if per_hh else L["per_km"]
    tips = [
        _rows([(L[f"level_{level}"], _esc(n)), (L["units_n"], _esc(t)),
               (L["open_cases"], _esc(_num(k))), (L["overdue_cases"], _esc(_num(d))),
               (what, _esc(f"{r:.1f}"))])
        for n, t, k, d, r in zip(a["name"], a["n_units"], a["open"], a["late"], rate,
                                 strict=True)
    ]  # fmt: skip
    layer = _polygons(
        a, name=L[f"areas_{level}"], colors=[RATE_COLORS[c] for c in cls], tips=tips, pops=tips,
        show=False, precision=scene.o.precision,
    )  # fmt: skip
    scene.add("areas", layer)
    scene.config["switch"] = {"zoom": switch_zoom(u), "low": "areas", "high": "units"}
    bins = {"rate_none": "0", "rate_low": "< 2", "rate_mid": "2–5", "rate_high": "≥ 5"}
    items = [(RATE_COLORS[k], f"{L[k]} ({bins[k]})", "box") for k in RATE_COLORS if k in set(cls)]
    scene.extra_legend.append((f"{what} · {L[f'areas_{level}']}", items, "areas"))


def _search(u: gpd.GeoDataFrame, pts: gpd.GeoDataFrame | None) -> list:
    b = np.round(u.geometry.bounds.to_numpy(), 5).tolist()
    out = [[str(i), bb[1], bb[0], bb[3], bb[2]] for i, bb in zip(u["unit_id"], b, strict=True)]
    if pts is not None:
        x, y = np.round(pts.geometry.x, 5).tolist(), np.round(pts.geometry.y, 5).tolist()
        out += [[str(r), yy, xx, yy, xx] for r, xx, yy in zip(pts["report_id"], x, y, strict=True)]
    return out


def _points(
    pts: gpd.GeoDataFrame, *, style: CategoryStyle, L: dict[str, str], precision: int
) -> folium.GeoJson:
    def tip(r: Any) -> str:
        desc = _text(getattr(r, "description", None))
        desc = desc if len(desc) <= 200 else desc[:199] + "…"
        pairs = [
            (L["category"], _esc(style.label)),
            (L["status"], _esc(getattr(r, "status", ""))),
            (L["reported_at"], _esc(_fmt_time(getattr(r, "reported_at", None)))),
            (L["description"], _esc(desc)),
        ]
        return f"<small>{_esc(r.report_id)}</small><br>" + _rows(pairs)

    tips = [tip(r) for r in pts.itertuples(index=False)]
    fc = _collection(pts, pd.DataFrame({"tip": tips}), precision)
    icon = folium.DivIcon(
        html=symbol_svg(style.symbol, style.color), icon_size=(16, 16), icon_anchor=(8, 8),
        class_name="gk-marker",
    )  # fmt: skip
    return folium.GeoJson(
        fc,
        control=False,
        marker=folium.Marker(icon=icon),
        # bound per marker, not on the group: clustered markers leave the group off the map
        on_each_feature=folium.JsCode(_BIND_POINT),
    )
