"""Shared parts of every map: page, basemap, polygons, title and legend, escaping.

Every map function takes GeoDataFrames of the data contract and returns a
:class:`folium.Map`, which shows itself in Jupyter, saves as standalone HTML
(``m.save("map.html")``) and renders as a page for an API (:func:`map_html`).

Every map has a title (with the period), a legend in plain HTML/CSS, a layer
control, a scale bar, and is fitted to the data; how it looks is one
:class:`~gridkit.maps.options.MapOptions`.

Safety: folium puts tooltip, popup, layer-control and attribution text into the page
as raw HTML. gridkit escapes every string taken from the data (ids, names, report
text, categories) and every option text (title, period) before it reaches folium:
tooltips and popups are built here as escaped HTML (:func:`_esc`, :func:`_rows`).

Offline (the default): ``offline=True`` takes Leaflet (and Leaflet.markercluster) from
the locally installed ``XStatic-Leaflet`` / ``XStatic-Leaflet-MarkerCluster`` packages
and inlines them, so the page loads nothing from the network (use ``tiles=None`` or an
intranet tile URL). With ``asset_base_url=`` the page references the files of
:func:`~gridkit.maps.assets.offline_assets` at that URL instead. ``offline=False``
loads them from public CDNs.

Basemap: OpenStreetMap by default; any tile URL or none (``tiles=None``). Chinese web
tiles are in GCJ-02: declare ``tiles_datum="gcj02"`` and the data is shifted to match.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, shift_datum
from gridkit.errors import InvalidLayerError
from gridkit.geojson import rounded, to_geojson
from gridkit.maps.assets import apply_assets
from gridkit.maps.legend import legend_element, title_element
from gridkit.maps.options import MapOptions
from gridkit.maps.page import page_script

__all__ = ["map_html"]

# distinct colours for workers and categories; no purple/red, which mark problems
PALETTE = (
    "#1f77b4", "#2ca02c", "#ff7f0e", "#17becf", "#bcbd22", "#8c564b", "#e377c2", "#7f7f7f",
    "#aec7e8", "#98df8a", "#ffbb78", "#9edae5", "#dbdb8d", "#c49c94", "#f7b6d2", "#c7c7c7",
    "#393b79", "#637939", "#8c6d31", "#3182bd",
)  # fmt: skip
CANVAS_AT = 2000  # features; above this SVG slows down noticeably
MAX_LEGEND_ITEMS = 15

Legend = list[tuple[str, list[tuple[str, str, str]]]]


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


def _num(value: object) -> str:
    if value is None or pd.isna(value):
        return "—"
    f = float(value)
    return f"{f:.0f}" if f.is_integer() else f"{f:.2f}"


def _pct(done: float, required: float) -> str:
    if not required or pd.isna(required):
        return "—"
    return f"{min(done / required, 1.0):.0%}"


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


def _prepare(gdf: gpd.GeoDataFrame, o: MapOptions) -> gpd.GeoDataFrame:
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
    out = gdf.copy()
    out.geometry = rounded(geoms, precision=o.precision)
    return out


def _collection(gdf: gpd.GeoDataFrame, props: pd.DataFrame, precision: int) -> dict:
    """A FeatureCollection of ``gdf``'s geometry with only the (escaped) ``props``
    columns, encoded by :func:`gridkit.geojson.to_geojson`.

    ``id`` is the row number, so folium's style switch stays short.
    """
    frame = gpd.GeoDataFrame(props.reset_index(drop=True), geometry=gdf.geometry.array)
    fc = json.loads(to_geojson(frame, precision=precision))
    for i, feature in enumerate(fc["features"]):
        feature["id"] = i
    return fc


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
    precision: int,
) -> folium.GeoJson:
    """One GeoJson layer; ``tips``/``pops`` are escaped HTML built by the caller."""
    props = pd.DataFrame({"tip": list(tips)})
    if pops is not None:
        props["pop"] = list(pops)
    fc = _collection(gdf, props, precision)
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


def _base_map(o: MapOptions, bounds_of: Sequence[gpd.GeoDataFrame], n_features: int) -> folium.Map:
    L = o.L
    canvas = o.prefer_canvas if o.prefer_canvas is not None else n_features > CANVAS_AT
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
    o: MapOptions,
    kind: str,
    legend: Sequence[tuple],
    *,
    cluster: bool = False,
    page: Mapping[str, Any] | None = None,
) -> folium.Map:
    """Title, legend, a folded layer control and the page script (``page``: its
    configuration, see :mod:`gridkit.maps.page`), then the assets."""
    L = o.L
    title = o.title if o.title is not None else L[kind]
    subtitle = f"{L['period']}: {o.period}" if o.period else None
    m.add_child(title_element(title, subtitle))
    m.add_child(legend_element(legend, heading=L["legend"]))
    folium.LayerControl(collapsed=True).add_to(m)
    config = {"layers": {}, "printed_label": L["printed"], **(page or {})}
    if config.get("search"):
        config.setdefault("search_placeholder", L["search"])
    m.add_child(page_script(config))
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
