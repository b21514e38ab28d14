"""Review map of a draft grid: load against the cap, cut footprints, slivers, parts.

A planner looks at a fresh split before publishing it: each unit coloured by its
household load against the cap (community grids) or its length against the maximum
(river units), the building footprints a boundary cuts, slivers (units far smaller
than their neighbours of the same kind) and units in several parts outlined, and
the unit ids as labels from the zoom where they fit.
"""

from __future__ import annotations

from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.crs import WGS84, local_metric_crs
from gridkit.maps.base import _esc, _names, _num, _polygons, _prepare, _require, _rows
from gridkit.maps.context import Context, label_zoom
from gridkit.maps.options import MapOptions, resolve
from gridkit.maps.scene import Scene

__all__ = ["review_flags", "review_map"]

LOAD_COLORS = {"load_ok": "#a6dba0", "load_near": "#fdb863", "load_over": "#d7191c",
               "load_na": "#d9d9d9"}  # fmt: skip
_FLAG_COLORS = {"cut_footprints": "#000000", "slivers": "#e7298a", "multipart": "#7570b3"}
SLIVER_SHARE = 0.1  # a unit smaller than this share of its kind's median area
CUT_SHARE = 0.02  # a footprint cut when a second unit holds more than this share of it


def review_flags(
    units: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame | None = None
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Per unit ``sliver`` and ``multipart`` flags, and the footprints cut by units.

    Returns a frame aligned with ``units`` (``area_m2``, ``sliver``, ``multipart``,
    ``cut``: footprints it shares) and the cut buildings (with ``n_units``).

    Examples
    --------
    >>> from shapely import box, MultiPolygon
    >>> u = gpd.GeoDataFrame({"unit_id": ["A", "B", "C"]}, geometry=[
    ...     box(113.0, 27.0, 113.01, 27.01), box(113.01, 27.0, 113.02, 27.01),
    ...     MultiPolygon([box(113.02, 27.0, 113.0205, 27.0005),
    ...                   box(113.03, 27.0, 113.0305, 27.0005)])], crs=4326)
    >>> b = gpd.GeoDataFrame(geometry=[box(113.0095, 27.005, 113.0105, 27.0055),
    ...                                box(113.002, 27.002, 113.003, 27.003)], crs=4326)
    >>> flags, cut = review_flags(u, b)
    >>> flags[["sliver", "multipart", "cut"]].values.tolist()
    [[False, False, 1], [False, False, 1], [True, True, 0]]
    >>> len(cut)
    1
    """
    metric = local_metric_crs(units)
    um = units.to_crs(metric)
    geoms = np.asarray(um.geometry.array)
    area = shapely.area(geoms)
    kind = units["kind"].astype(str) if "kind" in units.columns else pd.Series("", units.index)
    median = pd.Series(area, index=units.index).groupby(kind.to_numpy()).transform("median")
    flags = pd.DataFrame(
        {
            "area_m2": area,
            "sliver": area < SLIVER_SHARE * median.to_numpy(),
            "multipart": shapely.get_num_geometries(geoms) > 1,
            "cut": 0,
        },
        index=units.index,
    )
    empty = gpd.GeoDataFrame({"n_units": []}, geometry=[], crs=WGS84)
    if buildings is None or not len(buildings):
        return flags, empty
    bm = buildings.to_crs(metric)
    bg = np.asarray(bm.geometry.array)
    bi, ui = um.sindex.query(bg, predicate="intersects")
    share = shapely.area(shapely.intersection(bg[bi], geoms[ui])) / np.maximum(
        shapely.area(bg[bi]), 1e-9
    )
    hit = share > CUT_SHARE
    bi, ui = bi[hit], ui[hit]
    n_units = np.bincount(bi, minlength=len(bg))
    cut_b = n_units > 1
    flags["cut"] = np.bincount(ui[cut_b[bi]], minlength=len(units))
    cut = buildings.iloc[np.flatnonzero(cut_b)].to_crs(WGS84)
    cut = gpd.GeoDataFrame({"n_units": n_units[cut_b]}, geometry=cut.geometry.array, crs=WGS84)
    return flags, cut


def _load(u: gpd.GeoDataFrame, max_households: float | None, max_length_m: float | None):
    """Load share (households / cap or length / maximum) and its class per unit."""
    share = pd.Series(np.nan, index=u.index)
    river = u["kind"].astype(str).eq("river_reach") if "kind" in u.columns else False
    if max_households and "households" in u.columns:
        hh = pd.to_numeric(u["households"], errors="coerce")
        share = share.where(river, hh / max_households)
    if max_length_m and "length_m" in u.columns:
        ln = pd.to_numeric(u["length_m"], errors="coerce")
        share = share.where(~river, ln / max_length_m) if "kind" in u.columns else ln / max_length_m
    v = share.to_numpy(dtype=float)
    cls = np.select(
        [np.isnan(v), v <= 0.8, v <= 1.0], ["load_na", "load_ok", "load_near"], "load_over"
    )
    return share, cls


def review_map(
    units: gpd.GeoDataFrame,
    *,
    max_households: float | None = None,
    max_length_m: float | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    assignments: pd.DataFrame | None = None,
    workers: pd.DataFrame | None = None,
    context: Context | None = None,
    options: MapOptions | None = None,
    **overrides: Any,
) -> folium.Map:
    """Map of a draft grid for review before publishing.

    Parameters
    ----------
    units
        The draft ``units`` (``unit_id``; ``households``, ``length_m``, ``kind``).
    max_households, max_length_m
        The cap used for the split: units are coloured by their load against it
        (≤ 80 %, 80–100 %, over; grey without data).
    buildings
        ``buildings`` of the split: footprints cut by a unit boundary are drawn black.
    assignments, workers
        When given, tooltips name the units' workers (``workers``: names, not ids).
    context, options, **overrides
        As in :func:`~gridkit.maps.coverage_map`.

    Returns
    -------
    folium.Map
        Units by load, flagged units outlined, cut footprints, unit id labels.

    Examples
    --------
    >>> from gridkit.synth import maps as synth
    >>> from gridkit.maps import map_html
    >>> u = synth.units(9)
    >>> page = map_html(review_map(u, max_households=250, lang="en"))
    >>> "Over the cap" in page, "Draft grid review" in page
    (True, True)
    """
    o = resolve(options, overrides)
    L = o.L
    _require(units, ["unit_id"], "units", geometry=True)
    u = _prepare(units, o).reset_index(drop=True)
    flags, cut = review_flags(u, _prepare(buildings, o) if buildings is not None else None)
    share, cls = _load(u, max_households, max_length_m)
    names = _names(workers)
    people = {}
    if assignments is not None:
        a = assignments.assign(unit_id=assignments["unit_id"].astype(str))
        people = a.groupby("unit_id")["worker_id"].agg(
            lambda s: ", ".join(sorted({names.get(str(w), str(w)) for w in s}))
        )
    tips = [
        _rows([
            (L["unit"], _esc(uid)), (L["households"], _esc(_num(h))),
            (L["load"], _esc("—" if pd.isna(s) else f"{s:.0%}")),
            (L["worker"], _esc(people.get(uid, "—"))),
        ] + [(L[k], "✔") for k, f in (("slivers", sl), ("multipart", mp)) if f]
          + ([(L["cut_footprints"], _esc(c))] if c else []))
        for uid, h, s, sl, mp, c in zip(
            u["unit_id"].astype(str), u.get("households", pd.Series(np.nan, u.index)), share,
            flags["sliver"], flags["multipart"], flags["cut"], strict=True)
    ]  # fmt: skip
    scene = Scene.start(o, [u], context)
    layer = _polygons(u, name=L["units"], colors=[LOAD_COLORS[c] for c in cls], tips=tips,
                      pops=tips, precision=o.precision)  # fmt: skip
    scene.add("units", layer)
    legend = [(L["load"], [(LOAD_COLORS[k], L[k], "box") for k in LOAD_COLORS if k in set(cls)],
               "units")]  # fmt: skip
    marks = []
    for key, mask in (("slivers", flags["sliver"]), ("multipart", flags["multipart"])):
        if mask.any():
            style = {"color": _FLAG_COLORS[key], "weight": 3, "fill": False}
            sub = gpd.GeoDataFrame(geometry=u.geometry.array[mask.to_numpy()], crs=WGS84)
            scene.add(
                key,
                folium.GeoJson(
                    sub.__geo_interface__,
                    name=L[key],
                    style_function=lambda _f, s=style: s,
                    interactive=False,
                ),
            )
            marks.append((_FLAG_COLORS[key], f"{L[key]} ({int(mask.sum())})", "outline"))
    if len(cut):
        style = {"color": "#000000", "fillColor": "#000000", "weight": 1, "fillOpacity": 0.8}
        scene.add(
            "cut",
            folium.GeoJson(
                cut.__geo_interface__,
                name=L["cut_footprints"],
                style_function=lambda _f: style,
                interactive=False,
            ),
        )
        marks.append(("#000000", f"{L['cut_footprints']} ({len(cut)})", "box"))
    if marks:
        legend.append((L["review"], marks))
    pts = shapely.point_on_surface(np.asarray(u.geometry.array))
    b = u.geometry.bounds.to_numpy()
    scene.config["point_labels"] = [
        [t, y, x] for t, x, y in zip(u["unit_id"].astype(str),
                                     np.round(shapely.get_x(pts), 5).tolist(),
                                     np.round(shapely.get_y(pts), 5).tolist(), strict=True)
    ]  # fmt: skip
    scene.config["labels"] = {"unit": label_zoom(float(np.median(b[:, 2] - b[:, 0])), px=70)}
    bb = np.round(b, 5).tolist()
    scene.search = [[str(i), q[1], q[0], q[3], q[2]] for i, q in zip(u["unit_id"], bb, strict=True)]
    return scene.finish("review", legend)
