"""Lower bounds for the worker assignment: Lagrangian relaxation with knapsack subproblems.

The LP relaxation of a generalised assignment problem is weak when units are large
relative to capacities (it fills every worker to the brim with fractions of units).
Relaxing the *assignment* rows instead (``sum_{a of u} x_a + s_u = req_u`` with free
multipliers ``pi_u``) leaves one 0-1 knapsack per worker::

    L(pi, mu) = sum_u [pi_u req_u + req_u min(0, penalty - pi_u)]
                - sum_w [KP_w(pi, mu) + mu_w maxu_w]
    KP_w      = max  sum_{a of w} (pi_u - cost_a - mu_w) x_a
                s.t. sum_{a of w} load_u x_a <= cap_w,  x_a in {0, 1}

(``mu_w >= 0`` relaxes the optional units-per-worker rows). ``L`` is a lower bound
of the optimum for *every* ``pi`` and ``mu >= 0``, and at the LP duals it is already
at least the LP bound because the knapsacks have no integrality property.

The knapsacks are solved together by a dynamic programme over capacity cells, one row
per worker, vectorised over workers (the loop runs over the item rank inside a
worker, a few dozen steps). Integer loads with capacities of at most ``grid`` points
are exact; otherwise a worker's loads are scaled to ``grid`` cells and rounded *down*
while the capacity maps to exactly ``grid`` cells: every feasible load set stays
feasible, so the knapsack value can only grow and ``L`` stays a valid lower bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the model module imports this one; the type is for readers only
    from gridkit.staffing.solvers import Model

#: relative tolerance the solvers allow on capacities; the bound relaxes by as much
CAP_TOL = 1e-9


@dataclass
class Knapsacks:
    """Per-arc integer weights (capacity cells) and per-worker capacities in cells.

    Examples
    --------
    Worker 0 may take loads 60 or 50, worker 1 loads 60, 50 or 40, each within 100:

    >>> import numpy as np
    >>> ks = Knapsacks.build(
    ...     np.array([0, 1, 0, 1, 1]), np.array([60.0, 60.0, 50.0, 50.0, 40.0]),
    ...     np.array([100.0, 100.0]),
    ... )
    >>> value, chosen = ks.solve(np.array([500.0, 100.0, 300.0, 400.0, 350.0]))
    >>> value.tolist(), chosen.tolist()
    ([500.0, 750.0], [True, False, False, True, True])
    """

    arc_w: np.ndarray
    weight: np.ndarray  # int64 per arc
    cells: np.ndarray  # int64 per worker
    n_workers: int
    buckets: int = 4

    @classmethod
    def build(
        cls, arc_w: np.ndarray, arc_load: np.ndarray, cap: np.ndarray, *, grid: int = 1024
    ) -> Knapsacks:
        """Knapsacks of arcs ``arc_w`` (worker of each arc) with loads ``arc_load`` under
        capacities ``cap``: exact for integer loads and capacities up to ``grid``,
        else scaled to ``grid`` cells with weights rounded down (a relaxation)."""
        arc_w = np.asarray(arc_w)
        cap = np.asarray(cap, dtype=float)
        # loose by the solvers' feasibility tolerance, so no solution they accept is cut off
        room = cap * (1 + CAP_TOL) + 1e-9
        integer = bool(np.all(arc_load == np.rint(arc_load)))
        exact = integer & (room < grid + 1)
        cells = np.where(exact, np.floor(room), grid).astype(np.int64)
        scale = np.where(exact, 1.0, grid / room)
        # rounding DOWN weights keeps every feasible set feasible (a relaxation)
        w = arc_load * scale[arc_w]
        weight = np.where(exact[arc_w], np.rint(w), np.floor(w * (1 - 1e-12)))
        return cls(arc_w, np.maximum(weight, 0).astype(np.int64), cells, len(cap))

    def solve(
        self, profit: np.ndarray, *, previous: tuple | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best knapsack per worker: (value per worker, chosen arcs as bools).

        Only arcs with a positive profit are items. Workers whose items all fit take
        them all; the others run the vectorised dynamic programme. With ``previous`` =
        (profit, value, chosen) of an earlier call, workers none of whose items changed
        keep their earlier answer (the knapsack is the same) and only the others run.
        """
        nw = self.n_workers
        chosen = np.zeros(len(profit), dtype=bool)
        live = (profit > 0) & (self.weight <= self.cells[self.arc_w])
        redo = None
        if previous is not None:
            old_profit, old_value, old_chosen = previous
            moved = (profit != old_profit) & (live | (old_profit > 0))
            redo = np.bincount(self.arc_w[moved], minlength=nw) > 0
            keep = ~redo[self.arc_w]
            chosen[keep] = old_chosen[keep]
            live &= ~keep
        items = np.flatnonzero(live)
        iw = self.arc_w[items]
        need = np.bincount(iw, self.weight[items], minlength=nw)
        hard = need > self.cells
        easy = ~hard[iw]
        chosen[items[easy]] = True
        value = np.bincount(iw[easy], profit[items[easy]], minlength=nw).astype(float)
        if redo is not None:
            value[~redo] = old_value[~redo]
        items = items[~easy]
        if not len(items):
            return value, chosen
        # rows of similar capacity together: a bucket's table is as wide as its largest
        workers = np.flatnonzero(hard)
        workers = workers[np.argsort(self.cells[workers], kind="stable")]
        n_b = min(self.buckets, len(workers))
        cuts = np.linspace(0, len(workers), n_b + 1).astype(int)
        bucket = np.empty(nw, dtype=np.int64)
        for b in range(n_b):
            bucket[workers[cuts[b] : cuts[b + 1]]] = b
        ib = bucket[self.arc_w[items]]
        for b in range(n_b):
            its = items[ib == b]
            v, sel = self._dp(its, workers[cuts[b] : cuts[b + 1]], profit)
            value += v
            chosen[sel] = True
        return value, chosen

    def _dp(
        self, items: np.ndarray, workers: np.ndarray, profit: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact 0-1 knapsack on the cell weights of ``items`` for ``workers``."""
        nw = self.n_workers
        iw = self.arc_w[items]
        count = np.bincount(iw, minlength=nw)
        # rows ranked by item count (descending): step j touches a prefix of rows
        workers = workers[np.argsort(-count[workers], kind="stable")]
        row = np.empty(nw, dtype=np.int64)
        row[workers] = np.arange(len(workers))
        # lightest items first: after j steps a row needs at most its first j weights
        order = np.lexsort((items, self.weight[items], row[iw]))
        items, r = items[order], row[iw[order]]
        start = np.searchsorted(r, np.arange(len(workers) + 1))
        rank = np.arange(len(items)) - start[r]
        reach = np.cumsum(self.weight[items])
        reach -= (reach - self.weight[items])[start[r]]  # prefix weight within the row
        cells = self.cells[workers]
        width = int(cells.max()) + 1
        # a -inf margin left of every row: the value "before column 0" needs no mask, and
        # the shifted reads are one flat gather
        pad = int(self.weight[items].max())
        stride = pad + width
        table = np.full((len(workers), stride), -np.inf)
        table[:, pad:] = 0.0
        flat = table.reshape(-1)
        dp = table[:, pad:]
        row_base = np.arange(len(workers)) * stride + pad
        # by item rank, then row: the items of rank j sit on rows 0..k-1 (a prefix)
        by_rank = np.lexsort((r, rank))
        bounds = np.searchsorted(rank[by_rank], np.arange(rank.max() + 2))
        steps = []
        hi = 0
        # one vectorised step per item rank (a few dozen), not per item or worker
        for j in range(len(bounds) - 1):
            at = by_rank[bounds[j] : bounds[j + 1]]
            sel = items[at]
            k = len(sel)
            # columns past a row's prefix weight all hold its value there: copy, skip
            new_hi = max(hi, min(width - 1, int(reach[at].max())))
            if new_hi > hi:
                dp[:k, hi + 1 : new_hi + 1] = dp[:k, hi : hi + 1]
            hi = new_hi
            wt = self.weight[sel]
            cur = dp[:k, : hi + 1]
            cand = flat[(row_base[:k] - wt)[:, None] + np.arange(hi + 1)]
            cand += profit[sel][:, None]
            better = cand > cur
            np.copyto(cur, cand, where=better)
            steps.append((sel, wt, better, hi))
        his = np.array([st[3] for st in steps])
        last = np.minimum(cells, his[count[workers] - 1])  # each row's own last step
        value = np.zeros(nw)
        value[workers] = dp[np.arange(len(workers)), last]
        chosen = []
        c = cells.copy()
        for sel, wt, better, hi in reversed(steps):
            k = len(sel)
            take = better[np.arange(k), np.minimum(c[:k], hi)]
            chosen.append(sel[take])
            c[:k] -= np.where(take, wt, 0)
        return value, np.concatenate(chosen)


def lagrangian_knapsack_bound(
    m: Model,
    comp_u: np.ndarray,
    comp_w: np.ndarray,
    n_comp: int,
    ub_c: np.ndarray,
    *,
    pi0: np.ndarray,
    deadline: float,
    iters: int = 1000,
    grid: int = 1024,
    tol: float = 1e-5,
    theta0: float | None = None,
    window: int | None = None,
    deflect: float | None = None,
    decay: float = 1.0,
    gap_target: float = 0.0,
    stall_steps: int = 100,
    stall_share: float = 0.005,
    on_iterate: Callable[[np.ndarray, np.ndarray], np.ndarray | None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Best Lagrangian bound per component and the multipliers ``pi`` reaching it.

    Deflected subgradient steps (direction ``g + deflect * previous direction``,
    Polyak step length per component from ``theta0``, halved when the component's best
    value stalls for ``window`` steps; by default long steps, quick halving and
    deflection 0.3 when the time allows fewer than ~150 steps, else 0.5, 10 and 0;
    ``decay`` < 1 shortens every step by that factor too: on a short budget the bound
    gains a little every step, which would otherwise keep the steps long) start from
    ``pi0`` (the LP duals of the unit rows make the first value at least the
    LP bound). ``on_iterate(pi, chosen)`` sees the knapsack solutions (e.g. to build
    feasible assignments from them) and may return better upper bounds per component,
    which sharpen the step lengths. The steps stop early once the upper bounds' total is
    within ``gap_target`` (relative) of the lower bounds' total, or when the last
    ``stall_steps`` steps closed less than ``stall_share`` of the gap between them (both
    sides have converged).

    Examples
    --------
    Three units, two workers (one component); the bound meets a known solution's
    objective, which proves it optimal:

    >>> import time
    >>> import numpy as np
    >>> from gridkit.staffing.solvers import Model
    >>> m = Model.from_arcs([0, 0, 1, 1, 2], [0, 1, 0, 1, 1], [100, 400, 300, 200, 150],
    ...     load=[60, 50, 40], cap=[100, 100], penalty=5000)
    >>> n_comp, comp_u, comp_w = m.components()
    >>> upper = m.objective(np.array([True, False, False, True, True])).sum()
    >>> bound, pi = lagrangian_knapsack_bound(
    ...     m, comp_u, comp_w, n_comp, np.array([upper]), pi0=np.full(3, 500.0),
    ...     deadline=time.perf_counter() + 1.0,
    ... )
    >>> bound.tolist(), float(upper)
    ([450.0], 450.0)
    """
    n, nw = m.n_units, m.n_workers
    ks = Knapsacks.build(m.arc_w, m.load[m.arc_u], m.cap, grid=grid)
    req = m.req.astype(float)
    has_mu = np.isfinite(m.maxu)
    maxu0 = np.where(has_mu, m.maxu, 0.0)
    pi = np.asarray(pi0, dtype=float).copy()
    mu = np.zeros(nw)
    best = np.full(n_comp, -np.inf)
    best_pi = pi.copy()
    theta = np.full(n_comp, np.nan)
    dg = np.zeros(n)
    dh = np.zeros(nw)
    stall = np.zeros(n_comp, dtype=int)
    ub = np.asarray(ub_c, dtype=float)
    scale = np.maximum(1.0, np.abs(ub))
    previous = None
    history: list[tuple[float, float]] = []
    for it in range(iters):
        profit = pi[m.arc_u] - m.cost - mu[m.arc_w]
        t_kp = time.perf_counter()
        kp, chosen = ks.solve(profit, previous=previous)
        previous = (profit, kp, chosen)
        if it == 0:
            # few steps in the time left: long, deflected steps that shorten quickly
            few = (deadline - t_kp) / max(time.perf_counter() - t_kp, 1e-6) < 150
            theta0 = (2.0 if few else 0.5) if theta0 is None else theta0
            window = (3 if few else 10) if window is None else window
            deflect = (0.3 if few else 0.0) if deflect is None else deflect
            theta[:] = theta0
        slack = pi > m.penalty
        unit_term = req * np.where(slack, m.penalty, pi)
        lag_c = np.bincount(comp_u, unit_term, minlength=n_comp) - np.bincount(
            comp_w, kp + mu * maxu0, minlength=n_comp
        )
        improved = lag_c > best + 1e-9 * scale
        stall = np.where(improved, 0, stall + 1)
        if improved.any():
            best_pi[np.isin(comp_u, np.flatnonzero(improved))] = pi[
                np.isin(comp_u, np.flatnonzero(improved))
            ]
        best = np.maximum(best, lag_c)
        if on_iterate is not None:
            new_ub = on_iterate(pi, chosen)
            if new_ub is not None:
                ub = np.minimum(ub, new_ub)
        # halve the step after a stall; more patient the longer the run (late progress
        # is slow but steady)
        patience = max(window, it // 10)
        theta = np.where(stall >= patience, theta / 2, theta) * decay
        stall[stall >= patience] = 0
        open_c = (ub - best > tol * scale) & (theta > 1e-4)
        total = float(ub.sum())
        low = float(best.sum())
        closed = total - low <= gap_target * max(1.0, abs(total))
        history.append((low, total))
        if it >= stall_steps:
            low0, total0 = history[it - stall_steps]
            closed |= (low - low0) + (total0 - total) < stall_share * (total - low)
        if not open_c.any() or closed or time.perf_counter() > deadline:
            break
        g = req - np.bincount(m.arc_u[chosen], minlength=n) - np.where(slack, req, 0.0)
        h = np.where(has_mu, np.bincount(m.arc_w[chosen], minlength=nw) - maxu0, 0.0)
        h = np.where((mu > 0) | (h > 0), h, 0.0)
        # deflection damps the zig-zag of plain subgradient steps
        dg = g + deflect * dg
        dh = h + deflect * dh
        norm = np.bincount(comp_u, dg * dg, minlength=n_comp) + np.bincount(
            comp_w, dh * dh, minlength=n_comp
        )
        step = np.where(
            open_c & (norm > 0), theta * np.maximum(ub - lag_c, 0) / np.maximum(norm, 1e-12), 0
        )
        pi = pi + step[comp_u] * dg
        mu = np.maximum(0.0, mu + step[comp_w] * dh)
    return best, best_pi
