"""Which grid unit holds each point: vectorised point-in-unit with a nearest fallback.

For many points the spatial index is built on the *points* and queried with the unit
polygons (``tree.query(polygons, predicate="contains")``): each polygon is prepared
once and tests only the points in its envelope, 3-4x faster than the other
orientation. For a few points among many units (the reports of one API request) the
units' own index is queried instead (``units.sindex``, built once and kept by
geopandas with the layer), so a call costs the points, not the layer. Points outside
every unit get the nearest unit, measured in a local metric CRS; with
``max_distance_m`` only a unit that near, and a :class:`~gridkit.GridkitWarning` says
how many points were left without one and how far they lie.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import Point
>>> from gridkit.synth.ops import grid_units
>>> units = grid_units(2, 2)
>>> pts = gpd.GeoDataFrame(geometry=[Point(113.101, 27.801), Point(113.099, 27.801)], crs=4326)
>>> located = locate(pts, units)
>>> located[["unit_id", "distance_m"]].round(0).to_dict("list")
{'unit_id': ['430202001000000', '430202001000000'], 'distance_m': [0.0, 99.0]}
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from geopandas.sindex import SpatialIndex

from gridkit.crs import (
    WGS84,
    check_lonlat_bounds,
    degrees_around,
    is_wgs84,
    like_input,
    local_metric_crs,
    result_crs,
    to_wgs84,
)
from gridkit.errors import CRSError, GridkitWarning, InvalidLayerError

__all__ = ["NEAREST_WITHIN_M", "locate", "locate_indices"]

#: how far outside every unit a point may lie and still be given the nearest unit, where
#: a caller counts points per unit (``gridkit locate``, :func:`gridkit.hotspots`): GPS
#: error and a report just across the grid's outer edge, not a point in another city
NEAREST_WITHIN_M = 500.0


def _wgs84_units(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if units.crs is None:
        raise CRSError(
            "units have no coordinate reference system.",
            hint="Read units with gridkit.read_layer or set their CRS (units are stored in WGS84).",
        )
    if _is_wgs84(units.crs):  # only read here: no relabelled copy of the layer
        check_lonlat_bounds(units, source="units", label="WGS84")
        return units
    return to_wgs84(units, source="units")


def locate_indices(points: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Position of the polygon containing each point, ``-1`` where none does.

    Parameters
    ----------
    points
        Array of shapely Points (missing or empty allowed).
    polygons
        Array of shapely Polygons, same CRS.

    Returns
    -------
    numpy.ndarray
        ``int64`` positions into ``polygons``. Where polygons overlap, the first one
        (lowest position) wins, so the result is deterministic.

    Examples
    --------
    >>> import shapely
    >>> locate_indices(shapely.points([[0.5, 0.5], [3, 3]]), shapely.box([0], [0], [1], [1]))
    array([ 0, -1])
    """
    n = len(points)
    if n == 0 or len(polygons) == 0:
        return np.full(n, -1, dtype=np.int64)
    tree = shapely.STRtree(points)
    shapely.prepare(polygons)
    poly_idx, pt_idx = tree.query(polygons, predicate="contains")
    return _lowest_hit(n, pt_idx, poly_idx)


def _lowest_hit(n: int, pt_idx: np.ndarray, poly_idx: np.ndarray) -> np.ndarray:
    """Per point the lowest polygon position among its hits, ``-1`` without one."""
    out = np.full(n, -1, dtype=np.int64)
    if len(pt_idx) == 0:
        return out
    counts = np.bincount(pt_idx, minlength=n)
    if counts.max() <= 1:
        out[pt_idx] = poly_idx
        return out
    # Overlapping units: keep the lowest polygon position per point.
    order = np.lexsort((poly_idx, pt_idx))
    pt_sorted = pt_idx[order]
    first = np.r_[True, pt_sorted[1:] != pt_sorted[:-1]]
    out[pt_sorted[first]] = poly_idx[order][first]
    return out


def _accuracy(points: pd.DataFrame, accuracy_m: object) -> np.ndarray | None:
    if accuracy_m is None:
        return None
    if isinstance(accuracy_m, Hashable) and not isinstance(accuracy_m, (int, float)):
        if accuracy_m not in points.columns:
            raise InvalidLayerError(
                f"accuracy_m={accuracy_m!r} is not a column of the points.",
                hint="Pass a number of metres, an array, or the name of a column such as "
                "'accuracy_m'.",
            )
        acc = pd.to_numeric(points[accuracy_m], errors="coerce").to_numpy(dtype=float)
    else:
        acc = np.broadcast_to(np.asarray(accuracy_m, dtype=float), (len(points),)).copy()
    return np.nan_to_num(acc, nan=0.0)


def locate(
    points: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    crs: object = None,
    accuracy_m: float | str | np.ndarray | None = None,
    max_distance_m: float | None = None,
) -> gpd.GeoDataFrame:
    """Put each point in its grid unit.

    Parameters
    ----------
    points
        Points (reports, check-ins, fixes). Rows without geometry (hotline reports
        with only an address) keep any ``unit_id`` they already carry.
    units
        The ``units`` layer (``unit_id`` and polygons).
    crs
        Declared datum of the points when they carry none or carry a Chinese
        web-map datum: an EPSG code, ``"gcj02"`` (AMap/Tencent phone SDKs) or
        ``"bd09"``. See :func:`gridkit.crs.to_wgs84`.
    accuracy_m
        GPS accuracy in metres: a number, an array, or a column name (e.g.
        ``"accuracy_m"``). A point closer than this to a unit boundary is flagged
        ``ambiguous``.
    max_distance_m
        Points farther than this from every unit get no unit (``<NA>``, ``distance_m``
        NaN), with one :class:`~gridkit.GridkitWarning` saying how many and how far
        they lie (e.g. :data:`NEAREST_WITHIN_M`, 500 m, as ``gridkit locate`` and
        :func:`gridkit.hotspots` use). ``None`` (default): the nearest unit, however far.

    Returns
    -------
    geopandas.GeoDataFrame
        The points as given (same index, columns, geometry and CRS; in WGS84 for a
        declared ``gcj02``/``bd09``, which no CRS can label), plus ``unit_id`` (the unit
        holding the point, else the nearest one), ``distance_m`` (0 inside or on
        the boundary, ``NaN`` without geometry or beyond ``max_distance_m``) and
        ``ambiguous`` (bool).

    Raises
    ------
    InvalidLayerError
        When units have no ``unit_id`` or ``accuracy_m`` names a missing column.
    CRSError
        When a CRS is missing or conflicts with the declared datum.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridkit.synth.ops import grid_units
    >>> pts = gpd.GeoDataFrame(geometry=[Point(113.1012, 27.8012)], crs=4326)
    >>> locate(pts, grid_units(2, 2), accuracy_m=200)["ambiguous"].tolist()
    [True]

    A point 1.5 km east of the grid, with a limit of 500 m, gets no unit:

    >>> far = gpd.GeoDataFrame(geometry=[Point(113.125, 27.801)], crs=4326)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     locate(far, grid_units(2, 2), max_distance_m=500)["unit_id"].tolist()
    [<NA>]
    >>> print(str(seen[0].message).split(": ")[0])
    1 point farther than 500 m from every unit (the nearest about 1.5 km away)

    Points in UTM zone 49N come back in it, located all the same:

    >>> located = locate(pts.to_crs(32649), grid_units(2, 2))
    >>> located.crs.to_epsg(), located["unit_id"].tolist()
    (32649, ['430202001000000'])
    """
    if "unit_id" not in units.columns:
        raise InvalidLayerError(
            "units have no 'unit_id' column.", hint="Pass the 'units' layer of the data contract."
        )
    units84 = _wgs84_units(units)
    if points.crs is None and crs is None:
        raise CRSError(
            "points have no coordinate reference system.",
            hint="Declare one with crs= (e.g. 4326, or 'gcj02' for phone map SDKs).",
        )
    out_crs = result_crs(points, crs)
    pts = points if crs is None and _is_wgs84(points.crs) else to_wgs84(points, crs=crs)
    if pts is points:
        pts = points.copy()
    geoms = np.asarray(pts.geometry.array)
    polys = np.asarray(units84.geometry.array)
    unit_ids = units84["unit_id"].to_numpy(dtype=object)
    n = len(pts)

    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    few = n * 8 < len(polys)
    if few:  # a few points among many units: the units' own index, kept by geopandas
        pt_idx, poly_idx = units84.sindex.query(geoms, predicate="within")
        idx = _lowest_hit(n, pt_idx, poly_idx)
    else:  # many points: a tree of the points, each unit queried once
        idx = locate_indices(geoms, polys)
    distance = np.where(present, 0.0, np.nan)
    acc = _accuracy(pts, accuracy_m)
    outside = present & (idx < 0)
    index = units84.sindex if outside.any() and len(polys) else None
    if index is not None:
        # Points exactly on an edge are not "contained" but are in the unit: decide in
        # lon/lat, where a projection round-off cannot make them 1 mm outside.
        out_pos = np.flatnonzero(outside)
        hit_pt, hit_poly = index.query(geoms[out_pos], predicate="intersects")
        hit = _lowest_hit(len(out_pos), hit_pt, hit_poly)
        on_edge = hit >= 0
        idx[out_pos[on_edge]] = hit[on_edge]
        outside[out_pos[on_edge]] = False
    need_metric = outside.any() or (acc is not None and (acc > 0).any())
    if need_metric and len(polys):
        metric = local_metric_crs(units84)
        to_m = pyproj.Transformer.from_crs(WGS84, metric, always_xy=True)

        def project(g: np.ndarray) -> np.ndarray:
            return shapely.transform(g, lambda c: np.column_stack(to_m.transform(c[:, 0], c[:, 1])))

        if outside.any():
            out_pos = np.flatnonzero(outside)
            found, fdist, reach = _nearest_in_metres(
                geoms[out_pos], polys, index, project, max_distance_m
            )
            idx[out_pos] = found
            distance[out_pos] = fdist
            if max_distance_m is not None and (found < 0).any():
                far = geoms[out_pos[found < 0]]
                swapped = _swapped_inside(far, units84.total_bounds)
                _warn_beyond(reach[found < 0], max_distance_m, swapped)
        ambiguous = np.zeros(n, dtype=bool)
        if acc is not None:
            check = present & (idx >= 0) & (acc > 0)
            inside = check & (distance == 0)
            if inside.any():
                pos = np.flatnonzero(inside)
                edge = shapely.boundary(project(polys[idx[pos]]))
                to_edge = shapely.distance(project(geoms[pos]), edge)
                ambiguous[pos] = to_edge < acc[pos]
            near = check & (distance > 0)
            ambiguous[near] = distance[near] < acc[near]
    else:
        ambiguous = np.zeros(n, dtype=bool)

    # Take from the (small) array of unit ids: far cheaper than building 10^6 strings.
    result = pd.array(unit_ids, dtype="string").take(idx, allow_fill=True)
    if "unit_id" in pts.columns:
        # Hand-picked units of rows without coordinates (hotline reports) are kept.
        keep = ~present
        prior = pts["unit_id"].astype("string").array
        result[keep] = prior[keep]
    pts["unit_id"] = result
    pts["distance_m"] = distance
    pts["ambiguous"] = ambiguous
    # the points as given (their own geometry, not a round trip through WGS84)
    given = points
    if points.crs is None and not pts.crs.is_exact_same(out_crs):  # labelled by crs=
        given = points.set_crs(out_crs)
    return like_input(pts, out_crs, given=given)


def _nearest_in_metres(
    pts: np.ndarray,
    polys: np.ndarray,
    index: SpatialIndex,
    project: Callable[[np.ndarray], np.ndarray],
    max_distance_m: float | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position of the nearest polygon in metres to each point (lowest position among
    equals), and the distance; ``-1``/NaN beyond ``max_distance_m``. Third, the
    distance to the polygon nearest in lon/lat (at least the true nearest distance,
    close to it): what the warning of points beyond ``max_distance_m`` quotes.

    Only the polygons near each point are projected: the polygon nearest in lon/lat
    gives a distance in metres that the true nearest cannot exceed, and every polygon
    within it lies in a lon/lat box around the point (sized with a margin for the
    projection's scale), which the lon/lat tree finds.
    """
    k = len(pts)
    found = np.full(k, -1, dtype=np.int64)
    fdist = np.full(k, np.nan)
    got = index.nearest(pts, return_all=False)
    first = np.empty(k, dtype=np.int64)
    first[got[0]] = got[1]
    pts_m = project(pts)
    rough = shapely.distance(pts_m, project(polys[first]))
    reach = rough if max_distance_m is None else np.minimum(rough, max_distance_m)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    dx, dy = degrees_around(y, reach)
    boxes = shapely.box(x - dx, y - dy, x + dx, y + dy)
    pi, ci = index.query(boxes)
    if len(pi) == 0:
        return found, fdist, rough
    cand, inverse = np.unique(ci, return_inverse=True)
    d = shapely.distance(pts_m[pi], project(polys[cand])[inverse])
    order = np.lexsort((ci, d, pi))  # per point: nearest first, then lowest position
    pi, ci, d = pi[order], ci[order], d[order]
    best = np.r_[True, pi[1:] != pi[:-1]]
    pi, ci, d = pi[best], ci[best], d[best]
    keep = d <= max_distance_m if max_distance_m is not None else np.ones(len(d), dtype=bool)
    found[pi[keep]] = ci[keep]
    fdist[pi[keep]] = d[keep]
    return found, fdist, rough


def _km(metres: float) -> str:
    return f"{metres / 1000:,.1f} km" if metres >= 1000 else f"{metres:,.0f} m"


def _swapped_inside(pts: np.ndarray, bounds: np.ndarray) -> int:
    """How many points, x and y swapped, fall in the units' box (lat/lon columns read
    as lon/lat where both stay in range: western China read as Europe)."""
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    minx, miny, maxx, maxy = bounds
    return int(((y >= minx) & (y <= maxx) & (x >= miny) & (x <= maxy)).sum())


def _warn_beyond(rough: np.ndarray, max_distance_m: float, swapped: int = 0) -> None:
    """One line: how many points no unit is within ``max_distance_m`` of, and how far
    the nearest lies (``rough``: the lon/lat-nearest unit's distance per point);
    ``swapped`` of them would lie among the units with x and y swapped."""
    lo, hi = float(np.min(rough)), float(np.max(rough))
    far = f"about {_km(lo)}" if _km(lo) == _km(hi) else f"about {_km(lo)} to {_km(hi)}"
    n = len(rough)
    why = (
        f" {swapped:,} of them would lie among the units with x and y swapped: are the "
        "lon/lat columns swapped (lat, lon)?"
        if swapped
        else ""
    )
    warnings.warn(
        f"{n:,} point{'s' if n != 1 else ''} farther than {_km(max_distance_m)} from every "
        f"unit (the nearest {far} away): left without a unit.{why} Raise max_distance_m "
        "(--max-distance M) to give such points the nearest unit.",
        GridkitWarning,
        stacklevel=3,
    )


def _is_wgs84(crs: object) -> bool:
    return is_wgs84(crs)
