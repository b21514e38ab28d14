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

__all__ = ["LineTable", "crossing_measures", "equal_breaks", "polygon_edges"]

_COLLINEAR_M = 1e-6  # a segment end this close to a parallel segment lies on it


@dataclass(frozen=True)
class LineTable:
    """Vertices, offsets and cumulative distances of a set of single-part lines."""

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
        cum = np.cumsum(seg)
        cum -= np.repeat(cum[offsets[:-1]], counts)
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
        c0, c1 = self.cum[j - 1], self.cum[j]
        span = c1 - c0
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(span > 0, (m - c0) / span, 0.0)
        t = np.clip(t, 0.0, 1.0)[:, None]
        pts = self.coords[j - 1] * (1.0 - t) + self.coords[j] * t
        return j, pts

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
        out[out_off[:-1]] = pa
        out[out_off[1:] - 1] = pb
        if inner.sum():
            # positions of the inner vertices: a ramp restarting at each substring
            part = np.repeat(np.arange(k), inner)
            ramp = np.arange(inner.sum()) - np.repeat(np.cumsum(inner) - inner, inner)
            out[out_off[part] + 1 + ramp] = self.coords[ja[part] + ramp]
        return out, np.repeat(np.arange(k), counts)

    def substrings(self, line: object, start: object, end: object) -> np.ndarray:
        """LineStrings ``[start, end]`` along ``line`` (arrays of equal length)."""
        coords, index = self.substring_coords(line, start, end)
        if len(coords) == 0:
            return np.empty(0, dtype=object)
        return shapely.linestrings(coords, indices=index)


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


def crossing_measures(
    table: LineTable, edges: np.ndarray, chunk: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Measures where the lines of ``table`` meet any of the segments ``edges``.

    One vectorised pass: chunks of ``chunk`` line segments are paired with edges by
    bounding box (STRtree), the pairs expanded to segment pairs and intersected in
    closed form. Collinear overlaps give the measures of the edge ends that fall on
    the line segment. Returns line index and measure of every meeting point
    (duplicates and extra points at vertices are possible; callers deduplicate).
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
    nv = v1 - v0 + 1
    starts = np.cumsum(nv) - nv
    vid = np.repeat(v0, nv) + (np.arange(nv.sum()) - np.repeat(starts, nv))
    xy = table.coords[vid]
    lo = np.minimum.reduceat(xy, starts, axis=0)
    hi = np.maximum.reduceat(xy, starts, axis=0)
    # two-point lines stand in for boxes (same extent; shapely.box is much slower)
    boxes = shapely.linestrings(np.stack([lo, hi], axis=1))
    ebox = shapely.linestrings(edges.reshape(-1, 2, 2))
    ci, ei = shapely.STRtree(ebox).query(boxes)
    # every pair of (chunk, edge) -> its line segments
    ns = (v1 - v0)[ci]
    pair = np.repeat(np.arange(len(ci)), ns)
    j = np.arange(ns.sum()) - np.repeat(np.cumsum(ns) - ns, ns)
    sv = v0[ci][pair] + j
    sl = ch_line[ci][pair]
    e = ei[pair]
    p = table.coords[sv]
    r = table.coords[sv + 1] - p
    q = edges[e, :2]
    s = edges[e, 2:] - q
    qp = q - p
    den = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    tn = qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]
    un = qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]
    rn = np.hypot(r[:, 0], r[:, 1])
    sn = np.hypot(s[:, 0], s[:, 1])
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
        for end in (qp[c], qp[c] + s[c]):
            te = (end[:, 0] * r[c, 0] + end[:, 1] * r[c, 1]) / rr
            inside = (te >= -eps) & (te <= 1 + eps)
            out_s.append(sv[c][inside])
            out_l.append(sl[c][inside])
            out_t.append(np.clip(te[inside], 0.0, 1.0))
    sv_all = np.concatenate(out_s)
    t_all = np.concatenate(out_t)
    m = table.cum[sv_all] + t_all * (table.cum[sv_all + 1] - table.cum[sv_all])
    return np.concatenate(out_l), m
