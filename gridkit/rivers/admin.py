"""Admin tiling for river splitting: pick the finest level, clean gaps and overlaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridkit.errors import InvalidLayerError
from gridkit.layers import LEVELS
from gridkit.rivers.linesplit import polygon_edges
from gridkit.validate.report import ValidationReport
from gridkit.validate.tiling import TOLERANCE, pair_overlaps, polygon_parts, sliver_line

__all__ = ["GAP_CELL_M", "Tiling", "clean_tiling", "gap_cells", "gap_reach"]


@dataclass
class Tiling:
    """Cleaned areas of one level, sorted by ``admin_code`` (index = position).

    Examples
    --------
    >>> from shapely import box
    >>> t = Tiling.from_areas(["430203", "430202"], [box(1, 0, 2, 1), box(0, 0, 1, 1)],
    ...                       level="county")
    >>> len(t), t.codes.tolist(), t.edges.shape
    (2, ['430202', '430203'], (7, 4))
    """

    codes: np.ndarray  # str, sorted
    geoms: np.ndarray  # metric polygons, same order
    level: str
    tree: shapely.STRtree
    _edges: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_areas(cls, codes: object, geoms: object, *, level: str) -> Tiling:
        """A tiling of areas known to be clean (no overlaps or gaps to fix)."""
        codes = np.asarray(codes, dtype=object).astype(str)
        order = np.argsort(codes, kind="stable")
        geoms = np.asarray(geoms, dtype=object)[order]
        return cls(codes[order], geoms, level, shapely.STRtree(geoms))

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def edges(self) -> np.ndarray:
        """Unique boundary segments ``(k, 4)`` of all areas (computed once)."""
        if self._edges is None:
            self._edges = polygon_edges(self.geoms)
        return self._edges


def finest_level(admin: gpd.GeoDataFrame) -> str:
    """The finest level present (village > township > county > city).

    Examples
    --------
    >>> import pandas as pd
    >>> finest_level(pd.DataFrame({"level": ["city", "township", "county"]}))
    'township'
    """
    present = set(pd.unique(admin["level"]))  # not set(column): that iterates every row
    return max(present, key=LEVELS.index)


def clean_tiling(
    admin_metric: gpd.GeoDataFrame,
    *,
    snap_m: float,
    report: ValidationReport,
    known_valid: bool = False,
) -> Tiling:
    """The finest level's polygons with overlaps removed and thin gaps filled.

    Overlaps go to the area with the lower ``admin_code`` (deterministic); holes in
    the union that are thinner than ``2 * snap_m`` go to the neighbour sharing most
    of them. Both are reported as warnings (each overlap with its area and a lon/lat
    inside it); wider holes are reported, not filled. Slivers of float noise (the one
    rule of :mod:`gridkit.validate.tiling`: thinner than 1 cm or under 1 m²) are told
    together in one ``admin_gap`` line.
    ``known_valid`` says the geometries were checked valid as they are (the caller
    validated them and reprojection left them untouched), so they are not checked
    again.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> from gridkit.validate import ValidationReport
    >>> admin = gpd.GeoDataFrame({"admin_code": ["430203", "430202"], "level": "county"},
    ...     geometry=[box(1000, 0, 2000, 1000), box(0, 0, 1005, 1000)], crs=32649)
    >>> report = ValidationReport()
    >>> tiling = clean_tiling(admin, snap_m=10.0, report=report)
    >>> tiling.codes.tolist(), [p.code for p in report.problems]
    (['430202', '430203'], ['admin_overlap'])
    >>> [round(g.area) for g in tiling.geoms]
    [1005000, 995000]
    """
    level = finest_level(admin_metric)
    areas = admin_metric[admin_metric["level"] == level].sort_values("admin_code")
    codes = areas["admin_code"].astype(str).to_numpy()
    if len(set(codes)) != len(codes):
        raise InvalidLayerError(f"admin_areas: duplicate admin_code at level {level!r}.")
    geoms = np.array(areas.geometry.array, dtype=object)  # a copy: areas are replaced below
    # make_valid returns valid geometries unchanged, so only the invalid ones go through
    # it; the validity found here also spares the overlap check its own pass
    valid = np.ones(len(geoms), dtype=bool) if known_valid else shapely.is_valid(geoms)
    if not valid.all():
        geoms[~valid] = shapely.make_valid(geoms[~valid])
    geoms = polygon_parts(geoms)
    job = _Cleaning(codes, geoms, shapely.STRtree(geoms), snap_m, report, admin_metric.crs)
    # a valid coverage has no overlaps; the edge check proves that for exactly noded
    # tilings at a fraction of coverage_is_valid's cost, which is ~4x cheaper than
    # pairwise overlaps
    fast = _overlap_free_union(job.geoms, valid)
    coverage = fast is not None or bool(shapely.coverage_is_valid(job.geoms))
    overlaps = 0 if coverage else _remove_overlaps(job)
    if fast is not None:
        union = fast[0]
    else:
        union = shapely.coverage_union_all(job.geoms) if coverage else shapely.union_all(job.geoms)
    gaps = _thin_gaps(job.geoms, snap_m)
    _fill_gaps(job, gaps)
    if len(gaps):
        union = shapely.union_all(job.geoms)
    _report_holes(job, union)
    if job.slivers:
        report.add(
            "admin_gap",
            sliver_line(len(job.slivers), sum(job.slivers), "areas", done="were closed"),
            severity="warning",
        )
    unchanged = not overlaps and not len(gaps)  # no area was replaced above
    tiling = Tiling(codes, job.geoms, level, job.tree if unchanged else shapely.STRtree(job.geoms))
    if fast is not None and not len(gaps):
        tiling._edges = fast[1]  # the areas are unchanged since the check
    return tiling


@dataclass(frozen=True)
class _Cleaning:
    """The areas of one level being cleaned (``geoms`` is replaced in place) and the
    report the stages write into; ``tree`` holds the areas as they came."""

    codes: np.ndarray
    geoms: np.ndarray
    tree: shapely.STRtree
    snap_m: float
    report: ValidationReport
    crs: pyproj.CRS
    slivers: list[float] = field(default_factory=list)  # areas of the noise closed

    def near(self, geom: shapely.Geometry, distance: float) -> np.ndarray:
        """Indices of the areas within ``distance`` of ``geom``."""
        return self.tree.query(shapely.buffer(geom, distance), predicate="intersects")


def _remove_overlaps(job: _Cleaning) -> int:
    """Subtract every overlap from the area with the higher code; returns how many
    overlapping pairs there were."""
    geoms, codes = job.geoms, job.codes
    left, right = job.tree.query(geoms, predicate="overlaps")
    keep = left < right
    left, right = left[keep], right[keep]
    if not len(left):
        return 0
    found = pair_overlaps(geoms, left, right, crs=job.crs)
    left, right, inter, area = found.first, found.second, found.pieces, found.area_m2
    # Python loop over the few areas that overlap a neighbour (a cleaning step,
    # not the hot path)
    for j in np.unique(right):
        sel = right == j
        geoms[j] = polygon_parts(
            np.array([shapely.difference(geoms[j], shapely.union_all(inter[sel]))])
        )[0]
    job.slivers.extend(area[~found.real].tolist())  # noise: told in one line
    for k in np.flatnonzero(found.real):
        i, j, a = left[k], right[k], area[k]
        lon, lat = found.where[k]
        job.report.add(
            "admin_overlap",
            f"areas {codes[i]} and {codes[j]} overlap by {a:,.1f} m² (at {lon:.5f}, "
            f"{lat:.5f}); the overlap was given to {codes[i]}.",
            rows=(codes[i], codes[j]),
            severity="warning",
        )
    return len(left)


GAP_CELL_M = 10_000.0
"""Thin gaps are looked for cell by cell of an absolute grid this wide (metres)."""


def gap_cells(bounds: np.ndarray) -> np.ndarray:
    """The cells ``(ix, iy)`` of the :data:`GAP_CELL_M` grid that the boxes ``bounds``
    (``(k, 4)``: xmin, ymin, xmax, ymax) meet, each once, sorted.

    Examples
    --------
    >>> gap_cells(np.array([[0.0, 0.0, 15_000.0, 5_000.0]])).tolist()
    [[0, 0], [1, 0]]
    """
    b = np.floor(np.asarray(bounds, dtype=float).reshape(-1, 4) / GAP_CELL_M).astype(np.int64)
    nx, ny = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    box = np.repeat(np.arange(len(b)), nx * ny)
    k = np.arange(len(box)) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
    cells = np.c_[b[box, 0] + k // ny[box], b[box, 1] + k % ny[box]]
    return np.unique(cells, axis=0) if len(cells) else cells.reshape(0, 2)


def gap_reach(snap_m: float) -> float:
    """How far beyond a cell the areas that decide its gaps lie (a closing of radius
    ``snap_m`` looks ``2 * snap_m`` away; 1 m more for rounding).

    Examples
    --------
    >>> gap_reach(10.0)
    21.0
    """
    return 2 * snap_m + 1.0


def _thin_gaps(geoms: np.ndarray, snap_m: float) -> np.ndarray:
    """Gaps between ``geoms`` thinner than ``2 * snap_m``, also notches open to the
    outside (found by a morphological closing), cell by cell of the :data:`GAP_CELL_M`
    grid: each cell's from the union of the areas within :func:`gap_reach` of it, cut
    to the cell. A gap's shape then depends only on the areas near it, never on the
    tiling's extent, so a partitioned run that holds those areas finds the same gaps.
    """
    if not len(geoms):
        return np.empty(0, dtype=object)
    cells = gap_cells(shapely.bounds(geoms))
    lo = cells * GAP_CELL_M
    boxes = shapely.box(lo[:, 0], lo[:, 1], lo[:, 0] + GAP_CELL_M, lo[:, 1] + GAP_CELL_M)
    r = gap_reach(snap_m)
    grown = shapely.box(
        lo[:, 0] - r, lo[:, 1] - r, lo[:, 0] + GAP_CELL_M + r, lo[:, 1] + GAP_CELL_M + r
    )
    ci, ai = shapely.STRtree(geoms).query(grown, predicate="intersects")
    order = np.lexsort((ai, ci))
    ci, ai = ci[order], ai[order]
    groups, start, sizes = np.unique(ci, return_index=True, return_counts=True)
    pad = np.full((len(groups), int(sizes.max())), None, dtype=object)
    pad[np.searchsorted(groups, ci), np.arange(len(ci)) - np.repeat(start, sizes)] = geoms[ai]
    union = shapely.union_all(pad, axis=1)
    closed = shapely.buffer(
        shapely.buffer(union, snap_m, join_style="mitre"), -snap_m, join_style="mitre"
    )
    # nothing to fill where the closing adds nothing; the overlay costs ~20x the test
    open_ = ~shapely.covers(union, closed)
    if not open_.any():
        return np.empty(0, dtype=object)
    gaps = shapely.intersection(
        shapely.difference(closed[open_], union[open_]), boxes[groups[open_]]
    )
    gaps = shapely.get_parts(gaps)
    return gaps[(shapely.get_type_id(gaps) == 3) & (shapely.area(gaps) > 1e-6)]


def _fill_gaps(job: _Cleaning, gaps: np.ndarray) -> None:
    """Give every gap to the neighbour sharing most of it; report gaps of 1 m² and
    more one by one; noise (:mod:`gridkit.validate.tiling`) is told in one line."""
    geoms, codes = job.geoms, job.codes
    reach = max(job.snap_m, 1e-3) / 10
    noise = TOLERANCE.noise(gaps)  # digitising noise: told in one line
    for gap, small in zip(gaps, noise, strict=True):
        near = job.near(gap, reach)
        if len(near) == 0:
            continue
        names = [codes[k] for k in near]
        shared = shapely.area(shapely.intersection(shapely.buffer(gap, reach), geoms[near]))
        k = near[int(np.argmax(shared))]
        geoms[k] = polygon_parts(np.array([shapely.union(geoms[k], gap)]))[0]
        if small:
            job.slivers.append(gap.area)
            continue
        job.report.add(
            "admin_gap",
            f"a gap of {gap.area:,.1f} m² "
            + (f"between areas {', '.join(names)}" if len(names) > 1 else f"in area {names[0]}")
            + f" was given to {codes[k]}.",
            rows=names,
            severity="warning",
        )


def _report_holes(job: _Cleaning, union: shapely.Geometry) -> None:
    """Report the holes left in ``union`` (gaps too wide to fill)."""
    holes = [
        shapely.Polygon(ring)
        for poly in shapely.get_parts(union)
        for ring in shapely.get_interior_ring(poly, range(shapely.get_num_interior_rings(poly)))
    ]
    for hole in holes:
        names = [job.codes[k] for k in job.near(hole, max(job.snap_m, 1e-3))]
        job.report.add(
            "admin_gap_unfilled",
            f"a gap of {hole.area:,.1f} m² between areas {', '.join(names)} is wider "
            f"than twice the snap distance ({job.snap_m:g} m) and was left unassigned; "
            "rivers there are outside every area.",
            rows=names,
            severity="warning",
        )


def _net_edges(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundary of ``polygons`` as a chain: ``(k, 5)`` rows x0, y0, x1, y1, multiplicity.

    Also returns the unique segments (the rows :func:`polygon_edges` gives, in order
    of first appearance instead of sorted).

    Rings are oriented (shells counter-clockwise, holes clockwise), segments put in
    canonical endpoint order with a sign, and opposite copies cancelled. The winding
    number of this chain at a point is the number of polygons holding it. The chain
    rows come sorted (lexicographically), so two chains compare with ``array_equal``.
    """
    parts = np.asarray(polygons)
    if not (shapely.get_type_id(parts) == 3).all():  # get_parts copies every polygon
        parts = shapely.get_parts(parts)
        parts = parts[shapely.get_type_id(parts) == 3]
    rings, poly = shapely.get_rings(parts, return_index=True)
    shell = np.r_[True, poly[1:] != poly[:-1]] if len(poly) else np.empty(0, dtype=bool)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    if len(xy) < 2:
        return np.empty((0, 5)), np.empty((0, 4))
    # columns, not (n, 2) rows: numpy gathers and selects 1-D arrays many times faster
    i = np.flatnonzero(ring[1:] == ring[:-1])
    x, y = xy[:, 0], xy[:, 1]
    ax, ay, bx, by, er = x[i], y[i], x[i + 1], y[i + 1], ring[i]
    area2 = np.bincount(er, weights=ax * by - bx * ay, minlength=len(rings))
    flip = ((area2 > 0) != shell)[er]
    ax, bx = np.where(flip, bx, ax), np.where(flip, ax, bx)
    ay, by = np.where(flip, by, ay), np.where(flip, ay, by)
    real = (ax != bx) | (ay != by)
    ax, ay, bx, by = ax[real], ay[real], bx[real], by[real]
    if len(ax) == 0:
        return np.empty((0, 5)), np.empty((0, 4))
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    seg = np.empty((len(ax), 4))
    seg[:, 0] = np.where(swap, bx, ax)
    seg[:, 1] = np.where(swap, by, ay)
    seg[:, 2] = np.where(swap, ax, bx)
    seg[:, 3] = np.where(swap, ay, by)
    sign = np.where(swap, -1, 1)
    # equal segments grouped by hashing their end points (x + iy; +0.0 makes -0.0 and
    # 0.0 one value, as == does): no sort of every segment, only of what is left
    z = (seg + 0.0).view(np.complex128)
    start_id = pd.factorize(z[:, 0])[0]
    end_id = pd.factorize(z[:, 1])[0]
    group, uniq = pd.factorize(start_id * (int(end_id.max()) + 1) + end_id)
    # ids are given in order of first appearance: a row is first when it raises the max
    seen = np.maximum.accumulate(group)
    first = np.flatnonzero(np.r_[True, group[1:] > seen[:-1]])
    net = np.bincount(group, weights=sign, minlength=len(uniq)).astype(np.int64)
    keep = net != 0
    unique = seg[first]
    chain = np.c_[unique[keep], net[keep]]
    chain = chain[np.lexsort(chain[:, :4].T[::-1])]
    return chain, unique


def _overlap_free_union(
    geoms: np.ndarray, valid: np.ndarray | None = None
) -> tuple[shapely.Geometry, np.ndarray] | None:
    """Union and unique edges of ``geoms`` when it provably has no overlaps (else None).

    ``coverage_union_all`` is cheap; when the result is valid and its boundary chain
    equals the sum of the areas' boundary chains (shared edges cancel exactly), the
    number of areas holding any point is 0 or 1: no two areas overlap. Tilings that
    fail this (overlaps, edges that are not exactly noded) return None and are left to
    the full coverage check. ``valid`` marks geometries already known to be valid.
    """
    if len(geoms) == 0:
        return None
    check = np.ones(len(geoms), dtype=bool) if valid is None else ~valid
    if not shapely.is_valid(geoms[check]).all():
        return None
    try:
        union = shapely.coverage_union_all(geoms)
    except shapely.errors.GEOSException:
        return None
    if union is None or not shapely.is_valid(union):
        return None
    ours, edges = _net_edges(geoms)
    theirs, _ = _net_edges(np.array([union], dtype=object))
    if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
        return None
    return union, edges
