"""Atoms of a community part: cells that tile it without cutting any building cluster.

For one polygon part ``P`` (metric CRS) with building clusters (footprint ``F_i``
and a representative point each) and optional barrier lines:

1. enclosures ``E``: ``P`` cut by the barriers (``shapely.polygonize``);
2. one noding of all linework at once: the boundary of ``P``, the Voronoi edges of
   the cluster points (one ``shapely.voronoi_polygons`` call), the footprint
   boundaries and the enclosure boundaries, snap-rounded on a 1 mm grid
   (``GRID_M``) and polygonized into *faces* that tile ``P`` exactly;
3. every face gets a key: the cluster whose footprint holds it (footprints win),
   else the cluster of its Voronoi cell (nearest cluster point) when the face lies
   in the enclosure of that point, else an empty key per (cell, enclosure);
4. atoms are the connected groups of edge-adjacent faces with the same key; for a
   cluster, the group holding most of its footprint keeps it, other groups are empty
   atoms (0 households) absorbed by the partition.

Faces share their edges vertex for vertex, so adjacency and shared lengths come
from matching ring segments (no overlay), and atoms (and unions of atoms) are
dissolved with ``shapely.coverage_union``, which is exact on such a coverage.
Footprints of different clusters do not overlap (clusters are the connected groups
of overlapping footprints), so no atom boundary runs through a footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from shapely import STRtree

__all__ = ["GRID_M", "Atoms", "build_atoms", "group_union", "snap"]

GRID_M = 1e-3
"""Precision grid of every overlay in a community part (metres): 1 mm."""


@dataclass
class Atoms:
    """Atoms of one part: geometry, owning cluster (-1 = empty), enclosure and graph.

    Made by :func:`build_atoms`; ``edge_i``, ``edge_j``, ``edge_len`` and
    ``edge_barrier`` list the pairs of atoms sharing an edge.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box, centroid
    >>> footprints = snap(np.array([box(10, 10, 20, 20), box(60, 10, 70, 20)]))
    >>> atoms = build_atoms(box(0, 0, 100, 50), footprints, centroid(footprints))
    >>> atoms.cluster.tolist(), atoms.cluster_atom.tolist()
    ([1, 0], [1, 0])
    >>> atoms.edge_i.tolist(), atoms.edge_j.tolist(), atoms.edge_len.tolist()
    ([0], [1], [50.0])
    """

    geoms: np.ndarray
    cluster: np.ndarray  # int index into the part's clusters, -1 for empty atoms
    enclosure: np.ndarray  # int
    edge_i: np.ndarray
    edge_j: np.ndarray
    edge_len: np.ndarray
    edge_barrier: np.ndarray  # bool: the shared edge separates two enclosures (mostly)
    cluster_atom: np.ndarray | None = None  # atom holding each cluster's households


def snap(geoms: np.ndarray) -> np.ndarray:
    """Round coordinates to the 1 mm grid; the few that turn invalid are snap-rounded.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import Point
    >>> snap(np.array([Point(0.00049, 1.0006)]))
    array([<POINT (0 1.001)>], dtype=object)
    """
    out = shapely.transform(geoms, lambda c: np.rint(c / GRID_M) * GRID_M)
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = shapely.set_precision(geoms[bad], GRID_M)
    return out


def group_union(geoms: np.ndarray, labels: np.ndarray, k: int | None = None) -> np.ndarray:
    """``coverage_union`` of ``geoms`` per label ``0..k-1`` (one vectorised call).

    The geometries of a label must form a coverage (shared edges vertex for vertex).

    Examples
    --------
    >>> import numpy as np
    >>> import shapely
    >>> squares = shapely.box(np.arange(4), 0, np.arange(4) + 1, 1)
    >>> units = group_union(squares, np.array([0, 0, 1, 1]))
    >>> shapely.area(units).tolist(), shapely.bounds(units[1]).tolist()
    ([2.0, 2.0], [2.0, 0.0, 4.0, 1.0])
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if k is None else k
    out = np.array([shapely.Polygon()] * k, dtype=object)
    if not len(labels):
        return out
    count = np.bincount(labels, minlength=k)
    single = count[labels] == 1
    out[labels[single]] = geoms[single]
    multi = np.flatnonzero(~single)
    if len(multi):
        lab = labels[multi]
        order = np.argsort(lab, kind="stable")
        lab, src = lab[order], multi[order]
        groups, start, sizes = np.unique(lab, return_index=True, return_counts=True)
        col = np.arange(len(lab)) - np.repeat(start, sizes)
        pad = np.full((len(groups), int(sizes.max())), None, dtype=object)
        pad[np.searchsorted(groups, lab), col] = geoms[src]
        out[groups] = shapely.coverage_union_all(pad, axis=1)
    return out


def _enclosures(part: shapely.Polygon, barriers: np.ndarray | None) -> np.ndarray:
    if barriers is None or len(barriers) == 0:
        return np.array([part], dtype=object)
    lines = barriers[shapely.intersects(barriers, part)]
    if len(lines) == 0:
        return np.array([part], dtype=object)
    noded = shapely.union_all(np.r_[lines, [shapely.boundary(part)]], grid_size=GRID_M)
    polys = shapely.get_parts(shapely.polygonize([noded]))
    if len(polys) == 0:
        return np.array([part], dtype=object)
    # polygonize also fills holes and spans outside barrier loops: keep what is in P
    pieces = shapely.get_parts(shapely.intersection(polys, part, grid_size=GRID_M))
    pieces = pieces[shapely.get_type_id(pieces) == 3]
    pieces = pieces[shapely.area(pieces) > 0]
    covered = shapely.area(shapely.union_all(pieces, grid_size=GRID_M)) if len(pieces) else 0
    if abs(covered - part.area) > 1e-6 * max(part.area, 1.0) + 1e-3:
        return np.array([part], dtype=object)  # odd barrier topology: do without
    return pieces


def _faces(part: shapely.Polygon, lines: list) -> tuple[np.ndarray, np.ndarray]:
    """Faces of the noded linework inside ``part`` and an interior point of each."""
    noded = shapely.union_all(np.concatenate(lines), grid_size=GRID_M)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    faces = faces[shapely.area(faces) > 0]
    rp = shapely.point_on_surface(faces)
    inside_part = shapely.set_precision(part, GRID_M)
    shapely.prepare(inside_part)
    xy = shapely.get_coordinates(rp)
    keep = shapely.contains_xy(inside_part, xy[:, 0], xy[:, 1])
    return faces[keep], rp[keep]


def _face_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge-adjacent face pairs (i < j) with the length of their shared boundary."""
    rings, ring_face = shapely.get_rings(faces, return_index=True)
    c, ci = shapely.get_coordinates(rings, return_index=True)
    ok = ci[:-1] == ci[1:]
    face = ring_face[ci[:-1][ok]]
    a = np.rint(c[:-1][ok] / GRID_M).astype(np.int64)
    b = np.rint(c[1:][ok] / GRID_M).astype(np.int64)
    ln = np.hypot(*(c[1:][ok] - c[:-1][ok]).T)
    swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
    lo = np.where(swap[:, None], b, a)
    hi = np.where(swap[:, None], a, b)
    order = np.lexsort((face, hi[:, 1], hi[:, 0], lo[:, 1], lo[:, 0]))
    key = np.column_stack((lo, hi))[order]
    same = (key[1:] == key[:-1]).all(axis=1)
    f = face[order]
    k = np.flatnonzero(same & (f[1:] != f[:-1]))
    i, j, ln = f[k], f[k + 1], ln[order][k]
    return np.minimum(i, j), np.maximum(i, j), ln


def build_atoms(
    part: shapely.Polygon,
    footprints: np.ndarray,
    points: np.ndarray,
    *,
    barriers: np.ndarray | None = None,
    footprint_cluster: np.ndarray | None = None,
) -> Atoms:
    """Tile ``part`` into atoms around the clusters (see the module docstring).

    ``footprints`` (polygonal or points) should sit on the 1 mm grid (:func:`snap`);
    ``footprint_cluster`` gives the cluster of each (default: one cluster per
    footprint, in order); ``points`` has one point per cluster, in ``part``.

    Examples
    --------
    Two buildings in a 100 m x 50 m part: one atom each (their Voronoi cells), and
    a barrier between them marks the shared edge.

    >>> import numpy as np
    >>> import shapely
    >>> from shapely import LineString, box
    >>> footprints = snap(np.array([box(10, 10, 20, 20), box(60, 10, 70, 20)]))
    >>> road = np.array([LineString([(40, -1), (40, 51)])])
    >>> atoms = build_atoms(
    ...     box(0, 0, 100, 50), footprints, shapely.centroid(footprints), barriers=road
    ... )
    >>> shapely.area(atoms.geoms[atoms.cluster_atom]).tolist(), atoms.edge_barrier.tolist()
    ([2000.0, 3000.0], [True])
    """
    n = len(points)
    fcl = (
        np.arange(len(footprints))
        if footprint_cluster is None
        else np.asarray(footprint_cluster, dtype=np.int64)
    )
    encl = _enclosures(part, barriers)
    if n == 0:
        geoms = encl
        cluster = np.full(len(geoms), -1)
        atoms = _with_graph(geoms, cluster, np.arange(len(geoms)))
        atoms.cluster_atom = np.zeros(0, dtype=np.int64)
        return atoms

    pxy = shapely.get_coordinates(points)
    # duplicate points share one Voronoi cell: the first of them owns it
    uxy, first = np.unique(pxy, axis=0, return_index=True)
    owner_of_u = first
    lines = [np.array([shapely.boundary(part)], dtype=object)]
    if len(uxy) > 1:
        env = shapely.buffer(shapely.envelope(part), 10.0)
        edges = shapely.voronoi_polygons(shapely.multipoints(uxy), extend_to=env, only_edges=True)
        lines.append(np.array([edges], dtype=object))
    polyfp = np.isin(shapely.get_type_id(footprints), (3, 6))
    if polyfp.any():
        lines.append(shapely.boundary(footprints[polyfp]))
    if len(encl) > 1:
        lines.append(shapely.boundary(encl))
    faces, rp = _faces(part, lines)
    nf = len(faces)
    fxy = shapely.get_coordinates(rp)

    # keys: own footprint, else Voronoi cell (nearest point) within its enclosure
    if len(encl) > 1:
        ei, fi = STRtree(rp).query(encl, predicate="contains")
        f_encl = np.zeros(nf, dtype=np.int64)
        f_encl[fi] = ei
        ei, pi = STRtree(points).query(encl, predicate="intersects")
        p_encl = np.full(n, -1, dtype=np.int64)
        o = np.lexsort((ei, pi))
        p_encl[pi[o][::-1]] = ei[o][::-1]  # a point on a barrier: the first enclosure
    else:
        f_encl = np.zeros(nf, dtype=np.int64)
        p_encl = np.zeros(n, dtype=np.int64)
    tree = cKDTree(uxy)
    cell = owner_of_u[tree.query(fxy)[1]] if len(uxy) > 1 else np.zeros(nf, dtype=np.int64)
    in_fp = np.full(nf, -1, dtype=np.int64)
    if polyfp.any():
        pfi = np.flatnonzero(polyfp)
        fpi, fi = STRtree(rp).query(footprints[pfi], predicate="intersects")
        in_fp[fi] = fcl[pfi[fpi]]
    key = np.where(in_fp >= 0, in_fp, cell)
    empty = (in_fp < 0) & (f_encl != p_encl[cell])
    key = np.where(empty, n + cell * len(encl) + f_encl, key)

    # atoms: connected groups of faces with the same key; the parts of a multi-part
    # footprint are first joined through the faces between them
    fi, fj, fl = _face_edges(faces)
    farea = shapely.area(faces)
    pp, pf = STRtree(faces).query(points, predicate="intersects")
    key = _join_footprint_parts(key, in_fp, fi, fj, farea, np.unique(pf))
    na, comp = _groups(key, fi, fj)
    fp_area = np.bincount(comp, weights=np.where(in_fp >= 0, farea, 0.0), minlength=na)
    c_key = np.zeros(na, dtype=np.int64)
    c_key[comp] = key
    # the group holding most of the cluster's footprint (points: holding the point) wins
    has_pt = np.zeros(na, dtype=bool)
    has_pt[comp[pf[key[pf] == pp]]] = True
    cand = np.flatnonzero(c_key < n)
    cluster_atom = np.full(n, -1, dtype=np.int64)
    if len(cand):
        o = np.lexsort((cand, ~has_pt[cand], -fp_area[cand], c_key[cand]))
        ck = c_key[cand][o]
        firsts = np.r_[True, ck[1:] != ck[:-1]]
        cluster_atom[ck[firsts]] = cand[o][firsts]
    cluster = np.full(na, -1, dtype=np.int64)
    got = cluster_atom >= 0
    cluster[cluster_atom[got]] = np.flatnonzero(got)
    lost = np.flatnonzero(~got)  # no face of its own: the atom holding its point
    if len(lost):
        d = shapely.distance(points[lost][:, None], faces[None, :])
        cluster_atom[lost] = comp[np.argmin(d, axis=1)]

    geoms = group_union(faces, comp, na)
    # enclosure of an atom: that of its largest face
    o = np.lexsort((-farea, comp))
    firsts = np.r_[True, comp[o][1:] != comp[o][:-1]]
    a_encl = np.zeros(na, dtype=np.int64)
    a_encl[comp[o][firsts]] = f_encl[o][firsts]
    # atom graph: face edges between different atoms, lengths summed per pair
    ai, aj = comp[fi], comp[fj]
    cross = ai != aj
    ai, aj, fl = np.minimum(ai, aj)[cross], np.maximum(ai, aj)[cross], fl[cross]
    bl = np.where(f_encl[fi][cross] != f_encl[fj][cross], fl, 0.0)
    pair = ai * na + aj
    up, inv = np.unique(pair, return_inverse=True)
    elen = np.bincount(inv, weights=fl, minlength=len(up))
    eblen = np.bincount(inv, weights=bl, minlength=len(up))
    return Atoms(
        geoms,
        cluster,
        a_encl,
        up // na,
        up % na,
        elen,
        eblen > 0.5 * elen,
        cluster_atom,
    )


def _groups(key: np.ndarray, fi: np.ndarray, fj: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected groups of edge-adjacent faces with the same key: count and labels."""
    nf = len(key)
    same = key[fi] == key[fj]
    g = sparse.csr_matrix((np.ones(same.sum()), (fi[same], fj[same])), shape=(nf, nf))
    return connected_components(g, directed=False)


def _join_footprint_parts(
    key: np.ndarray,
    in_fp: np.ndarray,
    fi: np.ndarray,
    fj: np.ndarray,
    farea: np.ndarray,
    point_faces: np.ndarray,
) -> np.ndarray:
    """Keys with the parts of every multi-part footprint joined into one group.

    A part lying in another cluster's Voronoi cell would otherwise be a group of its
    own (an empty atom), free to go to another unit: the footprint would be cut. For
    each cluster whose footprint faces fall in several groups, the cheapest chain of
    faces (by area) from its main group (most footprint area) to each other group
    takes the cluster's key. Chains never run through another cluster's footprint or
    the face holding a cluster's point; a part walled in by other footprints stays
    apart (the validator then reports the cut).
    """
    key = key.copy()
    blocked = np.zeros(len(key), dtype=bool)
    blocked[point_faces] = True
    u = np.r_[fi, fj]
    v = np.r_[fj, fi]
    for _ in range(3):  # a chain may cut another cluster's empty faces: look again
        fp = np.flatnonzero(in_fp >= 0)
        if not len(fp):
            break
        _, comp = _groups(key, fi, fj)
        pairs = np.unique(np.c_[in_fp[fp], comp[fp]], axis=0)
        split = np.unique(pairs[np.r_[False, pairs[1:, 0] == pairs[:-1, 0]], 0])
        if not len(split):
            break
        # a loop over the few multi-part footprints that lie apart
        for c in split:
            _join_one(key, comp, in_fp, c, u, v, farea, blocked)
    return key


def _join_one(
    key: np.ndarray,
    comp: np.ndarray,
    in_fp: np.ndarray,
    c: int,
    u: np.ndarray,
    v: np.ndarray,
    farea: np.ndarray,
    blocked: np.ndarray,
) -> None:
    """Chain the groups of cluster ``c``'s footprint to its main group (in place)."""
    nf = len(key)
    mine = in_fp == c
    fp_area = np.bincount(comp[mine], weights=farea[mine], minlength=int(comp.max()) + 1)
    main = int(np.argmax(fp_area))
    others = np.setdiff1d(np.unique(comp[mine]), [main])
    # the cost of entering a face is its area; other footprints and points are walls
    free = ((in_fp[v] < 0) & ~blocked[v]) | (key[v] == c)
    w = farea[v[free]] + 1e-9
    graph = sparse.csr_matrix((w, (u[free], v[free])), shape=(nf, nf))
    sources = np.flatnonzero(comp == main)
    dist, pred, _ = dijkstra(
        graph, indices=sources, min_only=True, return_predecessors=True, directed=True
    )
    for g in others:
        faces = np.flatnonzero(comp == g)
        end = faces[np.argmin(dist[faces])]
        if not np.isfinite(dist[end]):
            continue  # walled in: no chain without cutting another footprint
        k = end
        while k >= 0 and comp[k] != main:
            key[k] = c
            k = pred[k]


def _with_graph(geoms: np.ndarray, cluster: np.ndarray, enclosure: np.ndarray) -> Atoms:
    """Shared-edge adjacency of a few atoms (edge length > 0) by overlaying their rings."""
    if len(geoms) < 2:
        e = np.zeros(0, dtype=np.int64)
        return Atoms(geoms, cluster, enclosure, e, e, np.zeros(0), np.zeros(0, dtype=bool))
    i, j = STRtree(geoms).query(geoms, predicate="intersects")
    m = i < j
    i, j = i[m], j[m]
    shared = shapely.intersection(shapely.boundary(geoms[i]), shapely.boundary(geoms[j]))
    ln = shapely.length(shared)
    k = ln > 1e-6
    i, j, ln = i[k], j[k], ln[k]
    return Atoms(geoms, cluster, enclosure, i, j, ln, enclosure[i] != enclosure[j])
