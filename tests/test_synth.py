"""Synthetic layers: determinism, exact nesting, topology, contract, scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridkit.layers import check_layer
from gridkit.synth import (
    CATEGORIES,
    DEPARTMENTS,
    building_footprints,
    river_sections,
    sample_layers,
    synthetic_layers,
    synthetic_rivers,
)

LAYER_NAMES = [
    "admin_areas",
    "rivers",
    "water_bodies",
    "communities",
    "buildings",
    "workers",
    "river_chiefs",
    "departments",
]


@pytest.fixture(scope="module")
def sample():
    return sample_layers(n_buildings=4_000, n_communities=25)


def _assert_nesting(admin, *, child: str, tol_deg2: float) -> None:
    geom = admin.set_index("admin_code").geometry
    kids = admin[admin["level"] == child]
    parent = np.asarray(geom.reindex(kids["parent_code"]).array)
    assert not shapely.is_missing(parent).any(), "every child has its parent"
    outside = shapely.area(shapely.difference(np.asarray(kids.geometry.array), parent))
    assert outside.max() <= tol_deg2
    for code, group in kids.groupby("parent_code"):
        g = np.asarray(group.geometry.array)
        assert shapely.coverage_is_valid(g), f"children of {code} overlap"
        gap = shapely.coverage_union_all(g).symmetric_difference(geom[code]).area
        assert gap <= max(tol_deg2, 1e-12 * geom[code].area), code


def _check_all(layers) -> None:
    assert set(layers) == set(LAYER_NAMES)
    for name in LAYER_NAMES:
        check_layer(layers[name], name)
        if name != "admin_areas" and name != "rivers":
            assert layers[name]["synthetic"].all()


def test_every_layer_passes_the_contract(sample):
    _check_all(sample)
    admin = sample["admin_areas"]
    assert admin.groupby("level").size()[["city", "county"]].tolist() == [1, 9]
    real = admin["level"].isin(["city", "county"])
    assert not admin.loc[real, "synthetic"].any() and admin.loc[~real, "synthetic"].all()
    assert 100 <= (admin["level"] == "village").sum() <= 500


def test_deterministic():
    a = synthetic_layers(seed=7, n_buildings=1_500, river_km=150, n_areas=25)
    b = synthetic_layers(seed=7, n_buildings=1_500, river_km=150, n_areas=25)
    c = synthetic_layers(seed=8, n_buildings=1_500, river_km=150, n_areas=25)
    for name in LAYER_NAMES:
        pd.testing.assert_frame_equal(a[name], b[name])
    ga, gc = np.asarray(a["buildings"].geometry.array), np.asarray(c["buildings"].geometry.array)
    n = min(len(ga), len(gc))
    assert not shapely.equals(ga[:n], gc[:n]).all()


def test_codes_embed_parents(sample):
    admin = sample["admin_areas"]
    t = admin[admin["level"] == "township"]
    v = admin[admin["level"] == "village"]
    assert t["admin_code"].str.len().eq(9).all() and v["admin_code"].str.len().eq(12).all()
    assert (t["admin_code"].str[:6] == t["parent_code"]).all()
    assert (v["admin_code"].str[:9] == v["parent_code"]).all()
    assert set(t["parent_code"]) == set(admin.loc[admin["level"] == "county", "admin_code"])


def test_nesting_and_tiling(sample):
    admin = sample["admin_areas"]
    # villages are Voronoi cells of their county; townships are unions of villages
    _assert_nesting(admin, child="village", tol_deg2=0.0)
    # townships vs the real districts: floating-point noise only (~1e-16 deg2)
    _assert_nesting(admin, child="township", tol_deg2=1e-12)


def test_tributaries_join_the_network(sample):
    rivers = sample["rivers"]
    assert rivers.loc[0, "river_id"] == "XJ" and not rivers.loc[0, "synthetic"]
    assert len(rivers) > 10
    geom = rivers.set_index("river_id").geometry
    trib = rivers[rivers["parent_river_id"].notna()]
    ends = shapely.points(np.array([shapely.get_coordinates(g)[-1] for g in trib.geometry]))
    parents = np.asarray(geom.reindex(trib["parent_river_id"]).array)
    assert shapely.intersects(ends, parents).all()  # exact confluence on a parent vertex
    coords = shapely.get_coordinates(parents)
    for end in shapely.get_coordinates(ends):
        assert (coords == end).all(axis=1).any()
    # no tributary crosses another line
    g = np.asarray(rivers.geometry.array)
    a, _b = shapely.STRtree(g).query(g, predicate="crosses")
    assert len(a) == 0


def test_water_bodies_avoid_rivers(sample):
    wb = sample["water_bodies"]
    assert set(wb["kind"]) <= {"reservoir", "lake", "pond"} and len(wb) > 5
    hit, _ = shapely.STRtree(np.asarray(sample["rivers"].geometry.array)).query(
        np.asarray(wb.geometry.array), predicate="intersects"
    )
    assert len(hit) == 0


def test_buildings_in_communities(sample):
    b, c = sample["buildings"], sample["communities"]
    assert c["admin_code"].isin(sample["admin_areas"]["admin_code"]).all()
    comm = np.asarray(c.set_index("community_id").geometry.reindex(b["community_id"]).array)
    inside = shapely.within(np.asarray(b.geometry.array), comm)
    assert (inside == ~b["straddles"]).all()
    assert b["straddles"].sum() >= 1 and b["is_part"].sum() >= 1
    assert b["households"].isna().sum() >= 1 and b["households"].dtype == "Int64"
    # building parts overlap their main footprint
    g = np.asarray(b.geometry.array)
    a, _z = shapely.STRtree(g).query(g, predicate="overlaps")
    assert (b["is_part"].to_numpy()[a]).any()


def test_chiefs_people_departments(sample):
    admin, rivers = sample["admin_areas"], sample["rivers"]
    chiefs, workers = sample["river_chiefs"], sample["workers"]
    sections = river_sections(rivers, admin)
    duty = chiefs[
        chiefs["role"].eq("chief") & chiefs["level"].isin(["city", "county", "township", "village"])
    ]
    have = set(zip(duty["river_id"], duty["admin_code"], strict=True))
    gaps = [
        s for s in zip(sections["river_id"], sections["admin_code"], strict=True) if s not in have
    ]
    assert 1 <= len(gaps) < 0.2 * len(sections)
    assert have <= set(zip(sections["river_id"], sections["admin_code"], strict=True))
    assert set(chiefs["level"]) == {"province", "city", "county", "township", "village", "general"}
    assert set(chiefs["role"]) == {"chief", "police", "civilian", "cleaner"}
    assert chiefs["valid_to"].notna().any() and chiefs["chief_id"].str.startswith("HO-").any()
    assert chiefs["worker_id"].isin(workers["worker_id"]).all()
    assert set(workers["role"]) == {"grid_worker", "building_head"}
    cats = set(",".join(sample["departments"]["categories"]).split(","))
    assert cats == set(CATEGORIES) == {c for v in DEPARTMENTS.values() for c in v}


def test_footprints_vectorised():
    p = building_footprints(
        np.array([0.0, 100.0]),
        np.array([0.0, 0.0]),
        width_m=np.array([20.0, 10.0]),
        depth_m=np.array([10.0, 10.0]),
        angle_rad=np.array([0.0, np.pi / 4]),
    )
    assert shapely.area(p) == pytest.approx([200.0, 100.0])
    assert shapely.is_ccw(shapely.get_exterior_ring(p)).all()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_areas=st.integers(8, 40))
def test_any_seed_nests_and_tiles(seed, n_areas):
    layers = synthetic_layers(seed=seed, n_buildings=300, river_km=60, n_areas=n_areas)
    _check_all(layers)
    admin = layers["admin_areas"]
    _assert_nesting(admin, child="village", tol_deg2=0.0)
    _assert_nesting(admin, child="township", tol_deg2=1e-12)
    _assert_nesting(admin, child="county", tol_deg2=1e-12)


def test_scale_1e5_buildings():
    layers = synthetic_layers(seed=1, n_buildings=100_000, river_km=300, n_areas=100)
    assert len(layers["buildings"]) >= 100_000
    check_layer(layers["buildings"], "buildings")


# --------------------------------------------------------------------------- scale rivers


def _assert_planar_network(rivers) -> None:
    """Tributaries end exactly on a parent vertex; lines meet only at those confluences."""
    ids = rivers["river_id"].to_numpy(dtype=object)
    assert len(set(ids)) == len(ids)
    g = np.asarray(rivers.geometry.array)
    assert shapely.is_valid(g).all() and shapely.is_simple(g).all()
    row = {r: i for i, r in enumerate(ids)}
    parent = np.array([row.get(p, -1) for p in rivers["parent_river_id"].fillna("")])
    child = np.flatnonzero(rivers["parent_river_id"].notna().to_numpy())
    assert (parent[child] >= 0).all() and (parent[child] < child).all()  # parents first
    # exact confluence: the tributary's last coordinate is one of its parent's vertices
    end = shapely.get_coordinates(shapely.get_point(g[child], -1))
    pc, owner = shapely.get_coordinates(g[parent[child]], return_index=True)
    hit = np.zeros(len(child), dtype=bool)
    hit[owner[(pc == end[owner]).all(axis=1)]] = True
    assert hit.all(), f"{int((~hit).sum())} confluences are not parent vertices"
    # any two lines that meet are parent and child, meeting in the child's end point only
    a, b = shapely.STRtree(g).query(g, predicate="intersects")
    a, b = a[a < b], b[a < b]
    is_parent = parent[b] == a  # ids sort parents first, so a < b
    assert is_parent.all(), list(zip(ids[a[~is_parent]], ids[b[~is_parent]], strict=True))[:5]
    meet = shapely.intersection(g[a], g[b])
    assert shapely.equals(meet, shapely.get_point(g[b], -1)).all()
    assert len(shapely.STRtree(g).query(g, predicate="crosses")[0]) == 0


def _length_km(rivers) -> float:
    return float(rivers.to_crs(rivers.estimate_utm_crs()).length.sum()) / 1000


@pytest.mark.parametrize(
    ("seed", "bbox"),
    [
        (0, None),
        (1, None),
        (2, (112.0, 26.0, 113.5, 26.3)),  # wide and flat: elongated cells
    ],
)
def test_scale_rivers_planar_exact_inside(seed, bbox):
    rivers = synthetic_rivers(river_km=2_000, bbox=bbox, seed=seed)
    check_layer(rivers, "rivers")
    _assert_planar_network(rivers)
    assert _length_km(rivers) == pytest.approx(2_000, rel=0.1)
    assert set(rivers["geometry"].geom_type) == {"LineString"}
    box = shapely.box(*(bbox or rivers.total_bounds))
    assert shapely.contains(box, np.asarray(rivers.geometry.array)).all()
    if bbox is not None:
        lo, hi = rivers.total_bounds[:2], rivers.total_bounds[2:]
        assert (lo > bbox[:2]).all() and (hi < bbox[2:]).all()
    # dendritic: main stems, tributaries, and tributaries of tributaries
    depth = rivers["river_id"].str.count("-")
    assert set(depth) == {0, 1, 2}


def test_scale_rivers_length_and_sizes():
    for km in (60, 500, 20_000):
        rivers = synthetic_rivers(river_km=km, seed=5)
        assert _length_km(rivers) == pytest.approx(km, rel=0.1), km


def test_scale_rivers_deterministic():
    a = synthetic_rivers(river_km=2_000, seed=11)
    b = synthetic_rivers(river_km=2_000, seed=11)
    c = synthetic_rivers(river_km=2_000, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not (len(a) == len(c) and a.geometry.geom_equals(c.geometry).all())
    layers = synthetic_layers(seed=11, n_buildings=300, river_km=300, n_areas=20)
    box = tuple(layers["admin_areas"].total_bounds)
    pd.testing.assert_frame_equal(
        layers["rivers"], synthetic_rivers(river_km=300, bbox=box, seed=11)
    )


def test_scale_layers_many_areas_tile_the_box():
    layers = synthetic_layers(seed=4, n_buildings=500, river_km=2_000, n_areas=2_500)
    admin = layers["admin_areas"]
    villages = admin[admin["level"] == "village"]
    assert 2_000 <= len(villages) <= 3_000 and admin["admin_code"].is_unique
    city = admin.loc[admin["level"] == "city"].geometry.iloc[0]
    box = shapely.box(*city.bounds)
    assert shapely.equals(city, box) or city.symmetric_difference(box).area < 1e-12
    _assert_nesting(admin, child="county", tol_deg2=1e-12)
    _assert_nesting(admin, child="township", tol_deg2=1e-12)
    _assert_nesting(admin, child="village", tol_deg2=0.0)
    rivers = np.asarray(layers["rivers"].geometry.array)
    assert shapely.within(rivers, city).all()
