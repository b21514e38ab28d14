"""Staffing on a budget: the same answer in one process, per partition, on Dask, loaded.

The solvers count their work in steps (Lagrangian iterations, neighbourhood MIPs,
branch-and-bound nodes) per jurisdiction, so neither the engine nor the machine's
load nor the partitioning changes the answer; ``time_limit_s`` is only a safety cap,
reported when hit.
"""

from __future__ import annotations

import importlib.util
import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.bench_assign import synthetic_city
from gridkit import codes
from gridkit.scale import Engine
from gridkit.scale.staffing import assign_partitioned
from gridkit.staffing import Budget, assign_workers, jurisdictions

HAS_DASK = all(importlib.util.find_spec(m) for m in ("dask", "distributed"))
# small enough for seconds, large enough that every phase runs (the MIP on the small
# jurisdictions, the neighbourhood MIPs and the Lagrangian steps on the others)
BUDGET = Budget(iterations=10, neighbourhoods=4, nodes=20, mip_arcs=600)
OPTIONS = {"valid_from": "2026-01-01", "time_limit_s": 600.0}


@pytest.fixture(scope="module")
def city():
    units, workers = synthetic_city(300, 80, seed=1)
    # no district or township worker in 430202: its villages become jurisdictions of
    # their own, so a partition (county) holds several
    drop = workers["level"].isin(["county", "township"]) & workers["admin_code"].str.startswith(
        "430202"
    )
    return units, workers[~drop.to_numpy()].reset_index(drop=True)


def _same(a, b) -> None:
    """Same assignments (ids, distances, loads), unstaffed units and figures."""
    cols = ["unit_id", "worker_id", "distance_m", "load"]
    ka = a.assignments[cols].sort_values(cols[:2]).reset_index(drop=True)
    kb = b.assignments[cols].sort_values(cols[:2]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ka, kb, check_exact=True)
    ua = a.unassigned[["unit_id", "reason", "missing"]].sort_values("unit_id")
    ub = b.unassigned[["unit_id", "reason", "missing"]].sort_values("unit_id")
    pd.testing.assert_frame_equal(ua.reset_index(drop=True), ub.reset_index(drop=True))
    assert a.objective == pytest.approx(b.objective, rel=1e-12)
    assert a.bound == pytest.approx(b.bound, rel=1e-12)


def test_partitioned_answer_equals_the_one_process_call(city):
    units, workers = city
    ukey, _ = jurisdictions(units["admin_code"], workers["admin_code"])
    part = assign_partitioned(units, workers, by="county", budget=BUDGET, **OPTIONS)
    assert len(part.partitions) > 1
    # a partition of several jurisdictions (430202 without its district worker)
    assert ukey[units["admin_code"].str.startswith("430202")].nunique() > 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = assign_workers(units, workers, budget=BUDGET, **OPTIONS)
    assert not whole.stats["time_capped"] and not part.time_capped
    assert whole.stats["jurisdictions"] == ukey[ukey != ""].nunique()
    _same(part, whole)
    assert 0 <= whole.gap < 0.05
    # jurisdictions solved apart add up: the bound is still a bound of the objective
    assert whole.bound <= whole.objective


class _Busy:
    """Threads keeping the cores busy (numpy releases the GIL) while a test runs."""

    def __init__(self, n: int = 2) -> None:
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._spin, daemon=True) for _ in range(n)]

    def _spin(self) -> None:
        a = np.random.default_rng(0).random((300, 300))
        while not self.stop.is_set():
            a = np.tanh(a @ a.T / 300.0)

    def __enter__(self) -> _Busy:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


@pytest.mark.skipif(not HAS_DASK, reason="needs the 'scale' extra (dask, distributed)")
@pytest.mark.timeout(300)
def test_localcluster_on_a_loaded_machine_gives_the_serial_answer(city):
    units, workers = city
    serial = assign_partitioned(units, workers, by="county", budget=BUDGET, **OPTIONS)
    with _Busy(2), Engine.local(2, memory_limit="2GiB") as engine:
        engine.client.run(warnings.simplefilter, "ignore")
        assert engine.workers == 2
        loaded = assign_partitioned(
            units, workers, by="county", engine=engine, budget=BUDGET, **OPTIONS
        )
    assert not serial.time_capped and not loaded.time_capped
    _same(loaded, serial)
    pd.testing.assert_frame_equal(loaded.assignments, serial.assignments)


def test_the_time_cap_is_reported_when_it_stops_the_budget(city):
    units, workers = city
    big = Budget(iterations=100_000, neighbourhoods=100_000, nodes=10_000)
    r = assign_workers(units, workers, budget=big, method="heuristic", time_limit_s=0.2)
    assert r.stats["time_capped"]
    assert "may depend on the machine's load" in r.report()
    assert len(r.assignments) > 0.9 * len(units)  # a cap still gives an answer


def test_without_a_budget_the_call_stops_on_time_as_before(city):
    units, workers = city
    r = assign_workers(units, workers, method="heuristic", time_limit_s=5.0)
    assert "jurisdictions" not in r.stats  # one solver run over everything
    assert r.bound <= r.objective


def test_budget_from_a_number_or_a_dict():
    assert Budget.coerce(40) == Budget(iterations=40, neighbourhoods=200)
    assert Budget.coerce({"nodes": 7}).nodes == 7
    with pytest.raises(ValueError, match="positive"):
        Budget.coerce(0)


# ------------------------------------------------------------------ jurisdictions

VILLAGES = [
    f"43{c:02d}{k:02d}{t:03d}{v:03d}"
    for c in (1, 2)
    for k in (1, 2)
    for t in (1, 2)
    for v in (1, 2)
]


def _area(village: str, level: int) -> str:
    """The area of ``level`` (0 province ... 4 village) holding a village, as a code."""
    width = [2, 4, 6, 9, 12][level]
    return codes.normalise(pd.Series([village[:width]])).iloc[0]


@settings(max_examples=30, deadline=None)
@given(
    unit_v=st.lists(st.sampled_from(VILLAGES), min_size=1, max_size=12),
    workers=st.lists(
        st.tuples(st.sampled_from(VILLAGES), st.integers(0, 4)), min_size=1, max_size=8
    ),
    up=st.integers(0, 2),
)
def test_jurisdictions_are_the_components_of_who_may_serve_whom(unit_v, workers, up):
    wcodes = pd.Series([_area(v, lv) for v, lv in workers])
    ucodes = pd.Series(unit_v)
    ukey, wkey = jurisdictions(ucodes, wcodes, up)
    # brute force: a worker may serve a unit iff the unit's code is in scope of the
    # worker's area `up` levels higher; units are joined through shared workers
    areas = [codes.normalise(pd.Series([c])).iloc[0] for c in wcodes]
    for _ in range(up):  # above a province: stays there
        ups = codes.parent(pd.Series(areas))
        areas = [a if p is None or pd.isna(p) else p for a, p in zip(areas, ups, strict=True)]
    may = np.array([[codes.in_scope(u, a) for a in areas] for u in ucodes], dtype=bool)
    label = list(range(len(ucodes)))
    for w in range(len(areas)):
        served = np.flatnonzero(may[:, w])
        for i in served[1:]:
            old, new = label[i], label[served[0]]
            label = [new if x == old else x for x in label]
    for i in range(len(ucodes)):
        assert (ukey[i] == "") == (not may[i].any())
        for j in range(len(ucodes)):
            if may[i].any() and may[j].any():
                assert (ukey[i] == ukey[j]) == (label[i] == label[j])
    # every worker whose reach holds a unit shares that unit's key
    for w in range(len(areas)):
        for i in np.flatnonzero(may[:, w]):
            assert wkey[w] == ukey[i]
