"""Hotspots: rates per unit, Gi* finds planted clusters and stays near alpha on random data."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from gridkit.ops.hotspots import (
    CLASSES,
    GiGlobals,
    classify,
    eb_rates,
    gi_star,
    hex_density,
    hotspots,
    queen_neighbours,
    recurring_hotspots,
    unit_draws,
    unit_rates,
)
from gridkit.synth.ops import grid_units


@pytest.fixture(scope="module")
def units():
    return grid_units(12, 12, river_rows=2, seed=1)


def _points_in_units(units, n_per_unit, *, seed=0, category="street_light", t="2026-05-10T00:00Z"):
    """n_per_unit[k] uniform points inside unit k (square cells)."""
    rng = np.random.default_rng(seed)
    b = units.geometry.bounds.to_numpy()
    rep = np.repeat(np.arange(len(units)), n_per_unit)
    x = rng.uniform(b[rep, 0], b[rep, 2])
    y = rng.uniform(b[rep, 1], b[rep, 3])
    return gpd.GeoDataFrame(
        {"category": category, "reported_at": pd.Timestamp(t)},
        geometry=gpd.points_from_xy(x, y),
        crs=4326,
        index=pd.RangeIndex(len(rep)),
    )


def test_rates_per_km_and_per_100_households(units):
    counts = np.zeros(len(units), dtype=int)
    counts[0] = 4  # a river reach
    counts[30] = 6  # a community grid
    pts = _points_in_units(units, counts)
    r = unit_rates(pts, units)
    assert list(r.index) == list(units.index)
    assert r["count"].sum() == 10
    assert r.loc[0, "rate"] == pytest.approx(4 / (units.loc[0, "length_m"] / 1000))
    assert r.loc[30, "rate"] == pytest.approx(6 / (units.loc[30, "households"] / 100))


def test_filters_and_duplicates_counted_once(units):
    counts = np.zeros(len(units), dtype=int)
    counts[40] = 3
    pts = _points_in_units(units, counts)
    pts["category"] = ["cctv", "street_light", "street_light"]
    pts["reported_at"] = pd.to_datetime(["2026-01-01", "2026-05-01", "2026-05-02"], utc=True)
    pts["duplicate_of"] = [None, None, "R1"]
    assert unit_rates(pts, units)["count"].sum() == 2
    assert unit_rates(pts, units, category="street_light")["count"].sum() == 1
    assert unit_rates(pts, units, start="2026-02-01T00:00Z")["count"].sum() == 1
    assert unit_rates(pts, units, end="2026-02-01T00:00Z")["count"].sum() == 1


@pytest.mark.parametrize("draws", ["esda", "unit"])
def test_planted_clusters_are_found(units, draws):
    rng = np.random.default_rng(5)
    hh = units["households"].fillna(0).to_numpy(dtype=float)
    base = rng.poisson(np.where(units["kind"] == "river_reach", 1.0, hh / 100))
    grid = np.arange(len(units)).reshape(12, 12)
    cluster = grid[6:9, 6:9].ravel()  # a 3x3 block of community grids
    base[cluster] += rng.poisson(hh[cluster] / 100 * 8)
    pts = _points_in_units(units, base, seed=2)
    hs = hotspots(pts, units, permutations=999, seed=7, draws=draws)
    assert set(hs["hotspot"]) <= set(CLASSES)
    hot = hs["hotspot"].str.startswith("hot").to_numpy()
    # The centre of the block is hot at 99 %, and most of the block is hot.
    assert hs.loc[grid[7, 7], "hotspot"] == "hot-99"
    assert hot[cluster].mean() >= 0.75
    # Few hot units away from the block and its ring of neighbours.
    ring = grid[5:10, 5:10].ravel()
    far = np.setdiff1d(np.arange(len(units)), ring)
    assert hot[far].mean() <= 0.1
    assert (hs.loc[cluster, "gi_z"] > 0).all()


def test_tiny_exposure_does_not_make_a_hotspot(units):
    # One report in a grid of 1 household is 100 per 100 households raw; the planted
    # cluster has about 9 per 100 households. Smoothed rates keep the cluster on top.
    units = units.copy()
    rng = np.random.default_rng(5)
    grid = np.arange(len(units)).reshape(12, 12)
    tiny = grid[3, 2]  # a community grid far from the cluster
    units.loc[tiny, "households"] = 1
    hh = units["households"].fillna(0).to_numpy(dtype=float)
    base = rng.poisson(np.where(units["kind"] == "river_reach", 1.0, hh / 100))
    cluster = grid[6:9, 6:9].ravel()
    base[cluster] += rng.poisson(hh[cluster] / 100 * 8)
    base[tiny] = 1
    pts = _points_in_units(units, base, seed=2)
    raw = hotspots(pts, units, value="raw_rate", permutations=199, seed=7)
    # The problem being fixed: on raw rates the tiny grid's neighbourhood tops the list.
    assert raw["gi_z"].idxmax() in set(grid[2:5, 1:4].ravel())
    hs = hotspots(pts, units, permutations=199, seed=7)
    assert hs.loc[tiny, "rate"] == pytest.approx(100.0)
    assert hs.loc[tiny, "rate_eb"] < 0.1 * hs.loc[tiny, "rate"]
    assert hs.loc[tiny, "rate_eb"] < hs.loc[cluster, "rate_eb"].median()
    assert not hs.loc[tiny, "hotspot"].startswith("hot")
    assert hs["gi_z"].idxmax() in set(cluster)
    assert hs.loc[grid[7, 7], "hotspot"] == "hot-99"


def test_eb_rates_shrink_small_exposures_towards_the_overall_rate():
    count = np.array([1.0, 10, 10, 0, 3])
    exposure = np.array([0.05, 5.0, 5.0, 5.0, 0.0])
    eb = eb_rates(count, exposure)
    b = 21 / 15.05
    assert eb[4] == pytest.approx(b)  # no exposure: the overall rate
    assert abs(eb[0] - b) < abs(20 - b) / 5  # raw 20, pulled most of the way to b
    assert abs(eb[1] - 2.0) < abs(eb[0] - 20)  # large exposure: close to its raw rate
    same = eb_rates(np.array([2.0, 2, 2]), np.array([1.0, 1, 1]))
    assert np.allclose(same, 2.0)
    assert np.isnan(eb_rates(np.array([1.0]), np.array([0.0]))).all()


@pytest.mark.parametrize("draws", ["esda", "unit"])
def test_random_reports_give_about_alpha_hot_units(draws):
    units = grid_units(15, 15, seed=3)
    rng = np.random.default_rng(11)
    hh = units["households"].to_numpy(dtype=float)
    n = len(units)
    flagged = []
    for rep in range(3):
        counts = rng.poisson(hh / 100 * 3)  # rate 3 per 100 households everywhere
        pts = _points_in_units(units, counts, seed=rep)
        hs = hotspots(pts, units, permutations=199, seed=rep, draws=draws)
        flagged.append(int(hs["hotspot"].isin(["hot-99", "hot-95"]).sum()))
    # Under the null about alpha/2 = 2.5 % are hot at 95 %. Neighbouring Gi* values are
    # correlated, so allow a generous margin: the binomial 99.9 % quantile, doubled.
    limit = 2 * stats.binom.ppf(0.999, n, 0.025)
    assert max(flagged) <= limit, flagged
    assert np.mean(flagged) <= 2 * n * 0.025 + 5


def test_no_reports_or_constant_values_give_no_hotspots(units):
    empty = _points_in_units(units, np.zeros(len(units), dtype=int))
    hs = hotspots(empty, units)
    assert (hs["hotspot"] == "not significant").all() and (hs["count"] == 0).all()


def test_seeded_permutations_are_reproducible(units):
    counts = np.random.default_rng(1).poisson(2, len(units))
    pts = _points_in_units(units, counts)
    a = hotspots(pts, units, permutations=99, seed=3)
    b = hotspots(pts, units, permutations=99, seed=3)
    assert np.array_equal(a["gi_p"], b["gi_p"])


def test_classify_thresholds():
    z = np.array([2, 2, 2, 2, -2, -2, -2, 0])
    p = np.array([0.01, 0.05, 0.1, 0.11, 0.01, 0.05, 0.1, 0.0])
    assert classify(z, p).tolist() == [
        "hot-99",
        "hot-95",
        "hot-90",
        "not significant",
        "cold-99",
        "cold-95",
        "cold-90",
        "not significant",
    ]


def test_hex_density_counts_every_point(units):
    pts = _points_in_units(units, np.random.default_rng(2).poisson(2, len(units)))
    hexes = hex_density(pts, size_m=300)
    assert hexes["count"].sum() == len(pts)
    assert hexes.crs.to_epsg() == 4326
    assert hexes.geometry.is_valid.all()
    # Every point lies in the hexagon of its bin.
    joined = gpd.sjoin(pts, hexes, predicate="within")
    assert joined.index.nunique() == len(pts)
    per_hex = joined.groupby("index_right").size()
    assert (per_hex == hexes.loc[per_hex.index, "count"]).all()


def test_recurring_hotspots(units):
    grid = np.arange(len(units)).reshape(12, 12)
    cluster = grid[6:9, 6:9].ravel()
    frames = []
    for k, month in enumerate(["2026-01-15", "2026-02-15", "2026-03-15", "2026-04-15"]):
        counts = np.random.default_rng(k).poisson(1, len(units))
        if k != 1:
            counts[cluster] += 15
        frames.append(_points_in_units(units, counts, seed=k, t=month))
    pts = pd.concat(frames, ignore_index=True)
    rec = recurring_hotspots(
        pts, units, periods=4, end="2026-05-01", min_hot=3, permutations=99, seed=1
    )
    assert rec.loc[grid[7, 7], "hot_periods"] == 3
    assert rec.loc[grid[7, 7], "recurring"]
    assert "2026-02-01" not in rec.loc[grid[7, 7], "hot_in"]
    assert rec["recurring"].sum() <= 15


def test_unit_draws_give_esda_z_and_close_p(units):
    """Per-unit draws: the z-score is esda's (to rounding); p-values are those of another
    set of conditional permutations (close to esda's with 999)."""
    counts = np.random.default_rng(4).poisson(3, len(units))
    counts[:6] += 12
    pts = _points_in_units(units, counts, seed=1)
    a = hotspots(pts, units, value="count", permutations=999, seed=2)
    b = hotspots(pts, units, value="count", permutations=999, seed=2, draws="unit")
    np.testing.assert_allclose(b["gi_z"], a["gi_z"], rtol=1e-12)  # neighbours added by id
    assert np.abs(a["gi_p"] - b["gi_p"]).max() < 0.12
    assert np.corrcoef(a["gi_p"], b["gi_p"])[0, 1] > 0.98


def _brute_gi(y, nbrs, keys, permutations, seed):
    """Gi* by the definition, one unit and one permutation at a time: draw ``t`` takes
    the value at rank ``unit_draws[t]`` among the pool positions not yet taken (its own
    value's first copy taken from the start), popping from a Python list."""
    n, total = len(y), float(sum(y))
    pool = sorted(y)
    mean, var = total / n, sum(v * v for v in y) / n - (total / n) ** 2
    z, p = [], []
    for i in range(n):
        obs = float(y[i])
        for j in nbrs[i]:
            obs = obs + float(y[j])
        obs /= total
        card = len(nbrs[i]) + 1.0
        vg = card * (n - card) / (n - 1) / n**2 * var / mean**2
        with np.errstate(divide="ignore", invalid="ignore"):
            z.append((obs - card / n) / np.sqrt(vg))
        ranks = unit_draws(np.array([keys[i]]), seed, permutations, max(len(nbrs[i]), 1), n)[0]
        larger = 0
        for k in range(permutations):
            left = [q for q in range(n) if q != pool.index(y[i])]
            acc = float(y[i])
            for t in range(len(nbrs[i])):
                acc = acc + pool[left.pop(int(ranks[k, t]))]
            larger += acc / total >= obs
        larger = min(larger, permutations - larger)
        p.append(min(1.0, 2 * (larger + 1) / (permutations + 1)))
    return np.array(z), np.array(p)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=3, max_size=9),
    st.data(),
    st.integers(0, 2**31),
)
def test_gi_star_against_brute_force(values, data, seed):
    n = len(values)
    y = np.array(values, dtype=float)
    if y.sum() == 0 or np.all(y == y[0]):
        return
    pairs = data.draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))))
    nbrs = [
        sorted(
            {b for a, b in pairs if a == i and b != i} | {a for a, b in pairs if b == i and a != i}
        )
        for i in range(n)
    ]
    keys = np.array([f"U{k:02d}" for k in range(n)])
    indptr = np.r_[0, np.cumsum([len(x) for x in nbrs])]
    indices = np.array([j for x in nbrs for j in x], dtype=np.int64)
    z, p = gi_star(y, (indptr, indices), keys, stats=GiGlobals.of(y), permutations=19, seed=seed)
    bz, bp = _brute_gi(y, nbrs, keys, 19, seed)
    np.testing.assert_allclose(z, bz, rtol=1e-12)
    assert p.tolist() == bp.tolist()
    # any slice holding a unit's neighbours scores it bit for bit
    i = data.draw(st.integers(0, n - 1))
    take = np.array(sorted({i, *nbrs[i]}))
    local = {int(q): r for r, q in enumerate(take)}
    sub = [[local[j] for j in nbrs[int(q)] if j in local] for q in take]
    sptr = np.r_[0, np.cumsum([len(x) for x in sub])]
    sidx = np.array([j for x in sub for j in x], dtype=np.int64)
    sz, sp = gi_star(
        y[take],
        (sptr, sidx),
        keys[take],
        stats=GiGlobals.of(y),
        permutations=19,
        seed=seed,
        rows=np.array([local[i]]),
    )
    assert np.array_equal(sz, z[[i]], equal_nan=True) and sp[0] == p[i]


def test_queen_neighbours_match_libpysal(units):
    indptr, indices = queen_neighbours(units)
    from libpysal.weights import Queen

    w = Queen.from_dataframe(units.reset_index(drop=True), use_index=False, silence_warnings=True)
    for r in (0, 13, 77):
        assert sorted(indices[indptr[r] : indptr[r + 1]].tolist()) == sorted(w.neighbors[r])
        ids = units["unit_id"].to_numpy()[indices[indptr[r] : indptr[r + 1]]]
        assert list(ids) == sorted(ids)
