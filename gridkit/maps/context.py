"""Offline context under and over the data: admin outlines with names, rivers, water.

A map at city scale needs to say where it is without any tile server: the county,
township and village outlines (labelled, each level from the zoom where its names
fit), rivers and water bodies, taken from the workspace's own layers
(``admin_areas``, ``rivers``, ``water_bodies``) or an ``--admin FILE``. They are the
default base of every map; tiles are an option (:class:`~gridkit.maps.MapOptions`).

Context is cut to the data's extent (with a margin) and simplified for display, so a
county's map does not carry the whole province.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, shift_datum
from gridkit.geojson import rounded
from gridkit.maps.options import MapOptions
from gridkit.webmap import zoom_for_width

__all__ = ["Context", "label_zoom"]

LEVELS = ("county", "township", "village")
_OUTLINE = {
    "county": {"color": "#222222", "weight": 2.6, "dashArray": None},
    "township": {"color": "#444444", "weight": 1.6, "dashArray": "6 3"},
    "village": {"color": "#666666", "weight": 0.8, "dashArray": "2 3"},
}
_WATER = "#9ecae1"
_RIVER = "#3b83bd"
_LABEL_PX = 110  # an area's label shows from the zoom where the area is this wide


def label_zoom(width_deg: float, *, px: float = _LABEL_PX) -> int:
    """The zoom from which something ``width_deg`` wide is at least ``px`` pixels wide.

    Examples
    --------
    >>> label_zoom(0.1), label_zoom(0.01), label_zoom(1.0)
    (11, 14, 8)
    """
    return zoom_for_width(width_deg, px)


def _wgs(gdf: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if gdf is None or not len(gdf):
        return None
    if gdf.crs is not None and not gdf.crs.equals(WGS84):
        gdf = gdf.to_crs(WGS84)
    return gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]


@dataclass(frozen=True)
class Context:
    """Layers drawn around the data: ``admin_areas``, ``rivers``, ``water_bodies``.

    Parameters
    ----------
    admin
        ``admin_areas`` (``admin_code``, ``name``, ``level``; Polygon): outlines of
        the county, township and village levels, labelled with ``name``.
    rivers
        ``rivers`` (LineString), drawn as blue lines under the data.
    water_bodies
        ``water_bodies`` (Polygon), drawn as light blue areas under the data.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> admin = gpd.GeoDataFrame({"admin_code": ["430202001"], "name": ["建设街道"],
    ...     "level": ["township"]}, geometry=[box(113.0, 27.7, 113.2, 27.9)], crs=4326)
    >>> ctx = Context(admin=admin)
    >>> ctx.levels()
    ['township']
    >>> Context.from_layers({"admin_areas": admin, "buildings": admin}).admin is admin
    True
    """

    admin: gpd.GeoDataFrame | None = None
    rivers: gpd.GeoDataFrame | None = None
    water_bodies: gpd.GeoDataFrame | None = None

    @classmethod
    def from_layers(cls, layers: Mapping[str, pd.DataFrame]) -> Context:
        """The context layers found in ``layers`` (a workspace's layers by name)."""
        return cls(
            admin=layers.get("admin_areas"),  # type: ignore[arg-type]
            rivers=layers.get("rivers"),  # type: ignore[arg-type]
            water_bodies=layers.get("water_bodies"),  # type: ignore[arg-type]
        )

    def levels(self) -> list[str]:
        """The admin levels present that are drawn (county, township, village)."""
        if self.admin is None or "level" not in self.admin.columns:
            return []
        have = set(self.admin["level"].astype(str))
        return [lv for lv in LEVELS if lv in have]

    def areas(self, level: str) -> gpd.GeoDataFrame | None:
        """The admin areas of ``level`` in WGS84 (``None`` when there are none)."""
        if level not in self.levels():
            return None
        a = _wgs(self.admin)
        return None if a is None else a[a["level"].astype(str) == level]


def _clip(gdf: gpd.GeoDataFrame | None, box: tuple, o: MapOptions, tol: float):
    """Rows meeting ``box``, simplified by ``tol`` degrees, shifted and rounded."""
    gdf = _wgs(gdf)
    if gdf is None:
        return None
    hit = gdf.sindex.query(shapely.box(*box), predicate="intersects")
    gdf = gdf.iloc[np.sort(hit)]
    if not len(gdf):
        return None
    if o.tiles_datum == "gcj02":
        gdf = shift_datum(gdf, source="wgs84", target="gcj02")
    geoms = shapely.simplify(np.asarray(gdf.geometry.array), tol, preserve_topology=True)
    out = gdf.copy()
    out.geometry = rounded(geoms, precision=min(o.precision, 5))
    return out[~out.geometry.is_empty]


def _geojson(gdf: gpd.GeoDataFrame, name: str, style: dict, **kw) -> folium.GeoJson:
    frame = gpd.GeoDataFrame(geometry=gdf.geometry.array, crs=WGS84)
    return folium.GeoJson(
        frame.__geo_interface__,
        name=html.escape(name),
        style_function=lambda _f: style,
        interactive=False,
        smooth_factor=1.0,
        **kw,
    )


def add_under(m: folium.Map, ctx: Context | None, box: tuple, o: MapOptions) -> list:
    """Water bodies and rivers under the data; returns legend items."""
    if ctx is None:
        return []
    L, items = o.L, []
    tol = _tolerance(box)
    water = _clip(ctx.water_bodies, box, o, tol)
    if water is not None:
        style = {"fillColor": _WATER, "color": _WATER, "weight": 0.5, "fillOpacity": 0.7}
        _geojson(water, L["water_bodies"], style, control=False).add_to(m)
        items.append((_WATER, L["water_bodies"], "box"))
    rivers = _clip(ctx.rivers, box, o, tol)
    if rivers is not None:
        style = {"color": _RIVER, "weight": 1.6, "opacity": 0.9}
        _geojson(rivers, L["rivers"], style, control=False).add_to(m)
        items.append((_RIVER, L["rivers"], "line"))
    return items


def add_over(
    m: folium.Map, ctx: Context | None, box: tuple, o: MapOptions
) -> tuple[list, dict[str, int], list]:
    """Admin outlines and their labels over the data.

    Returns legend items, the zoom from which each level's labels show, and search
    entries (``[name, south, west, north, east]``) for the place names.
    """
    if ctx is None or ctx.admin is None:
        return [], {}, []
    L = o.L
    tol = _tolerance(box)
    items, zooms, entries = [], {}, []
    labels = folium.FeatureGroup(name=html.escape(L["place_names"]), control=False)
    for level in ctx.levels():
        areas = _clip(ctx.areas(level), box, o, tol)
        if areas is None:
            continue
        style = {k: v for k, v in _OUTLINE[level].items() if v is not None}
        style |= {"fill": False, "opacity": 0.9}
        _geojson(areas, L[f"admin_{level}"], style, control=False).add_to(m)
        items.append((_OUTLINE[level]["color"], L[f"admin_{level}"], "outline"))
        b = areas.geometry.bounds.to_numpy()
        zooms[level] = label_zoom(float(np.median(b[:, 2] - b[:, 0])))
        if "name" not in areas.columns:
            continue
        pts = shapely.point_on_surface(np.asarray(areas.geometry.array))
        names = areas["name"].astype(str).to_numpy()
        for name, p in zip(names, pts, strict=True):
            icon = folium.DivIcon(
                html=f"<span>{html.escape(name)}</span>", class_name=f"gk-lbl gk-lbl-{level}"
            )
            folium.Marker([p.y, p.x], icon=icon, interactive=False).add_to(labels)
        entries += [
            [str(n), *np.round([bb[1], bb[0], bb[3], bb[2]], 5).tolist()]
            for n, bb in zip(names, b, strict=True)
        ]
    labels.add_to(m)
    return items, zooms, entries


def _tolerance(box: tuple) -> float:
    """Display simplification for context: about 1/3000 of the extent."""
    w = max(box[2] - box[0], box[3] - box[1], 1e-4)
    return w / 3000.0


def extent(frames: list[gpd.GeoDataFrame], margin: float = 0.15) -> tuple | None:
    """The data's bounding box (WGS84), widened by ``margin`` of its size."""
    boxes = [g.total_bounds for g in frames if g is not None and len(g)]
    if not boxes:
        return None
    b = np.array(boxes)
    minx, miny, maxx, maxy = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    dx = max(maxx - minx, 0.005) * margin
    dy = max(maxy - miny, 0.005) * margin
    return (minx - dx, miny - dy, maxx + dx, maxy + dy)
