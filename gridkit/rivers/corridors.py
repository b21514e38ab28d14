"""Corridor units: the corridor of every reach, shared by nearest reach within each area."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridkit.rivers.admin import Tiling
from gridkit.validate.report import ValidationReport

__all__ = ["CorridorOptions", "corridor_units", "snap", "split_by_shoreline"]

_MIN_PART_M2 = 1e-3  # polygon parts smaller than this are clipping noise
# Units are snapped to this grid (metres) before they leave the metric CRS. Overlays of
# nearly coincident edges (a spill piece cut out of ``area - claimed`` merged back onto
# the unit it was cut from) leave zero-width spikes and vertices 1e-10 m apart: valid in
# UTM, self-intersecting once reprojected and rounded to lon/lat doubles (~1e-9 m). On
# this grid such vertices coincide and snap-rounding removes the spikes. The grid is
# fine on purpose: every unit is snapped on its own, so a vertex of one unit lying on a
# long edge of its neighbour (a T-junction) moves off it by up to 0.7 grid cells; at
# 1 cm that is a 1-2 m² overlap triangle along a 500 m edge, at 0.1 mm 0.02 m².
GRID_M = 1e-4
SLIVER_M2 = 100.0  # default: corridor pieces smaller than this merge into a neighbour
_MIN_SHARED_M = 0.1  # a sliver merges only across an edge at least this long


def _samples(geoms: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points along each reach; the first and last sit at the same small offset from
    the ends, so the Voronoi edge between consecutive reaches passes through their cut."""
    length = shapely.length(geoms)
    h0 = np.minimum(spacing / 4.0, length / 4.0)
    n = np.maximum(np.ceil((length - 2 * h0) / spacing), 1).astype(np.int64)
    owner = np.repeat(np.arange(len(geoms)), n + 1)
    i = np.arange(owner.size) - np.repeat(np.cumsum(n + 1) - (n + 1), n + 1)
    m = h0[owner] + (length - 2 * h0)[owner] * i / n[owner]
    xy = shapely.get_coordinates(shapely.line_interpolate_point(geoms[owner], m))
    return xy, owner


def _partition(
    avail: shapely.Geometry,
    members: np.ndarray,
    xy: np.ndarray,
    rng: np.ndarray,
    buffers: np.ndarray,
) -> list[shapely.Geometry]:
    """Split ``avail`` among ``members`` by nearest sample point (Voronoi).

    Each reach keeps only the part of its Voronoi region inside its own buffer: the
    regions are disjoint, so the units are too, and no union of all buffers is needed.
    ``rng`` holds every reach's first and last sample index (samples sorted by reach).
    """
    if len(members) == 1:
        return [shapely.intersection(buffers[members[0]], avail)]
    lo, hi = rng[members, 0], rng[members, 1]
    cnt = hi - lo
    idx = np.repeat(lo, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    who = np.repeat(np.arange(len(members)), cnt)
    pts_r, first = np.unique(np.round(xy[idx], 6), axis=0, return_index=True)
    who = who[first]
    if len(pts_r) < 2:
        return [
            shapely.intersection(buffers[m], avail) if k == who[0] else shapely.Polygon()
            for k, m in enumerate(members)
        ]
    mn = pts_r.min(axis=0) - 1.0
    mx = pts_r.max(axis=0) + 1.0
    env = shapely.box(mn[0], mn[1], mx[0], mx[1])
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts_r), extend_to=env, ordered=True)
    )
    order = np.argsort(who, kind="stable")
    who_s, cells_s = who[order], cells[order]
    k = np.arange(len(members))
    starts = np.searchsorted(who_s, k, side="left")
    ends = np.searchsorted(who_s, k, side="right")
    width = int((ends - starts).max())
    grid = np.full((len(members), width), None, dtype=object)
    col = np.arange(len(who_s)) - starts[who_s]
    grid[who_s, col] = cells_s
    # the cells are an exact coverage: dissolve per reach in one call, then clip each
    # region to its own reach's buffer (small) before the area (prepared)
    regions = shapely.coverage_union_all(grid, axis=1)
    regions = shapely.intersection(regions, buffers[members])
    # avail may be the caller's own area geometry: leave it as it came
    was_prepared = bool(shapely.is_prepared(avail))
    shapely.prepare(avail)
    out = list(shapely.intersection(regions, avail))
    if not was_prepared:
        shapely.destroy_prepared(avail)
    return out


def _side(line: shapely.LineString, poly: shapely.Geometry) -> str:
    """``left`` or ``right``: the side of ``line`` (looking downstream) ``poly`` lies on."""
    p = shapely.point_on_surface(poly)
    m = shapely.line_locate_point(line, p)
    length = line.length
    d = min(1.0, length / 4.0)
    a = shapely.line_interpolate_point(line, max(0.0, m - d))
    b = shapely.line_interpolate_point(line, min(length, m + d))
    cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
    return "left" if cross > 0 else "right"


def _merge_spill(
    own_units: list, zone: shapely.Geometry, fmem: np.ndarray, geoms: np.ndarray
) -> tuple[list, list, list[int], float]:
    """Give the spill ``zone`` (corridor of reaches ``fmem`` of other areas) to units.

    A piece sharing an edge with a unit of this area merges into the unit sharing the
    longest edge; other pieces are returned as extra units of their nearest reach.
    Returns own units, extra geometries, their reaches, and the merged area.
    """
    parts = shapely.get_parts(zone)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= _MIN_PART_M2)
    parts = parts[keep]
    if len(parts) == 0:
        return own_units, [], [], 0.0
    own = np.array(own_units, dtype=object)
    target = np.full(len(parts), -1)
    if len(own):
        pi, ui = shapely.STRtree(own).query(parts, predicate="intersects")
        if len(pi):
            shared = shapely.length(shapely.intersection(shapely.boundary(parts[pi]), own[ui]))
            ok = shared > 1e-6
            pi, ui, shared = pi[ok], ui[ok], shared[ok]
            order = np.lexsort((ui, -shared, pi))
            pi, ui = pi[order], ui[order]
            if len(pi):
                first = np.r_[True, pi[1:] != pi[:-1]]
                target[pi[first]] = ui[first]
    merged_m2 = 0.0
    for u in np.unique(target[target >= 0]):
        sel = parts[target == u]
        merged_m2 += float(shapely.area(sel).sum())
        # snap-rounded union: the piece was cut from ``area - claimed``, so its edge
        # along the unit only nearly coincides with the unit's; a float union leaves
        # zero-width spikes there (invalid once reprojected)
        own_units[u] = _snapped_union(np.r_[np.array([own[u]], dtype=object), sel])
    loose = parts[target < 0]
    if len(loose) == 0:
        return own_units, [], [], merged_m2
    # nearest reach of each loose piece; pieces of one reach form one unit
    rep = shapely.point_on_surface(loose)
    d = shapely.distance(rep[:, None], geoms[fmem][None, :])
    near = fmem[np.argmin(d, axis=1)]
    extra, extra_r = [], []
    for r in np.unique(near):
        sel = loose[near == r]
        extra.append(_snapped_union(sel) if len(sel) > 1 else sel[0])
        extra_r.append(int(r))
    return own_units, extra, extra_r, merged_m2


def _unit_ids(
    df: pd.DataFrame,
    bank: np.ndarray,
    is_spill: np.ndarray,
    rid: np.ndarray,
    r: np.ndarray,
    a: np.ndarray,
    codes: np.ndarray,
) -> np.ndarray:
    """Ids of the river pieces in ``df`` (columns ``i``: unit row, ``part``: 1, 2, ...)."""
    i = df["i"].to_numpy()
    suffix = np.where(bank[i] == "left", "-L", np.where(bank[i] == "right", "-R", ""))
    part_sfx = np.where(df["part"] > 1, "-" + df["part"].astype(str), "")
    return np.where(
        is_spill[i],
        rid[r[i]].astype(str) + "@" + codes[a[i]].astype(str) + part_sfx,
        rid[r[i]].astype(str) + suffix + part_sfx,
    )


def _merge_slivers(
    parts: np.ndarray, area_of: np.ndarray, min_m2: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge pieces under ``min_m2`` into the piece of the same area sharing the longest
    edge (at least ``_MIN_SHARED_M``; edges count within ``GRID_M``).

    Smallest first, so slivers may chain into a neighbour through another sliver.
    Returns the pieces (merged ones grown) and a mask of the pieces still standing.
    Slivers without such a neighbour stay as they are.
    """
    parts = parts.copy()
    alive = np.ones(len(parts), dtype=bool)
    if min_m2 <= 0 or len(parts) < 2:
        return parts, alive
    area = shapely.area(parts)
    small = np.flatnonzero(area < min_m2)
    if len(small) == 0:
        return parts, alive
    root = np.arange(len(parts))

    def find(k: int) -> int:
        while root[k] != k:
            root[k] = root[root[k]]
            k = root[k]
        return k

    tree = shapely.STRtree(parts)  # the original pieces: a merged piece maps to its root
    for s in small[np.argsort(area[small], kind="stable")]:
        if not alive[s] or shapely.area(parts[s]) >= min_m2:
            continue
        near = tree.query(shapely.buffer(parts[s], GRID_M, quad_segs=2), predicate="intersects")
        cand = np.unique([find(int(k)) for k in near])
        cand = cand[(cand != s) & (area_of[cand] == area_of[s])]
        if len(cand) == 0:
            continue
        edge = shapely.boundary(parts[s])
        shared = shapely.length(
            shapely.intersection(edge, shapely.buffer(parts[cand], GRID_M, quad_segs=2))
        )
        best = int(np.argmax(shared))
        if shared[best] < _MIN_SHARED_M:
            continue
        t = int(cand[best])
        union = _snapped_union(np.array([parts[t], parts[s]], dtype=object))
        if shapely.get_type_id(union) != 3:
            union = _polygonal_one(union)
            want = shapely.area(parts[t]) + shapely.area(parts[s])
            if abs(shapely.area(union) - want) > 1.0:
                continue  # the union would lose a part: leave the sliver alone
        parts[t] = union
        alive[s] = False
        root[s] = t
    return parts, alive


def split_by_shoreline(
    poly: shapely.Polygon, max_shoreline_m: float, per_unit: int = 48
) -> list[shapely.Polygon]:
    """Split a polygon into units of about equal shoreline (outline) <= the maximum.

    The outline is cut into ``n`` equal arcs (the fewest with ``length / n`` at most
    ``max_shoreline_m``); every point of the polygon goes to the arc holding its
    nearest outline point (Voronoi of points along the outline), so each unit reaches
    the shore along its own arc. Parts of a unit cut off from it (narrow necks) merge
    into the neighbour sharing the longest edge: the units are single Polygons and
    tile ``poly`` exactly.

    Examples
    --------
    >>> from shapely import box, union_all
    >>> lake = box(0, 0, 1000, 100)  # outline 2,200 m
    >>> units = split_by_shoreline(lake, 1000.0)
    >>> len(units), round(union_all(units).symmetric_difference(lake).area, 3)
    (3, 0.0)
    """
    ring = shapely.get_exterior_ring(poly)
    length = float(shapely.length(ring))
    n = int(max(np.ceil(length / max_shoreline_m - 1e-9), 1))
    if n <= 1:
        return [poly]
    k = n * per_unit
    m = (np.arange(k) + 0.5) * (length / k)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(ring, m))
    group = np.arange(k) // per_unit
    pts, first = np.unique(np.round(pts, 6), axis=0, return_index=True)
    group = group[first]
    env = shapely.envelope(shapely.buffer(shapely.envelope(poly), 1.0))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=env, ordered=True)
    )
    order = np.argsort(group, kind="stable")
    g_s, c_s = group[order], cells[order]
    starts = np.searchsorted(g_s, np.arange(n), side="left")
    width = int(np.bincount(g_s, minlength=n).max())
    grid = np.full((n, width), None, dtype=object)
    grid[g_s, np.arange(len(g_s)) - starts[g_s]] = c_s
    regions = shapely.coverage_union_all(grid, axis=1)
    shapely.prepare(poly)
    pieces = shapely.intersection(regions, poly)
    # keep the largest polygon of each unit; give stray parts to the best neighbour
    parts, idx = shapely.get_parts(pieces, return_index=True)
    poly_parts = shapely.get_type_id(parts) == 3
    parts, idx = parts[poly_parts], idx[poly_parts]
    area = shapely.area(parts)
    order = np.lexsort((-area, idx))
    parts, idx = parts[order], idx[order]
    main = np.r_[True, idx[1:] != idx[:-1]]
    units = {int(i): g for i, g in zip(idx[main], parts[main], strict=True)}
    for g in parts[~main]:
        keys = list(units)
        shared = shapely.length(
            shapely.intersection(shapely.boundary(g), np.array([units[u] for u in keys]))
        )
        best = keys[int(np.argmax(shared))]
        units[best] = _snapped_union(np.array([units[best], g], dtype=object))
    out = []
    for u in sorted(units):
        g = snap(units[u])
        if shapely.get_type_id(g) != 3:  # a union that still touches at a point only
            g = _polygonal_one(g)
        out.append(g)
    return out


def snap(g: shapely.Geometry | np.ndarray) -> shapely.Geometry | np.ndarray:
    """``g`` on the :data:`GRID_M` grid (snap-rounded, valid; parts may collapse).

    Examples
    --------
    >>> from shapely import Point
    >>> snap(Point(1.00001234, 2.0)).wkt
    'POINT (1 2)'
    """
    return shapely.set_precision(g, GRID_M)


def _snapped_union(geoms: np.ndarray) -> shapely.Geometry:
    """Union on the :data:`GRID_M` grid: nearly coincident edges merge, no spikes."""
    return shapely.union_all(geoms, grid_size=GRID_M)


def _polygonal_one(g: shapely.Geometry) -> shapely.Polygon:
    """One Polygon from a (Multi)Polygon made of touching parts: repair by a zero buffer."""
    fixed = shapely.buffer(g, 0)
    if shapely.get_type_id(fixed) == 3:
        return fixed
    parts = shapely.get_parts(fixed)
    return parts[int(np.argmax(shapely.area(parts)))]


@dataclass(frozen=True)
class CorridorOptions:
    """How :func:`corridor_units` makes units (see :func:`gridkit.split_rivers`).

    Attributes
    ----------
    corridor_m
        Corridor half-width, metres.
    water_bodies
        ``water_bodies`` layer in the reaches' metric CRS, or None: each becomes a unit
        per area it lies in, and takes precedence over river corridors.
    version
        Written to the units' ``version`` column.
    max_shoreline_m
        Water-body units with a longer outline are split (:func:`split_by_shoreline`).
    sliver_m2
        Corridor pieces smaller than this merge into a neighbour of the same area.

    Examples
    --------
    >>> CorridorOptions(50.0).sliver_m2
    100.0
    """

    corridor_m: float
    water_bodies: gpd.GeoDataFrame | None = None
    version: int = 1
    max_shoreline_m: float | None = None
    sliver_m2: float = SLIVER_M2


@dataclass(frozen=True)
class _CorridorJob:
    """One run of :func:`corridor_units`: the reaches (metric), the tiling they were
    cut at, the options and the report the stages write into."""

    reaches: gpd.GeoDataFrame
    tiling: Tiling
    options: CorridorOptions
    report: ValidationReport

    @cached_property
    def geoms(self) -> np.ndarray:
        return np.asarray(self.reaches.geometry.array)

    @cached_property
    def buffers(self) -> np.ndarray:
        return shapely.buffer(self.geoms, self.options.corridor_m)

    @cached_property
    def rid(self) -> np.ndarray:
        return self.reaches["reach_id"].to_numpy()

    @cached_property
    def rank(self) -> np.ndarray:
        return self.reaches["rank"].to_numpy()

    @cached_property
    def water(self) -> tuple[np.ndarray, np.ndarray, shapely.STRtree] | None:
        """Water-body geometries, ids and their tree, or None without water bodies."""
        wb = self.options.water_bodies
        if wb is None or not len(wb):
            return None
        geoms = np.asarray(wb.geometry.array)
        return geoms, wb["water_body_id"].astype(str).to_numpy(), shapely.STRtree(geoms)


@dataclass
class _Claims:
    """Corridor pieces made so far: geometry, reach, area, bank and whether it is a
    spill unit (``REACH@AREA``), one entry per piece or per array of pieces."""

    geom: list = field(default_factory=list)
    reach: list = field(default_factory=list)
    area: list = field(default_factory=list)
    bank: list = field(default_factory=list)
    spill: list = field(default_factory=list)
    merged_m2: float = 0.0


def corridor_units(
    reaches: gpd.GeoDataFrame,
    tiling: Tiling,
    options: CorridorOptions,
    *,
    report: ValidationReport,
) -> gpd.GeoDataFrame:
    """Units for the reaches (and water bodies), all in the reaches' metric CRS.

    Every unit is snapped to the :data:`GRID_M` grid, so it stays valid when it is
    reprojected. Corridor pieces (spills, extra parts) smaller than ``sliver_m2`` merge
    into the corridor unit of the same area sharing the longest edge with them
    (reported as ``sliver_merged``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString, box
    >>> from gridkit.rivers.admin import Tiling
    >>> from gridkit.validate import ValidationReport
    >>> tiling = Tiling.from_areas(["430202"], [box(0, 0, 1000, 1000)], level="county")
    >>> reaches = gpd.GeoDataFrame({"reach_id": ["R1"], "river_id": ["A"],
    ...     "admin_code": ["430202"], "length_m": [800.0], "boundary": [False], "rank": [0]},
    ...     geometry=[LineString([(100, 500), (900, 500)])], crs=32649)
    >>> units = corridor_units(reaches, tiling, CorridorOptions(50.0), report=ValidationReport())
    >>> units["unit_id"].tolist(), round(float(units["area_m2"].iloc[0]), -2)  # 800 x 100 + pi 50²
    (['R1'], 87800.0)
    """
    job = _CorridorJob(reaches, tiling, options, report)
    claims = _claim_areas(job)
    if claims.merged_m2 > 0:
        report.figures["corridor_spill_merged_m2"] = claims.merged_m2
    frames = []
    have = np.zeros(len(job.rid), dtype=bool)
    if claims.geom:
        frame, have = _river_units(job, claims)
        frames.append(frame)
    if (~have).any():
        ids = list(job.rid[~have])
        report.add(
            "no_corridor",
            f"{len(ids)} reach(es) got no corridor unit (their corridor is covered by a "
            "water body or a main stem, or was a sliver merged into a neighbour).",
            rows=ids,
            severity="warning",
        )
    if job.water is not None:
        frames.append(_water_units(job))
    if frames:
        units = pd.concat(frames, ignore_index=True)
    else:
        units = pd.DataFrame({c: pd.Series(dtype=object) for c in [*_UNIT_COLUMNS, "geometry"]})
    units["version"] = units["version"].astype("int64")
    return gpd.GeoDataFrame(units, geometry="geometry", crs=reaches.crs)


_UNIT_COLUMNS = "unit_id kind parent_id reach_id admin_code bank length_m area_m2 version".split()


@dataclass(frozen=True)
class _Members:
    """Which reaches share out each area: (reach, area, bank) sorted by area, and the
    reaches whose corridor spills into an area they are not members of."""

    reach: np.ndarray
    area: np.ndarray
    bank: np.ndarray
    spill_reach: np.ndarray
    spill_area: np.ndarray

    @classmethod
    def of(cls, job: _CorridorJob) -> _Members:
        reaches = job.reaches
        code_idx = {c: i for i, c in enumerate(job.tiling.codes)}
        bnd = reaches["boundary"].to_numpy(bool)
        own = np.array([code_idx[c] for c in reaches["admin_code"]], dtype=np.int64)
        # every reach in its area; boundary reaches in both banks' areas
        mem_r = [np.flatnonzero(~bnd)]
        mem_a = [own[~bnd]]
        mem_b = [np.full((~bnd).sum(), "both", dtype=object)]
        if bnd.any():
            bi = np.flatnonzero(bnd)
            for col, bank in (("left_code", "left"), ("right_code", "right")):
                mem_r.append(bi)
                mem_a.append(np.array([code_idx[c] for c in reaches[col].to_numpy()[bi]]))
                mem_b.append(np.full(len(bi), bank, dtype=object))
        mem_r, mem_a, mem_b = (np.concatenate(x) for x in (mem_r, mem_a, mem_b))
        order = np.lexsort((mem_r, mem_a))
        mem_r, mem_a, mem_b = mem_r[order], mem_a[order], mem_b[order]
        # reaches whose corridor reaches into an area they are not members of (spill)
        fr, fa = job.tiling.tree.query(job.buffers, predicate="intersects")
        member_key = set(zip(mem_r.tolist(), mem_a.tolist(), strict=True))
        foreign = np.array(
            [(r, a) not in member_key for r, a in zip(fr.tolist(), fa.tolist(), strict=True)],
            dtype=bool,
        )
        fr, fa = fr[foreign], fa[foreign]
        order = np.lexsort((fr, fa))
        return cls(mem_r, mem_a, mem_b, fr[order], fa[order])


def _claim_areas(job: _CorridorJob) -> _Claims:
    """The corridor pieces of every area, area by area."""
    mem = _Members.of(job)
    xy, owner = _samples(job.geoms, job.options.corridor_m / 2.0)
    rng = np.zeros((len(job.geoms), 2), dtype=np.int64)
    cnt = np.bincount(owner, minlength=len(job.geoms))
    rng[:, 1] = np.cumsum(cnt)
    rng[:, 0] = rng[:, 1] - cnt
    claims = _Claims()
    areas = np.union1d(mem.area, mem.spill_area)
    m_lo = np.searchsorted(mem.area, areas, side="left")
    m_hi = np.searchsorted(mem.area, areas, side="right")
    f_lo = np.searchsorted(mem.spill_area, areas, side="left")
    f_hi = np.searchsorted(mem.spill_area, areas, side="right")
    # a loop over areas: each step is vectorised GEOS work on the reaches of one area
    for a, s, e, fs, fe in zip(areas, m_lo, m_hi, f_lo, f_hi, strict=True):
        spill = mem.spill_reach[fs:fe]
        _claim_area(job, claims, int(a), mem.reach[s:e], mem.bank[s:e], spill, (xy, rng))
    return claims


def _claim_area(
    job: _CorridorJob,
    claims: _Claims,
    a: int,
    members: np.ndarray,
    banks: np.ndarray,
    spill: np.ndarray,
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    """Share area ``a`` (less its water bodies) among its member reaches, main stems
    first, then give the corridor of ``spill`` reaches of neighbouring areas to units."""
    area_geom = job.tiling.geoms[a]
    base = area_geom
    if job.water is not None:
        wb_geoms, _, wb_tree = job.water
        near = wb_tree.query(area_geom, predicate="intersects")
        if len(near):
            base = shapely.difference(area_geom, shapely.union_all(wb_geoms[near]))
    rank = job.rank
    own_units: list = []
    own_rows: list = []
    ranks = np.unique(rank[members])
    claimed = None
    for t, rk in enumerate(ranks):
        sel = rank[members] == rk
        mem, bk = members[sel], banks[sel]
        avail = _available(base, claimed)
        if shapely.is_empty(avail):
            continue
        regions = _partition(avail, mem, *samples, job.buffers)
        if t + 1 < len(ranks) or len(spill):
            got = shapely.union_all(np.array(regions, dtype=object))
            claimed = got if claimed is None else shapely.union(claimed, got)
        own_units += regions
        own_rows += [(r, b) for r, b in zip(mem, bk, strict=True)]
    if len(spill):
        # corridor of reaches of neighbouring areas spilling into this one
        avail = _available(base, claimed)
        if not shapely.is_empty(avail):
            zone = shapely.intersection(shapely.union_all(job.buffers[spill]), avail)
            own_units, extra, extra_r, m2 = _merge_spill(own_units, zone, spill, job.geoms)
            claims.merged_m2 += m2
            for g, r in zip(extra, extra_r, strict=True):
                claims.geom.append(g)
                claims.reach.append(np.array([r]))
                claims.area.append(np.array([a]))
                claims.bank.append(np.array([_side(job.geoms[r], g)], dtype=object))
                claims.spill.append(np.array([True]))
    if own_units:
        claims.geom += own_units
        claims.reach.append(np.array([r for r, _ in own_rows], dtype=np.int64))
        claims.area.append(np.full(len(own_rows), a))
        claims.bank.append(np.array([b for _, b in own_rows], dtype=object))
        claims.spill.append(np.zeros(len(own_rows), dtype=bool))


def _available(base: shapely.Geometry, claimed: shapely.Geometry | None) -> shapely.Geometry:
    """``base`` less ``claimed``, without polygon parts under ``_MIN_PART_M2``.

    The difference can leave collapsed parts (a 1e-10 m² triangle of three nearly
    collinear vertices touching the real polygon). A later overlay with such a
    geometry can go wrong without an error (GEOS 3.14): the intersection of a spill
    corridor lying wholly outside came back as the whole corridor, a bank unit
    swallowed it and overlapped 7 units of 3 areas. Those parts are clipping noise
    (units drop parts under ``_MIN_PART_M2`` anyway), so they go before any overlay.
    Without a part to drop the geometry comes back as it is (possibly ``base``).
    """
    g = base if claimed is None else shapely.difference(base, claimed)
    parts = shapely.get_parts(g)
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= _MIN_PART_M2)
    if keep.all():
        return g
    parts = parts[keep]
    if len(parts) == 1:
        return parts[0]
    return shapely.multipolygons(parts)


def _ranked_parts(geoms: np.ndarray) -> pd.DataFrame:
    """The polygon parts of ``geoms`` (``i``: index into ``geoms``) not smaller than
    ``_MIN_PART_M2``, largest first within each geometry (``part``: 1, 2, ...)."""
    parts, idx = shapely.get_parts(geoms, return_index=True)
    poly = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= _MIN_PART_M2)
    parts, idx = parts[poly], idx[poly]
    df = pd.DataFrame({"i": idx, "area_m2": shapely.area(parts), "geometry": parts})
    df = df.sort_values(["i", "area_m2"], ascending=[True, False], kind="stable")
    df["part"] = df.groupby("i").cumcount() + 1
    return df


def _river_units(job: _CorridorJob, claims: _Claims) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of the corridor units (slivers merged, one row per polygon part) and which
    reaches got a unit of their own."""
    rid, codes, reaches = job.rid, job.tiling.codes, job.reaches
    r = np.concatenate(claims.reach)
    a = np.concatenate(claims.area)
    bank = np.concatenate(claims.bank)
    is_spill = np.concatenate(claims.spill)
    pre = _ranked_parts(snap(np.array(claims.geom, dtype=object))).sort_index()
    # ids of the pieces before sliver merging, to report what was merged
    pre_ids = _unit_ids(pre, bank, is_spill, rid, r, a, codes)
    parts, alive = _merge_slivers(
        pre["geometry"].to_numpy(), a[pre["i"].to_numpy()], job.options.sliver_m2
    )
    _report_slivers(job, pre["area_m2"].to_numpy()[~alive], pre_ids[~alive])
    idx = pre["i"].to_numpy()[alive]
    df = pd.DataFrame({"i": idx, "area_m2": shapely.area(parts[alive]), "geometry": parts[alive]})
    df = df.sort_values(["i", "area_m2"], ascending=[True, False], kind="stable")
    df["part"] = df.groupby("i").cumcount() + 1
    i = df["i"].to_numpy()
    frame = pd.DataFrame(
        {
            "unit_id": _unit_ids(df, bank, is_spill, rid, r, a, codes).astype(object),
            "kind": "river_reach",
            "parent_id": reaches["river_id"].to_numpy()[r[i]],
            "reach_id": rid[r[i]],
            "admin_code": codes[a[i]].astype(object),
            "bank": bank[i],
            # spill units carry no river length (their reach is counted once)
            "length_m": np.where(is_spill[i], 0.0, reaches["length_m"].to_numpy()[r[i]]),
            "area_m2": df["area_m2"].to_numpy(),
            "version": job.options.version,
            "geometry": df["geometry"].to_numpy(),
        }
    )
    _report_spills(job, a[i][is_spill[i]], df["area_m2"].to_numpy()[is_spill[i]])
    multi = df.loc[(df["part"] > 1) & ~is_spill[i], "i"].unique()
    if len(multi):
        ids = sorted(set(rid[r[multi]]))
        job.report.add(
            "multipart_unit",
            f"the corridors of {len(ids)} reach(es) fall apart into several polygons "
            "(the river leaves and re-enters its area, or the corridor is cut by a "
            "neighbour); extra parts get ids with -2, -3, ...",
            rows=ids,
            severity="warning",
        )
    have = np.zeros(len(rid), dtype=bool)
    have[r[i][~is_spill[i]]] = True
    return frame, have


def _report_slivers(job: _CorridorJob, lost: np.ndarray, ids: np.ndarray) -> None:
    """Report the slivers merged into neighbours (areas ``lost``, ids before merging)."""
    if not len(ids):
        return
    ids = list(ids)
    job.report.figures["corridor_slivers_merged"] = float(len(ids))
    job.report.figures["corridor_slivers_merged_m2"] = float(lost.sum())
    shown = ", ".join(f"{u} ({v:,.1f} m²)" for u, v in zip(ids[:10], lost[:10], strict=True))
    job.report.add(
        "sliver_merged",
        f"{len(ids)} corridor sliver(s) under sliver_m2={job.options.sliver_m2:g} m² "
        f"({lost.sum():,.1f} m² in all) merged into the unit of the same area "
        f"sharing the longest edge: {shown}{' ...' if len(ids) > 10 else ''}.",
        rows=ids,
        severity="warning",
    )


def _report_spills(job: _CorridorJob, area: np.ndarray, m2: np.ndarray) -> None:
    """Report the spill units (their area index and size)."""
    if not len(area):
        return
    sp = pd.DataFrame({"a": area, "m2": m2}).groupby("a")["m2"].agg(["sum", "size"])
    codes = job.tiling.codes[sp.index.to_numpy()]
    detail = ", ".join(f"{c} {v:,.0f} m²" for c, v in zip(codes, sp["sum"], strict=True))
    job.report.add(
        "corridor_spill",
        f"the corridor of {int(sp['size'].sum())} reach(es) spills into areas where "
        "it touches no unit of that area; each spill became a unit of the area it "
        f"lies in, attached to its nearest reach (id REACH@AREA): {detail}.",
        rows=list(codes),
        severity="warning",
    )
    job.report.figures["corridor_spill_m2"] = float(sp["sum"].sum())


def _water_units(job: _CorridorJob) -> pd.DataFrame:
    """Rows of the water-body units: each water body cut by the areas, long outlines
    split (``max_shoreline_m``)."""
    wb_geoms, wb_ids, _ = job.water
    tiling = job.tiling
    wi, ai = tiling.tree.query(wb_geoms, predicate="intersects")
    inter = snap(shapely.intersection(wb_geoms[wi], tiling.geoms[ai]))
    df = _ranked_parts(inter)
    part_sfx = np.where(df["part"] > 1, "-" + df["part"].astype(str), "")
    if job.options.max_shoreline_m is not None:
        df, part_sfx = _split_shorelines(df, part_sfx, job.options.max_shoreline_m)
    i = df["i"].to_numpy()
    code = tiling.codes[ai[i]]
    wid = wb_ids[wi[i]]
    inside = shapely.area(inter)
    total = pd.Series(inside).groupby(wi).sum().reindex(range(len(wb_geoms)), fill_value=0)
    outside = shapely.area(wb_geoms) - total.to_numpy() > 1.0
    if outside.any():
        ids = list(wb_ids[outside])
        job.report.add(
            "outside_areas",
            f"water bodies {', '.join(ids)} lie partly outside every admin area; only "
            "the parts inside became units.",
            rows=ids,
            severity="warning",
        )
    return pd.DataFrame(
        {
            "unit_id": (code.astype(str) + "-" + wid.astype(str) + part_sfx).astype(object),
            "kind": "water_body",
            "parent_id": wid.astype(object),
            "reach_id": None,
            "admin_code": code.astype(object),
            "bank": None,
            "length_m": np.nan,
            "area_m2": df["area_m2"].to_numpy(),
            "version": job.options.version,
            "geometry": df["geometry"].to_numpy(),
        }
    )


def _split_shorelines(
    df: pd.DataFrame, part_sfx: np.ndarray, max_shoreline_m: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Water-body pieces with an outline longer than ``max_shoreline_m`` split into
    units (suffixes ``-s01``, ``-s02``, ...)."""
    long = shapely.length(shapely.get_exterior_ring(df["geometry"].to_numpy()))
    long = long > max_shoreline_m * (1 + 1e-9)
    if not long.any():
        return df, part_sfx
    rows = []
    for j, (g, sfx, is_long) in enumerate(
        zip(df["geometry"].to_numpy(), part_sfx, long, strict=True)
    ):
        if not is_long:
            rows.append((j, g, sfx))
            continue
        for n, piece in enumerate(split_by_shoreline(g, max_shoreline_m), 1):
            rows.append((j, piece, f"{sfx}-s{n:02d}"))
    sel = np.array([r[0] for r in rows])
    df = df.iloc[sel].reset_index(drop=True)
    df["geometry"] = np.array([r[1] for r in rows], dtype=object)
    df["area_m2"] = shapely.area(df["geometry"].to_numpy())
    return df, np.array([r[2] for r in rows], dtype=object)
