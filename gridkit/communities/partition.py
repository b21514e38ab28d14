"""Balanced contiguous partition of a weighted atom graph under a hard cap.

The graph: ``n`` atoms with integer weights (households), undirected edges with a
length (shared boundary, metres) and a cost factor (cheaper on barriers). The result
is a label per atom such that

- every label's atoms form one connected subgraph (contiguity),
- every label's total weight is at most ``cap`` unless it is a single atom heavier
  than ``cap`` (which is then a part of its own),
- the number of parts stays close to ``ceil(total / cap)`` (or is the requested
  ``n_parts`` when the cap and the floor allow it),
- every part holds at least ``floor`` where the component allows it (parts that
  cannot reach it are left for the caller to report),
- parts are balanced and the cut (cost-weighted length) is small.

Pipeline per connected component: an initial partition (METIS via ``pymetis`` when
installed, else growth from seeds), a repair pass (contiguity, then the cap by
moving boundary atoms, then splitting any part still above the cap with a greedy
tree partition that is optimal on its spanning tree), merging of adjacent parts that
fit together, and a refinement pass (balance and compactness moves that keep every
invariant: single boundary moves, then short chains of moves across neighbouring
parts that lower the heaviest load or lift a load below the floor, then a
cut-shortening pass that keeps the balance found). Everything is deterministic.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from scipy.sparse.csgraph import connected_components

__all__ = ["AtomGraph", "partition"]

BALANCE_TOL = 0.1
SMALL_N = 300  # components up to this many atoms try several METIS seeds
FULL_REFINE = 2  # candidates that get the full refinement
EXTRA_SEEDS = 5  # more METIS seeds for components up to SMALL_N atoms
"""The cut-shortening pass keeps every load within this share of the mean (or within
the loads found before it, when those are wider), and never above the cap."""


@dataclass
class AtomGraph:
    """Atoms (weights, centroids) and their adjacency (CSR of shared lengths).

    Examples
    --------
    Four atoms in a row, 10 m of shared edge between neighbours:

    >>> graph = AtomGraph.from_edges(
    ...     [80, 30, 30, 80], [[0, 0], [1, 0], [2, 0], [3, 0]], [0, 1, 2], [1, 2, 3], [10.0] * 3
    ... )
    >>> graph.n, graph.length[1].toarray().tolist()
    (4, [[10.0, 0.0, 10.0, 0.0]])
    """

    weights: np.ndarray  # int64 (n,)
    xy: np.ndarray  # float (n, 2) atom centroids
    length: sparse.csr_matrix  # symmetric, shared boundary length (m)
    cost: sparse.csr_matrix  # symmetric, length * factor (cheaper on barriers)

    @classmethod
    def from_edges(
        cls,
        weights: ArrayLike,
        xy: ArrayLike,
        i: ArrayLike,
        j: ArrayLike,
        length: ArrayLike,
        factor: ArrayLike | None = None,
    ) -> AtomGraph:
        """The graph from edge lists: atoms ``i[e]`` and ``j[e]`` share ``length[e]``
        metres, their cut costs ``length * factor`` (default factor 1). Self-loops and
        zero lengths are dropped, repeated pairs summed."""
        n = len(weights)
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        length = np.asarray(length, dtype=float)
        factor = np.ones_like(length) if factor is None else np.asarray(factor, dtype=float)
        keep = (i != j) & (length > 0)
        i, j, length, factor = i[keep], j[keep], length[keep], factor[keep]
        rows, cols = np.r_[i, j], np.r_[j, i]
        lm = sparse.csr_matrix((np.r_[length, length], (rows, cols)), shape=(n, n))
        cm = sparse.csr_matrix(
            (np.r_[length * factor, length * factor], (rows, cols)), shape=(n, n)
        )
        # duplicates were summed by csr construction; both matrices stay symmetric
        return cls(np.asarray(weights, dtype=np.int64), np.asarray(xy, dtype=float), lm, cm)

    @property
    def n(self) -> int:
        return len(self.weights)


def partition(
    graph: AtomGraph,
    *,
    cap: int,
    seeds: np.ndarray | None = None,
    floor: int | None = None,
    n_parts: int | None = None,
    use_metis: bool = True,
    random_seed: int = 0,
) -> np.ndarray:
    """Label atoms ``0..k-1`` (see module docstring). Labels are compact and ordered.

    ``floor``: households every part should reach (best effort, the cap wins).
    ``n_parts``: parts wanted for the whole graph (over-cap atoms included), shared
    among connected components by weight; never fewer than the cap needs nor more
    than the floor allows.

    Examples
    --------
    Four atoms in a row with 80, 30, 30 and 80 households under a cap of 100: the
    middle two share a part.

    >>> graph = AtomGraph.from_edges(
    ...     [80, 30, 30, 80], [[0, 0], [1, 0], [2, 0], [3, 0]], [0, 1, 2], [1, 2, 3], [10.0] * 3
    ... )
    >>> partition(graph, cap=100).tolist()
    [1, 2, 2, 0]
    """
    n = graph.n
    labels = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return labels
    w = graph.weights
    if w.sum() == 0:
        labels[:] = 0
        return labels
    over = w > cap
    nxt = 0
    for a in np.flatnonzero(over):
        labels[a] = nxt
        nxt += 1
    rest = np.flatnonzero(~over)
    if len(rest):
        sub = graph.length[rest][:, rest]
        ncomp, comp = connected_components(sub, directed=False)
        cw = np.bincount(comp, weights=w[rest], minlength=ncomp)
        want = _share(n_parts - nxt, cw, cap) if n_parts is not None else None
        for c in range(ncomp):
            nodes = rest[comp == c]
            if cw[c] == 0:
                continue  # attached to a neighbouring part below
            sd = None if seeds is None else np.intersect1d(seeds, nodes)
            lab = _partition_component(
                graph,
                nodes,
                cap=cap,
                seeds=sd,
                use_metis=use_metis,
                random_seed=random_seed,
                floor=floor,
                k_target=None if want is None else int(want[c]),
            )
            labels[nodes] = lab + nxt
            nxt += lab.max() + 1
    _attach_unlabelled(graph, labels)
    return _relabel(labels)


def _attach_unlabelled(graph: AtomGraph, labels: np.ndarray) -> None:
    """Give zero-weight leftovers (components without households) a neighbour's label."""
    todo = labels < 0
    if not todo.any():
        return
    if (~todo).sum() == 0:
        labels[:] = 0
        return
    L = graph.length
    # grow labels outwards over the unlabelled atoms, longest shared edge first
    heap: list[tuple[float, int, int]] = []
    for a in np.flatnonzero(~todo):
        for b, ln in zip(*_nbrs(L, a), strict=True):
            if labels[b] < 0:
                heapq.heappush(heap, (-ln, int(b), int(labels[a])))
    while heap:
        _, b, lab = heapq.heappop(heap)
        if labels[b] >= 0:
            continue
        labels[b] = lab
        for c, ln in zip(*_nbrs(L, b), strict=True):
            if labels[c] < 0:
                heapq.heappush(heap, (-ln, int(c), lab))
    # atoms with no shared edge at all: the nearest labelled atom
    left = np.flatnonzero(labels < 0)
    if len(left):
        have = np.flatnonzero(labels >= 0)
        d = ((graph.xy[left, None, :] - graph.xy[None, have, :]) ** 2).sum(-1)
        labels[left] = labels[have[d.argmin(axis=1)]]


def _share(k: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """``k`` parts shared among components by weight (largest remainder), each at
    least what the cap needs; empty components get none."""
    weights = np.asarray(weights, dtype=float)
    kmin = np.where(weights > 0, np.maximum(1, np.ceil(weights / cap)), 0).astype(np.int64)
    total = weights.sum()
    if total <= 0 or k <= kmin.sum():
        return kmin
    quota = k * weights / total
    out = np.maximum(kmin, np.floor(quota).astype(np.int64))
    left = k - int(out.sum())
    if left > 0:
        order = np.lexsort((np.arange(len(quota)), -(quota - np.floor(quota))))
        order = order[weights[order] > 0]
        out[order[:left]] += 1
    return out


def _relabel(labels: np.ndarray) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    return inv.astype(np.int64)


def _nbrs(m: sparse.csr_matrix, a: int) -> tuple[np.ndarray, np.ndarray]:
    s, e = m.indptr[a], m.indptr[a + 1]
    return m.indices[s:e], m.data[s:e]


# --------------------------------------------------------------------------- component


def _partition_component(
    graph: AtomGraph,
    nodes: np.ndarray,
    *,
    cap: int,
    seeds: np.ndarray | None,
    use_metis: bool,
    random_seed: int,
    floor: int | None = None,
    k_target: int | None = None,
) -> np.ndarray:
    """Partition one connected, non-empty component; labels 0..k-1 over ``nodes``."""
    w = graph.weights[nodes]
    total = int(w.sum())
    kmin = max(1, -(-total // cap))
    if seeds is not None and len(seeds):
        kmin = max(kmin, len(seeds))
    k = None
    if k_target is not None:
        k = max(kmin, min(int(k_target), int((w > 0).sum())))
        if floor:  # the floor wins over the target, the cap over both
            k = max(kmin, min(k, total // floor))
    if (k or kmin) == 1:
        return np.zeros(len(nodes), dtype=np.int64)
    sub = _Sub(graph, nodes)
    best = None
    if k is not None:
        tries = [k]
    else:
        # METIS balances to within a few percent: when total / kmin sits close to the
        # cap, aiming at slightly more parts often ends with fewer after repair/merging
        tries = sorted(
            {
                min(len(nodes), max(kmin, -(-total // int(cap * f)) if cap * f >= 1 else kmin))
                for f in (1.0, 0.97, 0.93, 0.88)
            }
        )
    merge = (seeds is None or not len(seeds)) and k is None
    rough = []
    for k in tries:
        if seeds is not None and len(seeds):
            init = sub.grow(np.searchsorted(nodes, seeds), k)
        elif use_metis and _HAVE_METIS and len(nodes) > k:
            init = sub.metis(k, cap=cap, random_seed=random_seed)
        else:
            init = sub.grow(sub.spread_seeds(k), k)
        lab = sub.repair(init, cap, merge=merge, refine=False)
        rough.append(lab)
        if lab.max() + 1 == (k or kmin):
            break  # cannot do better on the count; keep the first that reaches it
    fewest = min(int(lab.max()) + 1 for lab in rough)
    if use_metis and _HAVE_METIS and seeds is None and len(nodes) <= SMALL_N:
        # small graphs are cheap: a few more METIS seeds at the best count
        for rs in range(1, 1 + EXTRA_SEEDS):
            init = sub.metis(fewest, cap=cap, random_seed=random_seed + rs)
            rough.append(sub.repair(init, cap, merge=merge, refine=False))
    # refinement keeps the count: refine only the candidates with the fewest parts
    fewest = min(int(lab.max()) + 1 for lab in rough)
    # cheap single moves rank the candidates; the full refinement (chains, floor, cut)
    # runs on the best few only
    ranked = []
    for i, lab in enumerate(rough):
        if lab.max() + 1 > fewest:
            continue
        lab = sub._refine(lab, cap)
        ranked.append((sub.score(lab, cap, floor=floor, k=k or kmin), i, lab))
    ranked.sort(key=lambda t: (t[0], t[1]))
    for _, _, lab in ranked[:FULL_REFINE]:
        lab = sub.refine(lab, cap, floor=floor)
        score = sub.score(lab, cap, floor=floor, k=k or kmin)
        if best is None or score < best[0]:
            best = (score, lab)
    return _relabel(best[1])


try:  # optional accelerator
    import pymetis

    _HAVE_METIS = True
except ImportError:  # pragma: no cover - exercised when pymetis is absent
    pymetis = None
    _HAVE_METIS = False


class _Sub:
    """A component as local arrays with Python adjacency for the move loops."""

    def __init__(self, graph: AtomGraph, nodes: np.ndarray) -> None:
        self.w = graph.weights[nodes].astype(np.int64)
        self.xy = graph.xy[nodes]
        self.L = graph.length[nodes][:, nodes].tocsr()
        self.C = graph.cost[nodes][:, nodes].tocsr()
        self.n = len(nodes)
        ind, ptr, cd = self.L.indices.tolist(), self.L.indptr.tolist(), self.C.data.tolist()
        # plain lists: the move loops below index them millions of times
        self.adj = [ind[ptr[a] : ptr[a + 1]] for a in range(self.n)]
        self.cst = [cd[ptr[a] : ptr[a + 1]] for a in range(self.n)]
        self.wl = self.w.tolist()
        self.perim = [sum(c) for c in self.cst]

    # ---- initial partitions
    def metis(self, k: int, *, cap: int, random_seed: int) -> np.ndarray:
        C = self.C
        ew = np.maximum(1, np.round(C.data * 10)).astype(np.int64)
        # a little area-free weight for empty atoms keeps METIS from piling them up
        vw = self.w * 100 + 1
        target = self.w.sum() / k
        ufactor = int(np.clip((cap / max(target, 1e-9) - 1) * 1000, 1, 300))
        opts = pymetis.Options(seed=random_seed, ufactor=ufactor, contig=1)
        try:
            res = pymetis.part_graph(
                k,
                pymetis.CSRAdjacency(C.indptr.astype(np.int64), C.indices.astype(np.int64)),
                vweights=vw,
                eweights=ew,
                options=opts,
            )
        except Exception:
            return self.grow(self.spread_seeds(k), k)
        return np.asarray(res.vertex_part, dtype=np.int64)

    def spread_seeds(self, k: int) -> np.ndarray:
        """Farthest-point seeds (deterministic: start at the north-west-most atom)."""
        xy = self.xy
        first = int(np.lexsort((xy[:, 0], -xy[:, 1]))[0])
        seeds = [first]
        d = ((xy - xy[first]) ** 2).sum(1)
        for _ in range(1, k):
            nxt = int(d.argmax())
            seeds.append(nxt)
            d = np.minimum(d, ((xy - xy[nxt]) ** 2).sum(1))
        return np.array(seeds)

    def grow(self, seeds: np.ndarray, k: int) -> np.ndarray:
        """Grow parts from seeds, lightest part first (balanced region growing)."""
        lab = np.full(self.n, -1, dtype=np.int64)
        seeds = list(dict.fromkeys(int(s) for s in seeds))[:k]
        load = np.zeros(len(seeds))
        frontier: list[list[tuple[float, int]]] = [[] for _ in seeds]
        for p, s in enumerate(seeds):
            lab[s] = p
            load[p] = self.w[s]
            for b in self.adj[s]:
                heapq.heappush(frontier[p], (self._d2(s, b), int(b)))
        order = []  # parts still able to grow
        active = set(range(len(seeds)))
        while active:
            p = min(active, key=lambda q: (load[q], q))
            f = frontier[p]
            while f and lab[f[0][1]] >= 0:
                heapq.heappop(f)
            if not f:
                active.discard(p)
                continue
            _, b = heapq.heappop(f)
            lab[b] = p
            load[p] += self.w[b]
            order.append(b)
            for c in self.adj[b]:
                if lab[c] < 0:
                    heapq.heappush(f, (self._d2(seeds[p], c), int(c)))
        if (lab < 0).any():  # unreachable from seeds cannot happen in a component
            lab[lab < 0] = 0
        return lab

    def _d2(self, a: int, b: int) -> float:
        d = self.xy[a] - self.xy[b]
        return float(d @ d)

    # ---- repair and refinement
    def repair(
        self, lab: np.ndarray, cap: int, *, merge: bool = True, refine: bool = True
    ) -> np.ndarray:
        """Contiguity, the cap, merging of parts that fit together, then :meth:`refine`."""
        lab = _relabel(lab)
        lab = self._contiguity(lab)
        lab = self._cap_moves(lab, cap)
        lab = self._split_over(lab, cap)
        if merge:  # seeded runs keep one part per seed
            lab = self._merge(lab, cap)
        lab = _relabel(lab)
        return self.refine(lab, cap) if refine else lab

    def refine(self, lab: np.ndarray, cap: int, *, floor: int | None = None) -> np.ndarray:
        """Balance moves and chains (and the floor), then a shorter cut at that balance.

        The count is unchanged unless a part below ``floor`` can only reach it by
        merging with a neighbour (within the cap)."""
        lab = self._refine(lab, cap)
        lab = self._chains(lab, cap, floor)
        if floor:
            lab = self._merge_low(lab, cap, floor)
        lab = self._shorten(lab, cap, floor)
        return _relabel(lab)

    def _contiguity(self, lab: np.ndarray) -> np.ndarray:
        for _ in range(self.n):
            L = self.L.tocoo()
            same = lab[L.row] == lab[L.col]
            m = sparse.csr_matrix(
                (np.ones(same.sum()), (L.row[same], L.col[same])), shape=(self.n, self.n)
            )
            ncomp, comp = connected_components(m, directed=False)
            # main component of each label: most households, then most atoms
            cw = np.bincount(comp, weights=self.w, minlength=ncomp)
            cn = np.bincount(comp, minlength=ncomp)
            clab = np.zeros(ncomp, dtype=np.int64)
            clab[comp] = lab
            order = np.lexsort((-cn, -cw, clab))
            main = np.zeros(ncomp, dtype=bool)
            first = np.r_[True, clab[order][1:] != clab[order][:-1]]
            main[order[first]] = True
            if main.all():
                return lab
            # move each stray component to the neighbouring label it shares most with
            for c in np.flatnonzero(~main):
                members = np.flatnonzero(comp == c)
                shared: dict[int, float] = {}
                for a in members:
                    for b, ln in zip(self.adj[a], self.cst[a], strict=True):
                        if comp[b] != c:
                            shared[int(lab[b])] = shared.get(int(lab[b]), 0.0) + ln
                if shared:
                    lab[members] = max(shared, key=lambda q: (shared[q], -q))
            lab = _relabel(lab)
        return lab

    def _connected_without(self, lab: np.ndarray, a: int) -> bool:
        """Does a's part stay connected when ``a`` leaves it?"""
        p = lab[a]
        same = [b for b in self.adj[a] if lab[b] == p]
        if len(same) <= 1:
            return True
        seen = {a, same[0]}
        q = deque([same[0]])
        targets = set(same[1:])
        while q and targets:
            u = q.popleft()
            for b in self.adj[u]:
                if lab[b] == p and b not in seen:
                    seen.add(b)
                    targets.discard(b)
                    q.append(b)
        return not targets

    def _gain(self, lab: np.ndarray, a: int, q: int) -> float:
        """Cut-cost change (negative = better) of moving atom ``a`` into part ``q``."""
        p = lab[a]
        g = 0.0
        for b, c in zip(self.adj[a], self.cst[a], strict=True):
            lb = lab[b]
            if lb == p:
                g += c
            elif lb == q:
                g -= c
        return g

    def _cap_moves(self, lab: np.ndarray, cap: int) -> np.ndarray:
        load = np.bincount(lab, weights=self.w).astype(np.int64)
        budget = 4 * self.n
        while budget > 0 and (load > cap).any():
            budget -= 1
            p = int(np.argmax(load))
            best = None
            for a in np.flatnonzero(lab == p):
                if load[p] - self.w[a] <= 0:
                    continue
                for q in {int(lab[b]) for b in self.adj[a] if lab[b] != p}:
                    if load[q] + self.w[a] > cap:
                        continue
                    key = (self._gain(lab, a, q), load[q], -self.w[a], int(a), q)
                    if best is None or key < best[0]:
                        if self._connected_without(lab, a):
                            best = (key, a, q)
            if best is None:
                break
            _, a, q = best
            load[p] -= self.w[a]
            load[q] += self.w[a]
            lab[a] = q
        return lab

    def _split_over(self, lab: np.ndarray, cap: int) -> np.ndarray:
        """Split parts above the cap by an optimal greedy partition of a BFS tree."""
        load = np.bincount(lab, weights=self.w).astype(np.int64)
        nxt = lab.max() + 1
        for p in np.flatnonzero(load > cap):
            members = np.flatnonzero(lab == p)
            pieces = self._tree_partition(members, cap)
            lab[members] = np.where(pieces == 0, p, pieces + nxt - 1)
            nxt += pieces.max()
        return lab

    def _tree_partition(self, members: np.ndarray, cap: int) -> np.ndarray:
        """Fewest subtrees of a BFS spanning tree of ``members`` with weight <= cap
        (Kundu & Misra greedy). Every atom weighs at most ``cap``. Labels 0..k-1 over
        ``members``, 0 for the part of the root (the north-west-most atom)."""
        xy = self.xy[members]
        ml = members.tolist()
        root = ml[int(np.lexsort((xy[:, 0], -xy[:, 1]))[0])]
        inset = set(ml)
        parent: dict[int, int] = {}
        order: list[int] = []
        roots = []
        for r in [root, *ml]:
            if r in parent:
                continue
            roots.append(r)
            parent[r] = -1
            q = deque([r])
            while q:
                u = q.popleft()
                order.append(u)
                for b in self.adj[u]:
                    if b in inset and b not in parent:
                        parent[b] = u
                        q.append(b)
        w = self.wl
        acc = {v: w[v] for v in order}
        children: dict[int, list[int]] = {}
        for v in order:
            if parent[v] >= 0:
                children.setdefault(parent[v], []).append(v)
        cut = set(roots)
        for v in reversed(order):
            kids = children.get(v)
            if kids:
                total = w[v] + sum(acc[c] for c in kids)
                for c in sorted(kids, key=lambda c: -acc[c]):
                    if total <= cap:
                        break
                    cut.add(c)
                    total -= acc[c]
                acc[v] = total
        lab: dict[int, int] = {}
        k = 0
        for v in order:  # BFS order: parents before children
            if v in cut:
                lab[v] = k
                k += 1
            else:
                lab[v] = lab[parent[v]]
        return np.array([lab[v] for v in ml], dtype=np.int64)

    def _merge(self, lab: np.ndarray, cap: int) -> np.ndarray:
        """Merge adjacent parts whose sum fits, lightest pair first."""
        while True:
            load = np.bincount(lab, weights=self.w).astype(np.int64)
            L = self.C.tocoo()
            pa, pb = lab[L.row], lab[L.col]
            m = pa < pb
            if not m.any():
                return lab
            pairs = np.unique(np.c_[pa[m], pb[m]], axis=0)
            tot = load[pairs[:, 0]] + load[pairs[:, 1]]
            ok = tot <= cap
            if not ok.any():
                return lab
            pairs, tot = pairs[ok], tot[ok]
            used: set[int] = set()
            for idx in np.lexsort((pairs[:, 1], pairs[:, 0], tot)):
                a, b = (int(v) for v in pairs[idx])
                if a in used or b in used:
                    continue
                used |= {a, b}
                lab[lab == b] = a
            lab = _relabel(lab)

    def _conn(self, labl: list[int]) -> list[dict[int, float]]:
        """Per atom: label -> cut cost of its shared edges with atoms of that label."""
        conn = []
        for nb, cs in zip(self.adj, self.cst, strict=True):
            d: dict[int, float] = {}
            for b, c in zip(nb, cs, strict=True):
                lb = labl[b]
                d[lb] = d.get(lb, 0.0) + c
            conn.append(d)
        return conn

    def _move(self, labl: list[int], conn: list[dict[int, float]], a: int, q: int) -> None:
        """Move atom ``a`` to part ``q``, keeping ``conn`` up to date."""
        p = labl[a]
        labl[a] = q
        for b, c in zip(self.adj[a], self.cst[a], strict=True):
            d = conn[b]
            left = d[p] - c
            if left > 1e-9:
                d[p] = left
            else:
                del d[p]
            d[q] = d.get(q, 0.0) + c

    def _shift(
        self,
        labl: list[int],
        conn: list[dict[int, float]],
        load: list[int],
        count: list[int],
        a: int,
        q: int,
    ) -> None:
        """:meth:`_move` with the loads and atom counts of the two parts."""
        p = labl[a]
        self._move(labl, conn, a, q)
        wa = self.wl[a]
        load[p] -= wa
        load[q] += wa
        count[p] -= 1
        count[q] += 1

    def _refine(self, lab: np.ndarray, cap: int, passes: int = 6) -> np.ndarray:
        """Boundary moves that improve balance, or compactness at equal balance."""
        load = np.bincount(lab, weights=self.w).astype(np.int64).tolist()
        count = np.bincount(lab).astype(np.int64).tolist()
        labl = lab.tolist()
        conn = self._conn(labl)
        perim = self.perim
        for _ in range(passes):
            moved = 0
            for a in range(self.n):
                d = conn[a]
                p = labl[a]
                if len(d) <= (p in d) or count[p] <= 1:
                    continue  # not on a part boundary, or alone in its part
                wa = self.wl[a]
                best = None
                inner = d.get(p, 0.0)
                for q in sorted(d):
                    if q == p or load[q] + wa > cap:
                        continue
                    gain = inner - d[q]
                    diff = load[p] - load[q]
                    if wa > 0 and diff > wa and gain <= 0.5 * perim[a]:
                        key = (0, -diff, gain)  # strictly reduces the spread
                    elif (wa == 0 or diff == wa) and gain < -1e-9:
                        key = (1, gain, 0)  # same spread, shorter cut
                    else:
                        continue
                    if best is None or key < best[0]:
                        best = (key, q)
                if best is None or not self._connected_without(labl, a):
                    continue
                self._shift(labl, conn, load, count, a, best[1])
                moved += 1
            if not moved:
                break
        return np.asarray(labl, dtype=np.int64)

    # ---- chains of moves across neighbouring parts
    def _chains(
        self,
        lab: np.ndarray,
        cap: int,
        floor: int | None,
        *,
        depth: int = 3,
        width: int = 3,
    ) -> np.ndarray:
        """Short chains of boundary moves ``A -> B -> C ...`` through neighbouring parts.

        A single move stalls when the heaviest part only touches parts nearly as heavy
        (or a part below the floor only touches parts at the floor): the chain passes
        the load on. A chain is kept only when it lifts the total shortfall below the
        floor, or keeps it and lowers every load it touches below the heaviest one's
        with a smaller sum of squares, so the passes end. Contiguity and the cap hold
        after every single move.
        """
        labl = lab.tolist()
        k = max(labl) + 1
        st = _State(self, labl, k)
        fl = int(floor or 0)
        budget = 20 * self.n + 50  # successful chains; each one strictly improves
        while budget > 0:
            budget -= 1
            done = False
            if fl:
                for p in sorted((q for q in range(k) if st.load[q] < fl), key=st.load.__getitem__):
                    if self._pull(st, p, cap, fl, depth, width):
                        done = True
                        break
            if not done:
                order = sorted(range(k), key=lambda q: (-st.load[q], q))
                top = st.load[order[0]]
                for s in order:
                    if st.load[s] < top:
                        break
                    if self._push(st, s, cap, fl, depth, width):
                        done = True
                        break
            if not done:
                break
        return np.asarray(st.labl, dtype=np.int64)

    def _candidates(
        self,
        st: _State,
        src: int,
        dst_ok: Callable[[int, int], bool],
        key: Callable[[int, int, int, float], tuple],
    ) -> list[tuple[tuple, int, int]]:
        """Boundary moves out of part ``src``: ``(key, atom, to)`` sorted, best first."""
        out = []
        conn, wl, perim = st.conn, self.wl, self.perim
        for a in st.members[src]:
            d = conn[a]
            if len(d) <= (src in d):
                continue
            wa = wl[a]
            if wa == 0:
                continue
            inner = d.get(src, 0.0)
            for q, c in d.items():
                if q == src or not dst_ok(q, wa):
                    continue
                gain = inner - c  # cut-cost change of the move
                if gain > 0.5 * perim[a]:
                    continue  # would grow a tentacle
                out.append((key(src, q, wa, gain), a, q))
        out.sort()
        return out

    def _push(self, st: _State, s: int, cap: int, fl: int, depth: int, width: int) -> bool:
        """Lower the heaviest load ``load[s]`` by a chain of moves out of ``s``."""
        top = st.load[s]
        before = {}

        def touched_ok() -> bool:
            new = {p: st.load[p] for p in before}
            if max(new.values()) >= top:
                return False
            d0 = sum(max(0, fl - v) for v in before.values())
            d1 = sum(max(0, fl - v) for v in new.values())
            if d1 > d0:
                return False
            return sum(v * v for v in new.values()) < sum(v * v for v in before.values())

        def dfs(a_part: int, level: int, visited: set[int]) -> bool:
            la = st.load[a_part]

            def ok(q: int, wa: int) -> bool:
                return q not in visited and st.load[q] + wa <= cap

            def key(src: int, q: int, wa: int, gain: float) -> tuple[int, float, int]:
                return (max(la - wa, st.load[q] + wa), gain, q)

            tried = 0
            for _, a, q in self._candidates(st, a_part, ok, key):
                if tried >= width:
                    break
                if st.count[a_part] <= 1 or not self._connected_without(st.labl, a):
                    continue
                tried += 1
                fresh = q not in before
                before.setdefault(q, st.load[q])
                st.move(a, q)
                if st.load[q] < top and touched_ok():
                    return True
                if level < depth and st.load[q] >= top and dfs(q, level + 1, visited | {q}):
                    return True
                st.move(a, a_part)
                if fresh:
                    del before[q]
            return False

        before[s] = top
        return dfs(s, 1, {s})

    def _pull(self, st: _State, p: int, cap: int, fl: int, depth: int, width: int) -> bool:
        """Lift part ``p`` towards the floor by a chain of moves into it."""
        before = {p: st.load[p]}

        def deficit(loads: Iterable[int]) -> int:
            return sum(max(0, fl - v) for v in loads)

        def dfs(dst: int, level: int, visited: set[int]) -> bool:
            ld = st.load[dst]
            if ld >= cap:
                return False
            # atoms of neighbouring parts touching dst
            cands = []
            seen = set()
            for a in st.members[dst]:
                for b in self.adj[a]:
                    q = st.labl[b]
                    if q == dst or q in visited or b in seen:
                        continue
                    seen.add(b)
                    wb = self.wl[b]
                    if wb == 0 or ld + wb > cap or st.count[q] <= 1:
                        continue
                    d = st.conn[b]
                    gain = d.get(q, 0.0) - d.get(dst, 0.0)
                    if gain > 0.5 * self.perim[b]:
                        continue
                    rest = st.load[q] - wb
                    cands.append(((rest < fl, -min(wb, fl - ld), gain, b), b, q))
            cands.sort()
            tried = 0
            for _, b, q in cands:
                if tried >= width:
                    break
                if not self._connected_without(st.labl, b):
                    continue
                tried += 1
                fresh = q not in before
                before.setdefault(q, st.load[q])
                st.move(b, dst)
                new = [st.load[x] for x in before]
                if deficit(new) < deficit(before.values()):
                    return True
                if level < depth and st.load[q] < fl and dfs(q, level + 1, visited | {q}):
                    return True
                st.move(b, q)
                if fresh:
                    del before[q]
            return False

        return dfs(p, 1, {p})

    def _merge_low(self, lab: np.ndarray, cap: int, floor: int) -> np.ndarray:
        """Merge a part still below the floor into its lightest neighbour when the two
        fit under the cap (one unit fewer), then rebalance."""
        changed = False
        while True:
            load = np.bincount(lab, weights=self.w).astype(np.int64)
            low = [int(p) for p in np.argsort(load, kind="stable") if load[p] < floor]
            if not low:
                break
            L = self.L.tocoo()
            pa, pb = lab[L.row], lab[L.col]
            merged = False
            for p in low:
                nb = np.unique(pb[(pa == p) & (pb != p)])
                nb = nb[load[nb] + load[p] <= cap]
                if len(nb):
                    q = int(nb[np.lexsort((nb, load[nb]))[0]])
                    lab[lab == p] = q
                    lab = _relabel(lab)
                    merged = changed = True
                    break
            if not merged:
                break
        if changed:
            lab = self._refine(lab, cap)
            lab = self._chains(lab, cap, floor)
        return lab

    def _shorten(
        self, lab: np.ndarray, cap: int, floor: int | None = None, passes: int = 8
    ) -> np.ndarray:
        """FM-style pass on the cut: move boundary atoms (or swap two adjacent atoms
        across a boundary) when it lowers the cut cost, keeping contiguity, the cap and
        the balance (every load stays between the lowest and highest load found)."""
        load = np.bincount(lab, weights=self.w).astype(np.int64).tolist()
        count = np.bincount(lab).astype(np.int64).tolist()
        mean = sum(load) / len(load)
        lo = min(min(load), int(np.ceil(mean * (1 - BALANCE_TOL))))
        if floor:  # never push a part below the floor it holds
            lo = max(lo, min(floor, min(load)))
        hi = min(max(max(load), int(mean * (1 + BALANCE_TOL))), cap)
        labl = lab.tolist()
        conn = self._conn(labl)
        wl, adj, cst = self.wl, self.adj, self.cst

        def push(heap: list[tuple[float, int, int]], b: int) -> None:
            db, pb = conn[b], labl[b]
            ib = db.get(pb, 0.0)
            for qb, cb in db.items():
                if qb != pb and cb > ib + 1e-9:
                    heapq.heappush(heap, (ib - cb, b, qb))

        for _ in range(passes):
            heap: list[tuple[float, int, int]] = []  # best gain first; re-checked on pop
            for a in range(self.n):
                push(heap, a)
            moved = 0
            budget = 50 * self.n  # every move shortens the cut; a guard all the same
            while heap and budget > 0:
                budget -= 1
                _, a, q = heapq.heappop(heap)
                p = labl[a]
                d = conn[a]
                if q == p or q not in d or count[p] <= 1:
                    continue
                gain = d.get(p, 0.0) - d[q]
                if gain >= -1e-9:
                    continue
                wa = wl[a]
                if load[q] + wa <= hi and load[p] - wa >= lo:
                    if not self._connected_without(labl, a):
                        continue
                    self._shift(labl, conn, load, count, a, q)
                    moved += 1
                    for b in adj[a]:
                        push(heap, b)
                    continue
                # balance blocks the move: swap with an adjacent atom of q going to p
                best = None
                for b, ab in zip(adj[a], cst[a], strict=True):
                    if labl[b] != q or count[q] <= 1:
                        continue
                    wb = wl[b]
                    lp, lq = load[p] - wa + wb, load[q] + wa - wb
                    if not (lo <= lp <= hi and lo <= lq <= hi):
                        continue
                    db = conn[b]
                    if db.get(p, 0.0) <= ab + 1e-9:
                        continue  # b must touch p without a
                    # after a moves, b sees a in q: the a-b edge stays cut
                    g = gain + db.get(q, 0.0) - db.get(p, 0.0) + 2 * ab
                    if g < -1e-9 and (best is None or g < best[0]):
                        best = (g, b)
                if best is None or not self._connected_without(labl, a):
                    continue
                b = best[1]
                self._move(labl, conn, a, q)
                if self._connected_without(labl, b):
                    self._move(labl, conn, b, p)
                    load[p] += wl[b] - wa
                    load[q] += wa - wl[b]
                    moved += 1
                    for c in (*adj[a], *adj[b]):
                        push(heap, c)
                else:
                    self._move(labl, conn, a, p)  # undo
            if not moved:
                break
        return np.asarray(labl, dtype=np.int64)

    def score(self, lab: np.ndarray, cap: int, *, floor: int | None = None, k: int = 0) -> tuple:
        load = np.bincount(lab, weights=self.w)
        L = self.C.tocoo()
        cut = L.data[lab[L.row] != lab[L.col]].sum() / 2
        deficit = float(np.maximum(0, (floor or 0) - load).sum())
        return (
            abs(int(lab.max() + 1) - k),
            int((load > cap).sum()),
            deficit,
            int(lab.max() + 1),
            float(load.max()),
            float(load.std()),
            float(cut),
        )


class _State:
    """Labels, loads, counts, members and per-atom label connections, kept in step."""

    def __init__(self, sub: _Sub, labl: list[int], k: int) -> None:
        self.sub = sub
        self.labl = labl
        self.load = [0] * k
        self.count = [0] * k
        self.members: list[set[int]] = [set() for _ in range(k)]
        for a, p in enumerate(labl):
            self.load[p] += sub.wl[a]
            self.count[p] += 1
            self.members[p].add(a)
        self.conn = sub._conn(labl)

    def move(self, a: int, q: int) -> None:
        p = self.labl[a]
        if p == q:
            return
        self.sub._shift(self.labl, self.conn, self.load, self.count, a, q)
        self.members[p].discard(a)
        self.members[q].add(a)
