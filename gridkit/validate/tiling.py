"""One tolerance rule for every polygon tiling: admin areas, communities, units.

Neighbouring polygons from real sources do not meet exactly: each side of a shared
edge is digitised (or reprojected) on its own, so the two copies cross each other
by fractions of a millimetre along kilometres. An overlap or gap piece is **noise**
when it is thinner than ``width_m`` everywhere (default 1 cm) or smaller than
``area_m2`` (default 1 m²); anything else is **real**. Noise is snapped (an overlap
goes to the polygon with the lower id, a thin gap to the neighbour sharing most of
its outline) and told in one line; a real overlap is an error naming both ids, its
area and where it is (lon/lat of a point inside it). Every measure is taken in a
local metric CRS (:mod:`gridkit.crs`).

:func:`overlaps` finds and classifies the overlapping pairs of a tiling,
:func:`settle` snaps the noise of a tiling (communities), :func:`sliver_line` and
:func:`overlap_text` write the two kinds of report. ``gridkit.rivers.admin``
(admin areas), the community splitter and checks, and :func:`validate_units` (units,
also before publishing) all use them.

Examples
--------
>>> import numpy as np
>>> from shapely import box
>>> found = overlaps(np.array([box(0, 0, 10, 10), box(9.995, 0, 20, 10)]), crs=32649)
>>> found.real.tolist(), found.area_m2.round(3).tolist()   # 5 mm wide: noise
([False], [0.05])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyproj
import scipy.sparse
import scipy.sparse.csgraph
import shapely

from gridkit.crs import WGS84
from gridkit.errors import InvalidLayerError, format_rows

__all__ = [
    "AREA_M2",
    "EXACT_M2",
    "TOLERANCE",
    "WIDTH_M",
    "Overlaps",
    "Settled",
    "Tolerance",
    "groups",
    "overlap_text",
    "overlaps",
    "pair_overlaps",
    "polygon_parts",
    "report_noise",
    "settle",
    "sliver_line",
]

WIDTH_M = 0.01
"""Pieces thinner than this everywhere are noise (metres)."""
AREA_M2 = 1.0
"""Pieces smaller than this are noise (m²)."""
EXACT_M2 = 1e-6
"""Pieces below this (the 1 mm grid of every overlay) are not pieces at all (m²)."""


@dataclass(frozen=True)
class Tolerance:
    """What counts as noise between neighbouring polygons (metric units).

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> pieces = np.array([box(0, 0, 100, 0.004), box(0, 0, 0.5, 0.5), box(0, 0, 5, 10)])
    >>> Tolerance().noise(pieces).tolist(), Tolerance().thin(pieces).tolist()
    ([True, True, False], [True, False, False])
    """

    width_m: float = WIDTH_M
    area_m2: float = AREA_M2

    def thin(self, pieces: np.ndarray) -> np.ndarray:
        """True for the (multi)polygons thinner than ``width_m`` everywhere (an inward
        buffer of half the width leaves nothing)."""
        pieces = np.asarray(pieces, dtype=object)
        if not len(pieces):
            return np.zeros(0, dtype=bool)
        return shapely.is_empty(shapely.buffer(pieces, -self.width_m / 2, quad_segs=2))

    def noise(self, pieces: np.ndarray) -> np.ndarray:
        """True for the pieces under ``area_m2`` or thinner than ``width_m``."""
        pieces = np.asarray(pieces, dtype=object)
        out = shapely.area(pieces) < self.area_m2
        rest = np.flatnonzero(~out)
        out[rest] = self.thin(pieces[rest])
        return out

    def describe(self) -> str:
        """The rule in words, for messages.

        Examples
        --------
        >>> Tolerance().describe()
        'thinner than 1 cm or under 1 m²'
        """
        w = f"{self.width_m * 100:g} cm" if self.width_m < 1 else f"{self.width_m:g} m"
        return f"thinner than {w} or under {self.area_m2:g} m²"


TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Overlaps:
    """Overlapping pairs of a tiling (positions ``first < second``), one row each.

    Attributes
    ----------
    first, second
        Positions of the two polygons.
    area_m2
        Area of their overlap.
    real
        False when every piece of the overlap is noise.
    where
        ``(n, 2)`` lon/lat (WGS84) of a point inside the overlap's largest real
        piece (its largest piece when all are noise).
    pieces
        The overlap of each pair (metric).

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> found = overlaps(np.array([box(0, 0, 10, 10), box(5, 0, 15, 10)]), crs=32649)
    >>> found.first.tolist(), found.second.tolist(), found.area_m2.tolist()
    ([0], [1], [50.0])
    >>> found.where.round(4).tolist()
    [[106.5113, 0.0]]
    """

    first: np.ndarray
    second: np.ndarray
    area_m2: np.ndarray
    real: np.ndarray
    where: np.ndarray
    pieces: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def overlaps(
    geoms: np.ndarray, *, crs: pyproj.CRS | int | str, tolerance: Tolerance = TOLERANCE
) -> Overlaps:
    """The overlapping pairs of ``geoms`` (metric, in ``crs``), classified by ``tolerance``.

    Pairs whose overlap is under :data:`EXACT_M2` (touching, or float noise below the
    1 mm grid) are left out. Vectorised: candidate pairs from an STRtree, one
    intersection call, one noise test over the pieces.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> geoms = np.array([box(0, 0, 10, 10), box(10, 0, 20, 10), box(19.999, 0, 30, 10)])
    >>> found = overlaps(geoms, crs=32649)
    >>> found.first.tolist(), found.second.tolist(), found.real.tolist()
    ([1], [2], [False])
    """
    geoms = np.asarray(geoms, dtype=object)
    valid = shapely.is_valid(geoms)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = (i < j) & valid[i] & valid[j]
    return pair_overlaps(geoms, i[keep], j[keep], crs=crs, tolerance=tolerance)


def pair_overlaps(
    geoms: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    *,
    crs: pyproj.CRS | int | str,
    tolerance: Tolerance = TOLERANCE,
) -> Overlaps:
    """:func:`overlaps` of the candidate pairs ``(first[k], second[k])`` of ``geoms``.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> geoms = np.array([box(0, 0, 10, 10), box(5, 0, 15, 10), box(20, 0, 30, 10)])
    >>> found = pair_overlaps(geoms, np.array([0, 0]), np.array([1, 2]), crs=32649)
    >>> found.first.tolist(), found.second.tolist(), found.area_m2.tolist()
    ([0], [1], [50.0])
    """
    i, j = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    inter = shapely.intersection(geoms[i], geoms[j])
    area = shapely.area(inter)
    some = area >= EXACT_M2
    i, j, inter, area = i[some], j[some], inter[some], area[some]
    parts, pair = shapely.get_parts(inter, return_index=True)
    poly = shapely.get_dimensions(parts) == 2
    parts, pair = parts[poly], pair[poly]
    real_part = ~tolerance.noise(parts)
    real = np.bincount(pair, weights=real_part, minlength=len(i)) > 0
    # the piece that says where: the largest real one, else the largest
    score = shapely.area(parts) + np.where(real_part, np.inf, 0.0)
    order = np.lexsort((-score, pair))
    firsts = order[np.r_[True, pair[order][1:] != pair[order][:-1]]] if len(order) else order
    rep = np.empty(len(i), dtype=object)
    rep[:] = None
    rep[pair[firsts]] = shapely.point_on_surface(parts[firsts])
    where = np.full((len(i), 2), np.nan)
    have = np.flatnonzero(pd.notna(rep))
    if len(have):
        xy = shapely.get_coordinates(rep[have])
        to_ll = pyproj.Transformer.from_crs(pyproj.CRS(crs), WGS84, always_xy=True)
        where[have] = np.column_stack(to_ll.transform(xy[:, 0], xy[:, 1]))
    return Overlaps(i, j, area, real, where, inter)


def overlap_text(ids: np.ndarray, found: Overlaps, rows: np.ndarray | None = None) -> list[str]:
    """``"a/b (50.0 m² at 113.12345, 27.83456)"`` for the pairs ``rows`` (default: real).

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> found = overlaps(np.array([box(0, 0, 10, 10), box(5, 0, 15, 10)]), crs=32649)
    >>> overlap_text(np.array(["U1", "U2"]), found)
    ['U1/U2 (50.0 m² at 106.51132, 0.00005)']
    """
    rows = np.flatnonzero(found.real) if rows is None else np.asarray(rows)
    ids = np.asarray(ids)
    return [
        f"{ids[found.first[k]]}/{ids[found.second[k]]} ({found.area_m2[k]:,.1f} m² at "
        f"{found.where[k, 0]:.5f}, {found.where[k, 1]:.5f})"
        for k in rows
    ]


def report_noise(report, found, noise: np.ndarray, between: str = "units") -> None:
    """Tell ``report`` (a :class:`~gridkit.validate.report.ValidationReport`) about the
    overlaps of ``found`` that are float noise (``noise`` mask), as one ``slivers``
    warning; nothing when there are none.

    Examples
    --------
    >>> from shapely import box
    >>> from gridkit.validate.report import ValidationReport
    >>> squares = np.array([box(0, 0, 1e-3, 1e-3), box(0, 0, 1e-3, 1e-3)])
    >>> found = overlaps(squares, crs=32649)
    >>> report = ValidationReport()
    >>> report_noise(report, found, ~found.real)
    >>> [(p.code, p.severity) for p in report.problems]
    [('slivers', 'warning')]
    """
    if not np.any(noise):
        return
    report.add(
        "slivers",
        sliver_line(
            int(shapely.get_num_geometries(found.pieces[noise]).sum()),
            float(found.area_m2[noise].sum()),
            between,
            done="are float noise along shared edges, not overlaps",
        ),
        severity="warning",
    )


def sliver_line(n: int, area_m2: float, between: str, *, done: str = "were snapped") -> str:
    """The one line that tells of noise: how many slivers, their area, between what.

    Examples
    --------
    >>> print(sliver_line(412, 0.00075, "communities"))
    412 sliver(s) thinner than 1 cm or under 1 m² (together 0.00075 m²) between
    communities were snapped.
    """
    return (
        f"{n:,} sliver(s) {TOLERANCE.describe()} (together {area_m2:,.4g} m²) between "
        f"{between} {done}."
    )


def polygon_parts(geoms: np.ndarray) -> np.ndarray:
    """The polygonal parts of each geometry (``make_valid`` output may mix in lines).

    Examples
    --------
    >>> import numpy as np
    >>> import shapely
    >>> bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])
    >>> polygon_parts(shapely.make_valid(np.array([bowtie])))[0].geom_type
    'MultiPolygon'
    """
    out = np.array(geoms, dtype=object)
    mixed = np.flatnonzero(shapely.get_type_id(out) == 7)
    # a loop over the few collections make_valid returns
    for k in mixed:
        parts = shapely.get_parts(out[k])
        parts = parts[shapely.get_dimensions(parts) == 2]
        out[k] = shapely.union_all(parts) if len(parts) else shapely.Polygon()
    return out


@dataclass(frozen=True)
class Settled:
    """A tiling with its noise snapped (:func:`settle`).

    Attributes
    ----------
    geoms
        The polygons, same order; only those along a snapped sliver changed.
    slivers, sliver_m2
        How many noise pieces (overlaps and gaps) were snapped, and their area.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> s = settle(np.array([box(0, 0, 10, 10), box(9.999, 0, 20, 10)]), ["a", "b"], crs=32649)
    >>> s.slivers, round(s.sliver_m2, 4)
    (1, 0.01)
    >>> print(s.line("communities"))
    1 sliver(s) thinner than 1 cm or under 1 m² (together 0.01 m²) between
    communities were snapped.
    """

    geoms: np.ndarray
    slivers: int = 0
    sliver_m2: float = 0.0

    def line(self, between: str) -> str | None:
        """The one line telling what was snapped (None when nothing was)."""
        return sliver_line(self.slivers, self.sliver_m2, between) if self.slivers else None


def settle(
    geoms: np.ndarray,
    ids: object,
    *,
    crs: pyproj.CRS | int | str,
    layer: str = "communities",
    tolerance: Tolerance = TOLERANCE,
) -> Settled:
    """Snap the noise of a tiling of valid polygons (metric, in ``crs``).

    Decided per connected group of polygons (those within ``tolerance.width_m`` of
    each other, transitively; :func:`groups`): a group with no noise is returned
    unchanged, so a group's answer depends only on the group, never on what else the
    call holds (a city split alone or in a whole country's call). In a group with
    noise the edges of all its polygons are noded together on a 1 mm grid (:data:`SNAP_M`)
    and every polygon is rebuilt from the faces, so neighbours share their edges
    vertex for vertex. Overlap noise goes to the polygon with the lower id; gaps thinner than
    ``tolerance.width_m`` between polygons (open at their ends or not) and holes
    enclosed by the polygons under ``tolerance.area_m2`` go to the neighbour sharing
    most of their outline. Wider gaps open at their ends (a road between two
    communities) are not gaps of the tiling and stay.

    Raises
    ------
    InvalidLayerError
        For real overlaps, naming both ids, the area and where (lon/lat).

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> try:
    ...     settle(np.array([box(0, 0, 10, 10), box(5, 0, 15, 10)]), ["a", "b"], crs=32649)
    ... except InvalidLayerError as exc:
    ...     print(exc.message)
    communities overlap: a/b (50.0 m² at 106.51132, 0.00005).
    """
    geoms = np.array(geoms, dtype=object)
    ids = np.asarray(ids).astype(str)
    if len(geoms) < 2:
        return Settled(geoms)
    off = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms, gap_width=tolerance.width_m))
    if not off.any():
        return Settled(geoms)  # exactly noded, no thin gap: nothing to snap
    found = overlaps(geoms, crs=crs, tolerance=tolerance)
    if found.real.any():
        pairs = overlap_text(ids, found)
        raise InvalidLayerError(
            f"{layer} overlap: {format_rows(pairs)}.",
            hint=f"{layer.capitalize()} must not overlap (slivers {tolerance.describe()} "
            "are snapped): fix the boundaries there and run again.",
            problems=pairs,
            rows=[ids[k] for k in np.r_[found.first[found.real], found.second[found.real]]],
        )
    # snapping is decided per group of touching polygons: a group's answer depends on
    # the group only, not on what else the call holds
    label = groups(geoms, tolerance.width_m)
    noisy = np.isin(label, label[off])
    order = np.argsort(label[noisy], kind="stable")
    members = np.flatnonzero(noisy)[order]
    cuts = np.flatnonzero(np.diff(label[members])) + 1
    pair_group = label[found.first]
    slivers, area = 0, 0.0
    # a loop over the groups with noise (each step vectorised over its polygons)
    for idx in np.split(members, cuts):
        mine = pair_group == label[idx[0]]
        geoms[idx], n, a = _snap_group(geoms[idx], ids[idx], found.pieces[mine], tolerance)
        slivers += n or -(-int(off[idx].sum()) // 2)  # edges off by less than the grid
        area += a + float(found.area_m2[mine].sum())
    return Settled(geoms, slivers, area)


def groups(geoms: np.ndarray, distance: float) -> np.ndarray:
    """Connected groups of polygons within ``distance`` of each other (transitively):
    a label per polygon, numbered in the order of each group's first polygon.

    One STRtree query for the pairs and one connected-components call (scipy).

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> squares = np.array([box(0, 0, 1, 1), box(5, 0, 6, 1), box(1.005, 0, 2, 1)])
    >>> groups(squares, 0.01).tolist()
    [0, 1, 0]
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if not n:
        return np.zeros(0, dtype=np.int64)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="dwithin", distance=distance)
    graph = scipy.sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, raw = scipy.sparse.csgraph.connected_components(graph, directed=False)
    # renumber by first appearance, so labels do not depend on scipy's numbering
    _, first = np.unique(raw, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(np.argsort(first))] = np.arange(len(first))
    return rank[raw]


def _snap_group(
    geoms: np.ndarray, ids: np.ndarray, overlap_pieces: np.ndarray, tolerance: Tolerance
) -> tuple[np.ndarray, int, float]:
    """One group of :func:`settle` snapped: its polygons rebuilt on the grid, how many
    slivers were snapped (0: none measurable) and the area of its holes and gaps."""
    before = shapely.get_num_geometries(geoms)
    faces, owner, noise = _faces(geoms, ids, tolerance)
    # every polygon is rebuilt from the faces, so neighbours meet on one grid
    keep = owner >= 0
    rebuilt = _group_union(faces[keep], owner[keep], len(geoms))
    some = ~shapely.is_empty(rebuilt)
    geoms[some] = rebuilt[some]
    open_gaps = _open_gaps(faces[keep], tolerance)
    _give_gaps(geoms, open_gaps, tolerance, rebuilt)
    _drop_new_crumbs(geoms, before, tolerance)
    # told as measured before snapping: the overlaps, then the holes and open gaps
    pieces = shapely.get_parts(overlap_pieces)
    n = int((shapely.get_dimensions(pieces) == 2).sum()) + int(noise.sum()) + len(open_gaps)
    area = float(shapely.area(faces[noise]).sum() + shapely.area(open_gaps).sum())
    return geoms, n, area


SNAP_M = 1e-3
"""Grid (metres) on which :func:`settle` nodes the edges of the polygons it snaps."""


def _faces(
    geoms: np.ndarray, ids: np.ndarray, tolerance: Tolerance
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces of all edges noded together on the :data:`SNAP_M` grid, the polygon
    each goes to (-1: none) and which are noise holes given to a neighbour.

    A face inside one polygon is that polygon's; inside several (overlap noise), the
    one with the lowest id's; inside none (a hole), the neighbour's sharing most of
    its outline when it is noise, else nobody's (a road between communities).
    """
    noded = shapely.union_all(shapely.boundary(geoms), grid_size=SNAP_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) >= EXACT_M2]
    pi, fi = shapely.STRtree(shapely.point_on_surface(faces)).query(geoms, predicate="contains")
    rank = np.argsort(np.argsort(ids, kind="stable"), kind="stable")
    order = np.lexsort((rank[pi], fi))
    first = order[np.r_[True, fi[order][1:] != fi[order][:-1]]] if len(order) else order
    owner = np.full(len(faces), -1, dtype=np.int64)
    owner[fi[first]] = pi[first]
    holders = np.bincount(fi, minlength=len(faces))
    hole = np.flatnonzero(holders == 0)
    small = hole[tolerance.noise(faces[hole])]
    gi, gp = _owners(geoms, faces[small], tolerance.width_m / 10)
    owner[small[gi]] = gp
    noise = np.zeros(len(faces), dtype=bool)
    noise[small[gi]] = True  # holes given to a neighbour
    return faces, owner, noise


def _group_union(faces: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """``coverage_union`` of the faces of each owner ``0..n-1`` (one vectorised call)."""
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if not len(faces):
        return out
    order = np.argsort(owner, kind="stable")
    lab, src = owner[order], faces[order]
    groups, start, sizes = np.unique(lab, return_index=True, return_counts=True)
    pad = np.full((len(groups), int(sizes.max())), None, dtype=object)
    pad[np.searchsorted(groups, lab), np.arange(len(lab)) - np.repeat(start, sizes)] = src
    out[groups] = shapely.coverage_union_all(pad, axis=1)
    return out


def _open_gaps(faces: np.ndarray, tolerance: Tolerance) -> np.ndarray:
    """Gaps thinner than the width that open to the outside of the tiling (found by a
    morphological closing of its union)."""
    if not len(faces):
        return np.empty(0, dtype=object)
    union = shapely.coverage_union_all(faces)
    r = tolerance.width_m / 2
    closed = shapely.buffer(shapely.buffer(union, r, join_style="mitre"), -r, join_style="mitre")
    gaps = shapely.get_parts(shapely.difference(closed, union))
    return gaps[(shapely.get_type_id(gaps) == 3) & (shapely.area(gaps) >= EXACT_M2)]


def _owners(geoms: np.ndarray, gaps: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """For the gaps with a polygon within ``reach``: gap positions and the polygon
    sharing most of each gap's outline (most of its vertices within ``reach``; vertex
    distances instead of overlays, ~10x faster on kilometres of noisy edges)."""
    gi, pi = shapely.STRtree(geoms).query(gaps, predicate="dwithin", distance=reach)
    if not len(gi):
        return gi, pi
    xy, of = shapely.get_coordinates(gaps, return_index=True)
    start = np.searchsorted(of, np.arange(len(gaps)))
    rep = np.bincount(of, minlength=len(gaps))[gi]
    pair = np.repeat(np.arange(len(gi)), rep)
    vertex = np.repeat(start[gi] - np.cumsum(rep) + rep, rep) + np.arange(int(rep.sum()))
    near = shapely.dwithin(geoms[pi[pair]], shapely.points(xy[vertex]), reach)
    shared = np.bincount(pair, weights=near, minlength=len(gi))
    order = np.lexsort((pi, -shared, gi))
    best = order[np.r_[True, gi[order][1:] != gi[order][:-1]]]
    return gi[best], pi[best]


def _give_gaps(
    geoms: np.ndarray, gaps: np.ndarray, tolerance: Tolerance, rebuilt: np.ndarray
) -> None:
    """Each gap to the polygon sharing most of its outline (in place); a polygon that
    takes one is first ``rebuilt`` on the grid the gaps were found on, so they meet."""
    if not len(gaps):
        return
    gi, pi = _owners(geoms, gaps, tolerance.width_m / 10)
    # a loop over the polygons that take a gap
    for k in np.unique(pi):
        mine = gaps[gi[pi == k]]
        pieces = shapely.multipolygons(mine)
        if not shapely.is_valid(pieces):  # gaps touching at a point
            pieces = shapely.union_all(mine)
        base = geoms[k] if shapely.is_empty(rebuilt[k]) else rebuilt[k]
        merged = shapely.union(base, pieces, grid_size=SNAP_M)
        geoms[k] = polygon_parts(np.array([merged]))[0]


def _drop_new_crumbs(geoms: np.ndarray, before: np.ndarray, tolerance: Tolerance) -> None:
    """Polygons that snapping left in more parts than they had lose the noise parts
    (crumbs cut off along a snapped edge)."""
    grew = np.flatnonzero(shapely.get_num_geometries(geoms) > before)
    for k in grew:  # a loop over the rare polygons a snap broke
        parts = shapely.get_parts(geoms[k])
        keep = ~tolerance.noise(parts)
        if keep.any():
            geoms[k] = shapely.union_all(parts[keep])
