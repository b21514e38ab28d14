"""Admin tiling for river splitting: pick the finest level, clean gaps and overlaps."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from gridkit._linesplit import polygon_edges
from gridkit.errors import InvalidLayerError
from gridkit.layers import LEVELS
from gridkit.validate import ValidationReport

__all__ = ["Tiling", "clean_tiling"]


@dataclass
class Tiling:
    """Cleaned areas of one level, sorted by ``admin_code`` (index = position)."""

    codes: np.ndarray  # str, sorted
    geoms: np.ndarray  # metric polygons, same order
    level: str
    tree: shapely.STRtree
    _edges: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def edges(self) -> np.ndarray:
        """Unique boundary segments ``(k, 4)`` of all areas (computed once)."""
        if self._edges is None:
            self._edges = polygon_edges(self.geoms)
        return self._edges


def finest_level(admin: gpd.GeoDataFrame) -> str:
    """The finest level present (village > township > county > city)."""
    present = set(admin["level"])
    return max(present, key=LEVELS.index)


def clean_tiling(
    admin_metric: gpd.GeoDataFrame, *, snap_m: float, report: ValidationReport
) -> Tiling:
    """The finest level's polygons with overlaps removed and thin gaps filled.

    Overlaps go to the area with the lower ``admin_code`` (deterministic); holes in
    the union that are thinner than ``2 * snap_m`` go to the neighbour sharing most
    of them. Both are reported as warnings; wider holes are reported, not filled.
    """
    level = finest_level(admin_metric)
    areas = admin_metric[admin_metric["level"] == level].sort_values("admin_code")
    codes = areas["admin_code"].astype(str).to_numpy()
    if len(set(codes)) != len(codes):
        raise InvalidLayerError(f"admin_areas: duplicate admin_code at level {level!r}.")
    geoms = shapely.make_valid(np.asarray(areas.geometry.array))
    geoms = _polygonal(geoms)

    tree = shapely.STRtree(geoms)
    # a valid coverage has no overlaps; the edge check proves that for exactly noded
    # tilings at a fraction of coverage_is_valid's cost, which is ~4x cheaper than
    # pairwise overlaps
    fast = _overlap_free_union(geoms)
    coverage = fast is not None or bool(shapely.coverage_is_valid(geoms))
    if coverage:
        left = right = np.empty(0, dtype=np.int64)
    else:
        left, right = tree.query(geoms, predicate="overlaps")
    keep = left < right
    left, right = left[keep], right[keep]
    if len(left):
        inter = shapely.intersection(geoms[left], geoms[right])
        area = shapely.area(inter)
        real = area > 0
        left, right, inter, area = left[real], right[real], inter[real], area[real]
        # Python loop over the few areas that overlap a neighbour (a cleaning step,
        # not the hot path): subtract every overlap from the higher code.
        for j in np.unique(right):
            sel = right == j
            geoms[j] = _polygonal(
                np.array([shapely.difference(geoms[j], shapely.union_all(inter[sel]))])
            )[0]
        for i, j, a in zip(left, right, area, strict=True):
            report.add(
                "admin_overlap",
                f"areas {codes[i]} and {codes[j]} overlap by {a:,.1f} m²; the overlap was "
                f"given to {codes[i]}.",
                rows=(codes[i], codes[j]),
                severity="warning",
            )

    if fast is not None:
        union = fast[0]
    else:
        union = shapely.coverage_union_all(geoms) if coverage else shapely.union_all(geoms)
    # morphological closing finds thin gaps, also notches open to the outside
    closed = shapely.buffer(
        shapely.buffer(union, snap_m, join_style="mitre"), -snap_m, join_style="mitre"
    )
    gaps = shapely.get_parts(shapely.difference(closed, union))
    gaps = gaps[(shapely.get_type_id(gaps) == 3) & (shapely.area(gaps) > 1e-6)]
    for gap in gaps:
        near = tree.query(shapely.buffer(gap, max(snap_m, 1e-3) / 10), predicate="intersects")
        if len(near) == 0:
            continue
        names = [codes[k] for k in near]
        shared = shapely.area(
            shapely.intersection(shapely.buffer(gap, max(snap_m, 1e-3) / 10), geoms[near])
        )
        k = near[int(np.argmax(shared))]
        geoms[k] = _polygonal(np.array([shapely.union(geoms[k], gap)]))[0]
        report.add(
            "admin_gap",
            f"a gap of {gap.area:,.1f} m² between areas {', '.join(names)} was given "
            f"to {codes[k]}.",
            rows=names,
            severity="warning",
        )
    if len(gaps):
        union = shapely.union_all(geoms)
    holes = [
        shapely.Polygon(ring)
        for poly in shapely.get_parts(union)
        for ring in shapely.get_interior_ring(poly, range(shapely.get_num_interior_rings(poly)))
    ]
    for hole in holes:
        names = [
            codes[k]
            for k in tree.query(shapely.buffer(hole, max(snap_m, 1e-3)), predicate="intersects")
        ]
        report.add(
            "admin_gap_unfilled",
            f"a gap of {hole.area:,.1f} m² between areas {', '.join(names)} is wider "
            f"than twice the snap distance ({snap_m:g} m) and was left unassigned; "
            "rivers there are outside every area.",
            rows=names,
            severity="warning",
        )
    tiling = Tiling(codes, geoms, level, shapely.STRtree(geoms))
    if fast is not None and not len(gaps):
        tiling._edges = fast[1]  # the areas are unchanged since the check
    return tiling


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of (possibly mixed) geometries."""
    out = geoms.copy()
    mixed = shapely.get_type_id(out) == 7
    for i in np.flatnonzero(mixed):
        parts = shapely.get_parts(out[i])
        parts = parts[shapely.get_dimensions(parts) == 2]
        out[i] = shapely.union_all(parts) if len(parts) else shapely.Polygon()
    return out


def _net_edges(polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boundary of ``polygons`` as a chain: ``(k, 5)`` rows x0, y0, x1, y1, multiplicity.

    Also returns the unique segments (as :func:`polygon_edges` gives them).

    Rings are oriented (shells counter-clockwise, holes clockwise), segments put in
    canonical endpoint order with a sign, and opposite copies cancelled. The winding
    number of this chain at a point is the number of polygons holding it.
    """
    parts = shapely.get_parts(polygons)
    parts = parts[shapely.get_type_id(parts) == 3]
    rings, poly = shapely.get_rings(parts, return_index=True)
    shell = np.r_[True, poly[1:] != poly[:-1]] if len(poly) else np.empty(0, dtype=bool)
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    if len(xy) < 2:
        return np.empty((0, 5)), np.empty((0, 4))
    inner = ring[1:] == ring[:-1]
    a, b, er = xy[:-1][inner], xy[1:][inner], ring[:-1][inner]
    area2 = np.bincount(er, weights=a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1], minlength=len(rings))
    flip = ((area2 > 0) != shell)[er]
    a, b = np.where(flip[:, None], b, a), np.where(flip[:, None], a, b)
    real = (a[:, 0] != b[:, 0]) | (a[:, 1] != b[:, 1])
    a, b = a[real], b[real]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    seg = np.empty((len(a), 4))
    seg[:, :2] = np.where(swap[:, None], b, a)
    seg[:, 2:] = np.where(swap[:, None], a, b)
    sign = np.where(swap, -1, 1)
    order = np.lexsort(seg.T[::-1])
    seg, sign = seg[order], sign[order]
    new = np.r_[True, (seg[1:] != seg[:-1]).any(axis=1)] if len(seg) else np.empty(0, bool)
    first = np.flatnonzero(new)
    net = np.add.reduceat(sign, first) if len(first) else np.empty(0, np.int64)
    keep = net != 0
    unique = seg[first]
    return np.c_[unique[keep], net[keep]], unique


def _overlap_free_union(geoms: np.ndarray):
    """Union and unique edges of ``geoms`` when it provably has no overlaps (else None).

    ``coverage_union_all`` is cheap; when the result is valid and its boundary chain
    equals the sum of the areas' boundary chains (shared edges cancel exactly), the
    number of areas holding any point is 0 or 1: no two areas overlap. Tilings that
    fail this (overlaps, edges that are not exactly noded) return None and are left to
    the full coverage check.
    """
    if len(geoms) == 0 or not shapely.is_valid(geoms).all():
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
