"""Solvers for the capacitated worker assignment (a generalised assignment problem).

The model, on candidate arcs only (unit ``u`` -> worker ``w``)::

    minimise   sum_a cost_a x_a + penalty * sum_u s_u
    subject to sum_{a of u} x_a + s_u = req_u          every unit
               sum_{a of w} load_u x_a <= cap_w        every worker
               sum_{a of w} x_a        <= maxu_w       every worker (when finite)
               x_a in {0, 1},  s_u in {0, .., req_u}

Two solvers share it:

* :func:`mip_component` -- exact, ``scipy.optimize.milp`` (HiGHS) per component, with
  the dual bound HiGHS proves when the time limit stops it.
* :func:`_heuristic` -- the LP relaxation (HiGHS; the OR-Tools min-cost flow when the
  LP is too large), rounded, repaired, improved by shift, swap and ejection moves; then
  subgradient steps on the knapsack Lagrangian (:mod:`gridkit.staffing.bounds`: the
  unit rows relaxed, one 0-1 knapsack per worker), whose value is a lower bound for
  every multiplier vector and at the LP duals already at least the LP bound. The
  averaged knapsack solutions are rounded into further primal solutions (a Lagrangian
  heuristic) and the time left goes to large-neighbourhood MIPs on a few workers at a
  time.

Everything here works on plain numpy arrays; :mod:`gridkit.staffing.model` builds them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse.csgraph import connected_components

from gridkit.staffing.bounds import Knapsacks, lagrangian_knapsack_bound

EPS = 1e-9


@dataclass
class Model:
    """Arrays of one assignment instance; arcs sorted by unit.

    Arc ``a`` puts unit ``arc_u[a]`` on worker ``arc_w[a]`` at ``cost[a]``; units
    have a ``load`` and ``req`` slots, workers a capacity ``cap`` and at most
    ``maxu`` units; an open slot costs ``penalty``.

    Examples
    --------
    Three units, two workers of capacity 100:

    >>> import numpy as np
    >>> m = Model(
    ...     arc_u=np.array([0, 0, 1, 1, 2]), arc_w=np.array([0, 1, 0, 1, 1]),
    ...     cost=np.array([100.0, 400.0, 300.0, 200.0, 150.0]),
    ...     load=np.array([60.0, 50.0, 40.0]), req=np.array([1, 1, 1]),
    ...     cap=np.array([100.0, 100.0]), maxu=np.full(2, np.inf), penalty=5000.0,
    ... )
    >>> x = np.array([True, False, False, True, True])  # unit 0 on worker 0, 1 and 2 on 1
    >>> m.objective(x).tolist(), m.feasible(x), m.feasible(np.ones(5, dtype=bool))
    ([100.0, 200.0, 150.0], True, False)
    """

    arc_u: np.ndarray
    arc_w: np.ndarray
    cost: np.ndarray
    load: np.ndarray
    req: np.ndarray
    cap: np.ndarray
    maxu: np.ndarray
    penalty: float

    @classmethod
    def from_arcs(
        cls,
        arc_u: ArrayLike,
        arc_w: ArrayLike,
        cost: ArrayLike,
        *,
        load: ArrayLike,
        cap: ArrayLike,
        penalty: float,
        req: ArrayLike | None = None,
        maxu: ArrayLike | None = None,
    ) -> Model:
        """A model from array-likes; one slot per unit and no unit limit by default.

        Examples
        --------
        >>> m = Model.from_arcs([0, 0, 1], [0, 1, 1], [10, 20, 5], load=[3, 4], cap=[5, 9],
        ...     penalty=100)
        >>> m.n_units, m.n_workers, m.req.tolist(), m.maxu.tolist()
        (2, 2, [1, 1], [inf, inf])
        """
        load = np.asarray(load, dtype=float)
        cap = np.asarray(cap, dtype=float)
        return cls(
            arc_u=np.asarray(arc_u, dtype=np.int64),
            arc_w=np.asarray(arc_w, dtype=np.int64),
            cost=np.asarray(cost, dtype=float),
            load=load,
            req=np.ones(len(load), dtype=np.int64) if req is None else np.asarray(req),
            cap=cap,
            maxu=np.full(len(cap), np.inf) if maxu is None else np.asarray(maxu, dtype=float),
            penalty=float(penalty),
        )

    @property
    def n_units(self) -> int:
        return len(self.load)

    @property
    def n_workers(self) -> int:
        return len(self.cap)

    def starts(self) -> np.ndarray:
        """Position of each unit's first arc."""
        return np.searchsorted(self.arc_u, np.arange(self.n_units))

    def components(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Connected components of the unit-worker graph: (count, label per unit, per worker)."""
        n_u, n_w = self.n_units, self.n_workers
        g = sp.coo_matrix(
            (np.ones(len(self.arc_u)), (self.arc_u, n_u + self.arc_w)), shape=(n_u + n_w,) * 2
        )
        n, labels = connected_components(g, directed=False)
        return n, labels[:n_u], labels[n_u:]

    def sub(self, units: np.ndarray, workers: np.ndarray) -> tuple[Model, np.ndarray]:
        """The sub-model on the given (sorted) units and workers, and its arc indices."""
        umap = np.full(self.n_units, -1)
        umap[units] = np.arange(len(units))
        wmap = np.full(self.n_workers, -1)
        wmap[workers] = np.arange(len(workers))
        arcs = np.flatnonzero((umap[self.arc_u] >= 0) & (wmap[self.arc_w] >= 0))
        m = Model(
            umap[self.arc_u[arcs]],
            wmap[self.arc_w[arcs]],
            self.cost[arcs],
            self.load[units],
            self.req[units],
            self.cap[workers],
            self.maxu[workers],
            self.penalty,
        )
        return m, arcs

    def objective(self, x: np.ndarray) -> np.ndarray:
        """Objective per unit of a selection ``x`` (bool per arc)."""
        served = np.bincount(self.arc_u[x], minlength=self.n_units)
        arc_part = np.bincount(self.arc_u[x], self.cost[x], minlength=self.n_units)
        return arc_part + self.penalty * (self.req - served)

    def feasible(self, x: np.ndarray) -> bool:
        """Whether ``x`` keeps every capacity, unit count and slot count."""
        served = np.bincount(self.arc_u[x], minlength=self.n_units)
        wl = np.bincount(self.arc_w[x], self.load[self.arc_u[x]], minlength=self.n_workers)
        wc = np.bincount(self.arc_w[x], minlength=self.n_workers)
        return bool(
            np.all(served <= self.req)
            and np.all(wl <= self.cap * (1 + 1e-9) + EPS)
            and np.all(wc <= self.maxu)
        )


@dataclass
class Solution:
    """A selection of arcs with its objective and a lower bound, both per component.

    Examples
    --------
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> sol = solve(m, time_limit_s=5.0)
    >>> sol.x.tolist(), sol.obj_c.tolist(), sol.bound_c.tolist()
    ([True, False, False, True, True], [450.0], [450.0])
    """

    x: np.ndarray
    comp_u: np.ndarray
    obj_c: np.ndarray
    bound_c: np.ndarray
    method_c: np.ndarray  # "mip", "mip-limit", "heuristic" per component
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """Work the solvers may do on one jurisdiction, counted in steps, not seconds.

    With a budget the answer depends on the data alone, not on the machine or its
    load: every phase stops after a number of steps (or when its gap is closed), and
    ``time_limit_s`` is only a safety cap (when it is hit, the result says so in
    ``stats["time_capped"]`` and may differ from run to run).

    Attributes
    ----------
    iterations
        Subgradient steps of the Lagrangian bound (a knapsack per worker each).
    neighbourhoods
        Neighbourhood MIPs of the local search (a few workers' units re-solved each).
    nodes
        Branch-and-bound nodes of every MIP (HiGHS ``node_limit``).
    mip_arcs
        Largest component (in candidate arcs) the exact MIP runs on after the
        heuristic: HiGHS's root node (presolve, cuts) has no work limit scipy exposes,
        so only components small enough for it to be quick get one.

    Examples
    --------
    >>> Budget.coerce(80)
    Budget(iterations=80, neighbourhoods=400, nodes=200, mip_arcs=5000)
    >>> Budget.coerce({"nodes": 50}).nodes, Budget.coerce(None) is None
    (50, True)
    """

    iterations: int = 100
    neighbourhoods: int = 500
    nodes: int = 200
    mip_arcs: int = 5_000

    @classmethod
    def coerce(cls, value: Budget | int | dict | None) -> Budget | None:
        """A budget from itself, a number of iterations (neighbourhoods five times as
        many), a dict of fields, or ``None`` (no budget: wall time)."""
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if int(value) < 1:
            raise ValueError("budget must be a positive number of iterations")
        return cls(iterations=int(value), neighbourhoods=5 * int(value))


# ----------------------------------------------------------------------------- MIP


def mip_component(
    m: Model, time_limit_s: float, node_limit: int | None = None, *, presolve: bool = True
) -> tuple[np.ndarray | None, float, bool]:
    """Solve one (sub)model exactly: (selection or None, dual bound, proven optimal).

    ``node_limit`` stops HiGHS after that many branch-and-bound nodes (a deterministic
    budget); ``time_limit_s`` stops it on wall time. ``presolve=False`` skips HiGHS's
    presolve: on the neighbourhood MIPs (tens of units) the root node is then ~25 %
    quicker for the same answers.

    Examples
    --------
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> x, bound, optimal = mip_component(m, 5.0)
    >>> x.tolist(), bound, optimal
    ([True, False, False, True, True], 450.0, True)
    """
    a, n, nw = len(m.arc_u), m.n_units, m.n_workers
    c = np.concatenate([m.cost, np.full(n, m.penalty)])
    cols = np.arange(a + n)
    rows_u = np.concatenate([m.arc_u, np.arange(n)])
    unit_rows = sp.csr_matrix((np.ones(a + n), (rows_u, cols)), shape=(n, a + n))
    cap_rows = sp.csr_matrix((m.load[m.arc_u], (m.arc_w, np.arange(a))), shape=(nw, a + n))
    cons = [LinearConstraint(unit_rows, m.req, m.req), LinearConstraint(cap_rows, -np.inf, m.cap)]
    finite = np.isfinite(m.maxu)
    if finite.any():
        wsel = np.flatnonzero(finite[m.arc_w])
        remap = np.cumsum(finite) - 1
        cnt_rows = sp.csr_matrix(
            (np.ones(len(wsel)), (remap[m.arc_w[wsel]], wsel)), shape=(int(finite.sum()), a + n)
        )
        cons.append(LinearConstraint(cnt_rows, -np.inf, m.maxu[finite]))
    bounds = Bounds(np.zeros(a + n), np.concatenate([np.ones(a), m.req]))
    options = {
        "time_limit": max(time_limit_s, 0.05),
        "mip_rel_gap": 1e-9,
        "disp": False,
        "presolve": presolve,
    }
    if node_limit is not None:
        options["node_limit"] = int(node_limit)
    res = milp(c, integrality=np.ones(a + n), bounds=bounds, constraints=cons, options=options)
    bound = getattr(res, "mip_dual_bound", None)
    bound = -np.inf if bound is None or not np.isfinite(bound) else float(bound)
    if res.status != 0 and not np.isfinite(bound):
        # stopped before HiGHS reported a bound: the LP relaxation still gives one
        bound = _fractional_lp(m)[2] - 1e-7 * max(1.0, abs(float(m.cost.sum())))
    if res.x is None:
        return None, bound, False
    x = res.x[:a] > 0.5
    optimal = res.status == 0
    if optimal:
        bound = max(bound, float(m.objective(x).sum()) - 1e-6 * max(1.0, abs(res.fun)))
    return x, bound, optimal


# ------------------------------------------------------------------ fractional (LP)


def _fractional_flow(m: Model) -> np.ndarray | None:
    """LP relaxation as a min-cost flow in OR-Tools; fraction per arc (None if unavailable)."""
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError:  # optional dependency (extra "scale"): the LP below does the same
        return None
    n, nw, a = m.n_units, m.n_workers, len(m.arc_u)
    # flow units: loads scaled so the largest load is ~1000 units (0.1 % granularity)
    scale = 1000.0 / max(float(m.load.max()), EPS)
    q = np.maximum(1, np.rint(m.load * scale)).astype(np.int64)
    capq = np.floor(m.cap * scale + 1e-6).astype(np.int64)
    cost = m.cost - min(0.0, float(m.cost.min()))  # shift: OR-Tools wants integers, ≥ 0 here
    per_flow = cost / q[m.arc_u]
    k = 1e6 / max(float(per_flow.max()), 1.0)
    arc_cost = np.rint(per_flow * k).astype(np.int64)
    slack_cost = np.full(n, int(arc_cost.max(initial=0)) * 100 + 1_000, dtype=np.int64)
    sink = n + nw
    tails = np.concatenate([m.arc_u, n + np.arange(nw), np.arange(n)])
    heads = np.concatenate([n + m.arc_w, np.full(nw, sink), np.full(n, sink)])
    caps = np.concatenate([q[m.arc_u], capq, q * m.req])
    costs = np.concatenate([arc_cost, np.zeros(nw, dtype=np.int64), slack_cost])
    f = min_cost_flow.SimpleMinCostFlow()
    f.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supply = np.concatenate([q * m.req, np.zeros(nw, dtype=np.int64), [-int((q * m.req).sum())]])
    f.set_nodes_supplies(np.arange(n + nw + 1), supply)
    if f.solve() != f.OPTIMAL:
        return None
    return f.flows(np.arange(a)) / q[m.arc_u]


def _fractional_lp(m: Model) -> tuple[np.ndarray, np.ndarray | None, float, np.ndarray | None]:
    """LP relaxation with scipy's HiGHS: fraction per arc, capacity duals (>= 0), value,
    duals of the unit rows."""
    a, n, nw = len(m.arc_u), m.n_units, m.n_workers
    c = np.concatenate([m.cost, np.full(n, m.penalty)])
    a_eq = sp.csr_matrix(
        (np.ones(a + n), (np.concatenate([m.arc_u, np.arange(n)]), np.arange(a + n))),
        shape=(n, a + n),
    )
    a_ub = sp.csr_matrix((m.load[m.arc_u], (m.arc_w, np.arange(a))), shape=(nw, a + n))
    res = linprog(
        c,
        A_ub=a_ub,
        b_ub=m.cap,
        A_eq=a_eq,
        b_eq=m.req.astype(float),
        bounds=np.column_stack([np.zeros(a + n), np.r_[np.ones(a), m.req]]),
        method="highs",
    )
    if res.x is None:
        return np.zeros(a), None, -np.inf, None
    lam = np.maximum(0.0, -np.asarray(res.ineqlin.marginals, dtype=float))
    return res.x[:a], lam, float(res.fun), np.asarray(res.eqlin.marginals, dtype=float)


# ---------------------------------------------------------------- primal heuristic


class _State:
    """A selection with worker loads kept up to date."""

    def __init__(self, m: Model, x: np.ndarray) -> None:
        self.m = m
        self.x = x
        self.refresh()

    def refresh(self) -> None:
        m, x = self.m, self.x
        self.wload = np.bincount(m.arc_w[x], m.load[m.arc_u[x]], minlength=m.n_workers)
        self.wcnt = np.bincount(m.arc_w[x], minlength=m.n_workers).astype(float)
        self.served = np.bincount(m.arc_u[x], minlength=m.n_units)

    def fits(self, arcs: np.ndarray) -> np.ndarray:
        m = self.m
        w = m.arc_w[arcs]
        return (self.wload[w] + m.load[m.arc_u[arcs]] <= m.cap[w] * (1 + 1e-12) + EPS) & (
            self.wcnt[w] + 1 <= m.maxu[w]
        )

    def add(self, a: int) -> None:
        m = self.m
        self.x[a] = True
        self.wload[m.arc_w[a]] += m.load[m.arc_u[a]]
        self.wcnt[m.arc_w[a]] += 1
        self.served[m.arc_u[a]] += 1

    def drop(self, a: int) -> None:
        m = self.m
        self.x[a] = False
        self.wload[m.arc_w[a]] -= m.load[m.arc_u[a]]
        self.wcnt[m.arc_w[a]] -= 1
        self.served[m.arc_u[a]] -= 1


def _round(m: Model, frac: np.ndarray) -> np.ndarray:
    """Keep, per unit, the ``req`` arcs carrying the most flow."""
    order = np.lexsort((m.cost, -frac, m.arc_u))
    u = m.arc_u[order]
    rank = np.arange(len(u)) - m.starts()[u]
    x = np.zeros(len(u), dtype=bool)
    x[order] = (rank < m.req[u]) & (frac[order] > 1e-6)
    return x


def _repair(st: _State, frac: np.ndarray) -> None:
    """Drop arcs from overloaded workers: most fractional first, then the heaviest."""
    m = st.m
    over = np.flatnonzero((st.wload > m.cap * (1 + 1e-12) + EPS) | (st.wcnt > m.maxu))
    if not len(over):
        return
    # loop over overloaded workers only: at most the number of split units of the LP
    sel = np.flatnonzero(st.x & np.isin(m.arc_w, over))
    for w in over:
        arcs = sel[m.arc_w[sel] == w]
        arcs = arcs[np.lexsort((-m.load[m.arc_u[arcs]], frac[arcs]))]
        for a in arcs:
            if st.wload[w] <= m.cap[w] * (1 + 1e-12) + EPS and st.wcnt[w] <= m.maxu[w]:
                break
            st.drop(int(a))


def _relocate(st: _State, starts: np.ndarray, ends: np.ndarray) -> None:
    """Unload overloaded workers by moving the units that are cheapest to move elsewhere;
    a unit with nowhere to go is dropped (its slot reopens for insertion/ejection)."""
    m = st.m
    over = np.flatnonzero((st.wload > m.cap * (1 + 1e-12) + EPS) | (st.wcnt > m.maxu))
    if not len(over):
        return
    by_w = np.flatnonzero(st.x)
    by_w = by_w[np.argsort(m.arc_w[by_w], kind="stable")]
    w_lo = np.searchsorted(m.arc_w[by_w], over)
    w_hi = np.searchsorted(m.arc_w[by_w], over, side="right")
    # sequential by nature (each move changes the room left); runs on overloaded workers
    # only, i.e. those holding a unit the relaxation split
    for w, lo, hi in zip(over, w_lo, w_hi, strict=True):
        held = [int(a) for a in by_w[lo:hi]]
        while held and (st.wload[w] > m.cap[w] * (1 + 1e-12) + EPS or st.wcnt[w] > m.maxu[w]):
            best = None
            for a in held:
                u = m.arc_u[a]
                alts = np.arange(starts[u], ends[u])
                alts = alts[~st.x[alts]]
                alts = alts[st.fits(alts)]
                if len(alts):
                    b = int(alts[np.argmin(m.cost[alts])])
                    delta = m.cost[b] - m.cost[a]
                    if best is None or delta < best[0]:
                        best = (delta, a, b)
            if best is None:
                a = max(held, key=lambda a: m.load[m.arc_u[a]])
                st.drop(a)
                held.remove(a)
                continue
            st.drop(best[1])
            st.add(best[2])
            held.remove(best[1])


def _insert(st: _State, starts: np.ndarray, ends: np.ndarray, frac: np.ndarray) -> None:
    """Fill open unit slots, heaviest units first, with the worker that has room and
    carries most of the unit in the LP (then the nearest)."""
    m = st.m
    todo = np.flatnonzero(st.served < m.req)
    # sequential by nature (each insertion changes the room left); runs on the units the
    # LP split between workers, at most about one per worker with a binding capacity
    for u in todo[np.argsort(-m.load[todo], kind="stable")]:
        arcs = np.arange(starts[u], ends[u])
        for _ in range(int(m.req[u] - st.served[u])):
            ok = arcs[~st.x[arcs] & st.fits(arcs)]
            if not len(ok):
                break
            st.add(int(ok[np.lexsort((m.cost[ok], -np.round(frac[ok], 6)))[0]]))


def _shift_round(st: _State, starts: np.ndarray) -> int:
    """One round of improving shift/insert moves, applied in parallel where compatible."""
    m = st.m
    x = st.x
    n = m.n_units
    sel_cost = np.where(x, m.cost, -np.inf)
    worst = np.maximum.reduceat(sel_cost, starts) if len(starts) else np.zeros(0)
    worst = np.where(st.served < m.req, m.penalty, worst)
    worst_arc = np.full(n, -1)
    is_worst = x & (sel_cost == worst[m.arc_u])
    wa = np.flatnonzero(is_worst)
    worst_arc[m.arc_u[wa[::-1]]] = wa[::-1]  # first worst arc per unit
    worst_arc[st.served < m.req] = -1
    cand = np.flatnonzero(~x)
    cand = cand[st.fits(cand)]
    delta = m.cost[cand] - worst[m.arc_u[cand]]
    keep = delta < -1e-7 * np.maximum(1.0, np.abs(worst[m.arc_u[cand]]))
    cand, delta = cand[keep], delta[keep]
    if not len(cand):
        return 0
    # best move per unit
    o = np.lexsort((delta, m.arc_u[cand]))
    cand, delta = cand[o], delta[o]
    first = np.r_[True, m.arc_u[cand][1:] != m.arc_u[cand][:-1]]
    cand, delta = cand[first], delta[first]
    # per target worker accept the best moves while they still fit together
    w = m.arc_w[cand]
    o = np.lexsort((delta, w))
    cand, w = cand[o], w[o]
    ld = m.load[m.arc_u[cand]]
    grp_start = np.r_[0, np.flatnonzero(w[1:] != w[:-1]) + 1]
    gid = np.repeat(np.arange(len(grp_start)), np.diff(np.r_[grp_start, len(w)]))
    cum = np.cumsum(ld)
    cum_in = cum - (cum - ld)[grp_start][gid]
    cnt_in = np.arange(len(w)) - grp_start[gid] + 1
    ok = (st.wload[w] + cum_in <= m.cap[w] * (1 + 1e-12) + EPS) & (st.wcnt[w] + cnt_in <= m.maxu[w])
    cand = cand[ok]
    old = worst_arc[m.arc_u[cand]]
    x[cand] = True
    x[old[old >= 0]] = False
    st.refresh()
    return len(cand)


def _equal_pairs(
    sorted_keys: np.ndarray, keys: np.ndarray, *, limit: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Every pair ``(i, j)`` with ``keys[i] == sorted_keys[j]`` (``sorted_keys`` sorted),
    ``i`` ascending; ``None`` when there are more than ``limit`` pairs."""
    lo = np.searchsorted(sorted_keys, keys, side="left")
    hi = np.searchsorted(sorted_keys, keys, side="right")
    cnt = hi - lo
    total = int(cnt.sum())
    if total > limit:
        return None
    i = np.repeat(np.arange(len(keys)), cnt)
    j = np.repeat(lo, cnt) + (np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    return i, j


def _disjoint(
    delta: np.ndarray,
    ok: np.ndarray,
    *,
    units: tuple[np.ndarray, ...],
    workers: tuple[np.ndarray, ...],
) -> list[int]:
    """Moves to accept among ``ok``, best ``delta`` first, greedily: each unit and each
    worker in one move at most per round (a loop over improving moves only, which are
    few after the shift rounds)."""
    idx = np.flatnonzero(ok)
    idx = idx[np.argsort(delta[idx], kind="stable")]
    used_u: set[int] = set()
    used_w: set[int] = set()
    take = []
    for j in idx.tolist():
        us = {int(a[j]) for a in units}
        ws = {int(a[j]) for a in workers}
        if us & used_u or ws & used_w:
            continue
        used_u |= us
        used_w |= ws
        take.append(j)
    return take


def _swap_round(st: _State) -> int:
    """Improving exchanges of two units between two workers (capacity-feasible)."""
    m = st.m
    x = st.x
    # only for single-slot units: their current arc is unique
    single = m.req[m.arc_u] == 1
    cur = np.full(m.n_units, -1)
    s = np.flatnonzero(x & single)
    cur[m.arc_u[s]] = s
    alt = np.flatnonzero(~x & single & (cur[m.arc_u] >= 0))
    if not len(alt):
        return 0
    # arc i->w2 (i at w1) meets arc k->w1 (k at w2): key pairs (w1, w2) and (w2, w1)
    wa = m.arc_w[cur[m.arc_u[alt]]]
    wb = m.arc_w[alt]
    nw = m.n_workers
    key_a = wa.astype(np.int64) * nw + wb
    key_b = wb.astype(np.int64) * nw + wa  # same pair seen from the other unit
    ob = np.argsort(key_b, kind="stable")
    kb = key_b[ob]
    pairs = _equal_pairs(kb, key_a, limit=2_000_000)
    if pairs is None:  # keep memory bounded on huge shared pairs
        return 0
    i_arc, k_arc = alt[pairs[0]], alt[ob][pairs[1]]
    ui, uk = m.arc_u[i_arc], m.arc_u[k_arc]
    ci, ck = cur[ui], cur[uk]
    delta = m.cost[i_arc] + m.cost[k_arc] - m.cost[ci] - m.cost[ck]
    w1, w2 = m.arc_w[ci], m.arc_w[ck]
    li, lk = m.load[ui], m.load[uk]
    ok = (delta < -1e-7) & (ui < uk)
    ok &= st.wload[w1] - li + lk <= m.cap[w1] * (1 + 1e-12) + EPS
    ok &= st.wload[w2] - lk + li <= m.cap[w2] * (1 + 1e-12) + EPS
    if not ok.any():
        return 0
    take = _disjoint(delta, ok, units=(ui, uk), workers=(w1, w2))
    for j in take:
        x[ci[j]] = x[ck[j]] = False
        x[i_arc[j]] = x[k_arc[j]] = True
    st.refresh()
    return len(take)


def _chain_round(st: _State, *, limit: int = 3_000_000) -> int:
    """Improving ejection chains of length two: unit ``u`` moves (or an open slot of it
    is filled) to a worker ``w2`` without room, which passes one of its units ``v`` on to
    the cheapest worker with room for it. Moves between full workers that neither a
    shift nor a swap can make."""
    m = st.m
    x = st.x
    n = m.n_units
    single = m.req == 1
    # the cheapest relocation of every single-slot unit to a worker with room now
    held = np.flatnonzero(x & single[m.arc_u])
    cur = np.full(n, -1)
    cur[m.arc_u[held]] = held
    free = np.flatnonzero(~x & (cur[m.arc_u] >= 0))
    free = free[st.fits(free)]
    reloc = np.full(n, np.inf)
    np.minimum.at(reloc, m.arc_u[free], m.cost[free])
    is_best = m.cost[free] == reloc[m.arc_u[free]]
    reloc_arc = np.full(n, -1)
    reloc_arc[m.arc_u[free[is_best]]] = free[is_best]
    reloc = reloc - np.where(cur >= 0, m.cost[np.maximum(cur, 0)], 0.0)
    # ejectable arcs per worker
    ej = held[reloc_arc[m.arc_u[held]] >= 0]
    if not len(ej):
        return 0
    ej = ej[np.argsort(m.arc_w[ej], kind="stable")]
    ej_w = m.arc_w[ej]
    # movers: single-slot units with their arc, or open slots (leaving costs the penalty)
    served = st.served
    open_u = served < m.req
    movable = open_u | (cur >= 0)
    leave = np.where(open_u, m.penalty, m.cost[np.maximum(cur, 0)])
    ins = np.flatnonzero(~x & movable[m.arc_u])
    ins = ins[~st.fits(ins)]  # targets with room are the shift moves' business
    gain_in = m.cost[ins] - leave[m.arc_u[ins]]
    # a chain only pays if the insertion costs less than the cheapest relocation anywhere
    ins = ins[gain_in + reloc[m.arc_u[ej]].min(initial=np.inf) < 0]
    if not len(ins):
        return 0
    pairs = _equal_pairs(ej_w, m.arc_w[ins], limit=limit)
    if pairs is None:  # keep memory bounded
        return 0
    i_arc, e_arc = ins[pairs[0]], ej[pairs[1]]
    u, v = m.arc_u[i_arc], m.arc_u[e_arc]
    w2 = m.arc_w[i_arc]
    delta = m.cost[i_arc] - leave[u] + reloc[v]
    ok = (u != v) & (delta < -1e-7 * np.maximum(1.0, np.abs(leave[u])))
    ok &= st.wload[w2] + m.load[u] - m.load[v] <= m.cap[w2] * (1 + 1e-12) + EPS
    # an open slot adds a unit to w2 after v leaves: the count is unchanged
    f_arc = reloc_arc[v]
    w3 = m.arc_w[f_arc]
    if not ok.any():
        return 0
    b_arc = cur[u]
    # the worker u leaves (-1 for an open slot: one such chain per round)
    w1 = np.where(b_arc >= 0, m.arc_w[np.maximum(b_arc, 0)], -1)
    take = _disjoint(delta, ok, units=(u, v), workers=(w2, w3, w1))
    for j in take:
        if b_arc[j] >= 0 and not open_u[u[j]]:
            x[b_arc[j]] = False
        x[e_arc[j]] = False
        x[i_arc[j]] = True
        x[f_arc[j]] = True
    st.refresh()
    return len(take)


def _eject_insert(st: _State, starts: np.ndarray, ends: np.ndarray, deadline: float) -> None:
    """Serve unfilled slots by moving one unit out of a full worker (an ejection chain of 1)."""
    m = st.m
    todo = np.flatnonzero(st.served < m.req)
    if not len(todo):
        return
    by_w = np.argsort(m.arc_w, kind="stable")
    w_starts = np.searchsorted(m.arc_w[by_w], np.arange(m.n_workers + 1))
    # sequential by nature; runs on the few slots the other moves could not fill
    for u in todo:
        if time.perf_counter() > deadline:
            return
        for a in range(starts[u], ends[u]):
            if st.served[u] >= m.req[u]:
                break
            if st.x[a]:
                continue
            w = m.arc_w[a]
            best = None
            # units k at w whose move frees enough room for u
            at_w = by_w[w_starts[w] : w_starts[w + 1]]
            at_w = at_w[st.x[at_w]]
            for b in at_w:
                k = m.arc_u[b]
                if st.wload[w] - m.load[k] + m.load[u] > m.cap[w] * (1 + 1e-12) + EPS:
                    continue
                alts = np.arange(starts[k], ends[k])
                alts = alts[~st.x[alts] & (m.arc_w[alts] != w)]
                alts = alts[st.fits(alts)]
                if not len(alts):
                    continue
                c = alts[np.argmin(m.cost[alts])]
                gain = m.penalty - m.cost[a] - (m.cost[c] - m.cost[b])
                if gain > 0 and (best is None or gain > best[0]):
                    best = (gain, int(b), int(c))
            if best is not None:
                st.drop(best[1])
                st.add(best[2])
                st.add(int(a))


def _find_chain(
    st: _State, u: int, starts: np.ndarray, ends: np.ndarray, depth: int, max_nodes: int
) -> list[tuple[int, int]] | None:
    """The cheapest ejection chain of the shortest length (at most ``depth`` moves) that
    serves one more slot of unit ``u``: ``u`` goes to a worker ``w0`` without room,
    which passes a unit at least as heavy as its shortfall on to ``w1``, and so on, to a
    worker with room. Breadth first over workers, each worker at most once per chain;
    a worker is entered again only with a smaller shortfall than any earlier entry (it
    may then pass on a lighter unit), so a worker first reached carrying a heavy unit
    does not hide the chains through it with a light one; at most ``max_nodes`` entries.
    Returns the moves ``(drop arc or -1, add arc)`` from ``u`` on, or ``None``."""
    m = st.m
    held = np.flatnonzero(st.x)
    held = held[np.argsort(m.arc_w[held], kind="stable")]
    h_start = np.searchsorted(m.arc_w[held], np.arange(m.n_workers + 1))
    tol = m.cap * (1 + 1e-12) + EPS
    # a node: (worker, shortfall there, chain cost so far, parent node, move)
    nodes: list[tuple[int, float, float, int, tuple[int, int]]] = []
    # a worker is entered again only with a smaller shortfall than before: it may then
    # pass on units the first entry could not
    best_need = np.full(m.n_workers, np.inf)
    done: list[tuple[float, int, tuple[int, int]]] = []
    for a in range(starts[u], ends[u]):
        w = int(m.arc_w[a])
        if st.x[a] or best_need[w] < np.inf:
            continue
        if st.fits(np.array([a]))[0]:
            best_need[w] = -np.inf
            done.append((float(m.cost[a]), -1, (-1, a)))
            continue
        need = st.wload[w] + m.load[u] - tol[w]
        best_need[w] = need
        nodes.append((w, float(need), float(m.cost[a]), -1, (-1, a)))
    level = (0, len(nodes))
    for _ in range(depth - 1):
        if done or level[0] == level[1] or len(nodes) > max_nodes:
            break
        for i in range(*level):
            w, need, cost, _, _ = nodes[i]
            on_path = _path_workers(nodes, i)
            for b in held[h_start[w] : h_start[w + 1]]:
                v = int(m.arc_u[b])
                if v == u or m.load[v] < need:
                    continue
                for c in range(starts[v], ends[v]):
                    w2 = int(m.arc_w[c])
                    if st.x[c] or w2 in on_path:
                        continue
                    total = cost + float(m.cost[c] - m.cost[b])
                    if st.wload[w2] + m.load[v] <= tol[w2] and st.wcnt[w2] + 1 <= m.maxu[w2]:
                        done.append((total, i, (int(b), c)))
                    else:
                        need2 = st.wload[w2] + m.load[v] - tol[w2]
                        if need2 < best_need[w2] - EPS:
                            best_need[w2] = need2
                            nodes.append((w2, float(need2), total, i, (int(b), c)))
        level = (level[1], len(nodes))
    if not done:
        return None
    total, parent, move = min(done, key=lambda d: d[0])
    moves = [move]
    while parent >= 0:
        moves.append(nodes[parent][4])
        parent = nodes[parent][3]
    return moves[::-1]


def _path_workers(nodes: list, i: int) -> set[int]:
    """The workers of the chain ending at node ``i``."""
    out = set()
    while i >= 0:
        out.add(nodes[i][0])
        i = nodes[i][3]
    return out


def _chain_insert(
    st: _State, starts: np.ndarray, ends: np.ndarray, *, depth: int = 12, max_nodes: int = 20_000
) -> int:
    """Serve open slots by ejection chains (:func:`_find_chain`), heaviest units first,
    when the chain costs less than the slot's penalty; the number of slots served.

    A chain of any length up to ``depth`` moves (the one-move chains of
    :func:`_eject_insert` and two-move ones of :func:`_chain_round` are its shortest
    cases): every worker on it gives up a unit at least as heavy as what it receives
    beyond its room, so all capacities hold, and unit counts change only at its ends.
    """
    m = st.m
    todo = np.flatnonzero(st.served < m.req)
    filled = 0
    # sequential by nature (each chain changes the loads); runs on open slots only
    for u in todo[np.argsort(-m.load[todo], kind="stable")]:
        while st.served[u] < m.req[u]:
            moves = _find_chain(st, int(u), starts, ends, depth, max_nodes)
            if moves is None:
                break
            if sum(m.cost[c] - (m.cost[b] if b >= 0 else 0.0) for b, c in moves) >= m.penalty:
                break
            for b, _ in moves:
                if b >= 0:
                    st.drop(b)
            for _, c in moves:
                st.add(c)
            filled += 1
    return filled


def primal(
    m: Model, frac: np.ndarray, *, deadline: float, max_rounds: int = 60, rtol: float = 1e-5
) -> np.ndarray:
    """A feasible selection: integral LP arcs kept, split units inserted where they fit,
    one-level ejection for slots still open, then rounds of shift, swap and
    ejection-chain moves until a round gains less than ``rtol`` of the objective.

    Examples
    --------
    From a relaxation that hesitates on every arc:

    >>> import time
    >>> import numpy as np
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> x = primal(m, np.full(5, 0.5), deadline=time.perf_counter() + 1.0)
    >>> x.tolist(), m.feasible(x), float(m.objective(x).sum())
    ([True, False, False, True, True], True, 450.0)
    """
    starts = m.starts()
    ends = np.r_[starts[1:], len(m.arc_u)]
    st = _State(m, _round(m, frac))
    _relocate(st, starts, ends)
    st.refresh()
    _insert(st, starts, ends, frac)
    # open slots first: they cost the penalty, far more than any move gains
    if (st.served < m.req).any():
        _eject_insert(st, starts, ends, deadline)
        _chain_insert(st, starts, ends)
    last = np.inf
    for _ in range(max_rounds):
        if time.perf_counter() > deadline:
            break
        moved = _shift_round(st, starts) + _swap_round(st) + _chain_round(st)
        value = float(m.objective(st.x).sum())
        if not moved or last - value < rtol * max(1.0, abs(value)):
            break
        last = value
    if (st.served < m.req).any():
        _eject_insert(st, starts, ends, deadline)
        _chain_insert(st, starts, ends)
        for _ in range(max_rounds):
            if time.perf_counter() > deadline or not _shift_round(st, starts):
                break
    return st.x


# ------------------------------------------------------------- large neighbourhoods


def _improve_mip(
    m: Model,
    x: np.ndarray,
    comp_u: np.ndarray,
    todo_c: np.ndarray,
    *,
    deadline: float,
    size: int = 8,
    stop_at: float = -np.inf,
    knapsacks: tuple[np.ndarray, np.ndarray] | None = None,
    patience: int | None = None,
    budget: Budget | None = None,
) -> np.ndarray:
    """Large-neighbourhood search: free the units of a few workers that share candidate
    units and re-solve them exactly (HiGHS); keep the result when it is better.

    One MIP per neighbourhood (tens of units): the loop is over neighbourhoods, each a
    solver call, until the deadline or the objective is at most ``stop_at``; with
    ``patience``, also after that many neighbourhoods in a row gained nothing; with a
    ``budget``, after ``budget.neighbourhoods`` MIPs of at most ``budget.nodes`` nodes
    each (the deadline is then only a safety cap). Open slots are part of the
    neighbourhoods of the workers who could fill them, and those workers go first.

    ``knapsacks`` = (best knapsack value per worker, profit per arc) at multipliers
    ``pi <= penalty`` (see :func:`_worker_gaps`) rank the seeds by their worker's gap
    and prove where a MIP is useless: re-solving a neighbourhood ``N`` gains at most
    ``sum_{w in N} (KP_w - profit of w's units)`` (the sub-problem's Lagrangian at
    ``pi`` is a lower bound of it), so neighbourhoods with nothing there are skipped.
    """
    x = x.copy()
    if not len(todo_c):
        return x
    by_w = np.argsort(m.arc_w, kind="stable")
    w_start = np.searchsorted(m.arc_w[by_w], np.arange(m.n_workers + 1))
    arcs_w = sp.csr_matrix(
        (np.ones(len(m.arc_u)), (m.arc_w, m.arc_u)), shape=(m.n_workers, m.n_units)
    )
    share = (arcs_w @ arcs_w.T).tocsr()  # candidate units two workers share
    comp_w_of = np.full(m.n_workers, -1)
    comp_w_of[m.arc_w] = comp_u[m.arc_u]
    seeds = np.flatnonzero(np.isin(comp_w_of, todo_c))
    seeds = seeds[np.random.default_rng(0).permutation(len(seeds))]
    wgap = None
    if knapsacks is not None:
        kp_value, profit = knapsacks
        wgap = kp_value - np.bincount(m.arc_w[x], profit[x], minlength=m.n_workers)
        seeds = seeds[np.argsort(-wgap[seeds], kind="stable")]
    served_all = np.bincount(m.arc_u[x], minlength=m.n_units)
    # workers who could take an open slot first: an open slot costs the penalty
    near_open = np.zeros(m.n_workers, dtype=bool)
    near_open[m.arc_w[served_all[m.arc_u] < m.req[m.arc_u]]] = True
    seeds = seeds[np.argsort(~near_open[seeds], kind="stable")]
    total = float(m.objective(x).sum())
    idle = 0
    solved = 0
    for seed in seeds:
        if time.perf_counter() > deadline - 0.05 or total <= stop_at:
            break
        if budget is not None and solved >= budget.neighbourhoods:
            break
        if patience is not None and idle >= patience:
            break
        idle += 1
        row = slice(share.indptr[seed], share.indptr[seed + 1])
        nb = share.indices[row][np.argsort(-share.data[row], kind="stable")][:size]
        ws = np.unique(np.r_[seed, nb])
        arcs = np.concatenate([by_w[w_start[w] : w_start[w + 1]] for w in ws])
        # the units these workers hold, and open slots they could fill
        units = np.unique(
            m.arc_u[arcs[x[arcs] | (served_all[m.arc_u[arcs]] < m.req[m.arc_u[arcs]])]]
        )
        if not len(units):
            continue
        served = served_all[units]
        if wgap is not None and np.all(served >= m.req[units]):
            # proven: no better assignment of these units among these workers
            if wgap[ws].sum() <= 1e-9 * max(1.0, abs(total)):
                idle -= 1
                continue
        inside = np.zeros(m.n_units, dtype=bool)
        inside[units] = True
        arcs = np.sort(arcs[inside[m.arc_u[arcs]]])
        umap = np.full(m.n_units, -1)
        umap[units] = np.arange(len(units))
        wmap = np.full(m.n_workers, -1)
        wmap[ws] = np.arange(len(ws))
        # slots served by workers outside stay served
        outside = served - np.bincount(umap[m.arc_u[arcs[x[arcs]]]], minlength=len(units))
        sub = Model(
            umap[m.arc_u[arcs]],
            wmap[m.arc_w[arcs]],
            m.cost[arcs],
            m.load[units],
            m.req[units] - outside,
            m.cap[ws],
            m.maxu[ws],
            m.penalty,
        )
        solved += 1
        if budget is None:
            xs, _, _ = mip_component(sub, min(0.5, deadline - time.perf_counter()), presolve=False)
        else:
            left = deadline - time.perf_counter()
            xs, _, _ = mip_component(sub, left, budget.nodes, presolve=False)
        if xs is None or not sub.feasible(xs):
            continue
        gain = sub.objective(x[arcs]).sum() - sub.objective(xs).sum()
        if gain > 1e-7:
            x[arcs] = xs
            served_all[units] = np.bincount(m.arc_u[x], minlength=m.n_units)[units]
            total -= gain
            idle = 0
            if wgap is not None:
                held = arcs[xs]
                wgap[ws] = (
                    kp_value[ws]
                    - np.bincount(m.arc_w[held], profit[held], minlength=m.n_workers)[ws]
                )
    return x


# ------------------------------------------------------------------------- driver


def quick_primal(m: Model, deadline: float | None = None) -> np.ndarray:
    """A fast feasible selection (relaxation rounded, repaired, improved), no bound;
    at most 10 rounds of moves, and 5 s unless ``deadline`` says otherwise.

    Examples
    --------
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> x = quick_primal(m)
    >>> m.feasible(x), float(m.objective(x).sum())
    (True, 450.0)
    """
    frac = _fractional_flow(m)
    if frac is None:
        frac = _fractional_lp(m)[0]
    deadline = time.perf_counter() + 5.0 if deadline is None else deadline
    return primal(m, frac, deadline=deadline, max_rounds=10)


def _worker_gaps(m: Model, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best knapsack value per worker and profit per arc at ``min(pi, penalty)``: a
    worker's knapsack value less what its units earn is its share of the Lagrangian gap
    (>= 0), where the neighbourhood search looks first (:func:`_improve_mip`)."""
    ks = Knapsacks.build(m.arc_w, m.load[m.arc_u], m.cap)
    profit = np.minimum(pi, m.penalty)[m.arc_u] - m.cost
    value, _ = ks.solve(profit)
    return value, profit


def _heuristic(
    m: Model,
    comp_u: np.ndarray,
    comp_w: np.ndarray,
    n_comp: int,
    *,
    time_limit_s: float,
    gap_target: float = 0.0,
    lp_max_arcs: int = 1_000_000,
    budget: Budget | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Primal solutions and a Lagrangian lower bound, per component.

    The LP relaxation (HiGHS; the OR-Tools flow when the LP is too large) gives a first
    rounded solution and the duals of the unit rows. Subgradient steps on the
    knapsack Lagrangian (:mod:`gridkit.staffing.bounds`) then raise the bound above the
    LP bound; every few steps the recent knapsack solutions, averaged, are rounded and
    improved into a new primal solution (a Lagrangian heuristic), kept per component
    when better. The time left goes to large-neighbourhood MIPs on components with a
    gap. Every phase stops once the total gap is at most ``gap_target``.

    With a ``budget`` every phase counts steps instead (``budget.iterations``
    subgradient steps, a Lagrangian heuristic every fifth, ``budget.neighbourhoods``
    MIPs) and ``time_limit_s`` is only a cap.
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    frac = pi0 = None
    lp_value = -np.inf
    if len(m.arc_u) <= lp_max_arcs:
        frac, _, lp_value, pi0 = _fractional_lp(m)
    if frac is None or pi0 is None:
        frac = _fractional_flow(m)
        if frac is None:
            frac, _, lp_value, pi0 = _fractional_lp(m)
    if pi0 is None:  # no duals: start from the cheapest arc of every unit
        pi0 = np.minimum.reduceat(np.r_[m.cost, 0.0], np.r_[m.starts(), len(m.cost)])[:-1]
        pi0 = np.minimum(pi0, m.penalty)
    arc_c = comp_u[m.arc_u]
    x = primal(m, frac, deadline=deadline if budget else t0 + 0.3 * time_limit_s)
    obj_c = np.bincount(comp_u, m.objective(x), minlength=n_comp)
    avg = np.zeros(len(m.arc_u))
    n_iter = [0]
    t_primal = [0.0, time.perf_counter()]  # time spent in the Lagrangian heuristic, last run

    def lagrangian_primal(pi: np.ndarray, chosen: np.ndarray) -> np.ndarray | None:
        nonlocal x, obj_c
        avg[:] = 0.7 * avg + 0.3 * chosen
        n_iter[0] += 1
        now = time.perf_counter()
        # a primal run every few steps: every fifth on a budget, else at most a third
        # of the time
        if budget is not None:
            if n_iter[0] % 5:
                return None
        elif n_iter[0] < 5 or t_primal[0] > 0.5 * (now - t_primal[1] + t_primal[0]):
            return None
        t1 = time.perf_counter()
        xn = primal(m, avg + 1e-3 * frac, deadline=deadline)
        on = np.bincount(comp_u, m.objective(xn), minlength=n_comp)
        better = on < obj_c - 1e-9 * np.maximum(1.0, np.abs(obj_c))
        if better.any():
            take = better[arc_c]
            x = np.where(take, xn, x)
            obj_c = np.where(better, on, obj_c)
        t_primal[0] += time.perf_counter() - t1
        t_primal[1] = time.perf_counter()
        return obj_c

    bound_c, best_pi = lagrangian_knapsack_bound(
        m,
        comp_u,
        comp_w,
        n_comp,
        obj_c,
        pi0=pi0,
        deadline=deadline if budget else t0 + 0.85 * time_limit_s,
        gap_target=gap_target,
        on_iterate=lagrangian_primal,
        **_steps(budget),
    )
    info = {
        "lp_bound": lp_value,
        "lagrange_iterations": n_iter[0],
        "lagrange_primal_s": round(t_primal[0], 2),
        "lagrange_s": round(time.perf_counter() - t0, 2),
        "objective_before_lns": float(obj_c.sum()),
    }
    gap = obj_c - bound_c > 1e-6 * np.maximum(1.0, np.abs(obj_c))
    total = float(obj_c.sum())
    target = total - float(bound_c.sum()) > gap_target * max(1.0, abs(total))
    if gap.any() and target and time.perf_counter() < deadline - 0.2:
        xn = _improve_mip(
            m,
            x,
            comp_u,
            np.flatnonzero(gap),
            deadline=deadline,
            stop_at=float(bound_c.sum()) + gap_target * max(1.0, abs(total)),
            knapsacks=_worker_gaps(m, best_pi),
            patience=None,
            budget=budget,
        )
        on = np.bincount(comp_u, m.objective(xn), minlength=n_comp)
        take = (on < obj_c)[arc_c]
        x = np.where(take, xn, x)
    return x, bound_c, info


def _steps(budget: Budget | None) -> dict:
    """The subgradient settings of a budget: its steps, long ones when they are few (as
    :func:`gridkit.staffing.bounds.lagrangian_knapsack_bound` picks by time)."""
    if budget is None:
        return {}
    few = budget.iterations < 150
    theta0 = 2.0 if few else 0.5
    return {
        "iters": budget.iterations,
        "theta0": theta0,
        "window": 3 if few else 10,
        "deflect": 0.3 if few else 0.0,
        # few steps: shortened geometrically to a fortieth over the budget, as small
        # gains every step would otherwise keep them long
        "decay": (0.025 ** (1 / budget.iterations)) if few else 1.0,
    }


def solve(
    m: Model,
    *,
    method: str = "auto",
    time_limit_s: float = 30.0,
    mip_max_arcs: int = 60_000,
    gap_target: float = 0.0,
    budget: Budget | None = None,
) -> Solution:
    """Solve ``m``: heuristic for all components, then MIP where allowed and useful.

    ``method="heuristic"`` runs only the heuristic, ``"mip"`` only the MIP (the heuristic
    fills components the MIP could not solve within the time limit), ``"auto"`` the
    heuristic everywhere and then the MIP on components with a gap left, as long as the
    time limit allows, keeping the better solution and the better bound. The heuristic
    stops improving at a total gap of ``gap_target``; the MIP aims at the optimum.
    With a ``budget`` (:class:`Budget`) the phases count steps and nodes, and
    ``time_limit_s`` is a cap; ``info["time_capped"]`` says whether it was reached.

    Examples
    --------
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> sol = solve(m, method="heuristic", time_limit_s=5.0)
    >>> sol.method_c.tolist(), sol.obj_c.tolist(), sol.bound_c.tolist()
    (['heuristic'], [450.0], [450.0])
    """
    t0 = time.perf_counter()
    deadline = t0 + time_limit_s
    n_comp, comp_u, comp_w = m.components()
    x = np.zeros(len(m.arc_u), dtype=bool)
    method_c = np.full(n_comp, "heuristic", dtype=object)
    bound_c = np.full(n_comp, -np.inf)
    have_c = np.zeros(n_comp, dtype=bool)
    info: dict = {"components": len(np.unique(comp_u)), "mip_components": 0, "mip_optimal": 0}
    if method in ("auto", "heuristic"):
        x, bound_c, h_info = _heuristic(
            m,
            comp_u,
            comp_w,
            n_comp,
            time_limit_s=time_limit_s,
            gap_target=gap_target,
            budget=budget,
        )
        info.update(h_info)
        have_c[:] = True
        info["heuristic_s"] = time.perf_counter() - t0
    obj_c = np.bincount(comp_u, m.objective(x), minlength=n_comp)
    if method in ("auto", "mip"):
        arcs_c = np.bincount(comp_u[m.arc_u], minlength=n_comp)
        todo = arcs_c > 0
        if method == "auto":
            gap = obj_c - bound_c
            if budget is not None:
                mip_max_arcs = min(mip_max_arcs, budget.mip_arcs)
            todo &= (arcs_c <= mip_max_arcs) & (gap > 1e-6 * np.maximum(1.0, np.abs(obj_c)))
        todo = np.flatnonzero(todo)
        todo = todo[np.argsort(arcs_c[todo], kind="stable")]
        left_arcs = float(arcs_c[todo].sum())
        units_by_c = np.argsort(comp_u, kind="stable")
        u_bounds = np.searchsorted(comp_u[units_by_c], np.arange(n_comp + 1))
        workers_by_c = np.argsort(comp_w, kind="stable")
        w_bounds = np.searchsorted(comp_w[workers_by_c], np.arange(n_comp + 1))
        # one solver call per component: the decomposition is the point of this loop
        for c in todo:
            remaining = deadline - time.perf_counter()
            if remaining <= 0.05:
                break
            share = remaining * arcs_c[c] / max(left_arcs, 1.0)
            left_arcs -= arcs_c[c]
            units = np.sort(units_by_c[u_bounds[c] : u_bounds[c + 1]])
            workers = np.sort(workers_by_c[w_bounds[c] : w_bounds[c + 1]])
            sub, arcs = m.sub(units, workers)
            if budget is None:
                xs, b, optimal = mip_component(sub, max(share, min(remaining, 1.0)))
            else:  # nodes, not seconds: the whole cap is only a safety net
                xs, b, optimal = mip_component(sub, remaining, budget.nodes)
            info["mip_components"] += 1
            info["mip_optimal"] += int(optimal)
            bound_c[c] = max(bound_c[c], b)
            if xs is None:
                continue
            new = float(sub.objective(xs).sum())
            if not have_c[c] or new < obj_c[c] - 1e-9:
                x[arcs] = xs
                obj_c[c] = new
                have_c[c] = True
                method_c[c] = "mip" if optimal else "mip-limit"
        missing = np.flatnonzero(~have_c & (arcs_c > 0))
        if len(missing):
            # components the MIP could not solve in time: the heuristic fills them
            units = np.flatnonzero(np.isin(comp_u, missing))
            workers = np.flatnonzero(np.isin(comp_w, missing))
            sub, arcs = m.sub(units, workers)
            n2, cu2, cw2 = sub.components()
            xs, b2, _ = _heuristic(
                sub,
                cu2,
                cw2,
                n2,
                time_limit_s=time_limit_s if budget else max(1.0, 0.2 * time_limit_s),
                gap_target=gap_target,
                budget=budget,
            )
            x[arcs] = xs
            # map sub-component bounds back (each sub-component lies in one component)
            owner = np.full(n2, -1)
            owner[cu2] = comp_u[units]
            valid = owner >= 0
            sums = np.bincount(owner[valid], b2[valid], minlength=n_comp)
            bound_c[missing] = np.maximum(bound_c[missing], sums[missing])
            info["mip_fallback_components"] = len(missing)
    obj_c = np.bincount(comp_u, m.objective(x), minlength=n_comp)
    # components of idle workers only: nothing to pay, nothing to bound
    bound_c[np.bincount(comp_u, minlength=n_comp) == 0] = 0.0
    # a bound a hair above the value found is floating-point noise, not information
    noise = (bound_c > obj_c) & (bound_c - obj_c <= 1e-6 * np.maximum(1.0, np.abs(obj_c)))
    bound_c = np.where(noise, obj_c, bound_c)
    info["solve_s"] = time.perf_counter() - t0
    # every phase stops on its deadline only once the time is past it
    info["time_capped"] = time.perf_counter() >= deadline
    return Solution(x=x, comp_u=comp_u, obj_c=obj_c, bound_c=bound_c, method_c=method_c, info=info)
