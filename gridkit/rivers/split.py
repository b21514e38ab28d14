"""River reaches and corridor units: :func:`split_rivers`.

Rivers are cut where they cross administrative boundaries (the finest level given)
and, if asked, at confluences; each piece is divided into the fewest equal reaches no
longer than ``max_length_m``. Where a river *is* the boundary between two areas it
stays one boundary reach with one unit per bank (左右岸). Every reach gets a corridor
unit: the corridor (``corridor_m`` each side) shared by nearest reach within each
area, main stems before tributaries, water bodies before rivers. Corridor spilling
into a neighbouring area joins the unit there it shares an edge with; where it
touches none it becomes a unit of that area attached to its nearest reach
(``REACH@AREA``, reported as ``corridor_spill``), so no corridor is dropped.

All measuring happens in the local metric CRS (:func:`gridkit.crs.local_metric_crs`);
the split itself is one numpy pass over cumulative vertex distances
(:mod:`gridkit.rivers.linesplit`).

Examples
--------
>>> import geodata
>>> reaches, units = split_rivers(geodata.xiang_river(), geodata.zhuzhou_admin(),
...                               max_length_m=5000, min_length_m=500)
>>> bool(reaches["length_m"].max() <= 5000)
True
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.crs import like_input, local_metric_crs, result_crs
from gridkit.errors import CRSError, GridkitError, GridkitWarning, once_per_call
from gridkit.layers import check_layer
from gridkit.rivers.admin import Tiling, clean_tiling
from gridkit.rivers.chiefs import ChiefCoverage, chief_coverage  # re-exported (see __all__)
from gridkit.rivers.corridors import CorridorOptions, corridor_units
from gridkit.rivers.linesplit import LineTable, crossing_measures, equal_breaks
from gridkit.rivers.network import Network, prepare_network
from gridkit.validate.report import ValidationReport

# ChiefCoverage and chief_coverage live in gridkit.rivers.chiefs; gridkit/__init__ and
# gridkit/demo still import them from here
__all__ = ["ChiefCoverage", "RiverSplit", "chief_coverage", "split_rivers"]

_EPS = 1e-6  # metres: measures closer than this are the same cut


@dataclass
class RiverSplit:
    """Result of :func:`split_rivers`.

    Unpacks as ``reaches, units = split_rivers(...)``; the cleaning and network
    report and the cleaned tiling are attributes.

    Attributes
    ----------
    reaches
        ``reaches`` layer: ``reach_id``, ``river_id``, ``admin_code``, ``seq``,
        ``length_m``, ``boundary``, plus ``name``, ``left_code``/``right_code``
        (banks of boundary reaches, looking downstream), ``rank`` (0 main stem).
    units
        ``units`` layer (kind ``river_reach`` / ``water_body``), or empty when
        ``corridor_m`` is None.
    report
        :class:`gridkit.validate.ValidationReport` of what was cleaned, skipped or
        could not be met (all warnings).
    admin_areas
        The cleaned finest-level tiling that was used for cutting (``admin_code``,
        ``level``), in the CRS of the rivers like the layers.

    Examples
    --------
    >>> import geopandas as gpd, warnings
    >>> from shapely import LineString, box
    >>> rivers = gpd.GeoDataFrame({"river_id": ["A"], "name": ["A"]},
    ...     geometry=[LineString([(500, 500), (1500, 500)])], crs=32649)
    >>> admin = gpd.GeoDataFrame({"admin_code": ["430202", "430203"], "name": ["x", "y"],
    ...     "level": "county", "parent_code": "430200"},
    ...     geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=32649)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = split_rivers(rivers, admin, max_length_m=300, corridor_m=None)
    >>> reaches, units = result  # unpacks
    >>> reaches["reach_id"].tolist()  # doctest: +NORMALIZE_WHITESPACE
    ['430202-A-001', '430202-A-002', '430203-A-001', '430203-A-002']
    >>> len(units), result.admin_areas["admin_code"].tolist()
    (0, ['430202', '430203'])
    """

    reaches: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    report: ValidationReport = field(default_factory=ValidationReport)
    admin_areas: gpd.GeoDataFrame | None = None

    def __iter__(self) -> Iterator[gpd.GeoDataFrame]:
        yield self.reaches
        yield self.units

    def __repr__(self) -> str:
        """One line: reaches, rivers, units and the report's verdict.

        Examples
        --------
        >>> import geopandas as gpd
        >>> RiverSplit(gpd.GeoDataFrame({"river_id": ["A", "A"]}), gpd.GeoDataFrame())
        <RiverSplit: 2 reaches of 1 river, 0 units; <ValidationReport valid: no problems>>
        """
        rivers = self.reaches["river_id"].nunique() if "river_id" in self.reaches else 0
        return (
            f"<RiverSplit: {len(self.reaches):,} reaches of {rivers:,} "
            f"river{'s' if rivers != 1 else ''}, {len(self.units):,} units; {self.report!r}>"
        )


def _drop_zero_length(rivers: gpd.GeoDataFrame, report: ValidationReport) -> gpd.GeoDataFrame:
    """Remove zero-length parts (they are invalid lines) and report them."""
    if not isinstance(rivers, gpd.GeoDataFrame) or "river_id" not in rivers.columns:
        return rivers
    geoms = np.asarray(rivers.geometry.array)
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if not ok.any():
        return rivers
    present = geoms[ok]
    if (shapely.get_type_id(present) == 1).all() and (shapely.length(present) > 0).all():
        return rivers  # single lines, none of zero length: no need to copy every part
    parts, idx = shapely.get_parts(present, return_index=True)
    zero = shapely.length(parts) <= 0
    if not zero.any():
        return rivers
    rows = np.flatnonzero(ok)
    ids = sorted(set(map(str, rivers["river_id"].to_numpy()[rows[idx[zero]]])))
    report.add(
        "zero_length",
        f"{int(zero.sum())} zero-length part(s) of rivers {', '.join(ids)} were skipped.",
        rows=ids,
        severity="warning",
    )
    fixed = geoms.copy()
    keep_parts = (
        pd.Series(list(parts[~zero]))
        .groupby(idx[~zero])
        .agg(lambda s: shapely.multilinestrings(list(s)) if len(s) > 1 else s.iloc[0])
    )
    new = np.full(ok.sum(), None, dtype=object)
    new[keep_parts.index.to_numpy()] = keep_parts.to_numpy()
    fixed[rows] = new
    out = rivers.copy()
    out[rivers.geometry.name] = gpd.GeoSeries(fixed, index=rivers.index, crs=rivers.crs)
    gone = shapely.is_missing(fixed)
    if gone.any():
        out = out[~gone]
    return out


def _check_options(
    max_length_m: float,
    min_length_m: float | None,
    max_shoreline_m: float | None,
    corridor_m: float | None,
) -> None:
    """Raise GridkitError for impossible lengths (``sliver_m2`` is checked after the
    layers)."""
    if not (np.isfinite(max_length_m) and max_length_m > 0):
        raise GridkitError(f"max_length_m must be a positive number, got {max_length_m!r}.")
    if min_length_m is not None and not (0 <= min_length_m <= max_length_m):
        raise GridkitError(
            f"min_length_m ({min_length_m!r}) must lie between 0 and max_length_m "
            f"({max_length_m!r})."
        )
    for name, value in (("max_shoreline_m", max_shoreline_m), ("corridor_m", corridor_m)):
        if value is not None and not (np.isfinite(value) and value > 0):
            raise GridkitError(
                f"{name} must be a positive number of metres or None, got {value!r}."
            )


@dataclass(frozen=True)
class _Options:
    """How :func:`split_rivers` cuts reaches (see there): lengths, confluence cuts,
    boundary tolerance ``tol`` (0 is off) and shortest boundary stretch ``bmin``."""

    max_length_m: float
    min_length_m: float | None
    split_at_confluences: bool
    tol: float
    bmin: float


def _check_layers(
    rivers: gpd.GeoDataFrame,
    admin_areas: gpd.GeoDataFrame,
    water_bodies: gpd.GeoDataFrame | None,
    report: ValidationReport,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """The layers checked against the contract, zero-length river parts dropped."""
    rivers = _drop_zero_length(rivers, report)
    rivers = check_layer(rivers, "rivers", source="rivers")
    admin_areas = check_layer(admin_areas, "admin_areas", source="admin_areas")
    if water_bodies is not None:
        water_bodies = check_layer(water_bodies, "water_bodies", source="water_bodies")
    for name, df in (
        ("rivers", rivers),
        ("admin_areas", admin_areas),
        ("water_bodies", water_bodies),
    ):
        if df is not None and df.crs is None:
            raise CRSError(
                f"{name} has no coordinate reference system.",
                hint="Set one with .set_crs(...) or read it with crs=.",
            )
    return rivers, admin_areas, water_bodies


@once_per_call
def split_rivers(
    rivers: gpd.GeoDataFrame,
    admin_areas: gpd.GeoDataFrame,
    *,
    max_length_m: float,
    min_length_m: float | None = None,
    corridor_m: float | None = 50.0,
    water_bodies: gpd.GeoDataFrame | None = None,
    split_at_confluences: bool = True,
    outlet: shapely.Point | tuple[float, float] | None = None,
    boundary_tolerance_m: float | None = None,
    boundary_min_m: float | None = None,
    snap_m: float = 10.0,
    version: int = 1,
    max_shoreline_m: float | None = None,
    sliver_m2: float = 100.0,
) -> RiverSplit:
    """Split rivers into reaches at admin boundaries and by length, with corridor units.

    Parameters
    ----------
    rivers
        ``rivers`` layer (``river_id``, ``name``; LineString/MultiLineString).
    admin_areas
        ``admin_areas`` layer. Rivers are cut at the polygons of the finest level
        present (village > township > county > city). Overlaps and gaps thinner than
        ``2 * snap_m`` are cleaned first and reported.
    max_length_m
        No reach is longer than this: each piece is divided into the fewest equal
        reaches not longer than it.
    min_length_m
        Pieces shorter than this merge into a neighbour of the same river and area
        (across a confluence cut), re-divided equally if that passes the maximum.
        Pieces that cannot merge are kept and reported (``short_piece``).
    corridor_m
        Corridor half-width for the units; ``None`` skips the units.
    water_bodies
        ``water_bodies`` layer: each becomes a unit per area it lies in, and takes
        precedence over river corridors.
    split_at_confluences
        Also cut where a tributary joins.
    outlet
        A point (same CRS as ``rivers``): rivers whose direction the network does not
        decide flow towards it. Otherwise the drawn direction is kept.
    boundary_tolerance_m
        A river within this distance of the boundary between two areas, for at least
        ``boundary_min_m``, is a boundary river there: one reach with one unit per
        bank. Defaults to ``corridor_m`` (0 turns detection off).
    boundary_min_m
        Shortest boundary stretch; defaults to 8 x the tolerance, so that a river
        merely crossing a boundary is cut there instead.
    snap_m
        Gaps in the admin tiling thinner than twice this are filled.
    version
        Written to the units' ``version`` column.
    max_shoreline_m
        Water-body units whose outline (shoreline, plus the admin boundary where an
        area cuts the water body) is longer than this are split into the fewest units
        of about equal outline not longer than it (ids ``...-s01``, ``-s02``, ...);
        each is one Polygon and together they tile the water body exactly.
    sliver_m2
        Corridor pieces smaller than this (spill slivers, tiny extra parts of a
        reach's corridor) merge into the corridor unit of the same area sharing the
        longest edge with them; they are reported as ``sliver_merged``. Pieces with no
        such neighbour are kept. ``0`` keeps every piece.

    Returns
    -------
    RiverSplit
        ``reaches, units = split_rivers(...)``, plus ``.report`` and
        ``.admin_areas``. Ids are ``{admin_code}-{river_id}-{n:03d}`` numbered per river
        and area in flow order (``{code}+{code}-{river_id}-{n:03d}`` on boundaries), so
        a change in one area leaves every id elsewhere untouched. ``seq`` numbers the
        reaches of each river upstream -> downstream. Layers come back in the CRS of
        ``rivers`` (as geopandas answers; files written by gridkit are WGS84).

    Raises
    ------
    InvalidLayerError
        Inputs that break the data contract.
    GridkitError
        Impossible options.

    Examples
    --------
    >>> import geodata
    >>> result = split_rivers(geodata.xiang_river(), geodata.zhuzhou_admin(),
    ...                       max_length_m=4000, min_length_m=300, corridor_m=100)
    >>> reaches, units = result
    >>> sorted(set(units["kind"]))
    ['river_reach']
    """
    _check_options(max_length_m, min_length_m, max_shoreline_m, corridor_m)
    report = ValidationReport()
    rivers, admin_areas, water_bodies = _check_layers(rivers, admin_areas, water_bodies, report)
    if not np.isfinite(sliver_m2) or sliver_m2 < 0:
        raise GridkitError(f"sliver_m2 must be a finite area >= 0, got {sliver_m2!r}")
    out_crs = result_crs(rivers)
    metric = local_metric_crs(rivers)
    # in the metric CRS already, to_crs would only copy the frames (they are only read)
    rivers_m = rivers if rivers.crs.is_exact_same(metric) else rivers.to_crs(metric)
    same = admin_areas.crs.is_exact_same(metric)
    admin_m = admin_areas if same else admin_areas.to_crs(metric)
    # check_layer proved the areas valid, and they are unchanged in the same CRS
    tiling = clean_tiling(admin_m, snap_m=snap_m, report=report, known_valid=same)

    if outlet is not None:
        pt = shapely.Point(outlet) if not isinstance(outlet, shapely.Point) else outlet
        outlet = gpd.GeoSeries([pt], crs=out_crs).to_crs(metric).iloc[0]
    tol = corridor_m or 0.0 if boundary_tolerance_m is None else boundary_tolerance_m
    tol = float(tol or 0.0)
    bmin = 8.0 * tol if boundary_min_m is None else float(boundary_min_m)
    options = _Options(max_length_m, min_length_m, split_at_confluences, tol, bmin)
    river_ids = rivers_m["river_id"].astype(str).to_numpy()
    net = prepare_network(
        river_ids,
        np.asarray(rivers_m.geometry.array),
        outlet=outlet,
        corridor_m=float(corridor_m or 0.0),
        report=report,
    )
    job = _ReachJob(net, tiling, river_ids, rivers_m["name"].to_numpy(), options, report)
    reaches = gpd.GeoDataFrame(_reaches(job), geometry="geometry", crs=metric)
    if corridor_m is not None:
        corridors = CorridorOptions(
            corridor_m,
            water_bodies=water_bodies.to_crs(metric) if water_bodies is not None else None,
            version=version,
            max_shoreline_m=max_shoreline_m,
            sliver_m2=float(sliver_m2),
        )
        units = corridor_units(reaches, tiling, corridors, report=report)
        units = _reproject_units(units, out_crs, report)
    else:  # no units: nothing to reproject, made in the output CRS directly
        units = _empty_units().set_crs(out_crs)  # a copy
    cleaned = gpd.GeoDataFrame(
        {"admin_code": tiling.codes, "level": tiling.level}, geometry=tiling.geoms, crs=metric
    )
    _warn(report)
    return RiverSplit(like_input(reaches, out_crs), units, report, like_input(cleaned, out_crs))


@functools.cache
def _empty_units() -> gpd.GeoDataFrame:
    """The empty ``units`` layer without a CRS, built once: ``set_crs`` returns a copy
    at a fifth of the cost of building the frame again."""
    return gpd.GeoDataFrame(
        {
            c: pd.Series(dtype=object)
            for c in ("unit_id", "kind", "parent_id", "reach_id", "admin_code", "bank")
        },
        geometry=gpd.GeoSeries([]),
    )


def _reproject_units(
    units: gpd.GeoDataFrame, crs: pyproj.CRS, report: ValidationReport
) -> gpd.GeoDataFrame:
    """``units`` in ``crs``, re-validated: the corridor snaps units to a 1 cm grid so
    they survive reprojection; a unit that still comes out invalid is repaired with
    ``make_valid`` (keeping its largest polygon) and reported as ``repaired_geometry``."""
    out = like_input(units, crs)
    if not len(out):
        return out
    g = np.asarray(out.geometry.array)
    bad = ~shapely.is_valid(g)
    if not bad.any():
        return out
    fixed = []
    for geom in g[bad]:
        parts = shapely.get_parts(shapely.make_valid(geom))
        parts = parts[shapely.get_type_id(parts) == 3]
        if len(parts) > 1:
            parts = shapely.get_parts(shapely.union_all(parts))
        fixed.append(parts[int(np.argmax(shapely.area(parts)))] if len(parts) else geom)
    g = g.copy()
    g[bad] = np.array(fixed, dtype=object)
    out = out.set_geometry(gpd.GeoSeries(g, index=out.index, crs=out.crs))
    ids = list(out["unit_id"].to_numpy()[bad])
    report.add(
        "repaired_geometry",
        f"{len(ids)} unit(s) were invalid after reprojection and were repaired with "
        f"make_valid (largest polygon kept): {', '.join(map(str, ids[:10]))}"
        f"{' ...' if len(ids) > 10 else ''}.",
        rows=ids,
        severity="warning",
    )
    return out


def _warn(report: ValidationReport) -> None:
    for p in report.problems:
        warnings.warn(f"{p.code}: {p.message}", GridkitWarning, stacklevel=3)


# --------------------------------------------------------------------------- pieces


def _intervals(
    table: LineTable, parts: np.ndarray, tiling: Tiling
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut measures where each part crosses an area boundary; label each interval.

    Returns part, start, end, area (index into tiling; -1 outside every area),
    consecutive intervals with the same area merged.
    """
    n_parts = len(parts)
    # one vectorised pass over segment pairs (river segment x unique boundary edge):
    # no GEOS overlay per river/boundary pair
    cut_part, m = crossing_measures(table, tiling.edges)
    lengths = table.lengths
    part_all = np.concatenate([cut_part, np.arange(n_parts), np.arange(n_parts)])
    m_all = np.concatenate([m, np.zeros(n_parts), lengths])
    return _label_intervals(table, part_all, m_all, tiling)


def _sorted_cuts(
    part: np.ndarray, m: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.clip(m, 0.0, lengths[part])
    order = np.lexsort((m, part))
    part, m = part[order], m[order]
    keep = np.r_[True, (np.diff(part) != 0) | (np.diff(m) > _EPS)]
    part, m = part[keep], m[keep]
    # the final cut of each part must be exactly its length
    last = np.r_[part[1:] != part[:-1], True]
    m[last] = lengths[part[last]]
    same = np.r_[part[1:] == part[:-1]]
    start_part = part[:-1][same]
    return start_part, m[:-1][same], m[1:][same]


def _locate_area(points: np.ndarray, tiling: Tiling) -> np.ndarray:
    """Index of the area holding each point (lowest code on ties), -1 for none."""
    pt, ar = tiling.tree.query(points, predicate="intersects")
    area = np.full(len(points), len(tiling), dtype=np.int64)
    np.minimum.at(area, pt, ar)
    area[area == len(tiling)] = -1
    return area


def _label_intervals(
    table: LineTable, part: np.ndarray, m: np.ndarray, tiling: Tiling
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    p, a, b = _sorted_cuts(part, m, table.lengths)
    mid = shapely.points(table.interpolate(p, (a + b) / 2))
    area = _locate_area(mid, tiling)
    return _merge_equal(p, a, b, area)


def _merge_equal(
    p: np.ndarray, a: np.ndarray, b: np.ndarray, label: np.ndarray, hard: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge consecutive intervals of one part with the same label (unless ``hard`` cut)."""
    if len(p) == 0:
        return p, a, b, label
    new = np.r_[True, (p[1:] != p[:-1]) | (label[1:] != label[:-1])]
    if hard is not None:
        new |= hard
    np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(p) - 1]
    return p[first], a[first], b[last], label[first]


def _boundary_runs(
    table: LineTable, tiling: Tiling, tol: float, bmin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stretches where a part stays within ``tol`` of the boundary of two areas.

    Returns part, start, end, lo, hi (area indices, lo < hi) of every run at least
    ``bmin`` long.
    """
    empty = (
        np.empty(0, np.int64),
        np.empty(0),
        np.empty(0),
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )
    step = tol / 2.0
    lengths = table.lengths
    part, i = _samples_near(table, step, tuple(shapely.total_bounds(tiling.geoms)), tol)
    m = np.minimum(i * step, lengths[part])
    pts = shapely.points(table.interpolate(part, m))
    k = len(tiling)
    own = _locate_area(pts, tiling)
    si, ai = tiling.tree.query(pts, predicate="dwithin", distance=tol)
    other = ai != own[si]
    si, ai = si[other], ai[other]
    if len(si) == 0:
        return empty
    d = shapely.distance(pts[si], tiling.geoms[ai])
    order = np.lexsort((ai, d, si))
    si, ai = si[order], ai[order]
    first = np.r_[True, si[1:] != si[:-1]]
    nearest = np.full(len(pts), -1, dtype=np.int64)
    nearest[si[first]] = ai[first]
    ok = (nearest >= 0) & (own >= 0)
    lo = np.minimum(own, nearest)
    hi = np.maximum(own, nearest)
    label = np.where(ok, lo * k + hi, -1)
    # runs of equal label on one part; samples left out (far from the tiling) end a run
    new = np.r_[True, (part[1:] != part[:-1]) | (label[1:] != label[:-1]) | (np.diff(i) != 1)]
    start = np.flatnonzero(new)
    end = np.r_[start[1:] - 1, len(part) - 1]
    rl = label[start]
    rp, ra, rb = part[start], m[start], m[end]
    keep = rl >= 0
    rp, ra, rb, rl = rp[keep], ra[keep], rb[keep], rl[keep]
    # bridge short interruptions (zigzags a little wider than the tolerance)
    if len(rp) > 1:
        join = (rp[1:] == rp[:-1]) & (rl[1:] == rl[:-1]) & (ra[1:] - rb[:-1] <= 2 * tol)
        new = np.r_[True, ~join]
        first = np.flatnonzero(new)
        last = np.r_[first[1:] - 1, len(rp) - 1]
        rp, ra, rb, rl = rp[first], ra[first], rb[last], rl[first]
    long = (rb - ra) >= bmin
    rp, ra, rb, rl = rp[long], ra[long], rb[long], rl[long]
    return rp, ra, rb, rl // k, rl % k


def _samples_near(
    table: LineTable, step: float, box: tuple[float, float, float, float], margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Part and index ``i`` of the samples at ``min(i * step, length)`` along each part
    (``i = 0 .. floor(length / step) + 1``) that lie within ``box`` grown by ``margin``
    (give or take a sample at its edge), sorted by part and index.

    A river is measured along its whole line whatever the tiling's extent, but only
    sampled where the tiling is: a sample elsewhere lies in no area and starts no run,
    so the runs are those of sampling the whole line, at a cost bounded by the length
    of river inside the box (each segment is clipped to it, Liang-Barsky, vectorised).
    """
    coords, offsets, cum = table.coords, table.offsets, table.cum
    seg = np.ones(len(coords), dtype=bool)
    seg[offsets[:-1]] = False  # vertex j ends the segment j-1 -> j unless it starts a line
    j = np.flatnonzero(seg)
    p0, d = coords[j - 1], coords[j] - coords[j - 1]
    lo = np.array(box[:2]) - margin
    hi = np.array(box[2:]) + margin
    with np.errstate(divide="ignore", invalid="ignore"):
        ta, tb = (lo - p0) / d, (hi - p0) / d
    flat = d == 0  # along an axis the segment does not move on: all or nothing
    inside = (p0 >= lo) & (p0 <= hi)
    ta = np.where(flat, np.where(inside, -np.inf, np.inf), ta)
    tb = np.where(flat, np.inf, tb)
    t0 = np.maximum(np.minimum(ta, tb).max(axis=1), 0.0)
    t1 = np.minimum(np.maximum(ta, tb).min(axis=1), 1.0)
    meet = t0 <= t1
    j, t0, t1 = j[meet], t0[meet], t1[meet]
    c0, span = cum[j - 1], cum[j] - cum[j - 1]
    line = np.searchsorted(offsets, j, side="right") - 1
    first = np.ceil((c0 + t0 * span) / step).astype(np.int64)
    last = np.floor(np.where(t1 >= 1.0, cum[j], c0 + t1 * span) / step).astype(np.int64)
    # the segment ending a line also holds the last sample, at its end
    last = np.where((j == offsets[line + 1] - 1) & (t1 >= 1.0), last + 1, last)
    n = np.maximum(last - first + 1, 0)
    part = np.repeat(line, n)
    i = np.repeat(first, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    # a sample on a vertex comes from both segments: keep it once
    keep = np.unique(np.c_[part, i], axis=0) if len(part) else np.empty((0, 2), np.int64)
    return keep[:, 0], keep[:, 1]


def _bank_sides(
    table: LineTable,
    tiling: Tiling,
    part: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float,
) -> np.ndarray:
    """Which of ``lo``/``hi`` lies on the left bank (looking downstream) of each run."""
    n_s = 9
    frac = (np.arange(n_s) + 0.5) / n_s
    run = np.repeat(np.arange(len(part)), n_s)
    m = a[run] + (b - a)[run] * np.tile(frac, len(part))
    p = part[run]
    xy = table.interpolate(p, m)
    t = table.tangent(p, m)
    left_pts = shapely.points(xy + np.column_stack([-t[:, 1], t[:, 0]]) * tol)
    area = _locate_area(left_pts, tiling)
    vote_lo = np.bincount(run, weights=(area == lo[run]), minlength=len(part))
    vote_hi = np.bincount(run, weights=(area == hi[run]), minlength=len(part))
    return np.where(vote_hi > vote_lo, hi, lo)


@dataclass(frozen=True)
class _ReachJob:
    """One river network to cut into reaches at the areas of ``tiling``."""

    net: Network
    tiling: Tiling
    river_ids: np.ndarray  # str, per river
    river_names: np.ndarray  # per river
    options: _Options
    report: ValidationReport

    @cached_property
    def table(self) -> LineTable:
        return LineTable.from_lines(self.net.parts)

    @cached_property
    def base(self) -> np.ndarray:
        """Key of each part's start: measures shifted so they increase over all parts."""
        return self.table.key[self.table.offsets[:-1]]


@dataclass
class _Pieces:
    """Intervals ``[a, b]`` along parts ``p``, each with a label (>= 0 an area, -1
    outside every area, >= k a boundary pair ``k + lo * k + hi``), the area on the left
    bank of boundary pieces (else -1), and whether a confluence cut starts it (``hard``)."""

    p: np.ndarray
    a: np.ndarray
    b: np.ndarray
    label: np.ndarray
    left: np.ndarray
    hard: np.ndarray

    def take(self, keep: np.ndarray) -> _Pieces:
        return _Pieces(*(getattr(self, f.name)[keep] for f in fields(self)))

    def recut(self, job: _ReachJob, cut_p: np.ndarray, cut_m: np.ndarray) -> _Pieces:
        """The pieces cut again at ``(cut_p, cut_m)``; every new piece keeps the label
        and bank of the piece it lies in, and no cut is hard."""
        ep, ea, eb = _sorted_cuts(
            np.concatenate([self.p, self.p, cut_p]),
            np.concatenate([self.a, self.b, cut_m]),
            job.table.lengths,
        )
        mid = (ea + eb) / 2
        label = _lookup(job.base, self.p, self.a, self.b, self.label, ep, mid, default=-1)
        left = _lookup(job.base, self.p, self.a, self.b, self.left, ep, mid, default=-1)
        return _Pieces(ep, ea, eb, label, left, np.zeros(len(ep), dtype=bool))


def _reaches(job: _ReachJob) -> pd.DataFrame:
    """The ``reaches`` rows (metric geometry): pieces by area, boundary runs and
    confluences, merged and divided equally."""
    pieces = _area_pieces(job)
    if job.options.tol > 0 and len(pieces.p):
        pieces = _with_boundary_runs(job, pieces)
    if job.options.split_at_confluences and job.net.mouths and len(pieces.p):
        pieces = _with_confluences(job, pieces)
    pieces = _merged(job, pieces)
    pieces = _inside_areas(job, pieces)
    return _divided(job, pieces)


def _area_pieces(job: _ReachJob) -> _Pieces:
    """The parts cut where they cross an area boundary, labelled by area."""
    p, a, b, area = _intervals(job.table, job.net.parts, job.tiling)
    return _Pieces(p, a, b, area, np.full(len(p), -1), np.zeros(len(p), dtype=bool))


def _with_boundary_runs(job: _ReachJob, pieces: _Pieces) -> _Pieces:
    """Stretches along the boundary of two areas become boundary pieces (runs win
    over areas), with the area on their left bank."""
    tol, k = job.options.tol, len(job.tiling)
    rp, ra, rb, rlo, rhi = _boundary_runs(job.table, job.tiling, tol, job.options.bmin)
    if not len(rp):
        return pieces
    rleft = _bank_sides(job.table, job.tiling, rp, ra, rb, rlo, rhi, tol)
    # re-cut: interval ends plus run ends
    cut = pieces.recut(job, np.concatenate([rp, rp]), np.concatenate([ra, rb]))
    run_e = _lookup(
        job.base, rp, ra, rb, np.arange(len(rp)), cut.p, (cut.a + cut.b) / 2, default=-1
    )
    in_run = run_e >= 0
    r = np.maximum(run_e, 0)
    label = np.where(in_run, k + rlo[r] * k + rhi[r], cut.label)
    left = np.where(in_run, rleft[r], -1)
    p, a, b, label = _merge_equal(cut.p, cut.a, cut.b, label)
    left = _lookup(job.base, cut.p, cut.a, cut.b, left, p, (a + b) / 2, default=-1)
    return _Pieces(p, a, b, label, left, np.zeros(len(p), dtype=bool))


def _with_confluences(job: _ReachJob, pieces: _Pieces) -> _Pieces:
    """Pieces also cut where a tributary joins; such a cut starts a new piece even
    when the label is the same (``hard``)."""
    parts, lengths = job.net.parts, job.table.lengths
    recv = np.array([t for _, t, _ in job.net.mouths])
    mpts = np.array([pt for _, _, pt in job.net.mouths], dtype=object)
    mm = shapely.line_locate_point(parts[recv], mpts)
    inner = (mm > _EPS) & (mm < lengths[recv] - _EPS)
    recv, mm = recv[inner], mm[inner]
    if not len(recv):
        return pieces
    cut = pieces.recut(job, recv, mm)
    conf_key = np.round(np.c_[recv, mm], 6)
    start_key = np.round(np.c_[cut.p, cut.a], 6)
    cut.hard = _rows_in(start_key, conf_key)
    return cut


def _merged(job: _ReachJob, pieces: _Pieces) -> _Pieces:
    """Consecutive pieces of one label merged, except across confluence cuts (which
    are dropped next to pieces shorter than ``min_length_m``)."""
    if job.options.min_length_m:
        pieces = _merge_short(pieces, job.options.min_length_m)
    return _merge_keep(pieces)


def _inside_areas(job: _ReachJob, pieces: _Pieces) -> _Pieces:
    """The pieces inside some area; stretches outside every area and pieces left
    shorter than ``min_length_m`` are reported."""
    river_of = job.net.part_river
    outside = pieces.label < 0
    if outside.any():
        out = pieces.take(outside)
        lost = pd.Series(out.b - out.a).groupby(river_of[out.p]).sum()
        lost = lost[lost > _EPS]
        if len(lost):
            ids = job.river_ids[lost.index.to_numpy()]
            detail = ", ".join(f"{r} {v:,.0f} m" for r, v in zip(ids, lost, strict=True))
            job.report.add(
                "outside_areas",
                f"stretches of rivers outside every admin area were left out ({detail}).",
                rows=ids,
                severity="warning",
            )
    pieces = pieces.take(~outside)
    min_length_m = job.options.min_length_m
    if min_length_m:
        short = (pieces.b - pieces.a) < min_length_m
        if short.any():
            ids = sorted(set(job.river_ids[river_of[pieces.p[short]]]))
            job.report.add(
                "short_piece",
                f"{int(short.sum())} piece(s) of rivers {', '.join(ids)} are shorter than "
                f"min_length_m={min_length_m:g} and have no neighbour of the same river and "
                "area to merge into; they were kept as short reaches.",
                rows=ids,
                severity="warning",
            )
    return pieces


_REACH_COLUMNS = (
    "reach_id",
    "river_id",
    "admin_code",
    "seq",
    "length_m",
    "boundary",
    "name",
    "left_code",
    "right_code",
    "rank",
)


def _divided(job: _ReachJob, pieces: _Pieces) -> pd.DataFrame:
    """Every piece divided into the fewest equal reaches no longer than
    ``max_length_m``, numbered in flow order."""
    piece, s, e = equal_breaks(pieces.b - pieces.a, job.options.max_length_m)
    rp = pieces.p[piece]
    ra = pieces.a[piece] + s
    rb = pieces.a[piece] + e
    # flow order within each river: part order, then measure
    order = _flow_order(rp, ra, job.net.part_river, job.net.part_order)
    if len(order) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in _REACH_COLUMNS}
            | {"geometry": np.empty(0, dtype=object)}
        )
    k = len(job.tiling)
    rlabel = pieces.label[piece][order]
    river = job.net.part_river[rp][order]
    is_b = rlabel >= k
    lo = np.where(is_b, (rlabel - k) // k, rlabel)
    hi = np.where(is_b, (rlabel - k) % k, -1)
    rleft = pieces.left[piece][order]
    codes = job.tiling.codes
    seq, reach_id = _numbering(job, river, lo, hi, is_b)
    river_names = job.river_names
    if all(isinstance(v, str) for v in river_names.tolist()):
        names = _str_take(river_names, river)
    else:  # missing or non-text names: let pandas infer the column as before
        names = river_names[river]
    hi_code = np.where(is_b, codes[np.maximum(hi, 0)], "")
    lo_code = codes[lo]
    return pd.DataFrame(
        {
            "reach_id": reach_id,
            "river_id": _str_take(job.river_ids, river),
            "admin_code": _str_take(codes, lo),
            "seq": seq.astype(np.int64),
            "length_m": (rb - ra)[order].astype(float),
            "boundary": is_b.astype(bool),
            "name": names,
            "left_code": np.where(is_b, codes[np.maximum(rleft, 0)], None),
            "right_code": np.where(is_b, np.where(rleft == lo, hi_code, lo_code), None),
            "rank": job.net.rank[river],
            "geometry": job.table.substrings(rp, ra, rb)[order],
        }
    )


def _numbering(
    job: _ReachJob, river: np.ndarray, lo: np.ndarray, hi: np.ndarray, is_b: np.ndarray
) -> tuple[np.ndarray, object]:
    """``seq`` (position along the river) and ids ``{code}-{river}-{n:03d}`` (``n``:
    position within the river and area, or boundary pair) of reaches in flow order."""
    idx = np.arange(len(river))
    # seq: position within the river (rows are sorted by river)
    new_river = np.r_[True, river[1:] != river[:-1]]
    seq = idx - np.maximum.accumulate(np.where(new_river, idx, 0)) + 1
    # n: position within (river, lo, hi), in flow order
    g = np.lexsort((idx, hi, lo, river))
    gr, gl, gh = river[g], lo[g], hi[g]
    new_g = np.r_[True, (gr[1:] != gr[:-1]) | (gl[1:] != gl[:-1]) | (gh[1:] != gh[:-1])]
    n = np.empty(len(river), dtype=np.int64)
    n[g] = idx - np.maximum.accumulate(np.where(new_g, idx, 0)) + 1
    group = np.empty(len(river), dtype=np.int64)
    group[g] = np.cumsum(new_g) - 1
    codes = job.tiling.codes
    rid = job.river_ids[river]
    lo_code = codes[lo]
    hi_code = np.where(is_b, codes[np.maximum(hi, 0)], "")
    # ids: one "{code}-{river}-" head per (river, area) group and one "{n:03d}" per
    # number, joined as object arrays (numpy's fixed-width string ops cost ~10x more);
    # the loop runs once per group, not per reach
    first = g[new_g]
    heads = np.array(
        [
            f"{c}+{h}-{r}-" if b else f"{c}-{r}-"
            for c, h, r, b in zip(
                lo_code[first].tolist(),
                hi_code[first].tolist(),
                rid[first].tolist(),
                is_b[first].tolist(),
                strict=True,
            )
        ],
        dtype=object,
    )
    numbers = np.array([f"{i:03d}" for i in range(int(n.max()) + 1)], dtype=object)
    return seq, _str_take(heads, group) + _str_take(numbers, n)


def _flow_order(
    part: np.ndarray, m: np.ndarray, part_river: np.ndarray, part_order: np.ndarray
) -> np.ndarray:
    """``np.lexsort((m, part_order[part], part_river[part]))``, cheaper for rows sorted
    by part, then measure.

    Each part is one (river, part order) pair, so a stable sort of the parts' rank in
    that order keeps every part's rows in measure order: a radix sort of small ints
    instead of three merge sorts.
    """
    n_parts = len(part_order)
    dp, dm = np.diff(part), np.diff(m)
    if n_parts >= 2**15 or not ((dp > 0) | ((dp == 0) & (dm > 0))).all():
        return np.lexsort((m, part_order[part], part_river[part]))
    rank = np.empty(n_parts, dtype=np.int16)
    rank[np.lexsort((part_order, part_river))] = np.arange(n_parts)
    return np.argsort(rank[part], kind="stable")


# the dtype pandas gives a column of str objects (``str`` since pandas 3, else object)
_STR_DTYPE = pd.Series(np.array(["a"], dtype=object)).dtype


def _str_take(
    values: np.ndarray, index: np.ndarray
) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``values[index]`` (str objects) as the column pandas would infer from them.

    Taking from the few distinct values already converted is much cheaper than
    converting one Python string per row.
    """
    if isinstance(_STR_DTYPE, pd.StringDtype) and _STR_DTYPE.storage == "pyarrow":
        return pd.array(np.asarray(values, dtype=object), dtype=_STR_DTYPE).take(index)
    return np.asarray(values, dtype=object)[index]


def _lookup(
    base: np.ndarray,
    p: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    values: np.ndarray,
    qp: np.ndarray,
    qm: np.ndarray,
    *,
    default: int,
) -> np.ndarray:
    """Value of the interval (of sorted, disjoint intervals p/a/b) holding (qp, qm).

    ``base`` shifts each part's measures so that keys increase over all parts.
    """
    if len(p) == 0:
        return np.full(len(qp), default)
    key = base[p] + a
    qkey = base[qp] + qm
    j = np.searchsorted(key, qkey, side="right") - 1
    j = np.clip(j, 0, len(p) - 1)
    hit = (p[j] == qp) & (a[j] <= qm + _EPS) & (qm <= b[j] + _EPS)
    return np.where(hit, values[j], default)


def _rows_in(rows: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Boolean mask: which rows of ``rows`` appear in ``table`` (2 float columns)."""
    if len(table) == 0:
        return np.zeros(len(rows), dtype=bool)
    s = {tuple(r) for r in table.tolist()}
    return np.array([tuple(r) in s for r in rows.tolist()], dtype=bool)


def _merge_keep(pieces: _Pieces) -> _Pieces:
    """Consecutive pieces of one part and label merged, except where a hard cut starts
    one."""
    p, label = pieces.p, pieces.label
    new = np.r_[True, (p[1:] != p[:-1]) | (label[1:] != label[:-1])] | pieces.hard
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(p) - 1]
    return _Pieces(
        p[first],
        pieces.a[first],
        pieces.b[last],
        label[first],
        pieces.left[first],
        np.zeros(len(first), dtype=bool),
    )


def _merge_short(pieces: _Pieces, min_len: float) -> _Pieces:
    """Drop confluence cuts next to pieces shorter than ``min_len`` (same river/area)."""
    if len(pieces.p) == 0:
        return pieces
    hard = pieces.hard.copy()
    p, label = pieces.p, pieces.label
    for _ in range(64):  # each pass removes at least one cut; a few passes suffice
        kept = _merge_keep(replace(pieces, hard=hard))
        pp, pl = kept.p, kept.label
        new = np.r_[True, (p[1:] != p[:-1]) | (label[1:] != label[:-1])] | hard
        first = np.flatnonzero(new)
        length = kept.b - kept.a
        short = (length < min_len) & (pl >= 0)
        nxt_same = np.r_[(pp[1:] == pp[:-1]) & (pl[1:] == pl[:-1]), False]
        prv_same = np.r_[False, nxt_same[:-1]]
        cand = short & (nxt_same | prv_same)
        if not cand.any():
            break
        nlen = np.r_[length[1:], np.inf]
        plen = np.r_[np.inf, length[:-1]]
        use_next = nxt_same & (~prv_same | (nlen < plen))
        changed = False
        for i in np.flatnonzero(cand):
            j = i + 1 if use_next[i] else i
            if j < len(first) and hard[first[j]]:
                hard[first[j]] = False
                changed = True
        if not changed:
            break
    return replace(pieces, hard=hard)
