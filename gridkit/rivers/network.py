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
    """Single-part lines oriented downstream, with their river and order
    (:func:`prepare_network` makes it).

    Examples
    --------
    >>> import shapely
    >>> from gridkit.validate import ValidationReport
    >>> line = shapely.LineString([(0, 0), (10, 0)])
    >>> net = prepare_network(np.array(["A"]), np.array([line]), outlet=shapely.Point(0, 0),
    ...                       corridor_m=0.0, report=ValidationReport())
    >>> net.parts[0].coords[0], net.part_river.tolist(), net.mouths  # flows to the outlet
    ((10.0, 0.0), [0], [])
    """

    parts: np.ndarray  # LineStrings, oriented upstream -> downstream
    part_river: np.ndarray  # index into the rivers frame
    part_order: np.ndarray  # order of the part within its river (flow order)
    rank: np.ndarray  # per river: 0 main stem, 1 tributary of it, ...
    mouths: list[tuple[int, int, np.ndarray]]  # (river, receiving part, point) confluences


def prepare_network(
    river_ids: np.ndarray,
    geoms: np.ndarray,
    *,
    outlet: shapely.Point | None,
    corridor_m: float,
    report: ValidationReport,
) -> Network:
    """Explode, check and orient the rivers (see :func:`gridkit.split_rivers`).

    Zero-length parts and exact copies of another river are dropped; overlapping
    rivers, self-intersections, parts touching no other part of their river and
    mouths ending near another river without joining it are reported (warnings).
    A river whose upstream end lies on another river (and not its downstream end) is
    reversed; rivers the network does not decide flow towards ``outlet`` when given.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from gridkit.validate import ValidationReport
    >>> main = shapely.LineString([(0, 0), (100, 0)])
    >>> trib = shapely.LineString([(50, 0), (50, 80)])  # drawn from its mouth
    >>> net = prepare_network(np.array(["M", "T"]), np.array([main, trib]), outlet=None,
    ...                       corridor_m=10.0, report=ValidationReport())
    >>> net.parts[1].coords[0], net.rank.tolist(), [(r, t) for r, t, _ in net.mouths]
    ((50.0, 80.0), [0, 1], [(1, 0)])
    """
    n = len(geoms)
    job = _Parts.explode(river_ids, geoms, report)
    job.drop(
        job.lengths <= 0, "zero_length", "{n} zero-length part(s) of rivers {ids} were skipped."
    )
    # exact duplicates of an earlier river are dropped: they would double every reach
    # and unit of the stretch
    job.drop(
        job.duplicates(),
        "duplicate_river",
        "rivers {ids} repeat the line of another river; the copies were skipped.",
    )
    parts, river = job.parts, job.river
    tree = shapely.STRtree(parts)
    xy, pidx = shapely.get_coordinates(parts, return_index=True)
    job.report_checks(tree, xy, pidx, n)

    ends = _Ends.find(job, tree, xy, pidx, n)
    flip = ends.up_hit & ~ends.dn_hit
    if outlet is not None:
        undecided = ends.up_hit == ends.dn_hit
        flip |= undecided & (
            shapely.distance(ends.up_pt, outlet) < shapely.distance(ends.dn_pt, outlet)
        )
    rv = ends.rv
    flip_river = np.zeros(n, dtype=bool)
    flip_river[rv] = flip
    part_flip = flip_river[river]
    parts = parts.copy()
    parts[part_flip] = shapely.reverse(parts[part_flip])
    # flow order of parts within a river: drawn order, reversed for flipped rivers
    counts = np.bincount(river, minlength=n)
    pos = np.arange(len(parts)) - ends.first_part[river]
    part_order = np.where(part_flip, counts[river] - 1 - pos, pos)

    mouth_hit = np.where(flip, ends.up_hit, ends.dn_hit)
    mouth_target = np.where(flip, ends.up_target, ends.dn_target)
    mouth_pt = np.where(flip, ends.up_pt, ends.dn_pt)
    source_hit = np.where(flip, ends.dn_hit, ends.up_hit)
    source_target = np.where(flip, ends.dn_target, ends.up_target)
    source_pt = np.where(flip, ends.dn_pt, ends.up_pt)
    mouths = [(int(rv[i]), int(mouth_target[i]), mouth_pt[i]) for i in np.flatnonzero(mouth_hit)]
    mouths += [
        (int(rv[i]), int(source_target[i]), source_pt[i]) for i in np.flatnonzero(source_hit)
    ]
    parent = np.full(n, -1)
    parent[rv[mouth_hit]] = river[mouth_target[mouth_hit]]
    if corridor_m > 0:
        free = ~mouth_hit
        job.report_loose_mouths(tree, xy, pidx, mouth_pt[free], rv[free], corridor_m)
    return Network(parts, river, part_order, _ranks(parent), mouths)


@dataclass
class _Parts:
    """The single parts of the rivers being checked (``river``: index of each part's
    river) and the report the checks write into."""

    river_ids: np.ndarray
    parts: np.ndarray
    river: np.ndarray
    lengths: np.ndarray
    report: ValidationReport

    @classmethod
    def explode(cls, river_ids: np.ndarray, geoms: np.ndarray, report: ValidationReport) -> _Parts:
        merged = shapely.line_merge(geoms, directed=True)
        parts, river = shapely.get_parts(merged, return_index=True)
        parts = shapely.force_2d(parts)
        return cls(river_ids, parts, river, shapely.length(parts), report)

    def warn(self, mask: np.ndarray, code: str, message: str) -> None:
        """Report the rivers of the parts ``mask`` (``{ids}`` and ``{n}``, the number of
        parts, in ``message``)."""
        ids = sorted(set(self.river_ids[self.river[mask]]))
        text = message.format(n=int(mask.sum()), ids=", ".join(ids))
        self.report.add(code, text, rows=ids, severity="warning")

    def drop(self, mask: np.ndarray, code: str, message: str) -> None:
        """Drop the parts ``mask`` and report them."""
        if mask.any():
            self.warn(mask, code, message)
            self.parts, self.river = self.parts[~mask], self.river[~mask]
            self.lengths = self.lengths[~mask]

    def duplicates(self) -> np.ndarray:
        """Parts equal to a part of an earlier river (or an earlier part of the same)."""
        parts, river = self.parts, self.river
        # candidates share bounds and length; only those are compared exactly
        key = np.round(np.c_[shapely.bounds(parts), self.lengths], 3)
        _, inv, cnt = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        cand = np.flatnonzero(cnt[inv.ravel()] > 1)
        a, b = np.meshgrid(cand, cand, indexing="ij") if len(cand) < 2000 else (cand, cand)
        a, b = a.ravel(), b.ravel()
        same = (a != b) & (inv.ravel()[a] == inv.ravel()[b])
        a, b = a[same], b[same]
        eq = shapely.equals(parts[a], parts[b])
        a, b = a[eq], b[eq]
        dup = np.zeros(len(parts), dtype=bool)
        later = (river[a] < river[b]) | ((river[a] == river[b]) & (a < b))
        dup[b[later]] = True
        return dup

    def report_checks(
        self, tree: shapely.STRtree, xy: np.ndarray, pidx: np.ndarray, n: int
    ) -> None:
        """Report rivers sharing a segment, crossing themselves, or with parts that
        touch no other part of the same river."""
        parts, river = self.parts, self.river
        # rivers sharing a segment (same two vertices, either direction)
        multi_r = _shared_segment_rivers(xy, pidx, river)
        if len(multi_r):
            pairs = sorted({"/".join(self.river_ids[list(t)]) for t in multi_r})
            self.report.add(
                "overlapping_rivers",
                f"rivers overlap along their lines ({', '.join(pairs)}); the shared stretch "
                "is counted for each river.",
                rows=pairs,
                severity="warning",
            )
        not_simple = ~shapely.is_simple(parts)
        if not_simple.any():
            self.warn(
                not_simple,
                "self_intersection",
                "rivers {ids} cross or overlap themselves; lengths follow the drawn line.",
            )
        multi = np.bincount(river, minlength=n)[river] > 1
        if multi.any():
            a, b = tree.query(parts, predicate="dwithin", distance=SNAP_M)
            same = (river[a] == river[b]) & (a != b)
            touching = np.zeros(len(parts), dtype=bool)
            touching[a[same]] = True
            dangling = multi & ~touching
            if dangling.any():
                self.warn(
                    dangling,
                    "dangling_part",
                    "rivers {ids} have parts that touch no other part of the same river; "
                    "they are kept as separate stretches.",
                )

    def report_loose_mouths(
        self,
        tree: shapely.STRtree,
        xy: np.ndarray,
        pidx: np.ndarray,
        mouth_pt: np.ndarray,
        mouth_river: np.ndarray,
        corridor_m: float,
    ) -> None:
        """Report river mouths that end within ``corridor_m`` of another river without
        touching it (``not_connected``)."""
        if not len(mouth_pt):
            return
        pi, pj = _dwithin_pairs(
            tree, mouth_pt, corridor_m, xy, pidx, pt_group=mouth_river, line_group=self.river
        )
        if not len(pi):
            return
        dist = shapely.distance(mouth_pt[pi], self.parts[pj])
        near = np.unique(pi[dist > SNAP_M])
        if len(near):
            ids = sorted(set(self.river_ids[mouth_river[near]]))
            self.report.add(
                "not_connected",
                f"rivers {', '.join(ids)} end within {corridor_m:g} m of another river "
                f"without joining it (more than {SNAP_M:g} m apart); treated as separate "
                "networks. Snap the tributary mouths if they are confluences.",
                rows=ids,
                severity="warning",
            )


@dataclass(frozen=True)
class _Ends:
    """Both ends of every river with parts (``rv``), as drawn: the point, whether it
    lies on another river away from that river's ends, and the part it lies on."""

    rv: np.ndarray
    first_part: np.ndarray  # per river: its first part in drawn order (-1 without parts)
    up_pt: np.ndarray
    dn_pt: np.ndarray
    up_hit: np.ndarray
    dn_hit: np.ndarray
    up_target: np.ndarray
    dn_target: np.ndarray

    @classmethod
    def find(
        cls, job: _Parts, tree: shapely.STRtree, xy: np.ndarray, pidx: np.ndarray, n: int
    ) -> _Ends:
        parts, river = job.parts, job.river
        start = shapely.get_point(parts, 0)
        end = shapely.get_point(parts, -1)
        # parts come from get_parts in drawn order; first/last part per river
        first_part = np.full(n, -1)
        last_part = np.full(n, -1)
        for_first = np.flatnonzero(np.r_[True, river[1:] != river[:-1]])
        for_last = np.flatnonzero(np.r_[river[1:] != river[:-1], True])
        first_part[river[for_first]] = for_first
        last_part[river[for_last]] = for_last
        rv = np.flatnonzero(first_part >= 0)
        up_pt = start[first_part[rv]]
        dn_pt = end[last_part[rv]]
        # both ends in one pass (each point's hits are independent of the others)
        pts = np.r_[up_pt, dn_pt]
        pi, pj = _dwithin_pairs(
            tree, pts, SNAP_M, xy, pidx, pt_group=np.r_[rv, rv], line_group=river
        )
        far = (shapely.distance(pts[pi], start[pj]) > SNAP_M) & (
            shapely.distance(pts[pi], end[pj]) > SNAP_M
        )
        hit = np.zeros(len(pts), dtype=bool)
        target = np.full(len(pts), -1)
        hit[pi[far]] = True
        target[pi[far]] = pj[far]
        up_hit, dn_hit = np.split(hit, 2)
        up_target, dn_target = np.split(target, 2)
        return cls(rv, first_part, up_pt, dn_pt, up_hit, dn_hit, up_target, dn_target)


def _ranks(parent: np.ndarray) -> np.ndarray:
    """Rank of every river: main stems 0, a river flowing into one of rank k gets k + 1
    (``parent``: the river each flows into, -1 for none)."""
    n = len(parent)
    rank = np.zeros(n, dtype=np.int64)
    for _ in range(n):  # at most n steps; stops early, guards against cycles
        new = np.where(parent >= 0, rank[np.maximum(parent, 0)] + 1, 0)
        new = np.minimum(new, n)
        if np.array_equal(new, rank):
            break
        rank = new
    return rank


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
