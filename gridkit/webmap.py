"""The rules a map page's viewport follows, in one place.

The map pages are answered by an index held in memory (:mod:`gridkit.maps.viewport`)
or by the database itself (:mod:`gridkit.store.pgviews`); both follow these rules, so
both give the same answers: which boxes may be asked for, how much a zoom simplifies,
from which zoom units replace areas, when villages give way to townships, and how an
area's share of units staffed is classed.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import shapely

from gridkit import codes
from gridkit.errors import GridkitError

__all__ = [
    "MAX_BBOX_DEG",
    "MAX_VILLAGES",
    "SEPARATOR",
    "SNAP_DEG",
    "UNIT_PX",
    "area_outlines",
    "case_bounds",
    "cases_named",
    "check_bbox",
    "half_pixel",
    "places_of",
    "staffed_class",
    "zoom_for_width",
]

MAX_BBOX_DEG = 20.0  #: the widest box a viewport may ask for, in degrees
MAX_VILLAGES = 400  #: above this many villages the areas are townships
UNIT_PX = 12  #: units show from the zoom where a typical unit is this many pixels wide
SNAP_DEG = 1e-7  #: about 1 cm: the units of one area are merged on this grid
SEPARATOR = " · "  #: between the names of a unit's workers


def check_bbox(bbox: tuple) -> tuple[float, float, float, float]:
    """``bbox`` as four floats (west, south, east, north), or a clear error.

    Examples
    --------
    >>> check_bbox(("113", 27.7, 113.3, "28"))
    (113.0, 27.7, 113.3, 28.0)
    >>> check_bbox((113.3, 27.7, 113.0, 28.0))
    Traceback (most recent call last):
    ...
    gridkit.errors.GridkitError: bbox (113.3, 27.7, 113.0, 28.0) is not west,south,east,north.
    Hint: e.g. bbox=113.0,27.7,113.3,28.0
    """
    w, s, e, n = (float(v) for v in bbox)
    if not all(math.isfinite(v) for v in (w, s, e, n)) or w >= e or s >= n:
        raise GridkitError(
            f"bbox {bbox!r} is not west,south,east,north.", hint="e.g. bbox=113.0,27.7,113.3,28.0"
        )
    if e - w > MAX_BBOX_DEG or n - s > MAX_BBOX_DEG:
        raise GridkitError(f"bbox wider than {MAX_BBOX_DEG:.0f} degrees.")
    return w, s, e, n


def half_pixel(zoom: int) -> float:
    """About half a pixel at ``zoom``, in degrees (the simplification of a viewport).

    Examples
    --------
    >>> round(half_pixel(12), 8), half_pixel(99) == half_pixel(22)
    (0.00017166, True)
    """
    return 0.5 * 360.0 / (256.0 * 2 ** max(0, min(22, int(zoom))))


def zoom_for_width(width_deg: float, px: float = UNIT_PX) -> int:
    """The zoom from which something ``width_deg`` wide is at least ``px`` pixels wide.

    Examples
    --------
    >>> zoom_for_width(0.005), zoom_for_width(0.1, px=110), zoom_for_width(0.0)
    (12, 11, 0)
    """
    if not width_deg or not math.isfinite(width_deg) or width_deg <= 0:
        return 0
    return max(0, min(19, math.ceil(math.log2(px * 360.0 / (256.0 * width_deg)))))


def staffed_class(share: np.ndarray) -> np.ndarray:
    """An area's class by its share of units staffed: all, most (≥ 80 %), or low.

    Examples
    --------
    >>> staffed_class(np.array([1.0, 0.85, 0.5])).tolist()
    ['staffed_all', 'staffed_most', 'staffed_low']
    """
    share = np.asarray(share, dtype=float)
    most = np.where(share >= 0.8, "staffed_most", "staffed_low")
    return np.where(share >= 0.999, "staffed_all", most)


def area_outlines(code: np.ndarray, geoms: np.ndarray, wanted: set | None = None) -> dict:
    """Area code -> the union of its units (of the ``wanted`` codes, default all).

    The units of one area form a coverage: on a 1 cm grid (``SNAP_DEG``) the float gaps
    between neighbours' shared edges close and they merge fast; units that overlap (a
    corridor over grids) are merged the slow way.

    Examples
    --------
    >>> from shapely import box
    >>> out = area_outlines(np.array(["b", "a", "b"]),
    ...                     np.array([box(1, 0, 2, 1), box(5, 5, 6, 6), box(0, 0, 1, 1)]))
    >>> sorted(out), out["b"].area, out["b"].geom_type
    (['a', 'b'], 2.0, 'Polygon')
    """
    code = np.asarray(code, dtype=object)
    order = np.argsort(code, kind="stable")
    code_s, arr = code[order], np.asarray(geoms)[order]
    starts = np.flatnonzero(np.r_[True, code_s[1:] != code_s[:-1]]) if len(code_s) else []
    ends = np.r_[starts[1:], len(code_s)] if len(code_s) else []
    out = {}
    for s, e in zip(starts, ends, strict=True):  # one merge per area
        if wanted is not None and code_s[s] not in wanted:
            continue
        part = shapely.set_precision(arr[s:e], SNAP_DEG, mode="pointwise")
        try:
            merged = shapely.coverage_union_all(part)
        except shapely.errors.GEOSException:  # overlaps (a corridor over grids)
            merged = None
        if merged is None or not shapely.is_valid(merged):
            merged = shapely.union_all(shapely.make_valid(part))
        out[code_s[s]] = merged
    return out


def places_of(admin: pd.DataFrame, unit_codes: object) -> np.ndarray:
    """Positions of the ``admin_areas`` rows (``admin_code``, ``level``) that hold a
    unit of ``unit_codes``: the places a map's search finds by name, at every level
    (the county and township of a village as well as the village), and no place
    outside the units (a scoped map names no other district).

    Examples
    --------
    >>> admin = pd.DataFrame({"admin_code": ["430202", "430202001", "430203"],
    ...                       "level": ["county", "township", "county"]})
    >>> places_of(admin, ["430202001001"]).tolist()
    [0, 1]
    """
    if not {"admin_code", "level"} <= set(admin.columns) or not len(admin):
        return np.zeros(0, dtype=np.int64)
    unit_codes = pd.Series(pd.unique(pd.Series(unit_codes, dtype=object).dropna().astype(str)))
    level = admin["level"].astype(str).to_numpy()
    code = admin["admin_code"].astype(str).to_numpy()
    keep = np.zeros(len(admin), dtype=bool)
    for lv in set(level) & set(codes.LEVELS):
        held = set(codes.ancestor(unit_codes, lv).dropna()) if len(unit_codes) else set()
        keep |= (level == lv) & np.isin(code, list(held))
    return np.flatnonzero(keep)


def cases_named(reports: pd.DataFrame, q: str) -> np.ndarray:
    """Positions of the ``reports`` whose case id or hotline ticket number
    (``ticket_id``) is ``q``, whole, in any case and with spaces around: what a map's
    search finds of the cases (never a part of an id: a search for ``R00`` is no list
    of every case).

    Examples
    --------
    >>> r = pd.DataFrame({"report_id": ["R0002920", "R20261122-001327"],
    ...                   "ticket_id": [None, "GD2026-118"]})
    >>> cases_named(r, "r0002920").tolist(), cases_named(r, " GD2026-118 ").tolist()
    ([0], [1])
    >>> cases_named(r, "R00").tolist()
    []
    """
    key = q.strip().upper()
    if not key or "report_id" not in reports.columns:
        return np.zeros(0, dtype=np.int64)
    hit = (reports["report_id"].astype("string").str.strip().str.upper() == key).to_numpy(
        dtype=bool, na_value=False
    )
    if "ticket_id" in reports.columns:
        ticket = reports["ticket_id"].astype("string").str.strip().str.upper() == key
        hit |= ticket.to_numpy(dtype=bool, na_value=False)
    return np.flatnonzero(hit)


def case_bounds(cases: pd.DataFrame, units: pd.DataFrame | None = None) -> np.ndarray:
    """South, west, north, east (WGS84, 6 decimals) of each case: its point, else the
    bounds of its unit (``unit_id`` in ``units``); NaN when it has neither (a case not
    on the map).

    Examples
    --------
    >>> import geopandas as gpd
    >>> cases = gpd.GeoDataFrame({"unit_id": [None, "U1", None]},
    ...     geometry=[shapely.Point(113.1, 27.8), None, None], crs=4326)
    >>> units = gpd.GeoDataFrame({"unit_id": ["U1"]},
    ...     geometry=[shapely.box(113.0, 27.7, 113.01, 27.71)], crs=4326)
    >>> case_bounds(cases, units).tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[27.8, 113.1, 27.8, 113.1], [27.7, 113.0, 27.71, 113.01], [nan, nan, nan, nan]]
    """
    out = np.full((len(cases), 4), np.nan)
    geom_col = getattr(cases, "_geometry_column_name", None)
    if geom_col in cases.columns:
        crs = getattr(cases, "crs", None)
        frame = cases.to_crs(4326) if crs is not None and not crs.equals(4326) else cases
        b = shapely.bounds(np.asarray(frame.geometry.to_numpy(), dtype=object))  # w s e n
        out = b[:, [1, 0, 3, 2]]
    missing = np.isnan(out).any(axis=1)
    if missing.any() and units is not None and "unit_id" in cases.columns and len(units):
        crs = getattr(units, "crs", None)
        units = units.to_crs(4326) if crs is not None and not crs.equals(4326) else units
        ub = shapely.bounds(np.asarray(units.geometry.to_numpy(), dtype=object))
        where = pd.Index(units["unit_id"].astype(str)).get_indexer(
            cases["unit_id"].astype("string").fillna("").to_numpy(dtype=object)
        )
        take = missing & (where >= 0)
        out[take] = ub[where[take]][:, [1, 0, 3, 2]]
    return np.round(out, 6)
