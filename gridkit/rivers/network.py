"""River network preparation: single parts, checks, flow direction, confluences, rank."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gridkit.validate.report import ValidationReport

__all__ = ["Network", "prepare_network"]

SNAP_M = 1.0  # ends closer than this to another line are joined to it
_RUN = 16  # segments per box when screening point-line distances


@dataclass
class Network:
    """Single-part lines oriented downstream, with their river and order."""

    parts: np.ndarray  # LineStrings, oriented upstream -> downstream
    part_river: np.ndarray  # index into the rivers frame
    part_order: np.ndarray  # order of the part within its river (flow order)
    rank: np.ndarray  # per river: 0 main stem, 1 tributary of it, ...
    mouths: list[tuple[int, int, np.ndarray]]  # (river, receiving part, point) confluences


def prepare_network(
    river_ids: np.ndarray,
    geoms: np.ndarray,
    *,
    outlet: object,
    corridor_m: float,
    report: ValidationReport,
) -> Network:
    """Explode, check and orient the rivers (see :func:`gridkit.split_rivers`)."""
    n = len(geoms)
    merged = shapely.line_merge(geoms, directed=True)
    parts, river = shapely.get_parts(merged, return_index=True)
    parts = shapely.force_2d(parts)
    lengths = shapely.length(parts)

    zero = lengths <= 0
    if zero.any():
        ids = sorted(set(river_ids[river[zero]]))
        report.add(
            "zero_length",
            f"{int(zero.sum())} zero-length part(s) of rivers {', '.join(ids)} were skipped.",
            rows=ids,
            severity="warning",
        )
        parts, river, lengths = parts[~zero], river[~zero], lengths[~zero]

    # exact duplicates of an earlier river are dropped (reported): they would double
    # every reach and unit of the stretch
    tree = shapely.STRtree(parts)
    # candidates share bounds and length; only those are compared exactly
    key = np.round(np.c_[shapely.bounds(parts), lengths], 3)
    _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    cand = np.flatnonzero(cnt[inv.ravel()] > 1)
    a, b = np.meshgrid(cand, cand, indexing="ij") if len(cand) < 2000 else (cand, cand)
    a, b = a.ravel(), b.ravel()
    same = (a != b) & (inv.ravel()[a] == inv.ravel()[b])
    a, b = a[same], b[same]
    eq = shapely.equals(parts[a], parts[b])
    a, b = a[eq], b[eq]
    dup_mask = np.zeros(len(parts), dtype=bool)
    later = (river[a] < river[b]) | ((river[a] == river[b]) & (a < b))
    dup_mask[b[later]] = True
    if dup_mask.any():
        ids = sorted(set(river_ids[river[dup_mask]]))
        report.add(
            "duplicate_river",
            f"rivers {', '.join(ids)} repeat the line of another river; the copies were skipped.",
            rows=ids,
            severity="warning",
        )
        parts, river, lengths = parts[~dup_mask], river[~dup_mask], lengths[~dup_mask]
        tree = shapely.STRtree(parts)

    # rivers sharing a segment (same two vertices, either direction)
    xy, pidx = shapely.get_coordinates(parts, return_index=True)
    multi_r = _shared_segment_rivers(xy, pidx, river)
    if len(multi_r):
        pairs = sorted({"/".join(river_ids[list(t)]) for t in multi_r})
        report.add(
            "overlapping_rivers",
            f"rivers overlap along their lines ({', '.join(pairs)}); the shared stretch "
            "is counted for each river.",
            rows=pairs,
            severity="warning",
        )
    not_simple = ~shapely.is_simple(parts)
    if not_simple.any():
        ids = sorted(set(river_ids[river[not_simple]]))
        report.add(
            "self_intersection",
            f"rivers {', '.join(ids)} cross or overlap themselves; lengths follow the drawn line.",
            rows=ids,
            severity="warning",
        )

    # parts of one river that touch no other part of it
    counts = np.bincount(river, minlength=n)
    multi = counts[river] > 1
    if multi.any():
        a, b = tree.query(parts, predicate="dwithin", distance=SNAP_M)
        same = (river[a] == river[b]) & (a != b)
        touching = np.zeros(len(parts), dtype=bool)
        touching[a[same]] = True
        dangling = multi & ~touching
        if dangling.any():
            ids = sorted(set(river_ids[river[dangling]]))
            report.add(
                "dangling_part",
                f"rivers {', '.join(ids)} have parts that touch no other part of the same "
                "river; they are kept as separate stretches.",
                rows=ids,
                severity="warning",
            )

    start = shapely.get_point(parts, 0)
    end = shapely.get_point(parts, -1)
    first_part = np.full(n, -1)
    last_part = np.full(n, -1)
    order = np.arange(len(parts))
    # parts come from get_parts in drawn order; first/last part per river
    for_first = np.flatnonzero(np.r_[True, river[1:] != river[:-1]])
    for_last = np.flatnonzero(np.r_[river[1:] != river[:-1], True])
    first_part[river[for_first]] = for_first
    last_part[river[for_last]] = for_last
    has = first_part >= 0

    def touches_interior(pts: np.ndarray, rv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each end lies on another river away from that river's ends."""
        pi, pj = _dwithin_pairs(tree, pts, SNAP_M, xy, pidx, pt_group=rv, line_group=river)
        far = (shapely.distance(pts[pi], start[pj]) > SNAP_M) & (
            shapely.distance(pts[pi], end[pj]) > SNAP_M
        )
        hit = np.zeros(len(pts), dtype=bool)
        target = np.full(len(pts), -1)
        hit[pi[far]] = True
        target[pi[far]] = pj[far]
        return hit, target

    rv = np.flatnonzero(has)
    up_pt = start[first_part[rv]]
    dn_pt = end[last_part[rv]]
    # both ends in one pass (each point's hits are independent of the others)
    hit, target = touches_interior(np.r_[up_pt, dn_pt], np.r_[rv, rv])
    up_hit, dn_hit = np.split(hit, 2)
    up_target, dn_target = np.split(target, 2)
    flip = up_hit & ~dn_hit
    undecided = up_hit == dn_hit
    if outlet is not None:
        d_up = shapely.distance(up_pt, outlet)
        d_dn = shapely.distance(dn_pt, outlet)
        flip |= undecided & (d_up < d_dn)
    flip_river = np.zeros(n, dtype=bool)
    flip_river[rv] = flip

    part_flip = flip_river[river]
    parts = parts.copy()
    parts[part_flip] = shapely.reverse(parts[part_flip])
    # flow order of parts within a river: drawn order, reversed for flipped rivers
    pos = order - first_part[river]
    part_order = np.where(part_flip, counts[river] - 1 - pos, pos)

    mouth_hit = np.where(flip, up_hit, dn_hit)
    mouth_target = np.where(flip, up_target, dn_target)
    mouth_pt = np.where(flip, up_pt, dn_pt)
    source_hit = np.where(flip, dn_hit, up_hit)
    source_target = np.where(flip, dn_target, up_target)
    source_pt = np.where(flip, dn_pt, up_pt)

    mouths = [(int(rv[i]), int(mouth_target[i]), mouth_pt[i]) for i in np.flatnonzero(mouth_hit)]
    mouths += [
        (int(rv[i]), int(source_target[i]), source_pt[i]) for i in np.flatnonzero(source_hit)
    ]

    # rank: main stems 0, a river flowing into one of rank k gets k + 1
    parent = np.full(n, -1)
    parent[rv[mouth_hit]] = river[mouth_target[mouth_hit]]
    rank = np.zeros(n, dtype=np.int64)
    for _ in range(n):  # at most n steps; stops early, guards against cycles
        new = np.where(parent >= 0, rank[np.maximum(parent, 0)] + 1, 0)
        new = np.minimum(new, n)
        if np.array_equal(new, rank):
            break
        rank = new

    # river mouths that end close to another river without touching it
    free = ~mouth_hit
    if free.any() and corridor_m > 0:
        pi, pj = _dwithin_pairs(
            tree, mouth_pt[free], corridor_m, xy, pidx, pt_group=rv[free], line_group=river
        )
        if len(pi):
            dist = shapely.distance(mouth_pt[free][pi], parts[pj])
            near = np.unique(pi[dist > SNAP_M])
            if len(near):
                ids = sorted(set(river_ids[rv[free][near]]))
                report.add(
                    "not_connected",
                    f"rivers {', '.join(ids)} end within {corridor_m:g} m of another river "
                    f"without joining it (more than {SNAP_M:g} m apart); treated as separate "
                    "networks. Snap the tributary mouths if they are confluences.",
                    rows=ids,
                    severity="warning",
                )
    return Network(parts, river, part_order, rank, mouths)


def _dwithin_pairs(
    tree: shapely.STRtree,
    pts: np.ndarray,
    d: float,
    xy: np.ndarray,
    pidx: np.ndarray,
    *,
    pt_group: np.ndarray,
    line_group: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``tree.query(pts, predicate="dwithin", distance=d)`` for points, in its order,
    without the pairs whose point and line are in the same group (river).

    The tree holds long lines (``xy``/``pidx``: their vertices and line index), so
    GEOS would measure each point against every line whose box is near, hundreds of
    vertices per pair. Here the same boxes give the same candidates in the same
    order; boxes of runs of ``_RUN`` segments drop the lines that only pass near, and
    GEOS runs its own test (prepared point, as the tree query does) on the rest.
    """
    pxy = shapely.get_coordinates(pts)
    if len(pxy) != len(pts):  # missing or empty points: leave them to the tree
        pi, pj = tree.query(pts, predicate="dwithin", distance=d)
        other = pt_group[pi] != line_group[pj]
        return pi[other], pj[other]
    ci, cj = tree.query(shapely.box(pxy[:, 0] - d, pxy[:, 1] - d, pxy[:, 0] + d, pxy[:, 1] + d))
    other = pt_group[ci] != line_group[cj]
    ci, cj = ci[other], cj[other]
    if len(ci) == 0:
        return ci, cj
    # runs of _RUN segments per line: start vertex, and the box over its vertices
    n_lines = len(tree.geometries)
    off = np.zeros(n_lines + 1, dtype=np.int64)
    np.cumsum(np.bincount(pidx, minlength=n_lines), out=off[1:])
    nseg = np.maximum(np.diff(off) - 1, 0)
    nrun = -(-nseg // _RUN)
    run_off = np.zeros(n_lines + 1, dtype=np.int64)
    np.cumsum(nrun, out=run_off[1:])
    run_line = np.repeat(np.arange(n_lines), nrun)
    rs = off[run_line] + _RUN * (np.arange(run_off[-1]) - run_off[run_line])
    # reduceat stops before the next run's first vertex, which is this run's last
    # unless the run ends its line (columns: numpy reduces and gathers 1-D arrays much
    # faster than (n, 2) rows)
    nxt = np.minimum(rs + _RUN, off[run_line + 1] - 1)
    box = []
    for col in (np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])):
        end = np.take(col, nxt)
        box.append(np.minimum(np.minimum.reduceat(col, rs), end))
        box.append(np.maximum(np.maximum.reduceat(col, rs), end))
    # every candidate pair against the runs of its line
    k = nrun[cj]
    pair = np.repeat(np.arange(len(ci)), k)
    run = np.repeat(run_off[cj] - np.cumsum(k) + k, k) + np.arange(len(pair))
    q = np.take(ci, pair)
    gap2 = 0.0
    for lo, hi, v in ((box[0], box[1], pxy[:, 0]), (box[2], box[3], pxy[:, 1])):
        qv = np.take(v, q)
        gap = np.maximum(np.maximum(np.take(lo, run) - qv, qv - np.take(hi, run)), 0.0)
        gap2 = gap2 + gap * gap
    slack = d + 1e-6 * max(1.0, d)
    near = np.zeros(len(ci), dtype=bool)
    near[pair[gap2 <= slack**2]] = True
    ci, cj = ci[near], cj[near]
    # prepared points: the very GEOS test the tree query runs
    shapely.prepare(pts[np.unique(ci)])
    exact = shapely.dwithin(pts[ci], tree.geometries[cj], d)
    return ci[exact], cj[exact]


def _shared_segment_rivers(xy: np.ndarray, pidx: np.ndarray, river: np.ndarray) -> set:
    """Sorted tuples of the rivers sharing a segment (same two vertices, either way).

    ``xy`` are the vertices of all parts (compared rounded to the millimetre),
    ``pidx`` their part, ``river`` the river of each part. Sorting the segment
    endpoints is much cheaper than pairwise overlap tests of long lines; only
    segments whose first coordinate repeats are sorted in full.
    """
    # both ends of a segment that two rivers share are vertices of two parts, so only
    # segments whose two end x values repeat are compared (one plain sort of the x
    # values finds them; +0.0 makes -0.0 and 0.0 one value, as == does)
    x = np.round(xy[:, 0], 3) + 0.0
    xs = np.sort(x)
    twice = xs[1:][xs[1:] == xs[:-1]]
    if len(twice) == 0:
        return set()
    rep = np.isin(x, twice)
    i = np.flatnonzero((pidx[1:] == pidx[:-1]) & rep[1:] & rep[:-1])
    s0, s1 = np.round(xy[i], 3), np.round(xy[i + 1], 3)
    swap = (s0[:, 0] > s1[:, 0]) | ((s0[:, 0] == s1[:, 0]) & (s0[:, 1] > s1[:, 1]))
    seg = np.empty((len(s0), 4))
    seg[:, :2] = np.where(swap[:, None], s1, s0)
    seg[:, 2:] = np.where(swap[:, None], s0, s1)
    seg_river = river[pidx[i]]
    if len(seg) < 2:
        return set()
    # candidates: segments whose first x occurs more than once
    order = np.argsort(seg[:, 0], kind="stable")
    x = seg[order, 0]
    eq = x[1:] == x[:-1]
    cand = np.zeros(len(x), dtype=bool)
    cand[:-1] |= eq
    cand[1:] |= eq
    idx = order[cand]
    if len(idx) < 2:
        return set()
    cs, cr = seg[idx], seg_river[idx]
    o = np.lexsort((cr, cs[:, 3], cs[:, 2], cs[:, 1], cs[:, 0]))
    cs, cr = cs[o], cr[o]
    same = np.r_[False, (cs[1:] == cs[:-1]).all(axis=1)]
    group = np.cumsum(~same) - 1
    # distinct (segment, river) pairs; segments with more than one river
    new = np.r_[True, (group[1:] != group[:-1]) | (cr[1:] != cr[:-1])]
    g, r = group[new], cr[new]
    n_r = np.bincount(g)
    multi = n_r[g] > 1
    out: set = set()
    if multi.any():
        g, r = g[multi], r[multi]
        start = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        for chunk in np.split(r, start[1:]):
            out.add(tuple(int(v) for v in chunk))
    return out
