"""The primal side of the staffing solvers: open slots served by ejection chains, and the
neighbourhood MIPs; checked against brute force on small models."""

from __future__ import annotations

import itertools
import time

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridkit.staffing import solvers


def _line_of_full_workers(n: int) -> tuple[solvers.Model, np.ndarray]:
    """Unit 0 (load 100) may go to worker 0 only; unit i (i = 1..n) sits on worker i-1
    (cost 1) and may move to worker i (cost 10); every capacity is 100, so worker n is
    the only room. The one way to serve unit 0: a chain of n + 1 moves."""
    arc_u = [0] + [u for i in range(1, n + 1) for u in (i, i)]
    arc_w = [0] + [w for i in range(1, n + 1) for w in (i - 1, i)]
    cost = [1.0] + [c for _ in range(n) for c in (1.0, 10.0)]
    m = solvers.Model.from_arcs(
        arc_u, arc_w, cost, load=[100.0] * (n + 1), cap=[100.0] * (n + 1), penalty=1e4
    )
    held = np.array([False] + [s for _ in range(n) for s in (True, False)])
    return m, held


def test_open_slot_is_served_by_a_chain_of_four_moves():
    """Issue 26: the largest district of the province ended with open slots (a penalty
    each, ~2 % of its objective) that only a chain of three or more moves could fill; the
    one- and two-move ejections of the heuristic could not."""
    m, held = _line_of_full_workers(3)
    # a relaxation that keeps units 1-3 where they are and hesitates on unit 0
    frac = np.where(held, 1.0, 0.0)
    frac[0] = 0.5
    x = solvers.primal(m, frac, deadline=time.perf_counter() + 10)
    assert m.feasible(x)
    assert np.bincount(m.arc_u[x], minlength=m.n_units).tolist() == [1, 1, 1, 1]
    assert float(m.objective(x).sum()) == 1.0 + 3 * 10.0


def test_chain_longer_than_the_depth_is_not_taken():
    m, held = _line_of_full_workers(13)
    st_ = solvers._State(m, held.copy())
    starts = m.starts()
    ends = np.r_[starts[1:], len(m.arc_u)]
    assert solvers._chain_insert(st_, starts, ends) == 0  # 14 moves: past the default 12
    assert np.array_equal(st_.x, held)
    assert solvers._chain_insert(st_, starts, ends, depth=14) == 1
    assert m.feasible(st_.x) and float(m.objective(st_.x).sum()) == 1.0 + 13 * 10.0


def test_chain_through_a_worker_first_reached_with_a_heavier_unit():
    """Worker 2 is reached first with unit 1 (load 40, more than the 35 of its movable
    unit 3) and only then with unit 2 (load 30): the chain 0 -> 1, 2 -> 2, 3 -> 3 exists
    only through the second entry. Issue 26: the largest district's roundings left open
    slots that such chains fill (each worker was entered once, with its first shortfall)."""
    m = solvers.Model.from_arcs(
        [0, 0, 1, 1, 2, 2, 3, 3, 4],
        [0, 1, 0, 2, 1, 2, 2, 3, 2],
        [1.0, 2.0, 1.0, 5.0, 1.0, 5.0, 1.0, 5.0, 1.0],
        load=[40.0, 40.0, 30.0, 35.0, 65.0],
        cap=[40.0, 40.0, 100.0, 35.0],
        penalty=1e4,
    )
    held = np.array([False, False, True, False, True, False, True, False, True])
    st_ = solvers._State(m, held.copy())
    starts = m.starts()
    ends = np.r_[starts[1:], len(m.arc_u)]
    assert solvers._chain_insert(st_, starts, ends) == 1
    assert m.feasible(st_.x)
    assert st_.x.tolist() == [False, True, True, False, False, True, False, True, True]
    assert float(m.objective(st_.x).sum()) == _best(m) == 14.0


@st.composite
def models_with_a_selection(draw):
    """A small model (every arc random) and a feasible selection of it."""
    n_u = draw(st.integers(1, 7))
    n_w = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    pairs = [(u, w) for u in range(n_u) for w in range(n_w) if rng.random() < 0.7]
    if not pairs:
        pairs = [(0, 0)]
    arc_u, arc_w = (np.array(p) for p in zip(*pairs, strict=True))
    m = solvers.Model.from_arcs(
        arc_u,
        arc_w,
        rng.integers(1, 100, len(arc_u)).astype(float),
        load=rng.integers(10, 100, n_u).astype(float),
        cap=rng.integers(50, 200, n_w).astype(float),
        req=rng.integers(1, 3, n_u),
        maxu=np.where(rng.random(n_w) < 0.3, rng.integers(1, 4, n_w), np.inf),
        penalty=1e4,
    )
    # a random feasible selection: arcs in random order, kept while they fit
    st_ = solvers._State(m, np.zeros(len(arc_u), dtype=bool))
    for a in rng.permutation(len(arc_u)):
        if st_.served[m.arc_u[a]] < m.req[m.arc_u[a]] and st_.fits(np.array([a]))[0]:
            st_.add(int(a))
    return m, st_.x.copy()


def _best(m: solvers.Model) -> float:
    """Brute force: the best objective over every selection of arcs."""
    best = np.inf
    for bits in itertools.product([False, True], repeat=len(m.arc_u)):
        x = np.array(bits)
        if m.feasible(x):
            best = min(best, float(m.objective(x).sum()))
    return best


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models_with_a_selection())
def test_chains_keep_capacities_and_every_served_slot(case):
    m, x = case
    st_ = solvers._State(m, x.copy())
    starts = m.starts()
    ends = np.r_[starts[1:], len(m.arc_u)]
    before = np.bincount(m.arc_u[x], minlength=m.n_units)
    filled = solvers._chain_insert(st_, starts, ends)
    after = np.bincount(m.arc_u[st_.x], minlength=m.n_units)
    assert m.feasible(st_.x)
    assert np.all(after >= before) and int((after - before).sum()) == filled
    assert float(m.objective(st_.x).sum()) <= float(m.objective(x).sum()) + 1e-9
    # the loads it kept up to date move by move are the selection's
    wload = np.bincount(m.arc_w[st_.x], m.load[m.arc_u[st_.x]], minlength=m.n_workers)
    assert np.allclose(st_.wload, wload)
    if len(m.arc_u) <= 12:
        assert float(m.objective(st_.x).sum()) >= _best(m) - 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models_with_a_selection())
def test_neighbourhood_mip_without_presolve_is_exact(case):
    """The neighbourhood MIPs skip HiGHS's presolve: still the brute-force optimum."""
    m, _ = case
    if len(m.arc_u) > 12:
        m, _ = m.sub(np.arange(min(m.n_units, 3)), np.arange(m.n_workers))
    x, bound, optimal = solvers.mip_component(m, 10.0, 200, presolve=False)
    best = _best(m)
    assert optimal and m.feasible(x)
    assert float(m.objective(x).sum()) == best
    assert bound <= best + 1e-6 * max(1.0, best)
