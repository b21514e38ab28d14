"""Hotspot map: per-unit report rates and Gi* hot/cold spot classes, with report points."""

from __future__ import annotations

import html
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import pandas as pd

from gridkit.errors import InvalidLayerError
from gridkit.maps.assets import has_cluster_assets
from gridkit.maps.base import (
    MAX_LEGEND_ITEMS,
    PALETTE,
    _base_map,
    _collection,
    _esc,
    _finish,
    _fmt_time,
    _num,
    _polygons,
    _prepare,
    _require,
    _rows,
    _text,
)
from gridkit.maps.options import MapOptions, resolve

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
_BIND_POINT = """function(feature, layer) {
    layer.bindTooltip(feature.properties.tip);
    layer.bindPopup(feature.properties.tip, {maxWidth: 360});
}"""


def hotspot_map(
    units: gpd.GeoDataFrame,
    *,
    reports: gpd.GeoDataFrame | None = None,
    cluster: bool | None = None,
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
        ``reports`` layer: points drawn as circle markers, one layer per ``category``
        (toggle categories in the layer control). Reports without a point are skipped.
    cluster
        Cluster report points (Leaflet.markercluster). Default: when
        ``XStatic-Leaflet-MarkerCluster`` is installed, so offline pages can load it.
    options, **overrides
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
    >>> "Hot spot (95%)" in page, json.dumps("Reports · garbage") in page
    (True, True)
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
        u,
        name=L["hotspot"],
        colors=[_HOTSPOT_COLORS[k] for k in cls],
        tips=tips,
        fill_opacity=0.7,
        precision=o.precision,
    ).add_to(m)

    legend = [(L["hotspot"], [(_HOTSPOT_COLORS[k], L[k], "box") for k in HOTSPOT_CLASSES])]
    use_cluster = False
    if pts is not None:
        use_cluster = has_cluster_assets() if cluster is None else cluster
        cats = pts["category"].astype(str)
        ccolor = {k: PALETTE[j % len(PALETTE)] for j, k in enumerate(sorted(set(cats)))}
        for cat in sorted(ccolor):
            sub = pts[cats == cat]
            layer_name = f"{L['reports']} · {cat}"
            group: folium.FeatureGroup
            if use_cluster:
                group = folium.plugins.MarkerCluster(name=html.escape(layer_name))
            else:
                group = folium.FeatureGroup(name=html.escape(layer_name))
            _points(sub, color=ccolor[cat], L=L, precision=o.precision).add_to(group)
            group.add_to(m)
        legend.append(
            (
                L["reports"],
                [(c, k, "dot") for k, c in list(ccolor.items())[:MAX_LEGEND_ITEMS]],
            )
        )
    return _finish(m, o, "hotspots", legend, cluster=use_cluster)


def _points(
    pts: gpd.GeoDataFrame, *, color: str, L: dict[str, str], precision: int
) -> folium.GeoJson:
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
    fc = _collection(pts, pd.DataFrame({"tip": tips}), precision)
    return folium.GeoJson(
        fc,
        control=False,
        marker=folium.CircleMarker(
            radius=5, color="#222222", weight=1, fill=True, fill_color=color, fill_opacity=0.9
        ),
        # bound per marker, not on the group: clustered markers leave the group off the map
        on_each_feature=folium.JsCode(_BIND_POINT),
    )
