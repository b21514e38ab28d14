"""Vectorised line splitting: one pass over cumulative vertex distances in numpy.

Lines are held as a :class:`LineTable`: all vertices in one ``(N, 2)`` array, the
offset of each line's first vertex, and the cumulative distance of every vertex from
the start of its line. Measures (distances along a line) are located with one
``searchsorted`` over a globally increasing key, so cutting a million substrings is a
handful of numpy operations instead of a million ``shapely.ops.substring`` calls.

Examples
--------
>>> import shapely
>>> t = LineTable.from_lines([shapely.LineString([(0, 0), (10, 0), (10, 10)])])
>>> [g.length for g in t.substrings([0, 0], [0.0, 5.0], [5.0, 20.0])]
[5.0, 15.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["LineTable", "box_pairs", "crossing_measures", "equal_breaks", "polygon_edges"]

_COLLINEAR_M = 1e-6  # a segment end this close to a parallel segment lies on it


def _cumsum_per_line(seg: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The running sum of ``seg`` within each line (lines of ``counts`` values from
    ``starts``), added in each line's own order: a line's measures are the same floats
    whatever lines come before it in the table (one running sum over the table, less
    the line's start, differed by ~1e-10 m with the lines before, so a partition given
    fewer lines cut elsewhere). Lines of similar length are summed as the rows of one
    matrix (at most twice their vertices), one ``cumsum`` per power of two."""
    cum = np.empty_like(seg)
    width = np.maximum(1, np.ceil(np.log2(np.maximum(counts, 1)))).astype(np.int64)
    for w in np.unique(width):  # lines of 2^(w-1) to 2^w vertices: rows of one matrix
        lines = np.flatnonzero(width == w)
        n = counts[lines]
        row = np.repeat(np.arange(len(lines)), n)
        col = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        at = np.repeat(starts[lines], n) + col
        block = np.zeros((len(lines), 1 << int(w)))
        block[row, col] = seg[at]
        cum[at] = np.cumsum(block, axis=1)[row, col]  # along each row, in its order
    return cum


def _settle(
    cum: np.ndarray, m: np.ndarray, j: np.ndarray, first: np.ndarray, last: np.ndarray, side: str
) -> np.ndarray:
    """``j`` moved to where a search of ``m`` in the line's own measures puts it: the
    table's key adds the lines before to each measure, and measures closer than the
    key's last bit tie there (1e-32 m apart on a line after one of 1 m; 6e-8 m after
    300 000 km of lines), so a line's cut would depend on the lines before it. A step
    or two per pass where ties are, none elsewhere."""
    while True:
        if side == "left":  # the first vertex at or past m
            down = (j > first + 1) & (cum[j - 1] >= m)
            up = (j < last) & (cum[j] < m)
        else:  # the first vertex past m
            down = (j > first + 1) & (cum[j - 1] > m)
            up = (j < last) & (cum[j] <= m)
        if not (down.any() or up.any()):
            return j
        j = j - down + up


@dataclass(frozen=True)
class LineTable:
    """Vertices, offsets and cumulative distances of a set of single-part lines.

    Examples
    --------
    >>> t = LineTable.from_lines([shapely.LineString([(0, 0), (3, 4)]),
    ...                           shapely.LineString([(0, 0), (0, 2), (2, 2)])])
    >>> t.lengths.tolist(), t.interpolate([0, 1], [2.5, 3.0]).tolist()
    ([5.0, 4.0], [[1.5, 2.0], [1.0, 2.0]])
    """

    coords: np.ndarray  # (N, 2) vertices of all lines, concatenated
    offsets: np.ndarray  # (n + 1,) index of each line's first vertex; last = N
    cum: np.ndarray  # (N,) distance of each vertex from its line's start
    key: np.ndarray  # (N,) cum shifted per line so it increases over all lines

    @classmethod
    def from_lines(cls, lines: object) -> LineTable:
        """Build the table from LineStrings (2D; Z is dropped)."""
        lines = np.asarray(lines, dtype=object)
        coords, index = shapely.get_coordinates(lines, return_index=True)
        n = len(lines)
        counts = np.bincount(index, minlength=n)
        if (counts < 2).any():
            bad = np.flatnonzero(counts < 2)[:5]
            raise ValueError(f"lines {bad.tolist()} have fewer than two vertices")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        seg = np.zeros(len(coords))
        if len(coords) > 1:
            seg[1:] = np.hypot(*(coords[1:] - coords[:-1]).T)
        seg[offsets[:-1]] = 0.0  # no segment between the last vertex of one line and the next
        cum = _cumsum_per_line(seg, offsets[:-1], counts)
        lengths = cum[offsets[1:] - 1]
        # the per-line shift leaves a gap of 1 between lines so measures never tie across lines
        base = np.concatenate([[0.0], np.cumsum(lengths + 1.0)[:-1]])
        key = cum + np.repeat(base, counts)
        return cls(coords, offsets, cum, key)

    @property
    def lengths(self) -> np.ndarray:
        """Length of every line."""
        return self.cum[self.offsets[1:] - 1]

    def _base(self, line: np.ndarray) -> np.ndarray:
        return self.key[self.offsets[line]]

    def _locate(self, line: np.ndarray, m: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """Segment end index and the interpolated point at measure ``m`` on ``line``."""
        first = self.offsets[line]
        last = self.offsets[line + 1] - 1
        j = np.searchsorted(self.key, self._base(line) + m, side=side)
        j = np.clip(j, first + 1, last)
        j = _settle(self.cum, m, j, first, last, side)
        c0, c1 = self.cum[j - 1], self.cum[j]
        span = c1 - c0
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(span > 0, (m - c0) / span, 0.0)
        t = np.clip(t, 0.0, 1.0)
        # columns: np.take on 1-D arrays is many times faster than gathering rows
        x, y = self.coords[:, 0], self.coords[:, 1]
        px = np.take(x, j - 1) * (1.0 - t) + np.take(x, j) * t
        py = np.take(y, j - 1) * (1.0 - t) + np.take(y, j) * t
        return j, np.column_stack([px, py])

    def interpolate(self, line: object, m: object) -> np.ndarray:
        """``(k, 2)`` points at measures ``m`` along ``line`` (clipped to the line)."""
        line = np.asarray(line, dtype=np.int64)
        m = np.clip(np.asarray(m, dtype=float), 0.0, self.lengths[line])
        return self._locate(line, m, "right")[1]

    def tangent(self, line: object, m: object) -> np.ndarray:
        """Unit direction ``(k, 2)`` of the segment holding measure ``m``."""
        line = np.asarray(line, dtype=np.int64)
        m = np.clip(np.asarray(m, dtype=float), 0.0, self.lengths[line])
        j, _ = self._locate(line, m, "right")
        d = self.coords[j] - self.coords[j - 1]
        norm = np.hypot(d[:, 0], d[:, 1])
        norm[norm == 0] = 1.0
        return d / norm[:, None]

    def substring_coords(
        self, line: object, start: object, end: object
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vertices of the substrings ``[start, end]`` of ``line`` and their part index.

        Every substring gets its interpolated start point, the original vertices
        strictly inside, and its interpolated end point.
        """
        line = np.asarray(line, dtype=np.int64)
        length = self.lengths[line]
        a = np.clip(np.asarray(start, dtype=float), 0.0, length)
        b = np.clip(np.asarray(end, dtype=float), 0.0, length)
        b = np.maximum(a, b)
        ja, pa = self._locate(line, a, "right")  # first vertex with cum > a
        jb, pb = self._locate(line, b, "left")  # first vertex with cum >= b
        inner = np.maximum(jb - ja, 0)
        counts = inner + 2
        k = len(line)
        out_off = np.zeros(k + 1, dtype=np.int64)
        np.cumsum(counts, out=out_off[1:])
        out = np.empty((out_off[-1], 2))
        # vertices as complex numbers (a view, x + iy): one 1-D gather and scatter per
        # vertex instead of the much slower (n, 2) row indexing
        flat = out.view(np.complex128).ravel()
        flat[out_off[:-1]] = _as_complex(pa)
        flat[out_off[1:] - 1] = _as_complex(pb)
        if inner.sum():
            # positions of the inner vertices: a ramp restarting at each substring
            part = np.repeat(np.arange(k), inner)
            ramp = np.arange(inner.sum()) - np.repeat(np.cumsum(inner) - inner, inner)
            src = np.take(ja, part) + ramp
            flat[np.take(out_off, part) + 1 + ramp] = np.take(_as_complex(self.coords), src)
        return out, np.repeat(np.arange(k), counts)

    def substrings(self, line: object, start: object, end: object) -> np.ndarray:
        """LineStrings ``[start, end]`` along ``line`` (arrays of equal length)."""
        coords, index = self.substring_coords(line, start, end)
        if len(coords) == 0:
            return np.empty(0, dtype=object)
        return shapely.linestrings(coords, indices=index)


def _as_complex(xy: np.ndarray) -> np.ndarray:
    """``(n, 2)`` float coordinates as ``n`` complex numbers x + iy (a view if possible)."""
    return np.ascontiguousarray(xy, dtype=np.float64).view(np.complex128).ravel()


def equal_breaks(
    length: np.ndarray, max_length: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Divide pieces into the fewest equal parts no longer than ``max_length``.

    Returns
    -------
    piece, start, end
        For every part: the index of its piece, and its start and end measured from
        the piece's start.

    Examples
    --------
    >>> piece, a, b = equal_breaks(np.array([2500.0, 800.0]), 1000.0)
    >>> piece.tolist(), b.round(1).tolist()
    ([0, 0, 0, 1], [833.3, 1666.7, 2500.0, 800.0])
    """
    length = np.asarray(length, dtype=float)
    # a hair of tolerance so that 3000.0000000001 m with max 1000 stays three parts
    n = np.maximum(np.ceil(length / max_length - 1e-9), 1).astype(np.int64)
    piece = np.repeat(np.arange(len(length)), n)
    i = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    step = (length / n)[piece]
    start = i * step
    end = np.where(i == n[piece] - 1, length[piece], (i + 1) * step)
    return piece, start, end


def polygon_edges(polygons: np.ndarray) -> np.ndarray:
    """Unique boundary segments ``(k, 4)`` (x0, y0, x1, y1) of polygons.

    Shared edges of neighbouring polygons appear once (endpoints put in a canonical
    order first), so a river crossing between two areas is found once.

    Examples
    --------
    >>> two = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    >>> len(polygon_edges(two))  # 4 + 4 sides, the shared one once
    7
    """
    rings = shapely.get_parts(shapely.get_parts(shapely.boundary(np.asarray(polygons))))
    xy, idx = shapely.get_coordinates(rings, return_index=True)
    if len(xy) < 2:
        return np.empty((0, 4))
    inner = idx[1:] == idx[:-1]
    a, b = xy[:-1][inner], xy[1:][inner]
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    seg = np.where(swap[:, None], np.c_[b, a], np.c_[a, b])
    seg = seg[(seg[:, 0] != seg[:, 2]) | (seg[:, 1] != seg[:, 3])]
    order = np.lexsort(seg.T[::-1])
    seg = seg[order]
    new = np.r_[True, (seg[1:] != seg[:-1]).any(axis=1)]
    return seg[new]


def box_pairs(
    alo: np.ndarray, ahi: np.ndarray, blo: np.ndarray, bhi: np.ndarray, *, budget: int = 0
) -> tuple[np.ndarray, np.ndarray] | None:
    """Every pair ``(i, j)`` of boxes ``a[i]`` and ``b[j]`` that meet (closed boxes).

    The pairs an STRtree of the ``b`` boxes gives for a query with the ``a`` boxes,
    in another order, found with a uniform grid in numpy (no geometry objects). Boxes
    are ``(n, 2)`` corners ``lo``/``hi``. Returns None when the boxes would cover more
    than ``budget`` grid cells (default: 8 per box plus a million), e.g. a few boxes
    far larger than the rest.

    Examples
    --------
    >>> lo = np.array([[0.0, 0.0], [5.0, 5.0]])
    >>> i, j = box_pairs(lo, lo + 1, np.array([[0.5, 0.5]]), np.array([[2.0, 2.0]]))
    >>> i.tolist(), j.tolist()
    ([0], [0])
    """
    na, nb = len(alo), len(blo)
    empty = np.empty(0, np.int64)
    if na == 0 or nb == 0:
        return empty, empty
    budget = budget or 8 * (na + nb) + 1_000_000
    # columns: numpy reduces and gathers 1-D arrays much faster than (n, 2) rows
    axl, ayl, axh, ayh = (np.ascontiguousarray(v) for v in (*alo.T, *ahi.T))
    bxl, byl, bxh, byh = (np.ascontiguousarray(v) for v in (*blo.T, *bhi.T))
    # cell: the typical box size of the coarser set, so most boxes cover 1-4 cells
    size = max(
        float(np.median(np.maximum(axh - axl, ayh - ayl))),
        float(np.median(np.maximum(bxh - bxl, byh - byl))),
    )
    ox, oy = min(axl.min(), bxl.min()), min(ayl.min(), byl.min())
    span = max(axh.max(), bxh.max()) - ox, max(ayh.max(), byh.max()) - oy
    if not (np.isfinite(size) and size > 0 and max(span) / size < 1e6):
        return None

    # floor((v - origin) / size) is monotonic in v: boxes that meet share a cell
    def cells(
        xl: np.ndarray, yl: np.ndarray, xh: np.ndarray, yh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        x0 = np.floor((xl - ox) / size).astype(np.int64)
        y0 = np.floor((yl - oy) / size).astype(np.int64)
        nx = np.floor((xh - ox) / size).astype(np.int64) - x0 + 1
        ny = np.floor((yh - oy) / size).astype(np.int64) - y0 + 1
        return x0, y0, ny, nx * ny

    ax0, ay0, any_, an = cells(axl, ayl, axh, ayh)
    bx0, by0, bny, bn = cells(bxl, byl, bxh, byh)
    if int(an.sum()) + int(bn.sum()) > budget:
        return None
    ncy = int(max((ay0 + any_).max(), (by0 + bny).max())) + 1

    def expand(
        x0: np.ndarray, y0: np.ndarray, ny: np.ndarray, n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        box = np.repeat(np.arange(len(n)), n)
        k = np.arange(len(box)) - np.repeat(np.cumsum(n) - n, n)
        nyb = np.take(ny, box)
        return box, (np.take(x0, box) + k // nyb) * ncy + np.take(y0, box) + k % nyb

    abox, acell = expand(ax0, ay0, any_, an)
    bbox, bcell = expand(bx0, by0, bny, bn)
    order = np.argsort(bcell)
    bcell, bbox = np.take(bcell, order), np.take(bbox, order)
    first = np.searchsorted(bcell, acell, side="left")
    cnt = np.searchsorted(bcell, acell, side="right") - first
    i = np.repeat(abox, cnt)
    cell = np.repeat(acell, cnt)
    j = np.take(bbox, np.repeat(first - np.cumsum(cnt) + cnt, cnt) + np.arange(len(i)))
    # each pair once: in the cell holding the low corner of the two boxes' overlap
    ref = np.maximum(np.take(ax0, i), np.take(bx0, j)) * ncy + np.maximum(
        np.take(ay0, i), np.take(by0, j)
    )
    keep = cell == ref
    i, j = i[keep], j[keep]
    # the envelope test of the tree, exactly
    meet = (
        (np.take(axl, i) <= np.take(bxh, j))
        & (np.take(bxl, j) <= np.take(axh, i))
        & (np.take(ayl, i) <= np.take(byh, j))
        & (np.take(byl, j) <= np.take(ayh, i))
    )
    return i[meet], j[meet]


def crossing_measures(
    table: LineTable, edges: np.ndarray, chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Measures where the lines of ``table`` meet any of the segments ``edges``.

    One vectorised pass: chunks of ``chunk`` line segments are paired with edges by
    bounding box (:func:`box_pairs`, an STRtree if the boxes are too spread out for
    its grid), the pairs expanded to segment pairs and intersected in closed form.
    Collinear overlaps give the measures of the edge ends that fall on the line
    segment. Returns line index and measure of every meeting point, in no particular
    order (duplicates and extra points at vertices are possible; callers sort and
    deduplicate).

    Examples
    --------
    >>> t = LineTable.from_lines([shapely.LineString([(0, 0), (10, 0)])])
    >>> line, m = crossing_measures(t, np.array([[4.0, -1.0, 4.0, 1.0]]))
    >>> line.tolist(), m.tolist()
    ([0], [4.0])
    """
    n_lines = len(table.offsets) - 1
    if n_lines == 0 or len(edges) == 0:
        return np.empty(0, np.int64), np.empty(0)
    nseg = np.diff(table.offsets) - 1
    nch = np.maximum(np.ceil(nseg / chunk), 1).astype(np.int64)
    ch_line = np.repeat(np.arange(n_lines), nch)
    ch_i = np.arange(nch.sum()) - np.repeat(np.cumsum(nch) - nch, nch)
    v0 = table.offsets[ch_line] + ch_i * chunk
    v1 = np.minimum(v0 + chunk, table.offsets[ch_line + 1] - 1)
    coords = table.coords
    # box of vertices v0..v1: reduceat runs up to the next chunk's first vertex, which
    # is this chunk's last (v1) unless it ends its line, so v1 is added
    end = np.take(coords, v1, axis=0)
    lo = np.minimum(np.minimum.reduceat(coords, v0, axis=0), end)
    hi = np.maximum(np.maximum.reduceat(coords, v0, axis=0), end)
    elo = np.minimum(edges[:, :2], edges[:, 2:])
    ehi = np.maximum(edges[:, :2], edges[:, 2:])
    found = box_pairs(lo, hi, elo, ehi)
    if found is None:  # boxes too spread out for a grid: let an STRtree pair them
        # two-point lines stand in for boxes (same extent; shapely.box is much slower)
        boxes = shapely.linestrings(np.stack([lo, hi], axis=1))
        ebox = shapely.linestrings(edges.reshape(-1, 2, 2))
        found = shapely.STRtree(ebox).query(boxes)
    ci, ei = found
    # drop the pairs whose chunk box lies wholly on one side of the edge's line: no
    # segment in it can meet the edge. The margin is far above what the tolerances
    # below (1e-9 of a length, 1e-6 m) and the rounding of nearly parallel pairs
    # (~1e-5 of the lengths) can reach, so no meeting point is lost.
    ex0, ey0 = np.take(edges[:, 0], ei), np.take(edges[:, 1], ei)
    edx, edy = np.take(edges[:, 2], ei) - ex0, np.take(edges[:, 3], ei) - ey0
    xl, yl = np.take(lo[:, 0], ci) - ex0, np.take(lo[:, 1], ci) - ey0
    xh, yh = np.take(hi[:, 0], ci) - ex0, np.take(hi[:, 1], ci) - ey0
    # signed (scaled) distances of the four corners: edx * y - edy * x
    ay, by = edx * yl, edx * yh
    ax, bx = edy * xl, edy * xh
    c_min = np.minimum(ay, by) - np.maximum(ax, bx)
    c_max = np.maximum(ay, by) - np.minimum(ax, bx)
    elen = np.abs(edx) + np.abs(edy)
    reach = (1e-4 + 1e-3 * (elen + (xh - xl) + (yh - yl))) * elen
    side = (c_min <= reach) & (c_max >= -reach)
    ci, ei = ci[side], ei[side]
    # every pair of (chunk, edge) -> its line segments
    ns = (v1 - v0)[ci]
    pair = np.repeat(np.arange(len(ci)), ns)
    j = np.arange(ns.sum()) - np.repeat(np.cumsum(ns) - ns, ns)
    sv = v0[ci][pair] + j
    sl = ch_line[ci][pair]
    e = ei[pair]
    # coordinates as columns: np.take on 1-D arrays is many times faster than
    # gathering (n, 2) rows; the arithmetic is the same
    x, y = coords[:, 0], coords[:, 1]
    px, py = np.take(x, sv), np.take(y, sv)
    rx, ry = np.take(x, sv + 1) - px, np.take(y, sv + 1) - py
    esx, esy = edges[:, 2] - edges[:, 0], edges[:, 3] - edges[:, 1]
    qx, qy = np.take(edges[:, 0], e), np.take(edges[:, 1], e)
    sx, sy = np.take(esx, e), np.take(esy, e)
    qpx, qpy = qx - px, qy - py
    den = rx * sy - ry * sx
    tn = qpx * sy - qpy * sx
    un = qpx * ry - qpy * rx
    rn = np.hypot(rx, ry)
    sn = np.take(np.hypot(esx, esy), e)
    # parallel: sine of the angle below 1e-10 (closed form would be ill-conditioned)
    par = np.abs(den) <= 1e-10 * rn * sn
    safe = np.where(par, 1.0, den)
    tt = tn / safe
    uu = un / safe
    eps = 1e-9
    hit = ~par & (tt >= -eps) & (tt <= 1 + eps) & (uu >= -eps) & (uu <= 1 + eps)
    out_s = [sv[hit]]
    out_l = [sl[hit]]
    out_t = [np.clip(tt[hit], 0.0, 1.0)]
    # collinear overlaps: the edge ends projected onto the segment
    col = par & (rn > 0)
    if col.any():
        c = np.flatnonzero(col)
        c = c[np.abs(un[c]) <= _COLLINEAR_M * rn[c]]  # distance of q from the segment's line
        rr = rn[c] ** 2
        for ex, ey in ((qpx[c], qpy[c]), (qpx[c] + sx[c], qpy[c] + sy[c])):
            te = (ex * rx[c] + ey * ry[c]) / rr
            inside = (te >= -eps) & (te <= 1 + eps)
            out_s.append(sv[c][inside])
            out_l.append(sl[c][inside])
            out_t.append(np.clip(te[inside], 0.0, 1.0))
    sv_all = np.concatenate(out_s)
    t_all = np.concatenate(out_t)
    c0 = np.take(table.cum, sv_all)
    m = c0 + t_all * (np.take(table.cum, sv_all + 1) - c0)
    return np.concatenate(out_l), m
